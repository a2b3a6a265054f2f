"""Reports of audited events: text, JSON, Markdown, HTML, SARIF."""

from inspector.report import formats
from inspector.report.render import FORMATS, render

__all__ = ["FORMATS", "formats", "render"]
