"""The SARIF 2.1.0 report: one rule per finding code, one result per finding (code-scanning tools)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any, TextIO
from urllib.parse import quote as percent_encode

from inspector import __version__
from inspector.core.event import Event
from inspector.core.findings import CODES
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_json
from inspector.report.formats.registry import ReportFormat, register, text_of

_LEVEL = {"violation": "error", "warning": "warning", "info": "note"}


def _uri_reference(name: str) -> str:
    """A file name or path as a URI reference (SARIF `artifactLocation.uri`, RFC 3986)."""
    if name.startswith("/"):
        return PurePosixPath(name).as_uri()  # file:///…, percent-encoded
    # Relative: percent-encode all but the path characters; ':' too, or a first segment
    # such as "c:x" would read as a scheme.
    return percent_encode(name, safe="/!$&'()*+,;=@-._~")


def _nested(value: object, level: int) -> str:
    """`value` as `safe_json(indent=2)` writes it `level` levels deep (no JSON string holds a newline)."""
    return safe_json(value, indent=2).replace("\n", "\n" + "  " * level)


def _results(event: Event, inputs: list[str]) -> Iterator[dict[str, Any]]:
    artifact = event.source.split("#", 1)[0] if event.source else (inputs[0] if inputs else "capture")
    for finding in event.findings:
        yield {
            "ruleId": finding.code,
            "level": _LEVEL[finding.severity],
            "message": {"text": f"{finding.message} ({event.method} {event.url[:200]})"},
            "locations": [{
                "physicalLocation": {"artifactLocation": {"uri": _uri_reference(artifact)}},
                "logicalLocations": [{"fullyQualifiedName": f"{event.policy or event.host}:{finding.path or '$'}",
                                      "kind": "member"}],
            }],
            "properties": {"policy": event.policy, "url": event.url, "path": finding.path,
                           "evidence": finding.evidence,
                           "claim": finding.claim.to_dict() if finding.claim else None,
                           "event": event.id},
        }


def write_sarif(events: Iterable[Event], catalogue: Catalogue, inputs: list[str], out: TextIO) -> None:
    """The SARIF document `safe_json(indent=2)` writes, its results written as the events come."""
    # No helpUri: the schema requires an absolute URI ("format": "uri") and the findings'
    # documentation has no public address; `help` names the document instead.
    rules = [{"id": code, "name": code, "shortDescription": {"text": text},
              "help": {"text": f"See docs/findings.md, section {code}, in the telemetry-inspector documentation."}}
             for code, text in CODES.items()]
    tool = {"driver": {"name": "telemetry-inspector", "version": __version__, "rules": rules}}
    write = out.write
    write('{\n  "$schema": ' + safe_json("https://json.schemastore.org/sarif-2.1.0.json")
          + ',\n  "version": "2.1.0",\n  "runs": [\n    {\n      "tool": ' + _nested(tool, 3)
          + ',\n      "artifacts": ' + _nested([{"location": {"uri": _uri_reference(i)}} for i in inputs], 3)
          + ',\n      "results": [')
    first = True
    for event in events:
        for result in _results(event, inputs):
            write(("\n        " if first else ",\n        ") + _nested(result, 4))
            first = False
    write(("]" if first else "\n      ]") + "\n    }\n  ]\n}\n")


def render_sarif(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    return text_of(write_sarif, events, catalogue, inputs)


register(ReportFormat("sarif", (".sarif", ".sarif.json"), render_sarif, order=50,
                      description="SARIF 2.1.0, for code-scanning tools", writer=write_sarif))
