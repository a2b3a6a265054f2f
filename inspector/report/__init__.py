"""Reports of audited events: text, JSON, Markdown, HTML, SARIF."""

from inspector.report.render import FORMATS, render

__all__ = ["FORMATS", "render"]
