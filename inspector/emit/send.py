"""Send a WireRequest like the vendor's client would: HTTPS (or WSS) through an HTTP proxy.

Stdlib only (socket, ssl, http.client) plus wsproto for WebSocket. Every step has a
timeout; every failure is a `SendError` with one line. With neither a proxy nor
`connect_to`, nothing is sent: the samples must never reach the real vendors.
"""

from __future__ import annotations

import http.client
import select
import socket
import ssl
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

from inspector.emit.channels import WireRequest

MAX_RESPONSE = 16 * 1024 * 1024
WS_SKIP_HEADERS = {"host", "connection", "upgrade", "sec-websocket-key", "sec-websocket-version",
                   "sec-websocket-extensions", "sec-websocket-protocol", "content-length"}


class SendError(Exception):
    """The request could not be sent or answered; one line."""


@dataclass
class Response:
    """What came back: status, headers, body; for a WebSocket, the server's text messages."""

    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    ws_replies: list[str] = field(default_factory=list)


def _target(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path-and-query) of a URL, the query kept byte for byte."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "wss"):
        raise SendError(f"only https:// and wss:// URLs are supported: {url[:80]}")
    host = parts.hostname
    if not host:
        raise SendError(f"no host in {url[:80]}")
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    return parts.scheme, host, parts.port or 443, path


def _read_head(sock: socket.socket, limit: int = 65536) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise SendError("the proxy closed the connection during CONNECT")
        data += chunk
        if len(data) > limit:
            raise SendError("the proxy's CONNECT answer is too large")
    return data


def open_tls(host: str, port: int, proxy: tuple[str, int] | None, ca_file: Path | None,
             timeout: float, connect_to: tuple[str, int] | None = None,
             alpn: tuple[str, ...] = ("http/1.1",)) -> ssl.SSLSocket:
    """A verified TLS connection to host:port (SNI = host), through `proxy` or straight to `connect_to`."""
    if connect_to is not None:
        raw = socket.create_connection(connect_to, timeout=timeout)
    elif proxy is not None:
        raw = socket.create_connection(proxy, timeout=timeout)
        try:
            raw.sendall(f"CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode("ascii"))
            head = _read_head(raw)
            status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            fields = status_line.split(" ", 2)
            if len(fields) < 2 or fields[1] != "200":
                raise SendError(f"the proxy refused CONNECT {host}:{port}: {status_line[:100]}")
        except BaseException:
            raw.close()
            raise
    else:
        raise SendError("refusing to contact the real vendor: give a proxy or connect_to")
    raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    context.set_alpn_protocols(list(alpn))
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def send(req: WireRequest, proxy: tuple[str, int] | None, ca_file: Path | None, timeout: float = 10.0,
         connect_to: tuple[str, int] | None = None) -> Response:
    """Send `req` and return the answer. Raises SendError on any failure (never hangs)."""
    scheme, host, port, target = _target(req.url)
    try:
        sock = open_tls(host, port, proxy, ca_file, timeout, connect_to)
    except SendError:
        raise
    except ssl.SSLCertVerificationError as exc:
        raise SendError(f"TLS verification failed for {host}: {exc.verify_message or exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"cannot connect for {host}: {exc}") from None
    try:
        if scheme == "wss" or req.ws_messages or req.method.upper() == "WS":
            return _websocket(sock, req, host, target, timeout)
        return _http(sock, req, host, target, timeout)
    except SendError:
        raise
    except (OSError, ssl.SSLError, http.client.HTTPException, ValueError) as exc:
        raise SendError(f"{req.method} {req.url[:80]}: {type(exc).__name__}: {exc}") from None
    finally:
        sock.close()


def _http(sock: ssl.SSLSocket, req: WireRequest, host: str, target: str, timeout: float) -> Response:
    conn = http.client.HTTPConnection(host, timeout=timeout)
    conn.sock = sock
    conn.putrequest(req.method, target, skip_host=True, skip_accept_encoding=True)
    names = {name.lower() for name, _ in req.headers}
    if "host" not in names:
        conn.putheader("Host", host)
    for name, value in req.headers:
        conn.putheader(name, value)
    if "content-length" not in names and (req.body or req.method.upper() in ("POST", "PUT", "PATCH")):
        conn.putheader("Content-Length", str(len(req.body)))
    conn.endheaders(req.body or None)
    response = conn.getresponse()
    body = response.read(MAX_RESPONSE)
    return Response(response.status, list(response.getheaders()), body)


def _websocket(sock: ssl.SSLSocket, req: WireRequest, host: str, target: str, timeout: float) -> Response:
    ws = WSConnection(ConnectionType.CLIENT)
    extra = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in req.headers if k.lower() not in WS_SKIP_HEADERS]
    sock.sendall(ws.send(Request(host=host, target=target, extra_headers=extra)))
    deadline = time.monotonic() + timeout
    accepted: AcceptConnection | None = None
    rejected: RejectConnection | None = None
    reject_body = b""
    while accepted is None:
        _receive(sock, ws, deadline, "the WebSocket handshake")
        for event in ws.events():
            if isinstance(event, AcceptConnection):
                accepted = event
            elif isinstance(event, RejectConnection):
                rejected = event
            elif isinstance(event, RejectData):
                reject_body += event.data
                if event.body_finished and rejected is not None:
                    raise SendError(f"WebSocket refused: HTTP {rejected.status_code} {reject_body[:80]!r}")
        if rejected is not None and not rejected.has_body:
            raise SendError(f"WebSocket refused: HTTP {rejected.status_code}")
    replies: list[str] = []
    parts: list[str] = []
    closed = False

    def take_events() -> None:
        nonlocal closed
        for event in ws.events():
            if isinstance(event, TextMessage):
                parts.append(str(event.data))
                if event.message_finished:
                    replies.append("".join(parts))
                    parts.clear()
            elif isinstance(event, Ping):
                sock.sendall(ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                sock.sendall(ws.send(event.response()))
                closed = True

    for message in req.ws_messages:
        if closed:
            break
        sock.sendall(ws.send(Message(data=message)))
        # Take what came back meanwhile: a peer that answers every message stalls once the
        # buffers between us are full if we only read at the end (it cannot write, so it stops
        # reading what we send).
        while not closed and _receive(sock, ws, time.monotonic() + 0.0005, None):
            take_events()
    # Replies are read briefly: a vendor may answer each message, or not at all.
    reply_deadline = time.monotonic() + min(timeout, 2.0)
    while len(replies) < len(req.ws_messages) and not closed:
        if not _receive(sock, ws, reply_deadline, None):
            break
        take_events()
    if not closed:
        sock.sendall(ws.send(CloseConnection(code=1000)))
        close_deadline = time.monotonic() + min(timeout, 2.0)
        while _receive(sock, ws, close_deadline, None):
            if any(isinstance(event, CloseConnection) for event in ws.events()):
                break
    headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in accepted.extra_headers]
    return Response(101, headers, b"", replies)


def _receive(sock: ssl.SSLSocket, ws: WSConnection, deadline: float, what: str | None) -> bool:
    """Feed the next bytes to `ws`; False at end of stream or deadline (SendError if `what` is given)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0 or (not sock.pending() and not select.select([sock], [], [], remaining)[0]):
        if what:
            raise SendError(f"timed out waiting for {what}")
        return False
    data = sock.recv(65536)
    if not data:
        if what:
            raise SendError(f"the connection closed during {what}")
        return False
    ws.receive_data(data)
    return True


def send_h2(req: WireRequest, proxy: tuple[str, int] | None, ca_file: Path | None,
            timeout: float = 10.0) -> Response:
    """Send an HTTP request over HTTP/2 (ALPN h2), as browsers do; SendError if h2 is refused."""
    import h2.config
    import h2.connection
    import h2.events

    host, target, port = _h2_target(req.url)
    sock = open_tls(host, port, proxy, ca_file, timeout, alpn=("h2",))
    try:
        if sock.selected_alpn_protocol() != "h2":
            raise SendError(f"{host} did not negotiate HTTP/2")
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
        conn.initiate_connection()
        headers = [(":method", req.method), (":authority", host), (":scheme", "https"), (":path", target)]
        headers += [(k.lower(), v) for k, v in req.headers if k.lower() not in ("host", "connection", "content-length")]
        if req.body:
            headers.append(("content-length", str(len(req.body))))
        stream = conn.get_next_available_stream_id()
        conn.send_headers(stream, headers, end_stream=not req.body)
        if req.body:
            conn.send_data(stream, req.body, end_stream=True)  # small telemetry bodies fit one window
        sock.sendall(conn.data_to_send())
        status, response_headers, body = 0, [], b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data = sock.recv(65536)
            if not data:
                raise SendError("the connection closed before the HTTP/2 response ended")
            for event in conn.receive_data(data):
                if isinstance(event, h2.events.ResponseReceived):
                    response_headers = [(str(k), str(v)) for k, v in event.headers]
                    status = int(dict(response_headers)[":status"])
                elif isinstance(event, h2.events.DataReceived):
                    body += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                elif isinstance(event, h2.events.StreamEnded):
                    return Response(status, [h for h in response_headers if not h[0].startswith(":")], body)
                elif isinstance(event, h2.events.StreamReset):
                    raise SendError(f"the HTTP/2 stream was reset (error {event.error_code})")
            sock.sendall(conn.data_to_send())
        raise SendError("no HTTP/2 response in time")
    except (OSError, ssl.SSLError) as exc:
        raise SendError(f"HTTP/2 to {host} failed: {exc}") from None
    finally:
        sock.close()


def _h2_target(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.hostname or "", target, parts.port or 443
