"""What bytes look like: text, Base64, a JWE (compact, or its JSON serialization)."""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

_B64_RE = re.compile(rb"^[A-Za-z0-9+/_\-]+={0,2}$")
JWE_COMPACT_RE = re.compile(
    r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
)


def b64decode(data: bytes) -> tuple[bytes, str] | None:
    """(decoded bytes, variant) when `data` is Base64 (standard or URL-safe, padded or not), else None."""
    compact = re.sub(rb"\s+", b"", data)
    if len(compact) < 4 or not _B64_RE.match(compact):
        return None
    url_safe = b"-" in compact or b"_" in compact
    if url_safe and (b"+" in compact or b"/" in compact):
        return None
    stripped = compact.rstrip(b"=")
    if len(stripped) % 4 == 1:
        return None
    padded = stripped + b"=" * (-len(stripped) % 4)
    try:
        out = base64.urlsafe_b64decode(padded) if url_safe else base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    variant = ("url-safe" if url_safe else "standard") + ("" if compact.endswith(b"=") or len(stripped) % 4 == 0 else ", unpadded")
    return out, variant


_LINE_SPACE = {ord("\r"): None, ord("\n"): None, ord("\t"): None}


def looks_like_text(data: bytes) -> str | None:
    """`data` as text when it is UTF-8 and (nearly all) printable, else None."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isprintable():  # the common case, at C speed
        return text or None
    if text.translate(_LINE_SPACE).isprintable():  # multi-line text (NDJSON, envelopes, pretty JSON), at C speed
        return text
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    return text if text and printable / len(text) > 0.95 else None


def jwe_json_like(value: Any) -> bool:
    """A JSON value shaped like a JWE's JSON serialization."""
    return isinstance(value, dict) and "ciphertext" in value and (
        "protected" in value or "recipients" in value or "encrypted_key" in value or "header" in value
    )


def jwe_compact_header(text: str) -> dict[str, Any] | None:
    """The protected header of what looks like a compact JWE (it names `enc`), else None."""
    head = text.split(".", 1)[0]
    if not head.startswith("eyJ"):
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return None
    return header if isinstance(header, dict) and "enc" in header else None
