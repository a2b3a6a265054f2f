"""Base64 (standard or URL-safe, padded or not): a layer only when what it hides is recognised."""

from __future__ import annotations

from typing import Any

from inspector.core.decode.model import Layer, Limits
from inspector.core.decode.registry import DecodeLayer, Round, register
from inspector.core.decode.sniff import JWE_COMPACT_RE, b64decode, looks_like_text


def worth_following(data: bytes, limits: Limits, depth: int = 0) -> bool:
    """Base64 is only a layer when what it hides is itself something we recognise."""
    stripped = data.strip()
    if stripped[:2] == b"\x1f\x8b":
        return True
    text = looks_like_text(stripped)
    if text is None:
        return False
    if text[:1] in "{[":
        return True
    if JWE_COMPACT_RE.match(text):
        return True
    if depth > limits.max_layers:
        return True  # let the layer bound report it
    inner = b64decode(stripped) if len(stripped) >= 8 else None
    return inner is not None and worth_following(inner[0], limits, depth + 1)


def _peel(rnd: Round) -> bytes | None:
    decoded = b64decode(rnd.data)
    if decoded is None or not worth_following(decoded[0], rnd.limits):
        return None
    rnd.result.layers.append(Layer("base64", {"variant": decoded[1]}))
    return decoded[0]


def label(detail: dict[str, Any]) -> str:
    """`base64url` for the URL-safe alphabet, else `base64`."""
    return "base64url" if str(detail.get("variant", "")).startswith("url-safe") else "base64"


# (text=True: Base64 is text; binary data stops the loop before it, as it always did)
register(DecodeLayer("base64", _peel, order=40, label=label,
                     description="Base64, standard or URL-safe, when it hides JSON, gzip, a JWE or Base64"))
