"""max-requests: the vendor says the channel sends at most `count` requests per session or interval."""

from __future__ import annotations

import re
from collections import deque
from typing import Any

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import register
from inspector.core.findings import VIOLATION, Claim, Finding
from inspector.core.observation import Observation

_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")


def parse_duration(text: str) -> float:
    """`30s`, `10m`, `6h`, `1d` → seconds."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 6h, 1d)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


class RateTracker:
    """Counts requests per policy and session (or sliding interval) for max-requests claims."""

    def __init__(self) -> None:
        self._per_session: dict[tuple[str, str], int] = {}
        self._windows: dict[tuple[str, str, float], deque[float]] = {}

    def count(self, policy_id: str, obs: Observation, spec: ClaimSpec) -> list[Finding]:
        """Count `obs` against one max-requests claim of policy `policy_id`."""
        count = int(spec.params["count"])
        per = str(spec.params.get("per", "session"))
        if per == "session":
            key = (policy_id, obs.session)
            seen = self._per_session.get(key, 0) + 1
            self._per_session[key] = seen
            if seen > count:
                return [Finding(
                    "rate-exceeded", VIOLATION, "",
                    f"request {seen} of this session; the vendor says at most {count} per session",
                    evidence=seen, claim=Claim("max-requests", spec.citation))]
            return []
        seconds = parse_duration(per)
        window = self._windows.setdefault((policy_id, obs.session, seconds), deque(maxlen=count + 1))
        window.append(obs.timestamp)
        recent = [t for t in window if obs.timestamp - t < seconds]
        if len(recent) > count:
            return [Finding(
                "rate-exceeded", VIOLATION, "",
                f"{len(recent)} requests within {per}; the vendor says at most {count} per {per}",
                evidence=len(recent), claim=Claim("max-requests", spec.citation))]
        return []


@register
class MaxRequests(ClaimCheck):
    """Counts the requests of each session (a capture file offline, a proxy run live) or interval."""

    name = "max-requests"
    description = "at most `count` requests per session, or per interval"
    params = {
        "count": Param({"type": "integer", "minimum": 1}, required=True, description="the most requests"),
        "per": Param({"type": "string"}, required=True,
                     description="`session`, or a duration: `30s`, `10m`, `6h`, `1d`"),
    }
    codes = {"rate-exceeded": "more requests than the vendor says it sends"}

    def problems(self, claim: dict[str, Any]) -> list[tuple[str, str]]:
        if "per" in claim and claim["per"] != "session":
            try:
                parse_duration(str(claim["per"]))
            except ValueError as exc:
                return [("per", str(exc))]
        return []

    def on_request(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        tracker = ctx.state.get(self.name)
        if tracker is None:
            tracker = ctx.state[self.name] = RateTracker()
        return tracker.count(ctx.policy_id, ctx.obs, spec)
