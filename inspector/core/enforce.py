"""Allow, block or sinkhole: decided on every name of the destination, before anything is forwarded.

A request has up to three names for where it goes: the destination the proxy really connects
to (the CONNECT target, an absolute URL's authority, a transparent connection's original
address), the TLS SNI, and the Host header. A client chooses all three, so each is held
against the rules and the strictest outcome applies.

Rules cover hosts, not paths: a policy or vendor rule applies to every request to the hosts
that policy or vendor names, whatever its method, path or transport. Traffic on such a host
that no policy claims gets the strictest rule of the policies naming the host (on a host
several vendors share, the strictest of all of them) — unless a rule names the host itself,
which then decides it. Nothing here decodes: where only the payload's shape tells two
policies apart, the caller supplies `select` (bounded work on the body) or the strictest of
them applies.
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inspector.core import collectors
from inspector.core.collectors import Collector
from inspector.core.destination import normalize_host, normalize_path
from inspector.core.discover import looks_like_telemetry
from inspector.core.hosts import default as host_catalogue
from inspector.core.observation import Observation
from inspector.core.policy import Catalogue, Policy
from inspector.core.rules import STRICTNESS, Decision, RuleBook, strictest

ROLES = ("destination", "sni", "host")
ROLE_WORDS = {"destination": "the destination", "sni": "the TLS SNI", "host": "the Host header"}

Select = Callable[[list[Policy]], "Policy | None"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What to do with a request. `decision` None: not telemetry, pass it through untouched."""

    decision: Decision | None
    policy: Policy | None = None      # the policy that claims it (None: unclaimed, or not yet known)
    answer_as: Policy | None = None   # whose sinkhole answer to give
    pending: bool = False             # only the payload's shape can tell: decide again with the body
    collector: Collector | None = None  # the collector whose endpoint it is (its sinkhole answers)

    @property
    def action(self) -> str:
        return self.decision.action if self.decision else "allow"


PASS = Outcome(None)


def name_pairs(names: tuple[tuple[str, str], ...]) -> list[tuple[str, str | None]]:
    """(role, normalised name or None when malformed) for each non-empty name given."""
    return [(role, normalize_host(raw)) for role, raw in names if raw]


@functools.lru_cache(maxsize=1024)  # (asked for each live request: a connection's names repeat)
def mismatch(names: tuple[tuple[str, str], ...]) -> str | None:
    """A message when the names of one request disagree (None when they agree).

    A destination that is an IP address (transparent interception) is not compared: the names
    resolve to it."""
    pairs = name_pairs(names)
    seen = dict(pairs)
    raw = dict(names)
    malformed = [role for role, name in pairs if name is None]
    if malformed:
        return "; ".join(f"{ROLE_WORDS.get(role, role)} {raw[role]!r} is not a valid host name"
                         for role in malformed)
    destination = seen.get("destination")
    compared = {role: name for role, name in seen.items()
                if not (role == "destination" and name and _is_ip(name))}
    if len(set(compared.values())) <= 1:
        return None
    parts = [f"{ROLE_WORDS.get(role, role)} {raw[role]!r}" for role in ROLES if role in compared]
    connects = f" (the proxy connects to {raw['destination']!r})" if destination else ""
    return "the request names different hosts: " + ", ".join(parts) + connects


@functools.lru_cache(maxsize=1024)
def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _at_collector_endpoint(obs: Observation) -> tuple[Collector | None, bool]:
    """A request to an unknown host sent to a collector's endpoint (a self-hosted or proxied
    collector: OTLP on any host, Sentry's `/api/<project>/envelope/`): whether it is, and the
    collector when only one has that endpoint (its sinkhole answers; its shape decides later
    whether the event is that collector's)."""
    method = obs.method if obs.transport == "http" else obs.transport.upper()
    path = normalize_path(obs.path)
    found = [c for c in collectors.collectors() if c.endpoint(method, path)]
    return (found[0] if len(found) == 1 else None), bool(found)


class Enforcer:
    """Decides one request's action from the catalogue and the rules (both swapped whole)."""

    MEMO_SIZE = 4096

    def __init__(self, catalogue: Catalogue, rules: RuleBook, discover: bool = False) -> None:
        self.catalogue = catalogue
        self.rules = rules
        self.discover = discover
        # Outcomes by what they rest on (names, method, transport, path; whether the shape may
        # be read): the proxy decides on its event loop for every request, and an app repeats
        # its requests. Bounded (a path may hold ids); emptied when the policies change.
        self._memo: dict[tuple[Any, ...], Outcome] = {}
        self._memo_policies: tuple[int, int] = (0, 0)

    def intercepts(self, host: str) -> bool:
        """Whether connections to `host` are opened (TLS intercepted) at all."""
        if self.discover:
            return True
        name = normalize_host(host)
        if name is None:
            return False
        return (self.catalogue.is_telemetry_host(name) or bool(collectors.serving(name))
                or host_catalogue().lookup(name) is not None or self.rules.host_rule(name) is not None)

    def decide(self, obs: Observation, names: tuple[tuple[str, str], ...],
               select: Select | None = None) -> Outcome:
        """The outcome for `obs`, sent to the hosts `names` ((role, raw name), destination first).

        Memoised by what it rests on — the names, method, transport and path (not the query,
        headers or body: `--discover` too reads only the host and path) — unless `select` read
        the payload's shape (the body's)."""
        policies = self.catalogue.policies
        if self._memo_policies != (id(policies), len(policies)):
            self._memo, self._memo_policies = {}, (id(policies), len(policies))
        key = (names, obs.method, obs.transport, obs.path, select is None)
        found = self._memo.get(key)
        if found is not None:
            return found
        read: list[bool] = []

        def reading(candidates: list[Policy]) -> Policy | None:
            read.append(True)
            assert select is not None
            return select(candidates)
        outcome = self._decide(obs, names, reading if select is not None else None)
        if not read:
            if len(self._memo) >= self.MEMO_SIZE:
                self._memo.clear()
            self._memo[key] = outcome
        return outcome

    def _decide(self, obs: Observation, names: tuple[tuple[str, str], ...],
                select: Select | None) -> Outcome:
        results: list[tuple[str, str, Outcome]] = []
        for role, name in name_pairs(names):
            if name is None or any(name == other for _, other, _ in results):
                continue
            outcome = self._for_name(obs, name, select)
            if outcome.decision is not None:
                results.append((role, name, outcome))
        if not results:
            return PASS
        best_role, best_name, best = results[0]
        for role, name, outcome in results[1:]:
            if STRICTNESS[outcome.action] > STRICTNESS[best.action]:
                best_role, best_name, best = role, name, outcome
        pending = any(outcome.pending for _, _, outcome in results)
        decision = best.decision
        assert decision is not None
        if best_role != "destination":
            decision = decision.explained(f"{ROLE_WORDS.get(best_role, best_role)} names {best_name}")
        return Outcome(decision, best.policy, best.answer_as, pending, best.collector)

    def _for_name(self, obs: Observation, host: str, select: Select | None) -> Outcome:
        rules = self.rules
        for_host = self.catalogue.policies_for_host(host)
        serving = collectors.serving(host)
        if not for_host and serving:
            return self._unclaimed(obs, host, for_host, serving)
        if not for_host:
            rule = rules.host_rule(host)
            if rule is not None:
                return Outcome(Decision(rule.action, rule), collector=_at_collector_endpoint(obs)[0])
            if host_catalogue().lookup(host) is not None:
                return Outcome(rules.decide(None, None, host))
            if self.discover:
                collector, at_endpoint = _at_collector_endpoint(obs)
                if at_endpoint or looks_like_telemetry(obs, host):
                    return Outcome(rules.decide(None, None, host), collector=collector)
            return PASS
        candidates = self.catalogue.candidates_at(obs, host, obs.path)
        if not candidates:
            return self._unclaimed(obs, host, for_host, serving)
        decisions = [rules.decide(p.id, p.vendor, host) for p in candidates]
        if len({d.action for d in decisions}) == 1 and len({repr(p.sinkhole) for p in candidates}) == 1:
            # Every candidate gets the same answer: the worker matches and decodes once.
            return Outcome(decisions[0], candidates[0] if len(candidates) == 1 else None, candidates[0])
        if not any(p.shape for p in candidates):
            first = candidates[0]
            return Outcome(decisions[0], first, first)
        fallback = strictest(decisions)
        assert fallback is not None
        answer_as = candidates[decisions.index(fallback)]
        if select is None:
            return Outcome(fallback, None, answer_as, pending=True)
        policy = select(candidates)
        if policy is None:  # the shape could not be read: the strictest of them (fail closed)
            names = ", ".join(p.id for p in candidates)
            return Outcome(fallback.explained(f"the payload's shape could not be read: strictest of {names}"),
                           None, answer_as)
        return Outcome(rules.decide(policy.id, policy.vendor, host), policy, policy)

    def _unclaimed(self, obs: Observation, host: str, for_host: tuple[Policy, ...],
                   serving: tuple[Collector, ...]) -> Outcome:
        """No policy claims it: the host's own rule, else the strictest rule of every vendor and
        collector the host belongs to."""
        method = obs.method if obs.transport == "http" else obs.transport.upper()
        path = normalize_path(obs.path)
        collector = next((c for c in serving if c.endpoint(method, path)), serving[0] if serving else None)
        what = f"no policy claims {obs.transport if obs.transport != 'http' else obs.method} {path} on {host}"
        rule = self.rules.host_rule(host)
        if rule is not None:
            why = "" if not for_host else f"{what}: the rule for the host decides"
            return Outcome(Decision(rule.action, rule, why), collector=collector)
        decisions = [self.rules.decide(p.id, p.vendor, host) for p in for_host]
        decisions += [self.rules.decide(None, c.title, host) for c in serving]
        decision = strictest(decisions)
        assert decision is not None
        if decision.rule is None or not for_host:
            return Outcome(decision, collector=collector)
        vendors = sorted({p.vendor for p in for_host} | {c.title for c in serving})
        owners = f"{', '.join(vendors)} (a host they share)" if len(vendors) > 1 else vendors[0]
        return Outcome(decision.explained(f"{what}: the strictest rule of {owners} applies"), collector=collector)
