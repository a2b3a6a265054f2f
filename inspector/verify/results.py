"""What one or two runs of a command sent, per channel, and how the runs compare.

A channel is a policy (telemetry the catalogue describes), else a host (telemetry no policy
claims, or `--discover`'s finds); traffic that went around the proxy (`bypass`, detection
mode) and traffic the namespace refused (`refused`) are channels of their own, by
destination. Comparing a run without opt-outs with one with them gives each channel a status:

* ``sent``: only without the opt-outs;
* ``stopped``: sent without, not with — the opt-out works;
* ``ignored``: sent with the opt-outs too — the opt-out is broken (or there is none);
* ``new``: only with the opt-outs.

(`sent` and `stopped` are the same observation: the word says which question was asked. A
single run with `--opt-out` reports every channel still seen as ``ignored``.)
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from inspector.core.event import EventSummary
from inspector.core.findings import Finding
from inspector.verify.optouts import OptOut, for_channel

STATUSES = ("sent", "stopped", "ignored", "new")


@dataclass
class Run:
    """One run of the command and what it sent."""

    label: str                                   # "run", "without opt-outs", "with opt-outs"
    opt_outs: list[OptOut] = field(default_factory=list)
    exit_status: int = 0
    events: list[EventSummary] = field(default_factory=list)  # (what the report needs of each)
    bypasses: Counter[str] = field(default_factory=Counter)   # detection: destination → count
    refused: Counter[str] = field(default_factory=Counter)    # namespace: destination → count
    tunnels: Counter[str] = field(default_factory=Counter)    # namespace: name:port → connections
    lookups: Counter[str] = field(default_factory=Counter)    # namespace: names asked
    canary: list[tuple[str, Finding]] = field(default_factory=list)  # (channel, finding)

    def channels(self) -> Counter[str]:
        """channel → requests (events, bypassing or refused connections)."""
        counts: Counter[str] = Counter()
        for event in self.events:
            counts[channel_of(event)] += 1
        for label, count in self.bypasses.items():
            counts[f"bypass {label}"] += count
        for label, count in self.refused.items():
            counts[f"refused {label}"] += count
        return counts

    def passed(self) -> Counter[str]:
        """Namespace: connections to hosts that produced no event — passed through the proxy
        unopened (no policy, collector or rule names them), so whatever they carried left."""
        seen = {e.host for e in self.events}
        out: Counter[str] = Counter()
        for tunnel, count in self.tunnels.items():
            host = tunnel.rsplit(":", 1)[0].strip("[]").lower().rstrip(".")
            if host not in seen:
                out[tunnel] += count
        return out

    def left(self) -> bool:
        """Did anything leave, or may it have (telemetry seen, a bypass, refused traffic, a
        connection passed through to a host the inspector does not know)?"""
        return bool(self.events or self.bypasses or self.refused or self.passed())


def channel_of(event: EventSummary) -> str:
    return event.policy or event.host or "(unknown host)"


@dataclass
class Channel:
    """One row of the verification report."""

    name: str
    kind: str                      # "policy", "host", "bypass", "refused"
    owner: str | None
    hosts: list[str]
    claims: list[str]
    opt_outs: list[OptOut]
    counts: dict[str, int]         # run label → requests
    status: str | None             # compare/opt-out status, None for a plain run
    violations: int = 0
    canary: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"channel": self.name, "kind": self.kind, "owner": self.owner, "hosts": self.hosts,
                "claims": self.claims, "opt_outs": [o.to_dict() for o in self.opt_outs],
                "requests": self.counts, "status": self.status, "violations": self.violations,
                "canary_hits": self.canary}


def status_of(without: int | None, with_: int | None) -> str | None:
    """The compare status from the request counts of the two runs (None: not in a compare)."""
    if without is None:  # a single --opt-out run: whatever is seen was sent despite the opt-outs
        return "ignored" if with_ else None
    if with_ is None:
        return None
    if without and with_:
        return "ignored"
    if without:
        return "stopped"
    if with_:
        return "new"
    return None


def channels(runs: list[Run], catalogue: Any, mode: str) -> list[Channel]:
    """The report's rows. `mode`: "plain" (one run), "opt-out" (one run with the opt-outs) or
    "compare" (runs[0] without, runs[1] with)."""
    names: dict[str, Channel] = {}
    all_opt_outs = runs[-1].opt_outs if mode != "plain" else []
    for run in runs:
        per = run.channels()
        by_channel: dict[str, list[EventSummary]] = {}
        for event in run.events:
            by_channel.setdefault(channel_of(event), []).append(event)
        for name, count in per.items():
            row = names.get(name)
            if row is None:
                events = by_channel.get(name, [])
                policy = catalogue.get(events[0].policy) if events and events[0].policy else None
                kind = ("policy" if policy is not None else "bypass" if name.startswith("bypass ")
                        else "refused" if name.startswith("refused ") else "host")
                owner = None
                if events:
                    owner = getattr(events[0], "owner", None) or events[0].vendor
                hosts = sorted({e.host for e in events}) if events else []
                if policy is not None:
                    hosts = sorted(set(hosts) | set(policy.hosts))
                claims = sorted({c.check for c in policy.claims}) if policy is not None else []
                row = names[name] = Channel(name, kind, owner, hosts, claims,
                                            for_channel(all_opt_outs, policy) if all_opt_outs else [],
                                            {}, None)
            row.counts[run.label] = row.counts.get(run.label, 0) + count
            for event in by_channel.get(name, []):
                row.violations += int(event.verdict == "violation")
        for channel, _finding in run.canary:
            if channel in names:
                names[channel].canary += 1
    for row in names.values():
        if mode == "compare":
            row.status = status_of(row.counts.get(runs[0].label, 0), row.counts.get(runs[1].label, 0))
        elif mode == "opt-out":
            row.status = status_of(None, row.counts.get(runs[0].label, 0))
    order = {"policy": 0, "host": 1, "bypass": 2, "refused": 3}
    return sorted(names.values(), key=lambda r: (order.get(r.kind, 9), r.name))
