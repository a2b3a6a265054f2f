"""Query strings and form bodies read as they were sent (`+` kept: it may be Base64)."""

from __future__ import annotations

from urllib.parse import unquote, unquote_to_bytes


def raw_query_params(query: str) -> list[tuple[str, str]]:
    """Parse a query string without turning `+` into a space.

    refine's client puts standard Base64 (with `+`, `/`, `=`) into the query unescaped;
    `urllib.parse.parse_qs` would corrupt it.
    """
    params: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        params.append((unquote(name), unquote_to_bytes(value).decode("utf-8", "surrogateescape")))
    return params


def raw_query_param(query: str, name: str) -> str | None:
    for key, value in raw_query_params(query):
        if key == name:
            return value
    return None
