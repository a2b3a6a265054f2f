"""A local fake "internet" on 127.0.0.1: one TLS server that plays every telemetry vendor.

It has its own freshly generated CA (give `ca_file` to mitmproxy as
`ssl_verify_upstream_trusted_ca`) and a leaf certificate whose SANs cover every telemetry
host. It accepts direct TLS connections and HTTP proxy `CONNECT host:port` first (so it can
be mitmproxy's `--mode upstream:http://127.0.0.1:PORT` target), speaks HTTP/1.1 keep-alive
and WebSocket, answers 200 and records every request and message. Nothing leaves the machine.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import select
import shutil
import socket
import ssl
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, BytesMessage, CloseConnection, Ping, Request, TextMessage

from inspector.emit.channels import TELEMETRY_HOSTS

MAX_BODY = 64 * 1024 * 1024
MAX_HEAD = 64 * 1024
SOCKET_TIMEOUT = 10.0
# Hosts the certificate covers besides the telemetry hosts: stand-ins for "any other site".
EXTRA_HOSTS = ("example.org", "example.com", "localhost")
PIXEL_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
             b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")
OK_JSON = b'{"ok":true}'


@dataclass(frozen=True)
class UpstreamRequest:
    """One request the fake internet received."""

    host: str
    method: str
    path: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    time: float
    via_connect: bool = False  # arrived through an HTTP proxy CONNECT

    def header(self, name: str) -> str | None:
        lname = name.lower()
        return next((v for k, v in self.headers if k.lower() == lname), None)


@dataclass(frozen=True)
class UpstreamMessage:
    """One WebSocket message a client sent."""

    host: str
    path: str
    text: str
    time: float = field(default_factory=time.time)


def _hosts(extra: tuple[str, ...]) -> list[str]:
    names: dict[str, None] = {}
    for host in (*TELEMETRY_HOSTS, *EXTRA_HOSTS, *extra):
        names.setdefault(host, None)
        parent = host.split(".", 1)[1] if host.count(".") >= 2 else host
        if "." in parent:
            names.setdefault(parent, None)
            names.setdefault(f"*.{parent}", None)
    return list(names)


def make_certificates(directory: Path, hosts: list[str]) -> tuple[Path, Path, Path]:
    """A throwaway CA and a leaf for `hosts`; returns (ca.pem, leaf-chain.pem, leaf-key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "telemetry-inspector test upstream CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    sans: list[x509.GeneralName] = [x509.DNSName(h) for h in hosts]
    sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = directory / "upstream-ca.pem"
    chain_file = directory / "upstream-leaf.pem"
    key_file = directory / "upstream-leaf-key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(leaf.public_bytes(serialization.Encoding.PEM) + ca_cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                serialization.NoEncryption()))
    key_file.chmod(0o600)
    return ca_file, chain_file, key_file


class _Closed(Exception):
    """The peer went away (or sent something we will not parse)."""


class _Reader:
    """Buffered reads from a socket, bounded. (A bytearray: appending to bytes copied the whole
    buffer on every read, minutes for a 50 MB body.)"""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = bytearray()

    def _fill(self) -> None:
        chunk = self.sock.recv(1 << 18)
        if not chunk:
            raise _Closed("connection closed")
        self.buffer += chunk

    def _take(self, end: int) -> bytes:
        data = bytes(self.buffer[:end])
        del self.buffer[:end]
        return data

    def head(self) -> bytes:
        """Everything up to and including the blank line after the headers."""
        while b"\r\n\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise _Closed("header block too large")
            self._fill()
        return self._take(self.buffer.index(b"\r\n\r\n") + 4)

    def exactly(self, size: int) -> bytes:
        while len(self.buffer) < size:
            self._fill()
        return self._take(size)

    def line(self) -> bytes:
        while b"\r\n" not in self.buffer:
            if len(self.buffer) > MAX_HEAD:
                raise _Closed("line too long")
            self._fill()
        return self._take(self.buffer.index(b"\r\n") + 2)[:-2]

    def chunked(self) -> bytes:
        body = bytearray()
        while True:
            size = int(self.line().split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.line():  # trailers
                    pass
                return bytes(body)
            if len(body) + size > MAX_BODY:
                raise _Closed("body too large")
            body += self.exactly(size)
            self.line()


def _parse_head(head: bytes) -> tuple[str, str, str, list[tuple[str, str]]]:
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3:
        raise _Closed(f"bad request line: {lines[0][:80]!r}")
    headers = []
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers.append((name.strip(), value.strip()))
    return parts[0], parts[1], parts[2], headers


def _get(headers: list[tuple[str, str]], name: str) -> str | None:
    return next((v for k, v in headers if k.lower() == name), None)


class Upstream:
    """The fake internet: `with Upstream() as up:` … `up.port`, `up.ca_file`, `up.requests`."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, extra_hosts: tuple[str, ...] = (),
                 ws_ack: bool = True) -> None:
        self._tmp = tempfile.mkdtemp(prefix="ti-upstream-")
        self.directory = Path(self._tmp)
        self.hosts = _hosts(extra_hosts)
        self.ca_file, chain, key = make_certificates(self.directory, self.hosts)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(chain, key)
        self.context.set_alpn_protocols(["http/1.1"])
        self.ws_ack = ws_ack
        self.requests: list[UpstreamRequest] = []
        self.ws_messages: list[UpstreamMessage] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: set[socket.socket] = set()
        self._threads: set[threading.Thread] = set()
        self._listener = socket.create_server((host, port), backlog=128)
        self._listener.settimeout(0.2)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]
        self._acceptor = threading.Thread(target=self._accept_loop, name="ti-upstream-accept", daemon=True)
        self._acceptor.start()

    @property
    def port(self) -> int:
        return self.address[1]

    # ------------------------------------------------------------------ records
    def count(self, host: str | None = None, path: str | None = None) -> int:
        """How many requests arrived (optionally for one host and/or path, query excluded)."""
        with self._lock:
            return sum(1 for r in self.requests
                       if (host is None or r.host == host) and (path is None or r.path.split("?", 1)[0] == path))

    def reset(self) -> None:
        with self._lock:
            self.requests.clear()
            self.ws_messages.clear()

    def _record(self, request: UpstreamRequest) -> None:
        with self._lock:
            self.requests.append(request)

    # ------------------------------------------------------------------ life cycle
    def __enter__(self) -> Upstream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Close every socket and join every thread; idempotent."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._acceptor.join(timeout)
        self._listener.close()
        with self._lock:
            connections = list(self._connections)
            threads = list(self._threads)
        for conn in connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            conn.close()
        for thread in threads:
            thread.join(timeout)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(SOCKET_TIMEOUT)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            thread = threading.Thread(target=self._serve, args=(conn,), name="ti-upstream-conn", daemon=True)
            with self._lock:
                self._connections.add(conn)
                self._threads.add(thread)
            thread.start()

    # ------------------------------------------------------------------ one connection
    def _serve(self, raw: socket.socket) -> None:
        sock: socket.socket = raw
        try:
            first = raw.recv(1, socket.MSG_PEEK)
            if not first:
                return
            via_connect = False
            connect_host = ""
            if first != b"\x16":  # not a TLS ClientHello: an HTTP proxy CONNECT
                reader = _Reader(raw)
                method, target, _version, _headers = _parse_head(reader.head())
                if method.upper() != "CONNECT":
                    raw.sendall(b"HTTP/1.1 405 Method Not Allowed\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                    return
                connect_host = target.rsplit(":", 1)[0].strip("[]").lower()
                raw.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                via_connect = True
            sock = self.context.wrap_socket(raw, server_side=True)
            with self._lock:
                self._connections.add(sock)
            self._http_loop(sock, connect_host, via_connect)
        except (_Closed, OSError, ssl.SSLError, ValueError):
            pass
        finally:
            for s in {sock, raw}:
                try:
                    s.close()
                except OSError:
                    pass
            with self._lock:
                self._connections.discard(raw)
                self._connections.discard(sock)
                self._threads.discard(threading.current_thread())

    def _http_loop(self, sock: socket.socket, default_host: str, via_connect: bool) -> None:
        reader = _Reader(sock)
        while not self._stopping.is_set():
            try:
                head = reader.head()
            except _Closed:
                return
            method, target, _version, headers = _parse_head(head)
            host = (_get(headers, "host") or default_host).rsplit(":", 1)[0].lower()
            if (_get(headers, "upgrade") or "").lower() == "websocket":
                self._record(UpstreamRequest(host, method, target, tuple(headers), b"", time.time(), via_connect))
                self._websocket(sock, head + bytes(reader.buffer), host, target)
                return
            if (_get(headers, "transfer-encoding") or "").lower().endswith("chunked"):
                body = reader.chunked()
            else:
                length = int(_get(headers, "content-length") or 0)
                if length < 0 or length > MAX_BODY:
                    raise _Closed("body too large")
                body = reader.exactly(length)
            self._record(UpstreamRequest(host, method, target, tuple(headers), body, time.time(), via_connect))
            path = target.split("?", 1)[0]
            if method.upper() == "GET" and (path in ("/telemetry",) or "pixel" in path or path.endswith(".gif")):
                content_type, payload = "image/gif", PIXEL_GIF
            else:
                content_type, payload = "application/json", OK_JSON
            close = (_get(headers, "connection") or "").lower() == "close"
            sock.sendall(
                f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncontent-length: {len(payload)}\r\n"
                f"{'connection: close' if close else 'connection: keep-alive'}\r\n\r\n".encode("ascii") + payload)
            if close:
                return

    def _websocket(self, sock: socket.socket, initial: bytes, host: str, path: str) -> None:
        ws = WSConnection(ConnectionType.SERVER)
        ws.receive_data(initial)
        deadline = time.monotonic() + 60.0  # a WebSocket lives at most this long here
        count = 0
        parts: list[str] = []
        while not self._stopping.is_set() and time.monotonic() < deadline:
            out = b""
            for event in ws.events():
                if isinstance(event, Request):
                    out += ws.send(AcceptConnection())
                elif isinstance(event, TextMessage):
                    parts.append(str(event.data))
                    if event.message_finished:
                        with self._lock:
                            self.ws_messages.append(UpstreamMessage(host, path, "".join(parts)))
                        parts.clear()
                        count += 1
                        if self.ws_ack:
                            out += ws.send(TextMessage(json.dumps({"ok": True, "n": count})))
                elif isinstance(event, BytesMessage):
                    pass
                elif isinstance(event, Ping):
                    out += ws.send(event.response())
                elif isinstance(event, CloseConnection):
                    out += ws.send(event.response())
                    if out:
                        sock.sendall(out)
                    return
            if out:
                sock.sendall(out)
            ready, _, _ = select.select([sock], [], [], 0.2) if not _pending(sock) else ([sock], [], [])
            if not ready:
                continue
            data = sock.recv(65536)
            if not data:
                return
            ws.receive_data(data)


def _pending(sock: Any) -> int:
    return int(sock.pending()) if isinstance(sock, ssl.SSLSocket) else 0
