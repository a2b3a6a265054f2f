"""Rules: allow / block / sinkhole per policy, vendor or host; the most specific rule wins.

Specificity, most specific first: policy id; exact host; vendor; wildcard host (a longer
pattern before a shorter one); then the default (`allow`, or `block` with --block-all).
The action depends only on the match and the rules, never on decoding.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from inspector.core.destination import normalize_host
from inspector.core.hosts import default as host_catalogue

ACTIONS = ("allow", "block", "sinkhole")
KINDS = ("policy", "vendor", "host", "owner", "category")
# When several policies may match (a shape not yet known), the strictest action wins.
STRICTNESS = {"allow": 0, "sinkhole": 1, "block": 2}


class RuleError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rule:
    target: str
    kind: str
    action: str

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise RuleError(f"unknown action {self.action!r} (use {', '.join(ACTIONS)})")
        if self.kind not in KINDS:
            raise RuleError(f"unknown rule kind {self.kind!r} (use {', '.join(KINDS)})")

    def __reduce__(self) -> tuple[Any, ...]:  # (pickled with each observation: see Observation's)
        return (Rule, (self.target, self.kind, self.action))


@dataclass(frozen=True, slots=True)
class Decision:
    action: str
    rule: Rule | None  # None: the default applied
    why: str = ""      # what led to it beyond the rule (unclaimed traffic, another name of the host)

    @property
    def reason(self) -> str:
        base = "default" if self.rule is None else f"{self.rule.kind} {self.rule.target}"
        return f"{base}: {self.why}" if self.why else base

    def explained(self, why: str) -> Decision:
        return Decision(self.action, self.rule, f"{self.why}; {why}" if self.why else why)

    def __reduce__(self) -> tuple[Any, ...]:  # (pickled with each observation: see Observation's)
        return (Decision, (self.action, self.rule, self.why))


def strictest(decisions: Iterable[Decision]) -> Decision | None:
    """The strictest of several decisions (block > sinkhole > allow); the first of equals."""
    best: Decision | None = None
    for decision in decisions:
        if best is None or STRICTNESS[decision.action] > STRICTNESS[best.action]:
            best = decision
    return best


def _host_key(target: str) -> str:
    if "*" in target:
        return target.lower().rstrip(".")
    return normalize_host(target) or target.lower()


class RuleBook:
    """An immutable set of rules; swap the whole book to change rules (thread-safe reads)."""

    def __init__(self, rules: Iterable[Rule] = (), default: str = "allow") -> None:
        if default not in ACTIONS:
            raise RuleError(f"unknown default action {default!r}")
        self.default = default
        self.rules = tuple(rules)
        self._policy = {r.target: r for r in self.rules if r.kind == "policy"}
        self._vendor = {r.target.lower(): r for r in self.rules if r.kind == "vendor"}
        # a company or a category of the host catalogue: every host it lists
        self._owner = {r.target.lower(): r for r in self.rules if r.kind == "owner"}
        self._category = {r.target.lower(): r for r in self.rules if r.kind == "category"}
        self._host_exact = {_host_key(r.target): r for r in self.rules if r.kind == "host" and "*" not in r.target}
        self._host_wild = sorted(((_host_key(r.target), r) for r in self.rules if r.kind == "host" and "*" in r.target),
                                 key=lambda pair: -len(pair[0]))

    @classmethod
    def from_dicts(cls, rows: Iterable[dict[str, object]], default: str = "allow") -> RuleBook:
        rules = []
        for row in rows:
            try:
                rules.append(Rule(str(row["target"]), str(row.get("kind", "policy")), str(row["action"])))
            except (KeyError, RuleError):
                continue  # a malformed row from another version must not stop the proxy
        return cls(rules, default)

    def decide(self, policy_id: str | None, vendor: str | None, host: str) -> Decision:
        host = normalize_host(host) or host.lower()
        if policy_id and policy_id in self._policy:
            return Decision(self._policy[policy_id].action, self._policy[policy_id])
        if host in self._host_exact:
            return Decision(self._host_exact[host].action, self._host_exact[host])
        if vendor and vendor.lower() in self._vendor:
            rule = self._vendor[vendor.lower()]
            return Decision(rule.action, rule)
        if self._owner or self._category:
            entry = host_catalogue().lookup(host)
            if entry is not None:
                found = self._owner.get(entry.owner.lower()) or self._category.get(entry.category.lower())
                if found is not None:
                    return Decision(found.action, found)
        for pattern, rule in self._host_wild:
            if fnmatch.fnmatchcase(host, pattern):
                return Decision(rule.action, rule)
        return Decision(self.default, None)

    def host_rule(self, host: str) -> Rule | None:
        """The rule naming this host itself (exact, else the longest wildcard), if any."""
        host = normalize_host(host) or host.lower()
        if host in self._host_exact:
            return self._host_exact[host]
        for pattern, rule in self._host_wild:
            if fnmatch.fnmatchcase(host, pattern):
                return rule
        return None

    def decide_any(self, candidates: Iterable[tuple[str, str]], host: str) -> Decision:
        """For several possible policies (id, vendor): the strictest of their decisions."""
        return strictest(self.decide(pid, vendor, host) for pid, vendor in candidates) \
            or self.decide(None, None, host)


def infer_kind(target: str, policy_ids: Iterable[str], vendors: Iterable[str]) -> str:
    """`rules block refine` → vendor (a collector's title too: `Segment`); `rules block
    refine-v4-browser` → policy; a company of the host catalogue (`Twilio`) → owner; a category
    (`analytics`) → category; a dotted name → host."""
    from inspector.core import collectors

    if target in set(policy_ids):
        return "policy"
    known_vendors = {v.lower() for v in vendors} | {c.title.lower() for c in collectors.collectors()}
    if target.lower() in known_vendors:
        return "vendor"
    catalogue = host_catalogue()
    if target.lower() in {o.lower() for o in catalogue.owners()}:
        return "owner"
    if target.lower() in {c.lower() for c in catalogue.categories()}:
        return "category"
    if "." in target or "*" in target:
        return "host"
    raise RuleError(f"{target!r} is neither a policy id, a vendor or collector, a company or category of the "
                    "host catalogue, nor a host name (use --policy/--vendor/--host to say which)")
