"""The audit in a process of its own: the proxy's process only decides allow, block or sinkhole.

mitmproxy handles every connection on one event loop, and an audit thread in the same process
shares its interpreter lock: each event's decoding, audit and store write is time the proxy does
not spend proxying. `AuditProcess` takes the worker's place in the addon: it gathers the
observations in batches as the worker does, pickles each batch down a socket to a child
process (``python -m inspector.proxy.auditproc FD``), which audits, records and prints them
and answers with its running counts.

The request path does not wait for the child: decisions are made in the proxy's hooks before
anything is queued. If the child dies, its work falls back to a thread in the proxy's process
(one warning). When the proxy dies, even by kill -9, the child reads the end of its socket,
finishes what it was sent, and exits.

`exec` and `run` audit here too, and still see every event in their own process: with
`AuditConfig.events` the child sends each batch's events back with its counts (`summary`: an
`EventSummary`, the few fields exec's summary needs and the line it prints, rendered by the child;
`full`: the event's whole dict),
and the proxy's process hands them to the addon's callbacks (exec's summary and canary search,
the TUI's live list) on a thread of its own. Keys loaded later in the proxy's process (the TUI's
"load key") are sent to the child before the next batch.
"""

from __future__ import annotations

import logging
import pickle
import signal
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from inspector.core.event import Event, EventSummary, event_from_dict
from inspector.core.keys import LoadedKey
from inspector.proxy.addon import TelemetryInspector, settle_heap
from inspector.proxy.output import event_printer, log_to_stderr
from inspector.proxy.worker import Worker

log = logging.getLogger("telemetry_inspector")


@dataclass
class AuditConfig:
    """What the child needs to audit as the proxy would (sent pickled as its first message)."""

    policies: list[tuple[dict[str, Any], str, bool]]   # (data, origin, builtin) of each policy
    keys: list[LoadedKey] = field(default_factory=list)  # the proxy's keyring (--key, $TELEMETRY_INSPECTOR_KEYS)
    store_path: str | None = None
    max_events: int | None = None
    redact: bool = False
    session: str = "default"
    output: str | None = None                            # None, "line" or "json": print each event
    events: str | None = None                            # None, "summary" or "full": send each event back


def _sent(event: Event, how: str) -> dict[str, Any] | EventSummary:
    if how == "summary":  # (its line rendered here, as exec prints it)
        from inspector.report.render import event_line
        return EventSummary.of(event, event_line(event))
    doc = event.to_dict()
    if event.store_id is not None:
        doc["doc_id"] = event.store_id
    return doc


def _received(doc: dict[str, Any] | EventSummary) -> Event | EventSummary:
    if isinstance(doc, EventSummary):
        return doc
    event = event_from_dict(doc)
    doc_id = doc.get("doc_id")
    event.store_id = doc_id if isinstance(doc_id, int) else None
    return event


class AuditProcess(Worker):
    """The addon's worker, with the audit done by a child process."""

    switch_interval = None  # this thread only batches and pickles

    def __init__(self, addon: TelemetryInspector, config: AuditConfig) -> None:
        super().__init__(addon)
        self.name = "telemetry-inspector-audit-feeder"
        self.config = config
        self.sent = 0        # observations sent to the child
        self._acked = 0      # of those, done by the child (all of them once it is gone)
        self._local = 0      # done by the fallback worker
        self._lock = threading.Lock()
        self._fallback: Worker | None = None
        self._keys_sent = len(config.keys)
        ours, theirs = socket.socketpair()
        self.conn = Connection(ours.detach())
        self.child: subprocess.Popen[bytes] | None = None
        try:
            self.child = subprocess.Popen(
                [sys.executable, "-m", "inspector.proxy.auditproc", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
            self.conn.send(config)
        except (OSError, ValueError) as exc:
            self._fall_back(f"cannot start the audit process ({exc})")
        finally:
            theirs.close()
        self._receiver = threading.Thread(target=self._receive, name="telemetry-inspector-audit-acks", daemon=True)
        self._receiver.start()

    def is_idle(self) -> bool:
        return self._acked + self._local >= self.submitted

    # ------------------------------------------------------------------ feeding the child
    def _process(self, batch: list[Any]) -> None:
        if self._fallback is None:
            try:
                keys = list(self.addon.keyring)
                if len(keys) > self._keys_sent:  # loaded since (the TUI): the child decrypts with them too
                    self.conn.send_bytes(pickle.dumps(("keys", keys[self._keys_sent:]), protocol=pickle.HIGHEST_PROTOCOL))
                    self._keys_sent = len(keys)
                self.conn.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
                with self._lock:
                    self.sent += len(batch)
                return
            except (OSError, ValueError) as exc:
                self._fall_back(f"cannot reach the audit process ({exc})")
        assert self._fallback is not None
        self._fallback._process(batch)
        self._local += len(batch)

    def _fall_back(self, why: str) -> None:
        with self._lock:  # the feeder and the receiver may both find the child gone
            if self._fallback is not None:
                return
            self._fallback = Worker(self.addon)
        log.error("telemetry-inspector: %s; auditing in the proxy's process from now on", why)

    def _receive(self) -> None:
        while True:
            try:
                processed, stats, docs = self.conn.recv()
            except (EOFError, OSError):
                break
            with self.addon._stats_lock:
                self.addon.stats.update(stats)
            for doc in docs or ():  # before the ack: idle means every callback has run
                self._call_back(_received(doc))
            self._acked = processed
        if not self.stopping.is_set():
            status = self.child.poll() if self.child is not None else None
            self._fall_back(f"the audit process ended (exit status {status})")
            with self._lock:
                self._acked = self.sent  # what it had not acknowledged is lost with it

    def _call_back(self, event: Event | EventSummary) -> None:
        for callback in list(self.addon.callbacks):
            try:
                callback(event)  # type: ignore[arg-type]  # (summaries go only to exec's, which takes both)
            except Exception:
                log.exception("telemetry-inspector: event callback failed")

    def run(self) -> None:
        try:
            super().run()
        finally:
            try:
                self.conn.send_bytes(pickle.dumps(None))  # no more: finish and exit
            except (OSError, ValueError):
                pass

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        if self.child is not None:
            try:
                self.child.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("telemetry-inspector: the audit process did not finish in time; stopping it")
                self.child.kill()
                self.child.wait()
        self._receiver.join(1)
        self.conn.close()


def audit_in_child(addon: TelemetryInspector, config: AuditConfig) -> None:
    """Have `addon` audit in a child process from its start on (its session is sent along)."""
    addon.make_worker = lambda host: AuditProcess(host, replace(config, session=host.session))


# ---------------------------------------------------------------------- the child


def _child(fd: int) -> int:
    from inspector.core.keys import Keyring
    from inspector.core.policy import Catalogue, policy_from_data
    from inspector.store import StoreError, open_recording

    # Ctrl-C (and a TERM sent to the whole group) reach this process too: the proxy says when to
    # stop, after its last batch, or its socket closes (even when it is killed).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    log_to_stderr()
    conn = Connection(fd)
    config: AuditConfig = conn.recv()
    catalogue = Catalogue([policy_from_data(data, origin, builtin) for data, origin, builtin in config.policies])
    keyring = Keyring(list(config.keys))
    store = None
    if config.store_path:
        try:
            store, _warning = open_recording(Path(config.store_path), max_events=config.max_events,
                                             keep_events=False)  # the proxy already said it
        except StoreError as exc:
            log.error("telemetry-inspector: audit process: %s", exc)
    callbacks = [event_printer(config.output == "json")] if config.output else []
    outbox: list[Event] = []
    if config.events:
        callbacks.append(outbox.append)  # (after the store write: each has its store id)
    addon = TelemetryInspector(catalogue, keyring, store=store, callbacks=callbacks)
    addon.redact = config.redact
    addon.session = config.session
    worker = Worker(addon)  # its batch processing, run here on what the proxy sends
    # A batch is ~0.1 ms of work per event. Under the scheduler (EEVDF) a process that wakes
    # waits for the running one's slice, so the proxy and its clients, sharing the cores with
    # this process, waited up to ~5 ms behind a batch (p99 latency 5.5 ms instead of 1.6 ms at
    # concurrency 1, bench/bench_proxy.py). Yielding after each event lets them in at once;
    # unlike SCHED_IDLE (which did as well) this process is never starved on a busy machine.
    worker.yield_cpu = True
    settle_heap()  # (the policies and keys live as long as this process)
    try:
        while True:
            try:
                batch = pickle.loads(conn.recv_bytes())  # noqa: S301 - from our own proxy process, over its pipe
            except (EOFError, OSError):
                break  # the proxy is gone (even kill -9): what it sent has been handled
            if batch is None:
                break
            if isinstance(batch, tuple) and batch[0] == "keys":
                keyring.add(batch[1])
                continue
            worker._process(batch)
            docs = [_sent(e, config.events) for e in outbox] if config.events else None
            outbox.clear()
            try:
                conn.send((worker.processed, dict(addon.stats), docs))
            except (OSError, ValueError):
                pass  # the proxy is gone; keep recording what is still in the socket
    finally:
        if store is not None:
            store.close()
    return 0


if __name__ == "__main__":
    sys.exit(_child(int(sys.argv[1])))
