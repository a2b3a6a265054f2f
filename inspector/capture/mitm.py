"""mitmproxy flows (live or from .mitm files) → Observations. Imports mitmproxy: not core."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from mitmproxy import http, io
from mitmproxy.exceptions import FlowReadException
from mitmproxy.net.http import url as mitm_url

from inspector.core.enforce import mismatch
from inspector.core.event import RESPONSE_PREVIEW
from inspector.core.files import open_regular
from inspector.core.observation import Observation, RawResponse, response_fields


def header_fields(headers: http.Headers) -> tuple[tuple[str, str], ...]:
    return tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.fields)


def raw_response(response: http.Response | None, local: bool = False) -> RawResponse | None:
    """A response as it is (status, header fields as bytes, the body's first bytes and size: the
    raw body as sent, never decompressed here, so a bomb stays a few bytes). Cheap enough for
    the proxy's event loop; `response_fields` turns it into Observation fields."""
    if response is None:
        return None
    raw = response.raw_content or b""
    return response.status_code, response.headers.fields, raw[:RESPONSE_PREVIEW], len(raw), local


def flow_names(flow: http.HTTPFlow) -> tuple[tuple[str, str], ...]:
    """Every name of the flow's destination, raw: where the proxy connects (the CONNECT target,
    an absolute URL's authority, a transparent connection's original address), the TLS SNI and
    the Host header (HTTP/2: :authority)."""
    request = flow.request
    names = [("destination", request.host or "")]
    sni = flow.client_conn.sni if flow.client_conn is not None else None
    if sni:
        names.append(("sni", sni))
    host_header = request.host_header
    if host_header:
        names.append(("host", host_header))
    return tuple(names)


def request_observation(flow: http.HTTPFlow, session: str = "default", source: str = "",
                        names: tuple[tuple[str, str], ...] = ()) -> Observation:
    """The flow's request as an Observation. Its URL names the Host header's host when that
    agrees with where the proxy connects (or the destination is an address), else the
    destination: an event shows where the request really went."""
    request = flow.request
    return Observation(
        method=request.method.upper(), url=_url(flow, names), headers=header_fields(request.headers),
        body=request.raw_content or b"", timestamp=request.timestamp_start, **response_fields(raw_response(flow.response)),
        session=session, source=source, names=names)


def _url(flow: http.HTTPFlow, names: tuple[tuple[str, str], ...]) -> str:
    """`request.pretty_url` (the Host header's host), or `request.url` when the names disagree
    or the Host header is malformed. The origin part is memoised: this runs on the proxy's
    event loop for every request, and a connection's Host header repeats."""
    request = flow.request
    if names and mismatch(names) is not None:
        return request.url
    if request.first_line_format == "authority":
        return request.authority
    # (flow_names read it already: the Host header, or HTTP/2's :authority)
    host_header = next((name for role, name in names if role == "host"), None) if names else request.host_header
    if not host_header:
        return request.url
    path = request.path
    if path == "*":
        path = ""
    elif not path.startswith("/"):  # (a path that could read as part of the authority)
        try:
            pretty = request.pretty_url
            urlsplit(pretty).hostname  # noqa: B018 - raises for a malformed Host header such as [v]x
        except ValueError:
            return request.url
        return pretty
    origin = _origin(request.scheme, host_header)
    return request.url if origin is None else origin + path


@functools.lru_cache(maxsize=1024)
def _origin(scheme: str, host_header: str) -> str | None:
    """`scheme://host[:port]` as `pretty_url` writes it; None for a malformed Host header."""
    try:
        pretty_host, pretty_port = mitm_url.parse_authority(host_header, check=False)
        origin = mitm_url.unparse(scheme, pretty_host, pretty_port or mitm_url.default_port(scheme) or 443, "")
        urlsplit(origin + "/").hostname  # noqa: B018 - raises for a malformed Host header such as [v]x
    except ValueError:
        return None
    return origin


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
    with open_regular(path) as handle:  # a FIFO or device is refused, never waited on
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
