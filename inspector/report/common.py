"""What every report format shows alike: badges, severity marks, times, short values, a finding's claim."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, TextIO

from inspector.core.findings import Finding
from inspector.core.quotes import readable_quote
from inspector.core.textsafe import safe_json

BADGES = {"violation": "✗ violation", "warning": "! warning", "encrypted": "🔒 encrypted",
          "unknown": "? unknown", "error": "! decode error", "clean": "✓ clean"}
SEVERITY_MARK = {"violation": "✗", "warning": "!", "info": "i"}


def timestamp(ts: float) -> str:
    """A UNIX time as `YYYY-MM-DD HH:MM:SS` (UTC); `-` for none."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def short(value: Any, limit: int = 80) -> str:
    """A value as text of at most `limit` characters (JSON when it is not text)."""
    text = value if isinstance(value, str) else safe_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def claim_line(finding: Finding) -> str:
    """The claim a finding breaks, as “quote” — where; empty without one."""
    if not finding.claim:
        return ""
    c = finding.claim.citation
    quote = f"“{readable_quote(c.quote)}”" if c.quote else ""  # a flattened table row's cells apart
    where = c.short()
    return f"{quote} — {where}".strip(" —") if quote or where else ""


class LineWriter:
    """Where a report's lines go, one `append` at a time, each written to `out` with its newline
    at once (what `"\n".join(lines) + "\n"` would give, without holding the lines)."""

    def __init__(self, out: TextIO, lines: Iterable[str] = ()) -> None:
        self._write = out.write
        self.extend(lines)

    def append(self, line: str) -> None:
        self._write(line + "\n")

    def extend(self, lines: Iterable[str]) -> None:
        for line in lines:
            self._write(line + "\n")
