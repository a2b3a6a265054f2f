"""Render audited events in a registered report format (text, JSON, Markdown, HTML, SARIF).

Each format is a module of `inspector/report/formats/`. Captured data (keys, values, headers,
methods, URLs) is hostile: every format shows it and never lets it act. Text goes through
`inspector.core.textsafe` (control, bidi and separator characters as visible escapes); Markdown
also escapes its own syntax and HTML, HTML is escaped, and JSON and SARIF are strict JSON written
by `safe_json`. See docs/security-output.md.
"""

from __future__ import annotations

from inspector.core.event import Event
from inspector.core.policy import Catalogue
from inspector.report import formats
from inspector.report.common import BADGES, SEVERITY_MARK
from inspector.report.formats.html import render_html
from inspector.report.formats.json import render_json
from inspector.report.formats.markdown import md_code, md_text, render_markdown
from inspector.report.formats.sarif import render_sarif
from inspector.report.formats.text import event_line, render_text

FORMATS = formats.names()  # the registered formats when the reports were loaded, in listing order


def render(events: list[Event], catalogue: Catalogue, fmt: str, inputs: list[str] | None = None) -> str:
    """The report of `events` in format `fmt` (a registered name; KeyError otherwise)."""
    return formats.get(fmt).render(events, catalogue, inputs or [])


__all__ = ["BADGES", "FORMATS", "SEVERITY_MARK", "event_line", "md_code", "md_text", "render", "render_html",
           "render_json", "render_markdown", "render_sarif", "render_text"]
