"""The text report: one line per event, its decoding and findings, then the totals (safe to print)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from inspector.core.event import Event, Tally, item_summary
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_line
from inspector.report.common import BADGES, SEVERITY_MARK, claim_line, timestamp
from inspector.report.formats.registry import ReportFormat, register, text_of


def event_line(event: Event) -> str:
    """One line per event (`proxy`, `exec`, the text report), safe to print."""
    target = event.policy or (f"{event.collector}: {item_summary(event.items)}" if event.collector else "-")
    action = f" [{event.action}]" if event.action else ""
    # One pass over the finished line: nothing captured can be missed, and a clean line
    # costs a single str.isprintable scan (this runs for every event the proxy sees).
    return safe_line(f"{timestamp(event.time)}  {BADGES[event.verdict]:<14} {target:<28} "
                     f"{event.method:<4} {event.host}{event.path}{action}")


def write_text(events: Iterable[Event], catalogue: Catalogue, inputs: list[str], out: TextIO) -> None:
    """Each event's lines as it comes, then the totals."""
    tally = Tally()
    write = out.write
    for event in events:
        tally.add(event)
        write(event_line(event) + "\n")
        write(safe_line(f"    decoding: {' → '.join(event.decoding)}") + "\n")
        for finding in event.findings:
            where = f" at {finding.path}" if finding.path else ""
            write(safe_line(f"    {SEVERITY_MARK[finding.severity]} {finding.severity} {finding.code}{where}: "
                            f"{finding.message}") + "\n")
            claim = claim_line(finding)
            if claim:
                write(safe_line(f"        claim: {claim}") + "\n")
    summary = tally.summary()
    f = summary["findings"]
    write("\n")
    for name, group in summary["collectors"].items():
        items = ", ".join(f"{item} ×{count}" for item, count in sorted(group["items"].items(), key=lambda p: -p[1]))
        write(safe_line(f"collector {name}: {group['events']} request(s)" + (f" — {items}" if items else "")) + "\n")
    write(f"{summary['events']} events: {f['violation']} violations, {f['warning']} warnings, {f['info']} info\n")


def render_text(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    return text_of(write_text, events, catalogue, inputs)


register(ReportFormat("text", (".txt", ".text"), render_text, order=10,
                      description="one line per event, then its decoding and findings", writer=write_text))
