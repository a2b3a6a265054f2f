"""HAR 1.2 → Observations (one per request, one per client-sent WebSocket message)."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from pathlib import Path
from typing import Any, Iterator

from inspector.core.observation import Observation


class HarError(ValueError):
    pass


def _timestamp(text: Any) -> float:
    if isinstance(text, (int, float)):
        return float(text)
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except ValueError:
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


def read_har(path: Path, session: str) -> Iterator[Observation]:
    try:
        data = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        raise HarError(f"{path}: not valid JSON ({str(exc)[:80]})") from None
    entries = data.get("log", {}).get("entries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise HarError(f"{path}: not a HAR file (no log.entries)")
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            continue
        request = entry["request"]
        response = entry.get("response") if isinstance(entry.get("response"), dict) else {}
        url = str(request.get("url", ""))
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
        status = response.get("status")
        yield Observation(
            method=str(request.get("method", "GET")).upper(), url=url, headers=headers,
            body=_body(request.get("postData")), timestamp=started,
            response_status=status if isinstance(status, int) and status > 0 else None,
            response_headers=_headers(response.get("headers")),
            session=session, source=f"{path.name}#{index}", content_decoded=True)
