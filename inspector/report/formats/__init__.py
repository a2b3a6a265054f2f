"""Report formats (text, JSON, Markdown, HTML, SARIF): one module each, on a registry."""

from inspector.report.formats.registry import ReportFormat, for_path, formats, get, names, register, unregister

__all__ = ["ReportFormat", "for_path", "formats", "get", "names", "register", "unregister"]
