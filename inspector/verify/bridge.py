"""The namespace's only way out: its listeners, served from the inspector's process.

The sockets were opened inside the namespace (by `nsinit`) and handed over; they serve it from
here, where the proxy is:

* the proxy port (127.0.0.1:PORT in the namespace, where HTTP(S)_PROXY points): relayed byte
  for byte to the proxy's own listener, so proxy-aware clients work as before;
* ports 80 and 443 on every address: each connection is turned into ``CONNECT name:port`` to
  the proxy (the name from the fake-IP DNS, or the literal address), then relayed: mitmproxy
  sees TLS or HTTP inside the tunnel as from any proxy client, SNI and Host included;
* UDP 53 on every address: `inspector.verify.dns` answers.

Connections are bounded in number and idle time; a client that sends nothing or a proxy that
refuses is closed, never waited on forever.
"""

from __future__ import annotations

import select
import socket
import threading
from collections import Counter
from dataclasses import dataclass, field

from inspector.verify.dns import FakeIps, answer, formerr, parse_query

MAX_CONNECTIONS = 256
IDLE_TIMEOUT = 120.0
CONNECT_TIMEOUT = 10.0
MAX_RECORDED_NAMES = 4096


@dataclass
class BridgeLog:
    """What went through: tunnels per destination, names looked up, failures."""

    tunnels: Counter[str] = field(default_factory=Counter)   # "name:port" → connections
    lookups: Counter[str] = field(default_factory=Counter)   # names asked of the DNS
    failures: Counter[str] = field(default_factory=Counter)  # "name:port: why" → count
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, counter: Counter[str], key: str) -> None:
        with self.lock:
            if key in counter or len(counter) < MAX_RECORDED_NAMES:
                counter[key] += 1


def _authority(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _relay(a: socket.socket, b: socket.socket, stop: threading.Event) -> None:
    """Copy both ways until either side closes, the bridge stops, or nothing moves for a while."""
    sockets = [a, b]
    peer = {a: b, b: a}
    open_reads = {a, b}
    idle = 0.0
    while open_reads and not stop.is_set() and idle < IDLE_TIMEOUT:
        readable, _, _ = select.select(list(open_reads), [], [], 1.0)
        if not readable:
            idle += 1.0
            continue
        idle = 0.0
        for sock in readable:
            try:
                data = sock.recv(65536)
            except OSError:
                data = b""
            if not data:
                open_reads.discard(sock)
                try:
                    peer[sock].shutdown(socket.SHUT_WR)
                except OSError:
                    pass
                continue
            try:
                peer[sock].sendall(data)
            except OSError:
                return
    for sock in sockets:
        sock.close()


class Bridge:
    """Serves the namespace's sockets (see the module doc); start(), stop(), `log`."""

    def __init__(self, proxy_address: tuple[str, int], fake: FakeIps) -> None:
        self.proxy_address = proxy_address
        self.fake = fake
        self.log = BridgeLog()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sockets: list[socket.socket] = []
        self._slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        self._live: set[socket.socket] = set()
        self._live_lock = threading.Lock()

    # ------------------------------------------------------------------ life cycle
    def serve_proxy(self, listener: socket.socket) -> None:
        self._serve(listener, self._forward_to_proxy, "ti-ns-proxy")

    def serve_transparent(self, listener: socket.socket) -> None:
        self._serve(listener, self._tunnel, "ti-ns-tcp")

    def serve_dns(self, sock: socket.socket) -> None:
        sock.settimeout(0.2)
        self._sockets.append(sock)
        thread = threading.Thread(target=self._dns_loop, args=(sock,), name="ti-ns-dns", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _serve(self, listener: socket.socket, handler: object, name: str) -> None:
        listener.settimeout(0.2)
        self._sockets.append(listener)
        thread = threading.Thread(target=self._accept_loop, args=(listener, handler), name=name, daemon=True)
        self._threads.append(thread)
        thread.start()

    def stop(self) -> None:
        """Close every listener and connection; join the threads."""
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        for sock in self._sockets:
            sock.close()
        with self._live_lock:
            live = list(self._live)
        for sock in live:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept_loop(self, listener: socket.socket, handler: object) -> None:
        while not self._stop.is_set():
            try:
                client, _peer = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            if not self._slots.acquire(blocking=False):
                client.close()  # past the bound: refused, as a full backlog would
                continue
            worker = threading.Thread(target=self._handle, args=(handler, client), daemon=True,
                                      name="ti-ns-conn")
            worker.start()

    def _handle(self, handler: object, client: socket.socket) -> None:
        with self._live_lock:
            self._live.add(client)
        try:
            handler(client)  # type: ignore[operator]
        except OSError:
            pass
        finally:
            client.close()
            with self._live_lock:
                self._live.discard(client)
            self._slots.release()

    def _connect_proxy(self) -> socket.socket:
        upstream = socket.create_connection(self.proxy_address, timeout=CONNECT_TIMEOUT)
        with self._live_lock:
            self._live.add(upstream)
        return upstream

    def _forward_to_proxy(self, client: socket.socket) -> None:
        upstream = self._connect_proxy()
        try:
            client.settimeout(None)
            upstream.settimeout(None)
            _relay(client, upstream, self._stop)
        finally:
            with self._live_lock:
                self._live.discard(upstream)

    def _tunnel(self, client: socket.socket) -> None:
        local = client.getsockname()
        address, port = str(local[0]), int(local[1])
        if address.startswith("::ffff:"):
            address = address[7:]
        name = self.fake.name(address) or address
        target = _authority(name, port)
        try:
            upstream = self._connect_proxy()
        except OSError as exc:
            self.log.add(self.log.failures, f"{target}: the proxy refused ({exc.strerror or exc})")
            return
        try:
            upstream.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n".encode("ascii", "replace"))
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = upstream.recv(4096)
                if not chunk or len(head) > 16384:
                    break
                head += chunk
            status = head.split(b" ", 2)[1:2]
            if status != [b"200"]:
                self.log.add(self.log.failures, f"{target}: the proxy answered "
                             f"{head.splitlines()[0][:80].decode('latin-1') if head else 'nothing'}")
                return
            self.log.add(self.log.tunnels, target)
            rest = head.split(b"\r\n\r\n", 1)[1]
            if rest:
                client.sendall(rest)
            client.settimeout(None)
            upstream.settimeout(None)
            _relay(client, upstream, self._stop)
        finally:
            with self._live_lock:
                self._live.discard(upstream)
            upstream.close()

    def _dns_loop(self, sock: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                data, peer = sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            question = parse_query(data)
            reply = answer(question, self.fake) if question is not None else formerr(data)
            if question is not None and question.name:
                self.log.add(self.log.lookups, question.name)
            if reply is not None:
                try:
                    sock.sendto(reply, peer)
                except OSError:
                    pass
