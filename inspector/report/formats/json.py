"""The JSON report: every event and the summary, as strict JSON (docs/json-output.md)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TextIO

from inspector import __version__
from inspector.core.event import Event, Tally
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_json
from inspector.report.formats.registry import ReportFormat, register, text_of


def _nested(value: object, level: int) -> str:
    """`value` as `safe_json(indent=2)` writes it `level` levels deep in a document. (A JSON text
    has no newline inside a string, so re-indenting is adding spaces after each newline.)"""
    return safe_json(value, indent=2).replace("\n", "\n" + "  " * level)


def write_json(events: Iterable[Event], catalogue: Catalogue, inputs: list[str], out: TextIO) -> None:
    """The document `safe_json(indent=2)` writes, written an event at a time: the summary, counted
    as the events go by, comes last (as it always has)."""
    tally = Tally()
    write = out.write
    write('{\n  "tool": ' + _nested({"name": "telemetry-inspector", "version": __version__}, 1))
    write(',\n  "inputs": ' + _nested(inputs, 1) + ',\n  "events": [')
    first = True
    for event in events:
        tally.add(event)
        write(("\n    " if first else ",\n    ") + _nested(event.to_dict(), 2))
        first = False
    write("]" if first else "\n  ]")
    write(',\n  "summary": ' + _nested(tally.summary(), 1) + "\n}\n")


def render_json(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    return text_of(write_json, events, catalogue, inputs)


register(ReportFormat("json", (".json",), render_json, order=20,
                      description="every event and the summary, strict JSON", writer=write_json))
