"""What every report format shows alike: badges, severity marks, times, short values, a finding's claim."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from inspector.core.findings import Finding
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
    quote = f"“{c.quote}”" if c.quote else ""
    where = c.short()
    return f"{quote} — {where}".strip(" —") if quote or where else ""
