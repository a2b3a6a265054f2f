"""The text report: one line per event, its decoding and findings, then the totals (safe to print)."""

from __future__ import annotations

from inspector.core.event import Event, item_summary, summarize
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_line
from inspector.report.common import BADGES, SEVERITY_MARK, claim_line, timestamp
from inspector.report.formats.registry import ReportFormat, register


def event_line(event: Event) -> str:
    """One line per event (`proxy`, `exec`, the text report), safe to print."""
    target = event.policy or (f"{event.collector}: {item_summary(event.items)}" if event.collector else "-")
    action = f" [{event.action}]" if event.action else ""
    # One pass over the finished line: nothing captured can be missed, and a clean line
    # costs a single str.isprintable scan (this runs for every event the proxy sees).
    return safe_line(f"{timestamp(event.time)}  {BADGES[event.verdict]:<14} {target:<28} "
                     f"{event.method:<4} {event.host}{event.path}{action}")


def render_text(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    lines = []
    for event in events:
        lines.append(event_line(event))
        lines.append(safe_line(f"    decoding: {' → '.join(event.decoding)}"))
        for finding in event.findings:
            where = f" at {finding.path}" if finding.path else ""
            lines.append(safe_line(f"    {SEVERITY_MARK[finding.severity]} {finding.severity} {finding.code}{where}: "
                                   f"{finding.message}"))
            claim = claim_line(finding)
            if claim:
                lines.append(safe_line(f"        claim: {claim}"))
    summary = summarize(events)
    f = summary["findings"]
    lines.append("")
    for name, group in summary["collectors"].items():
        items = ", ".join(f"{item} ×{count}" for item, count in sorted(group["items"].items(), key=lambda p: -p[1]))
        lines.append(safe_line(f"collector {name}: {group['events']} request(s)" + (f" — {items}" if items else "")))
    lines.append(f"{summary['events']} events: {f['violation']} violations, {f['warning']} warnings, {f['info']} info")
    return "\n".join(lines) + "\n"


register(ReportFormat("text", (".txt", ".text"), render_text, order=10,
                      description="one line per event, then its decoding and findings"))
