"""mitmproxy flows (live or from .mitm files) → Observations. Imports mitmproxy: not core."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from mitmproxy import http, io
from mitmproxy.exceptions import FlowReadException

from inspector.core.observation import Observation


def header_fields(headers: http.Headers) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.fields)


def request_observation(flow: http.HTTPFlow, session: str = "default", source: str = "") -> Observation:
    request = flow.request
    response = flow.response
    return Observation(
        method=request.method.upper(), url=request.pretty_url, headers=header_fields(request.headers),
        body=request.raw_content or b"", timestamp=request.timestamp_start,
        response_status=response.status_code if response else None,
        response_headers=header_fields(response.headers) if response else (),
        session=session, source=source)


def websocket_observations(flow: http.HTTPFlow, session: str = "default", source: str = "") -> Iterator[Observation]:
    if flow.websocket is None:
        return
    url = flow.request.pretty_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    headers = header_fields(flow.request.headers)
    for i, message in enumerate(flow.websocket.messages):
        if not message.from_client:
            continue
        yield websocket_message_observation(url, headers, message, i, session, f"{source}.{i}" if source else "")


def websocket_message_observation(url: str, headers: tuple[tuple[str, str], ...], message: object,
                                  index: int, session: str, source: str) -> Observation:
    content = getattr(message, "content", b"")
    return Observation(
        method="WS", url=url, headers=headers, body=content, transport="websocket",
        timestamp=getattr(message, "timestamp", 0.0), ws_index=index, session=session, source=source)


def read_mitm(path: Path, session: str) -> Iterator[Observation]:
    with path.open("rb") as handle:
        reader = io.FlowReader(handle)
        try:
            for index, flow in enumerate(reader.stream()):
                if not isinstance(flow, http.HTTPFlow):
                    continue
                source = f"{path.name}#{index}"
                if flow.websocket is not None:
                    yield from websocket_observations(flow, session, source)
                else:
                    yield request_observation(flow, session, source)
        except FlowReadException as exc:
            raise ValueError(f"{path}: not a readable mitmproxy flow file ({exc})") from None
