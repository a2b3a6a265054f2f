"""Run a command in a network namespace whose only way out is the inspector.

`Namespace.start` spawns `nsinit` (which becomes the command), receives the sockets it opened
inside the new namespace, and serves them: the `Bridge` (proxy port, transparent TCP, DNS)
and the `RefusedMonitor` (what was turned away). `go()` lets the command run; `finish()`
stops serving and says what happened. Linux only: root, or an unprivileged user where user
namespaces are allowed; `NamespaceError` (one line) everywhere else.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from inspector.verify.bridge import Bridge, BridgeLog
from inspector.verify.dns import FakeIps
from inspector.verify.packets import BPF_FILTER, Refused, RefusedMonitor

NSINIT = Path(__file__).with_name("nsinit.py")
TRANSPARENT_PORTS = (80, 443)
SETUP_TIMEOUT = 15.0


class NamespaceError(Exception):
    """The namespace could not be made (not Linux, not allowed, …); one line."""


@dataclass
class NamespaceResult:
    """What the namespace saw: tunnels, names looked up, refused traffic, notes."""

    log: BridgeLog
    refused: dict[Refused, int]
    notes: list[str] = field(default_factory=list)
    userns: bool = False


class Namespace:
    """One command in its own network namespace (see the module doc)."""

    def __init__(self, proc: subprocess.Popen[bytes], control: socket.socket, bridge: Bridge,
                 monitor: RefusedMonitor | None, notes: list[str], userns: bool, fake: FakeIps) -> None:
        self.proc = proc
        self.control = control
        self.bridge = bridge
        self.monitor = monitor
        self.notes = notes
        self.userns = userns
        self.fake = fake

    @classmethod
    def start(cls, command: list[str], env: dict[str, str], cwd: str | None, proxy_address: tuple[str, int],
              hostname: str | None = None) -> Namespace:
        """Spawn the command, stopped before exec, in its namespace; serve it. NamespaceError."""
        if not sys.platform.startswith("linux"):
            raise NamespaceError("network namespaces exist only on Linux")
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        spec = {"proxy_port": proxy_address[1], "tcp_ports": list(TRANSPARENT_PORTS), "dns": True,
                "hostname": hostname or "", "filter": BPF_FILTER}
        try:
            proc = subprocess.Popen([sys.executable, "-I", "-S", str(NSINIT), str(child.fileno()),
                                     json.dumps(spec), "--", *command],
                                    env=env, cwd=cwd, pass_fds=[child.fileno()])
        except OSError as exc:
            parent.close()
            child.close()
            raise NamespaceError(f"cannot start the namespace helper: {exc.strerror or exc}") from None
        child.close()
        parent.settimeout(SETUP_TIMEOUT)
        try:
            message, fds, _flags, _addr = socket.recv_fds(parent, 65536, 16)
        except OSError as exc:
            _reap(proc)
            parent.close()
            raise NamespaceError(f"the namespace helper did not answer: {exc}") from None
        try:
            header = json.loads(message.decode() or "{}")
        except ValueError:
            header = {"error": "the namespace helper sent a bad message"}
        if "error" in header or not fds:
            for fd in fds:
                os.close(fd)
            _reap(proc)
            parent.close()
            raise NamespaceError(str(header.get("error") or "the namespace helper failed"))
        fake = FakeIps()
        bridge = Bridge(proxy_address, fake)
        monitor = None
        for described, fd in zip(header.get("sockets", []), fds, strict=False):
            role = described.get("role")
            if role == "packets":
                monitor = RefusedMonitor(socket.socket(fileno=fd)).start()
            elif role == "dns":
                bridge.serve_dns(socket.socket(fileno=fd))
            elif role == "proxy":
                bridge.serve_proxy(socket.socket(fileno=fd))
            elif role == "tcp":
                bridge.serve_transparent(socket.socket(fileno=fd))
            else:
                os.close(fd)
        return cls(proc, parent, bridge, monitor, list(header.get("notes", [])), bool(header.get("userns")), fake)

    def go(self) -> None:
        """Let the command run. NamespaceError if it could not be executed."""
        self.control.settimeout(SETUP_TIMEOUT)
        try:
            self.control.send(b"go")
            reply = self.control.recv(4096)  # empty: closed by the exec, the command runs
        except OSError:
            reply = b""
        finally:
            self.control.close()
        if reply:
            try:
                message = json.loads(reply.decode()).get("exec_error", "the command did not start")
            except ValueError:
                message = "the command did not start"
            self.proc.wait()
            self.finish()
            raise NamespaceError(str(message))

    def wait(self) -> int:
        return self.proc.wait()

    def finish(self) -> NamespaceResult:
        """Stop serving the namespace; what it saw. (Processes the command left running keep
        the namespace, now without any way out.)"""
        self.bridge.stop()
        refused: dict[Refused, int] = {}
        if self.monitor is not None:
            refused = self.monitor.refused()
            self.monitor.stop()
        named = {}
        for item, count in refused.items():
            name = self.fake.name(item.address)
            named[Refused(item.protocol, name, item.port) if name else item] = count
        return NamespaceResult(self.bridge.log, named, self.notes, self.userns)


def _reap(proc: subprocess.Popen[bytes]) -> None:
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def probe() -> str | None:
    """None when a namespace can be made here, else why not (one line)."""
    if not sys.platform.startswith("linux"):
        return "network namespaces exist only on Linux"
    try:
        ns = Namespace.start(["true"], {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}, None, ("127.0.0.1", 9))
    except NamespaceError as exc:
        return str(exc)
    ns.go()
    ns.wait()
    ns.finish()
    return None
