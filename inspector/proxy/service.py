"""`run`'s proxy in a process of its own: the terminal UI never shares the proxy's interpreter.

mitmproxy handles every connection on one event loop in one interpreter. With the TUI in the
same process, each frame Textual draws holds the interpreter lock the proxy needs (a redraw of
the event list and its detail pane is milliseconds of Python): `run` forwarded half of what
`proxy` did (bench/bench_proxy.py). So `run` starts the proxy as `proxy` runs it — the lean
addon deciding in the hooks, the audit and the store writes in its helper process
(inspector.proxy.auditproc) — in a child process (``python -m inspector.proxy.service FD``),
and the TUI reads the events from the store the helper records into, as `tui` does beside a
`proxy` in another terminal.

`ProcessRunner` is the TUI's `ProxyRunner` for it. Over one socket it sends the child its
configuration (the policies as loaded, the keys as loaded: nothing is read twice, and private
keys travel only over this socket), then the rules to re-read (a rule toggled in the TUI
applies to the next request), rules held in memory, keys loaded later in the TUI, and stop;
the child answers with where it listens or the one line why it could not, and its counts when
it stops. The child ignores Ctrl-C (the UI says when to stop); when the UI's process dies,
even by kill -9, the child reads the end of its socket and stops, and so does its helper.
Its stderr is read by the UI's process (a line written to the terminal would tear the screen):
the last lines say why it ended, if it ended on its own.
"""

from __future__ import annotations

import asyncio
import logging
import pickle
import signal
import socket
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from inspector.core.event import Event
from inspector.core.keys import LoadedKey
from inspector.core.rules import RuleBook
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.config import ProxyConfig
from inspector.proxy.embed import ProxySettings
from inspector.proxy.runner import Addresses, RunnerBasics

log = logging.getLogger("telemetry_inspector")

STOP_TIMEOUT = 20.0  # seconds the child has to finish its last batch before it is killed
KEYS_POLL = 0.5      # how often keys loaded in the UI are looked for
MESSAGES_KEPT = 20   # the child's warnings kept for the UI between two looks (the newest)


@dataclass
class ServiceConfig:
    """What the child builds its proxy from (sent pickled as the first message)."""

    config: ProxyConfig
    store_path: str | None
    policies: list[tuple[dict[str, Any], str, bool]]  # (data, origin, builtin) of each policy
    keys: list[LoadedKey] = field(default_factory=list)
    audit: str = "process"                             # where the child audits: "process" or "thread"


class ProcessRunner(RunnerBasics):
    """The proxy of `run` in a child process, as the TUI drives it (inspector.tui.runner.ProxyRunner).

    `addon` is the UI process's own (built and checked by the CLI as for `proxy`, never
    started): its catalogue and keyring are the UI's, and what the child is given."""

    def __init__(self, settings: ProxySettings, addon: TelemetryInspector, config: ProxyConfig,
                 store_path: Path | None, audit: str = "process") -> None:
        self.settings = settings
        self.addon = addon
        self.service = ServiceConfig(
            config=replace(config, store_path=store_path), store_path=str(store_path) if store_path else None,
            policies=[(p.raw, p.origin, p.builtin) for p in addon.catalogue.policies],
            keys=list(addon.keyring), audit=audit)
        self.stats: dict[str, int] = {}
        self.child: subprocess.Popen[bytes] | None = None
        self._conn: Connection | None = None
        self._addrs: Addresses = []
        self._error: str | None = None
        self._stderr: deque[str] = deque(maxlen=5)
        self._messages: deque[str] = deque(maxlen=MESSAGES_KEPT)  # not yet taken by the UI
        self._listening = threading.Event()
        self._ended = threading.Event()
        self._stopping = threading.Event()
        self._send_lock = threading.Lock()
        self._keys_sent = len(self.service.keys)
        self._threads: list[threading.Thread] = []

    # ------------------------------------------------------------------ ProxyRunner
    @property
    def listen_addrs(self) -> Addresses:
        return list(self._addrs)

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Nothing is called back: the events reach the UI through the store the child's
        helper records into (the UI polls it)."""

    def start(self, timeout: float = 60.0) -> str | None:
        """Start the child and wait until it listens: None, or the one line why it cannot."""
        ours, theirs = socket.socketpair()
        self._conn = Connection(ours.detach())
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "inspector.proxy.service", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE)
            self._conn.send(self.service)
        except (OSError, ValueError) as exc:
            self._ended.set()
            return f"cannot start the proxy process ({exc})"
        finally:
            theirs.close()
        for target, name in ((self._receive, "answers"), (self._read_stderr, "stderr"), (self._forward_keys, "keys")):
            thread = threading.Thread(target=target, name=f"telemetry-inspector-service-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        if not self._listening.wait(timeout):
            self.stop()
            return f"the proxy did not start within {timeout:.0f} s"
        if not self._addrs:
            self._ended.wait(10)
            return self._error or self._ended_why() or "the proxy stopped as it started"
        return None

    def run(self, ready: Callable[[Addresses], None]) -> str | None:
        """Tell `ready` where it listens, then wait until the child ends: None when stopped,
        else why it ended."""
        if self.child is None:
            error = self.start()
            if error is not None:
                return error
        if self._addrs:
            ready(self.listen_addrs)
        self._ended.wait()
        if self._stopping.is_set():
            return None
        return self._error or self._ended_why()

    def stop(self) -> None:
        """Ask the child to stop, wait for its last batch, then for it (killed past STOP_TIMEOUT)."""
        if self._stopping.is_set():
            return
        self._stopping.set()
        self._send(("stop",))
        child = self.child
        if child is not None:
            try:
                child.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.warning("telemetry-inspector: the proxy process did not stop in time; killing it")
                child.kill()
                child.wait()
        self._ended.wait(5)
        for thread in self._threads:
            thread.join(2)
        if self._conn is not None:
            self._conn.close()

    def reload_rules(self) -> None:
        self._send(("rules",))

    def take_messages(self) -> list[str]:
        taken = []
        while self._messages:
            taken.append(self._messages.popleft())
        return taken

    def use_rules(self, rules: RuleBook) -> None:
        rows = [{"target": r.target, "kind": r.kind, "action": r.action} for r in rules.rules]
        self._send(("use_rules", rows, rules.default))

    # ------------------------------------------------------------------ the socket
    def _send(self, message: tuple[Any, ...]) -> bool:
        conn = self._conn
        if conn is None or self._ended.is_set():
            return False
        with self._send_lock:
            try:
                conn.send_bytes(pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL))
            except (OSError, ValueError):
                return False
        return True

    def _receive(self) -> None:
        assert self._conn is not None
        try:
            while True:
                try:
                    message = self._conn.recv()
                except (EOFError, OSError):
                    break
                kind = message[0]
                if kind == "ready":
                    self._addrs = [tuple(a) for a in message[1]]
                    self._listening.set()
                elif kind == "error":
                    self._error = str(message[1])
                elif kind == "stopped":
                    self.stats = dict(message[1])
        finally:
            if self.child is not None:
                try:
                    self.child.wait(STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    pass
            self._ended.set()
            self._listening.set()

    def _read_stderr(self) -> None:
        child = self.child
        if child is None or child.stderr is None:
            return
        for raw in child.stderr:
            line = raw.decode("utf-8", "replace").rstrip()
            if line:
                self._stderr.append(line)
                self._messages.append(line)
                log.info("%s", line)  # (the UI's process: where its log goes, never on the screen)

    def _forward_keys(self) -> None:
        """Keys loaded in the UI later (its "load key") decrypt the next events too."""
        while not self._ended.wait(KEYS_POLL):
            keys = list(self.addon.keyring)
            if len(keys) > self._keys_sent and self._send(("keys", keys[self._keys_sent:])):
                self._keys_sent = len(keys)

    def _ended_why(self) -> str | None:
        child = self.child
        status = child.poll() if child is not None else None
        if status is None:
            return None
        what = f"signal {-status}" if status < 0 else f"exit status {status}"
        last = self._stderr[-1] if self._stderr else ""
        return f"the proxy process ended ({what})" + (f": {last}" if last else "")


# ---------------------------------------------------------------------- the child


def _child(fd: int) -> int:
    from inspector.core.keys import Keyring
    from inspector.core.policy import Catalogue, policy_from_data
    from inspector.proxy.assemble import audit_in_process, build_addon, proxy_settings
    from inspector.proxy.config import ConfigError
    from inspector.proxy.embed import EmbeddedProxy, ProxyStartError
    from inspector.proxy.output import log_to_stderr
    from inspector.store import StoreError, open_recording

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the UI's: it says when to stop
    log_to_stderr()
    conn = Connection(fd)
    service: ServiceConfig = conn.recv()
    config = service.config
    store = None
    addon: TelemetryInspector | None = None
    try:
        catalogue = Catalogue([policy_from_data(data, origin, builtin) for data, origin, builtin in service.policies])
        keyring = Keyring(list(service.keys))
        if service.store_path:
            store, _warning = open_recording(Path(service.store_path), max_events=config.max_events or None,
                                             keep_events=False)  # (the UI's process said it)
        settings = proxy_settings(config)
        addon = build_addon(config, catalogue, keyring, store=store)
        if service.audit == "process":
            audit_in_process(addon, config, store, output=None)
        proxy = EmbeddedProxy(settings, addon)
    except (ConfigError, StoreError, ValueError, OSError) as exc:
        conn.send(("error", str(exc)))
        return 2

    stop_asked = threading.Event()

    def control() -> None:
        assert addon is not None
        while True:
            try:
                message = pickle.loads(conn.recv_bytes())  # noqa: S301 - from the UI's process, over its socket
            except (EOFError, OSError):
                break  # the UI's process is gone (even kill -9)
            kind = message[0]
            if kind == "stop":
                break
            try:
                if kind == "rules":
                    addon.reload_rules()
                elif kind == "use_rules":
                    addon.rules = RuleBook.from_dicts(message[1], default=message[2])
                elif kind == "keys":
                    addon.keyring.add(message[1])
            except Exception as exc:  # noqa: BLE001 - a bad message must not stop the proxy
                log.warning("telemetry-inspector: proxy process: %s: %s", kind, exc)
        stop_asked.set()
        proxy.shutdown()  # (a no-op before it runs: ready() below stops it then)

    def ready(addrs: Addresses) -> None:
        conn.send(("ready", list(addrs)))
        if stop_asked.is_set():
            proxy.shutdown()

    threading.Thread(target=control, name="telemetry-inspector-control", daemon=True).start()
    code = 0
    try:
        asyncio.run(proxy.run(ready))
    except ProxyStartError as exc:
        conn.send(("error", str(exc)))
        code = 2
    except Exception as exc:  # noqa: BLE001 - told to the UI in one line
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
        code = 2
    finally:
        addon.stop()
        if store is not None:
            store.close()
        try:
            conn.send(("stopped", dict(addon.stats)))
        except (OSError, ValueError):
            pass
    return code


if __name__ == "__main__":
    sys.exit(_child(int(sys.argv[1])))
