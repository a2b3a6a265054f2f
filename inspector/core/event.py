"""Events: one audited request or WebSocket message, the unit stored, listed and reported."""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from inspector.core.findings import INFO, SEVERITY_RANK, VIOLATION, WARNING, Finding
from inspector.core.observation import Observation

BODY_PREVIEW = 4096
RESPONSE_PREVIEW = 2048  # what an event keeps of a response's body

# Verdicts, most serious first. Each is a word (no colour-only meaning in any UI).
VERDICTS = ("violation", "warning", "encrypted", "unknown", "error", "clean")


@dataclass(slots=True)
class Event:
    method: str
    url: str
    host: str
    path: str
    transport: str
    time: float
    session: str
    policy: str | None
    vendor: str | None
    product: str | None
    decoding: list[str]
    layers: list[dict[str, Any]]
    decoded: Any
    structured: bool
    jwe: dict[str, Any] | None
    findings: list[Finding]
    request: dict[str, Any]
    source: str = ""
    action: str | None = None
    response_status: int | None = None
    action_reason: str | None = None  # the rule that decided the action, and why it applied
    collector: str | None = None      # the collector profile the request was sent through
    owner: str | None = None          # the company the host belongs to (the host catalogue), else the vendor
    response: dict[str, Any] | None = None  # status, headers, a bounded body preview (response_record)
    items: list[dict[str, Any]] = field(default_factory=list)  # its items (collectors.base.Item dicts)
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    # Where the store keeps it (set by whoever stored it); not part of the event's JSON.
    store_id: int | None = field(default=None, compare=False)

    @property
    def verdict(self) -> str:
        return verdict_of(self.findings, self.policy or self.collector)  # a known collector is no unknown

    def count(self, severity: str) -> int:
        return sum(1 for f in self.findings if f.severity == severity)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "session": self.session,
            "transport": self.transport,
            "method": self.method,
            "url": self.url,
            "host": self.host,
            "path": self.path,
            "policy": self.policy,
            "vendor": self.vendor,
            "product": self.product,
            "decoding": self.decoding,
            "layers": self.layers,
            "decoded": self.decoded,
            "jwe": self.jwe,
            "verdict": self.verdict,
            "action": self.action,
            "action_reason": self.action_reason,
            "collector": self.collector,
            "owner": self.owner,
            "items": self.items,
            "findings": [f.to_dict() for f in self.findings],
            "request": self.request,
            "response_status": self.response_status,
            "response": self.response,
            "source": self.source,
        }


def item_summary(items: list[dict[str, Any]], limit: int = 2) -> str:
    """The event names of a request's items, for one line: `Signed up, Home +3`."""
    names = [str(i.get("name") or i.get("kind") or "?") for i in items]
    shown = ", ".join(names[:limit])
    return f"{shown} +{len(names) - limit}" if len(names) > limit else shown


def verdict_of(findings: list[Finding], policy: str | None) -> str:
    worst = max((SEVERITY_RANK[f.severity] for f in findings), default=0)
    codes = {f.code for f in findings}
    if worst >= SEVERITY_RANK[VIOLATION]:
        return "violation"
    if "unverifiable-encrypted" in codes:
        return "encrypted"
    if policy is None:
        return "unknown"
    if "decode-error" in codes:
        return "error"
    if worst >= SEVERITY_RANK[WARNING]:
        return "warning"
    return "clean"


def request_record(headers: tuple[tuple[str, str], ...], body: bytes) -> dict[str, Any]:
    """What an event keeps of the raw request: headers, cookies, a bounded body preview."""
    preview = body[:BODY_PREVIEW]
    try:
        text = preview.decode("utf-8")
        body_field: dict[str, Any] = {"body_text": text}
    except UnicodeDecodeError:
        body_field = {"body_base64": base64.b64encode(preview).decode("ascii")}
    cookies = [v for k, v in headers if k.lower() == "cookie"]
    return {
        "headers": [[k, v] for k, v in headers],
        "cookies": cookies,
        "body_size": len(body),
        "body_truncated": len(body) > BODY_PREVIEW,
        **body_field,
    }


def response_record(status: int | None, headers: tuple[tuple[str, str], ...], body: bytes,
                    size: int | None = None, local: bool = False) -> dict[str, Any] | None:
    """What an event keeps of the response: status, headers, the first RESPONSE_PREVIEW bytes of
    its body (as it came: still compressed if it was), and whether the inspector gave it."""
    if status is None:
        return None
    preview = body[:RESPONSE_PREVIEW]
    size = len(body) if size is None else size
    try:
        body_field: dict[str, Any] = {"body_text": preview.decode("utf-8")}
    except UnicodeDecodeError:
        body_field = {"body_base64": base64.b64encode(preview).decode("ascii")}
    return {"status": status, "headers": [[k, v] for k, v in headers], "body_size": size,
            "body_truncated": size > len(preview), "local": local, **body_field}


class Tally:
    """The counts `summarize` reports, kept as events go by: memory holds counts, not events."""

    def __init__(self) -> None:
        self.events = 0
        self.by_code: dict[str, int] = {}
        self.by_severity = {VIOLATION: 0, WARNING: 0, INFO: 0}
        self.by_policy: dict[str, int] = {}
        self.verdicts: dict[str, int] = {}
        self.by_collector: dict[str, dict[str, Any]] = {}

    def add(self, event: Event) -> None:
        self.events += 1
        verdict = event.verdict
        self.verdicts[verdict] = self.verdicts.get(verdict, 0) + 1
        key = event.policy or "(no policy)"
        self.by_policy[key] = self.by_policy.get(key, 0) + 1
        if event.collector:
            group = self.by_collector.setdefault(event.collector, {"events": 0, "items": {}})
            group["events"] += 1
            items = group["items"]
            for item in event.items:
                name = f"{item.get('kind') or 'other'}: {item.get('name') or '(unnamed)'}"
                items[name] = items.get(name, 0) + 1
        for finding in event.findings:
            self.by_code[finding.code] = self.by_code.get(finding.code, 0) + 1
            self.by_severity[finding.severity] += 1

    def summary(self) -> dict[str, Any]:
        """The summary of the events added so far (as `summarize` gives it)."""
        return {
            "events": self.events,
            "findings": dict(self.by_severity),
            "codes": dict(sorted(self.by_code.items())),
            "verdicts": dict(sorted(self.verdicts.items())),
            "policies": dict(sorted(self.by_policy.items())),
            "collectors": {name: {"events": g["events"], "items": dict(sorted(g["items"].items()))}
                           for name, g in sorted(self.by_collector.items())},
        }


def summarize(events: Iterable[Event]) -> dict[str, Any]:
    """Counts of events, findings by severity and code, verdicts, policies, collectors' items."""
    tally = Tally()
    for event in events:
        tally.add(event)
    return tally.summary()


def finding_from_dict(data: dict[str, Any]) -> Finding:
    from inspector.core.findings import Citation, Claim

    claim = None
    raw = data.get("claim")
    if isinstance(raw, dict):
        claim = Claim(str(raw.get("check", "")), Citation(
            document=raw.get("document", ""), title=raw.get("title", ""), section=raw.get("section", ""),
            quote=raw.get("quote", ""), url=raw.get("url", "")))
    severity = data.get("severity", INFO)
    return Finding(code=str(data.get("code", "")), severity=severity if severity in SEVERITY_RANK else INFO,
                   path=str(data.get("path", "")), message=str(data.get("message", "")),
                   evidence=data.get("evidence"), claim=claim)


@dataclass(frozen=True, slots=True)
class EventSummary:
    """What `exec`'s summary and report keep of an event (a few fields and its printed line),
    not the event: a long run keeps thousands, and the payload is in the store."""

    policy: str | None
    host: str
    owner: str | None
    vendor: str | None
    verdict: str
    action: str | None
    line: str = ""

    @classmethod
    def of(cls, event: Event, line: str = "") -> EventSummary:
        return cls(event.policy, event.host, event.owner, event.vendor, event.verdict, event.action, line)


def event_from_dict(data: dict[str, Any]) -> Event:
    """Rebuild an Event from its stored dict (the inverse of Event.to_dict)."""
    return Event(
        method=str(data.get("method", "")), url=str(data.get("url", "")), host=str(data.get("host", "")),
        path=str(data.get("path", "")), transport=str(data.get("transport", "http")),
        time=float(data.get("time") or 0.0), session=str(data.get("session", "")),
        policy=data.get("policy"), vendor=data.get("vendor"), product=data.get("product"),
        decoding=list(data.get("decoding") or []), layers=list(data.get("layers") or []),
        decoded=data.get("decoded"), structured=isinstance(data.get("decoded"), (dict, list)),
        jwe=data.get("jwe"), findings=[finding_from_dict(f) for f in data.get("findings") or [] if isinstance(f, dict)],
        request=dict(data.get("request") or {}), source=str(data.get("source", "")),
        action=data.get("action"), response_status=data.get("response_status"),
        action_reason=data.get("action_reason") if isinstance(data.get("action_reason"), str) else None,
        collector=data.get("collector") if isinstance(data.get("collector"), str) else None,
        owner=data.get("owner") if isinstance(data.get("owner"), str) else None,
        response=data.get("response") if isinstance(data.get("response"), dict) else None,
        items=[i for i in data.get("items") or [] if isinstance(i, dict)] if isinstance(data.get("items"), list) else [],
        id=str(data.get("id") or uuid.uuid4().hex),
    )


def observation_from_event(event: dict[str, Any]) -> Observation | None:
    """Rebuild the request of a stored event, to decode or audit it again; None when the
    store did not keep its body whole (truncated or redacted)."""
    request = event.get("request") or {}
    if request.get("body_truncated") or request.get("body_redacted"):
        return None
    if "body_text" in request:
        body = request["body_text"].encode("utf-8", "surrogateescape")
    elif "body_base64" in request:
        body = base64.b64decode(request["body_base64"])
    else:
        body = b""
    headers = tuple((str(k), str(v)) for k, v in request.get("headers", []))
    return Observation(method=event.get("method", "GET"), url=event.get("url", ""), headers=headers, body=body,
                       transport=event.get("transport", "http"), timestamp=event.get("time") or time.time(),
                       session=event.get("session") or "default", source=event.get("source", ""))
