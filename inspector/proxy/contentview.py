"""A "Telemetry" contentview for mitmproxy's own UIs (mitmweb, the mitmproxy console).

With the addon loaded (`mitmweb -s addons/telemetry_inspector.py`), a telemetry request's
body shows decoded: the verdict, the policy or collector, the decoding path, every finding
with the claim it breaks quoted, the items of a collector request, and the decoded payload.
Everything shown is captured data, so it goes through textsafe (mitmproxy escapes control
characters too).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mitmproxy import http
from mitmproxy.contentviews import Contentview, Metadata

from inspector.capture.mitm import flow_names, header_fields, request_observation, websocket_message_observation
from inspector.core.event import Event, item_summary
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.textsafe import safe_block, safe_json, safe_line

SEVERITY_MARK = {"violation": "✗", "warning": "!", "info": "i"}


class TelemetryContentview(Contentview):
    """Decodes and audits the shown message with the addon's pipeline (policies and keys)."""

    def __init__(self, pipeline: Callable[[], Pipeline], is_telemetry: Callable[[http.HTTPFlow], bool]) -> None:
        self._pipeline = pipeline
        self._is_telemetry = is_telemetry

    @property
    def name(self) -> str:
        return "Telemetry"

    @property
    def syntax_highlight(self) -> Any:
        return "yaml"

    def render_priority(self, data: bytes, metadata: Metadata) -> float:
        flow = metadata.flow
        if not isinstance(flow, http.HTTPFlow):
            return -1
        if metadata.http_message is flow.response:
            return -1  # the answer is the server's: other views show it
        try:
            return 2.0 if self._is_telemetry(flow) else -1
        except Exception:  # noqa: BLE001 - a view must not break mitmproxy's UI
            return -1

    def prettify(self, data: bytes, metadata: Metadata) -> str:
        obs = observation_for(metadata)
        if obs is None:
            raise ValueError("not an HTTP request or WebSocket message")
        return render_event(self._pipeline().process(obs))


def observation_for(metadata: Metadata) -> Observation | None:
    """The Observation of the message a contentview is asked to show."""
    flow = metadata.flow
    if not isinstance(flow, http.HTTPFlow):
        return None
    if metadata.websocket_message is not None:
        url = flow.request.pretty_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        return websocket_message_observation(url, header_fields(flow.request.headers), metadata.websocket_message,
                                             0, "mitmproxy", "")
    if metadata.http_message is flow.request:
        return request_observation(flow, session="mitmproxy", names=flow_names(flow))
    return None


def render_event(event: Event) -> str:
    """The audited event as text for mitmproxy's views (YAML-like, every captured value safe)."""
    who = event.policy or (f"{event.collector} ({item_summary(event.items, 3)})" if event.collector else "none")
    lines = [f"verdict: {event.verdict}", f"policy: {safe_line(who)}"]
    if event.owner:
        lines.append(f"owner: {safe_line(event.owner)}")
    lines.append(f"decoding: {safe_line(' → '.join(event.decoding))}")
    if event.findings:
        lines.append("findings:")
    for finding in event.findings:
        where = f" at {finding.path}" if finding.path else ""
        lines.append(safe_line(f"  - {SEVERITY_MARK.get(finding.severity, '?')} {finding.severity} "
                               f"{finding.code}{where}: {finding.message}"))
        if finding.claim is not None and finding.claim.citation.quote:
            citation = finding.claim.citation
            lines.append(safe_line(f"    claim: “{citation.quote}” — {citation.short()}"))
    if event.items:
        lines.append("items:")
        for item in event.items:
            lines.append(safe_line(f"  - {item.get('kind')}: {item.get('name') or '(unnamed)'}  {safe_json(item.get('ids'))}"))
    lines.append("payload:")
    if event.decoded is not None:
        lines.append(safe_block(safe_json(event.decoded, indent=2)))
    elif event.jwe:
        lines.append(safe_line(f"  encrypted — contents not verifiable without the key; header {safe_json(event.jwe)}"))
    else:
        lines.append("  (not decoded)")
    return "\n".join(lines) + "\n"
