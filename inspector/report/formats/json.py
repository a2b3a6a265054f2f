"""The JSON report: every event and the summary, as strict JSON (docs/json-output.md)."""

from __future__ import annotations

from inspector import __version__
from inspector.core.event import Event, summarize
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_json
from inspector.report.formats.registry import ReportFormat, register


def render_json(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    document = {
        "tool": {"name": "telemetry-inspector", "version": __version__},
        "inputs": inputs,
        "events": [e.to_dict() for e in events],
        "summary": summarize(events),
    }
    return safe_json(document, indent=2) + "\n"


register(ReportFormat("json", (".json",), render_json, order=20,
                      description="every event and the summary, strict JSON"))
