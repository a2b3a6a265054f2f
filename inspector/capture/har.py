"""HAR 1.2 → Observations (one per request, one per client-sent WebSocket message).

A HAR file is written by a browser from what a page sent: any value in it may be hostile.
Numbers Python cannot hold and lone surrogates do not stop the read (core.decode.load_json);
an entry that cannot be audited (no request object, a URL that does not parse) is reported to
the caller's problem sink with the file and the entry's index, and the other entries are read.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from inspector.core.decode import load_json
from inspector.core.files import FileTooLarge, read_regular
from inspector.core.observation import Observation

MAX_HAR = 1024 * 1024 * 1024  # a HAR is parsed whole; past this, refused rather than exhaust memory


class HarError(ValueError):
    pass


def _timestamp(text: Any) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        try:
            value = float(text)
        except OverflowError:  # an integer too large for a float
            return 0.0
        return value if math.isfinite(value) else 0.0
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    return 0.0


def _headers(items: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        return ()
    return tuple((str(h.get("name", "")), str(h.get("value", ""))) for h in items if isinstance(h, dict))


def _body(post: Any) -> bytes:
    if not isinstance(post, dict):
        return b""
    text = post.get("text")
    if not isinstance(text, str):
        return b""
    if post.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            return text.encode("utf-8", "surrogateescape")
    return text.encode("utf-8", "surrogateescape")


def _url_problem(url: str) -> str:
    """Why `url` cannot be audited (urllib cannot split it, or its host or port), else ""."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - each raises ValueError for a malformed authority
        parts.port  # noqa: B018
    except ValueError as exc:
        return f"URL does not parse ({str(exc)[:80]})"
    return ""


def _status(value: Any) -> int | None:
    # an HTTP status has three digits; anything else (a 5,000-digit integer…) is no status
    return value if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 999 else None


def read_har(path: Path, session: str, on_problem: Callable[[str], None] | None = None) -> Iterator[Observation]:
    """The requests and client WebSocket messages of a HAR file; `on_problem` hears of each
    entry skipped (default: skipped silently)."""
    try:
        raw = read_regular(path, MAX_HAR)
    except FileTooLarge as exc:
        raise HarError(f"{path}: {exc.size} bytes is larger than the {MAX_HAR} byte limit for HAR files") from None
    try:
        # (json.loads' own choice of encoding: UTF-8 with or without a BOM, UTF-16, UTF-32)
        data, _issues = load_json(raw.decode(json.detect_encoding(raw)))
    except RecursionError:
        raise HarError(f"{path}: not valid JSON (nested too deeply)") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HarError(f"{path}: not valid JSON ({str(exc)[:80]})") from None
    entries = data.get("log", {}).get("entries") if isinstance(data, dict) and isinstance(data.get("log"), dict) else None
    if not isinstance(entries, list):
        raise HarError(f"{path}: not a HAR file (no log.entries)")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            if on_problem is not None:
                on_problem(f"{path.name}#{index}: not a HAR entry (no request object); skipped")
            continue
        request = entry["request"]
        response = entry.get("response") if isinstance(entry.get("response"), dict) else {}
        url = str(request.get("url", ""))
        problem = _url_problem(url)
        if problem:
            if on_problem is not None:
                on_problem(f"{path.name}#{index}: {problem}; entry skipped")
            continue
        headers = _headers(request.get("headers"))
        started = _timestamp(entry.get("startedDateTime"))
        messages = entry.get("_webSocketMessages")
        if isinstance(messages, list):
            ws_url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
            for i, message in enumerate(messages):
                if not isinstance(message, dict) or message.get("type") != "send":
                    continue  # server-to-client messages are not telemetry
                data_field = message.get("data", "")
                body = data_field.encode("utf-8", "surrogateescape") if isinstance(data_field, str) else b""
                if message.get("opcode") == 2 and isinstance(data_field, str):
                    try:
                        body = base64.b64decode(data_field)
                    except (binascii.Error, ValueError):
                        pass
                yield Observation(
                    method="WS", url=ws_url, headers=headers, body=body, transport="websocket",
                    timestamp=_timestamp(message.get("time")) or started, ws_index=i,
                    session=session, source=f"{path.name}#{index}.{i}")
            continue
        yield Observation(
            method=str(request.get("method", "GET")).upper(), url=url, headers=headers,
            body=_body(request.get("postData")), timestamp=started,
            response_status=_status(response.get("status")),
            response_headers=_headers(response.get("headers")),
            session=session, source=f"{path.name}#{index}", content_decoded=True)
