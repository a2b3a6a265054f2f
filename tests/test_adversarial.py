"""A blocked request never leaves the machine, whatever the client sends.

A counting listener on 127.0.0.1 stands for the internet: the proxy runs in upstream mode in
front of it, so any connection it receives is a request that left. Each case below is a way a
client (or an attacker controlling one) could spell a request to a blocked vendor; each runs
under a vendor rule, a host rule and --block-all, and a control request proves the counter
counts.
"""

from __future__ import annotations

import socket
import socketserver
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import wait_for

HOST = "telemetry.refine.dev"
TIMEOUT = 5.0


class _Counter(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CountingHandler)
        self.lines: list[bytes] = []
        self.lock = threading.Lock()


class _CountingHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        server: _Counter = self.server  # type: ignore[assignment]
        self.request.settimeout(TIMEOUT)
        try:
            first = self.request.recv(4096).split(b"\r\n", 1)[0]
        except OSError:
            first = b"?"
        with server.lock:
            server.lines.append(first)
        try:  # an upstream proxy that refuses: the connection is what counts
            self.request.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        except OSError:
            pass


@pytest.fixture
def internet() -> Iterator[_Counter]:
    server = _Counter()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Guarded:
    addon: Any
    store: Any
    port: int
    ca: Path
    internet: _Counter

    @property
    def leaks(self) -> int:
        with self.internet.lock:
            return len(self.internet.lines)

    def events(self) -> list[dict[str, Any]]:
        assert self.addon.wait_idle(15)
        self.store.refresh()
        return self.store.events()


@pytest.fixture
def guarded(tmp_path: Path, internet: _Counter) -> Iterator[Callable[..., Guarded]]:
    """guarded(rule=…) → a proxy in upstream mode in front of the counting listener."""
    from inspector.core.keys import Keyring
    from inspector.core.policy import Catalogue
    from inspector.proxy.addon import TelemetryInspector
    from inspector.proxy.embed import ProxySettings, ProxyThread
    from inspector.store import Store

    started: list[tuple[Any, Any, Any]] = []

    def start(rule: str, extra: dict[str, Any] | None = None, policies: tuple[Path, ...] = (),
              block_mode: str = "respond") -> Guarded:
        store = Store(tmp_path / f"store-{len(started)}.json")
        catalogue = Catalogue.load(paths=list(policies))
        assert not catalogue.problems, [p.lines() for p in catalogue.problems]
        addon = TelemetryInspector(catalogue, Keyring(), store=store)
        addon.block_mode = block_mode
        if rule == "vendor":
            store.set_rule("Refine", "vendor", "block")
        elif rule == "host":
            store.set_rule(HOST, "host", "block")
        elif rule == "block-all":
            addon.default_action = "block"
        elif rule == "sinkhole":
            store.set_rule("Refine", "vendor", "sinkhole")
        addon.reload_rules()
        settings = ProxySettings(listen_port=0, confdir=tmp_path / "mitmproxy",
                                 modes=(f"upstream:http://127.0.0.1:{internet.server_address[1]}",),
                                 extra=dict(extra or {}))
        thread = ProxyThread(settings, addon).start()
        started.append((thread, addon, store))
        return Guarded(addon, store, thread.port, settings.ca_cert(), internet)

    try:
        yield start
    finally:
        for thread, addon, store in started:
            thread.stop()
            addon.stop()
            store.close()


# ---------------------------------------------------------------------------- raw clients

def _read_head(sock: socket.socket) -> bytes:
    """The head of the final answer (a 100 Continue before it is skipped)."""
    data = b""
    while True:
        while b"\r\n\r\n" not in data:
            try:
                chunk = sock.recv(4096)
            except (OSError, ssl.SSLError):
                return data
            if not chunk:
                return data
            data += chunk
        head, _, rest = data.partition(b"\r\n\r\n")
        if not head.startswith(b"HTTP/1.1 100"):
            return head + b"\r\n\r\n"
        data = rest


def _status(head: bytes) -> int | None:
    try:
        return int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return None


def through_tunnel(proxy: Guarded, target: str, sni: str | None, payload: bytes) -> int | None:
    """CONNECT target, TLS with `sni` (None: no SNI), then send `payload`; the answer's status
    (None when the connection was closed)."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        if _status(_read_head(raw)) != 200:
            return None
        context = ssl.create_default_context(cafile=str(proxy.ca))
        context.check_hostname = False  # the names are the attack; the CA is what is trusted
        context.verify_mode = ssl.CERT_NONE
        try:
            with context.wrap_socket(raw, server_hostname=sni) as tls:
                tls.sendall(payload)
                return _status(_read_head(tls))
        except (OSError, ssl.SSLError):
            return None


def plain(proxy: Guarded, payload: bytes) -> int | None:
    """An absolute-form (or CONNECT-less) request straight to the proxy."""
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as sock:
        sock.sendall(payload)
        return _status(_read_head(sock))


def http1(method: str, target: str, host: str | None, body: bytes = b"", extra: str = "") -> bytes:
    head = f"{method} {target} HTTP/1.1\r\n"
    if host is not None:
        head += f"Host: {host}\r\n"
    head += extra
    if body or method == "POST":
        head += f"Content-Length: {len(body)}\r\n"
    return (head + "Connection: close\r\n\r\n").encode("latin-1") + body


BODY = b'{"name":"x","version":"4.0.0"}'
WS_UPGRADE = ("Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
              "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n")


def _tunnel_case(target: str, sni: str | None, method: str, path: str, host: str | None,
                 body: bytes = b"", extra: str = "") -> Callable[[Guarded], int | None]:
    return lambda proxy: through_tunnel(proxy, target, sni, http1(method, path, host, body, extra))


def _plain_case(method: str, url: str, host: str | None, body: bytes = b"") -> Callable[[Guarded], int | None]:
    return lambda proxy: plain(proxy, http1(method, url, host, body))


CASES: dict[str, Callable[[Guarded], int | None]] = {
    "trailing dot everywhere": _tunnel_case(f"{HOST}.:443", f"{HOST}.", "POST", "/send", f"{HOST}.", BODY),
    "trailing dot, absolute URL": _plain_case("POST", f"http://{HOST}./send", f"{HOST}.", BODY),
    "upper case": _tunnel_case(f"{HOST.upper()}:443", HOST.upper(), "POST", "/send", HOST.upper(), BODY),
    "Host header names another host": _tunnel_case(f"{HOST}:443", HOST, "POST", "/send", "example.org", BODY),
    "SNI names another host": _tunnel_case(f"{HOST}:443", "example.org", "POST", "/send", "example.org", BODY),
    "no SNI": _tunnel_case(f"{HOST}:443", None, "POST", "/send", HOST, BODY),
    "CONNECT elsewhere, SNI and Host the vendor": _tunnel_case("example.org:443", HOST, "POST", "/send", HOST, BODY),
    "absolute URL, Host header elsewhere": _plain_case("GET", f"http://{HOST}/telemetry?payload=e30=", "example.org"),
    "malformed Host header": _tunnel_case(f"{HOST}:443", HOST, "POST", "/send", "[v]x", BODY),
    "Host header with a port": _tunnel_case(f"{HOST}:443", HOST, "POST", "/send", f"{HOST}:443", BODY),
    "a path no policy lists": _tunnel_case(f"{HOST}:443", HOST, "POST", "/v2/send", HOST, BODY),
    "repeated slashes": _tunnel_case(f"{HOST}:443", HOST, "POST", "//send", HOST, BODY),
    "percent-encoded path": _tunnel_case(f"{HOST}:443", HOST, "POST", "/%73end", HOST, BODY),
    "dot segment": _tunnel_case(f"{HOST}:443", HOST, "POST", "/send/.", HOST, BODY),
    "another method": _tunnel_case(f"{HOST}:443", HOST, "POST", "/telemetry", HOST, BODY),
    "root path": _tunnel_case(f"{HOST}:443", HOST, "GET", "/", HOST),
    "WebSocket upgrade": _tunnel_case(f"{HOST}:443", HOST, "GET", "/ws", HOST, extra=WS_UPGRADE),
    "Expect: 100-continue": _tunnel_case(f"{HOST}:443", HOST, "POST", "/send", HOST, BODY,
                                         extra="Expect: 100-continue\r\n"),
    "chunked body": lambda proxy: through_tunnel(
        proxy, f"{HOST}:443", HOST,
        f"POST /send HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(BODY), BODY)),
    "not HTTP inside the TLS": lambda proxy: through_tunnel(proxy, f"{HOST}:443", HOST, b"\x00\x01HELLO VENDOR\r\n\r\n"),
    "not HTTP, no TLS": lambda proxy: _raw_tcp(proxy, f"{HOST}:80"),
}


def _raw_tcp(proxy: Guarded, target: str) -> int | None:
    with socket.create_connection(("127.0.0.1", proxy.port), timeout=TIMEOUT) as raw:
        raw.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode())
        if _status(_read_head(raw)) != 200:
            return None
        raw.sendall(b"\x00\x01HELLO VENDOR\r\n\r\n")
        return _status(_read_head(raw))


def _control(proxy: Guarded) -> None:
    """A request to a host no rule blocks does reach the counting listener."""
    before = proxy.leaks
    through_tunnel(proxy, "example.org:443", "example.org", http1("GET", "/", "example.org"))
    assert wait_for(lambda: proxy.leaks > before, timeout=5), "the control request never reached the counter"


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["vendor", "host", "block-all"])
def test_no_spelling_of_a_blocked_request_leaves(guarded, rule):
    proxy = guarded(rule)
    _control(proxy)
    baseline = proxy.leaks
    answers = {}
    for name, case in CASES.items():
        answers[name] = case(proxy)
        assert proxy.leaks == baseline, f"{name!r} reached the network under a {rule} rule: " \
                                        f"{proxy.internet.lines[baseline:]}"
    # answered locally (403) or refused/killed — never a 502 from the counting "internet"
    assert all(status in (None, 400, 403) for status in answers.values()), answers
    _control(proxy)  # and the counter still counts at the end


def test_requests_outside_the_policies_are_blocked_and_say_why(guarded):
    proxy = guarded("vendor")
    assert CASES["a path no policy lists"](proxy) == 403
    assert CASES["Host header names another host"](proxy) == 403
    events = proxy.events()
    unclaimed = [e for e in events if e["path"] == "/v2/send"]
    assert unclaimed and unclaimed[0]["action"] == "block"
    assert "no policy claims POST /v2/send" in unclaimed[0]["action_reason"]
    assert "vendor Refine" in unclaimed[0]["action_reason"]
    mismatched = [e for e in events if any(f["code"] == "host-mismatch" for f in e["findings"])]
    assert mismatched, [e["findings"] for e in events]
    assert mismatched[0]["host"] == HOST  # the event names where the request really went
    assert mismatched[0]["policy"] == "refine-v3-browser"


def test_a_streamed_body_is_never_forwarded(guarded, caplog):
    big = b'{"x":"' + b"a" * 200_000 + b'"}'
    proxy = guarded("vendor", extra={"stream_large_bodies": "1"})
    _control(proxy)
    baseline = proxy.leaks
    status = through_tunnel(proxy, f"{HOST}:443", HOST, http1("POST", "/send", HOST, big))
    chunked = through_tunnel(
        proxy, f"{HOST}:443", HOST,
        f"POST /send HTTP/1.1\r\nHost: {HOST}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode()
        + b"".join(b"%x\r\n%s\r\n" % (len(big[i:i + 8192]), big[i:i + 8192]) for i in range(0, len(big), 8192))
        + b"0\r\n\r\n")
    assert proxy.leaks == baseline
    assert (status, chunked) == (403, 403)
    events = [e for e in proxy.events() if e["path"] == "/send"]
    assert len(events) == 2 and all(e["action"] == "block" for e in events)
    assert all(e["request"]["body_size"] == len(big) for e in events)  # the body was read, not sent


@pytest.mark.slow
def test_kill_mode_and_sinkhole_hold_too(guarded):
    killed = guarded("vendor", block_mode="kill")
    sinkholed = guarded("sinkhole")
    for proxy in (killed, sinkholed):
        _control(proxy)
        baseline = proxy.leaks
        for name in ("trailing dot everywhere", "a path no policy lists", "WebSocket upgrade", "chunked body"):
            CASES[name](proxy)
            assert proxy.leaks == baseline, name
    assert CASES["percent-encoded path"](sinkholed) == 200  # the sinkhole answers as the vendor would


def test_unclaimed_traffic_on_a_shared_host_gets_the_strictest_rule(guarded, tmp_path):
    shared = tmp_path / "policies"
    shared.mkdir()
    (shared / "other.yaml").write_text(
        "id: other-metrics\nvendor: Other\nproduct: Other server\n"
        "source: {document: other.md, title: Other telemetry}\n"
        "match: {hosts: [telemetry.hasura.io], methods: [POST], paths: [/v1/other]}\n"
        "payload: {location: body, encoding: [json]}\n"
        "declared: {}\n", encoding="utf-8")
    proxy = guarded("none", policies=(shared,))
    proxy.store.set_rule("Hasura", "vendor", "block")
    proxy.addon.reload_rules()
    _control(proxy)
    baseline = proxy.leaks
    status = through_tunnel(proxy, "telemetry.hasura.io:443", "telemetry.hasura.io",
                            http1("POST", "/v2/unknown", "telemetry.hasura.io", BODY))
    assert status == 403 and proxy.leaks == baseline
    # the other vendor's own channel is allowed (and reaches the network), as its rule says
    through_tunnel(proxy, "telemetry.hasura.io:443", "telemetry.hasura.io",
                   http1("POST", "/v1/other", "telemetry.hasura.io", BODY))
    assert wait_for(lambda: proxy.leaks > baseline, timeout=5)
    event = next(e for e in proxy.events() if e["path"] == "/v2/unknown")
    assert "Hasura, Other (a host they share)" in event["action_reason"]
    # a rule for the host itself decides the unclaimed traffic
    proxy.store.set_rule("telemetry.hasura.io", "host", "allow")
    proxy.addon.reload_rules()
    before = proxy.leaks
    through_tunnel(proxy, "telemetry.hasura.io:443", "telemetry.hasura.io",
                   http1("POST", "/v2/unknown", "telemetry.hasura.io", BODY))
    assert wait_for(lambda: proxy.leaks > before, timeout=5)


def test_options_that_would_defeat_a_block_are_overridden(guarded, caplog):
    import logging
    caplog.set_level(logging.WARNING, logger="telemetry_inspector")
    proxy = guarded("vendor", extra={"ignore_hosts": [HOST.replace(".", r"\.")], "connection_strategy": "eager",
                                     "stream_large_bodies": "1"})
    baseline = proxy.leaks
    assert CASES["trailing dot everywhere"](proxy) in (None, 403)
    assert CASES["repeated slashes"](proxy) == 403
    assert proxy.leaks == baseline
    text = caplog.text
    for option in ("ignore_hosts", "connection_strategy", "stream_large_bodies"):
        assert f"{option}=" in text and "is ignored" in text, text


def test_an_error_while_deciding_fails_closed_with_one_line_per_kind(guarded, caplog, monkeypatch):
    import logging
    caplog.set_level(logging.WARNING, logger="telemetry_inspector")
    proxy = guarded("none")
    _control(proxy)
    baseline = proxy.leaks

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("boom")

    monkeypatch.setattr(type(proxy.addon.enforcer), "decide", broken)
    statuses = [CASES["percent-encoded path"](proxy) for _ in range(5)]
    assert statuses == [403] * 5 and proxy.leaks == baseline
    lines = [r for r in caplog.records if "error while deciding" in r.getMessage()]
    assert len(lines) == 1 and "RuntimeError: boom" in lines[0].getMessage()
    assert "Traceback" not in caplog.text
