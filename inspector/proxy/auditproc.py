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

import asyncio
import logging
import os
import pickle
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from inspector.core.event import Event, EventSummary, event_from_dict
from inspector.core.keys import LoadedKey
from inspector.proxy.addon import TelemetryInspector, settle_heap
from inspector.proxy.output import event_printer, log_to_stderr
from inspector.proxy.worker import BATCH_MAX, BATCH_WINDOW, Item, Worker

log = logging.getLogger("telemetry_inspector")

STOP_TIMEOUT = 30.0  # seconds: the last events handed to the child when the proxy stops


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
    """The addon's worker, with the audit done by a child process.

    On mitmproxy's event loop (the proxy started it: `start()` finds the running loop) it has
    no thread: the hooks queue observations, a timer callback pickles each batch and writes
    it without blocking (the rest when the socket takes more), the child's acknowledgements
    are read by a reader callback and the rules are polled by a timer. A feeder thread and an
    acknowledgement thread took the interpreter lock from the event loop at every wake-up
    (a forced switch makes the loop wait until the other thread runs): in the proxy's process,
    ~100 µs of CPU a request. Started without a running loop (an addon driven by hand), the
    feeder is the worker's thread, as for the audit in the proxy's process.
    """

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
        self._receiver: threading.Thread | None = None
        # on the event loop (see the class doc)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0
        self._sock: socket.socket | None = None
        self._queue: deque[Item] = deque()
        self._out = bytearray()   # pickled and framed, not yet taken by the socket
        self._in = bytearray()    # read from the child, not yet a whole message
        self._flush_at: asyncio.Handle | None = None
        self._rules_at: asyncio.Handle | None = None
        self._running = False     # started on the loop, not stopped
        self._finished = False    # stop() has sent everything and the end

    # ------------------------------------------------------------------ start, state
    def start(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self._fallback is not None:
            self._start_threads()
            return
        self._loop, self._loop_thread = loop, threading.get_ident()
        self._sock = socket.socket(fileno=os.dup(self.conn.fileno()))  # (blocking; each call says MSG_DONTWAIT)
        self._running = True
        loop.add_reader(self._sock.fileno(), self._on_readable)
        self._rules_at = loop.call_later(self.addon.rules_poll, self._poll_rules)

    def _start_threads(self) -> None:
        self._receiver = threading.Thread(target=self._receive, name="telemetry-inspector-audit-acks", daemon=True)
        self._receiver.start()
        super().start()

    def is_alive(self) -> bool:
        return self._running or (self._fallback is not None and self._fallback.is_alive()) or super().is_alive()

    def is_idle(self) -> bool:
        local = self._fallback.processed if self._fallback is not None and self._loop is not None else self._local
        return self._acked + local >= self.submitted

    # ------------------------------------------------------------------ feeding on the loop
    def submit(self, obs: Any, decision: Any, policy_id: str | None, extras: dict[str, Any] | None = None) -> None:
        if not self._running:
            if self._loop is None:  # (the feeder thread's, as the worker's)
                super().submit(obs, decision, policy_id, extras)
            elif self._fallback is not None:
                self._fallback.submit(obs, decision, policy_id, extras)
                self.submitted += 1
            else:  # after stop(): nothing goes to the child any more
                self.dropped += 1
            return
        if not self._admit(len(self._queue)):
            return
        self._queue.append((obs, decision, policy_id, extras))
        if self._flush_at is None and not self._out:
            loop = self._loop
            assert loop is not None
            if threading.get_ident() == self._loop_thread:
                self._flush_at = loop.call_later(BATCH_WINDOW, self._flush)
            else:  # (a hook called from elsewhere: the loop's own methods are not thread-safe)
                loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self._running and self._flush_at is None and not self._out and self._queue:
            assert self._loop is not None
            self._flush_at = self._loop.call_later(BATCH_WINDOW, self._flush)

    def _flush(self) -> None:
        """A batch down the socket, as much of it as the socket takes now."""
        self._flush_at = None
        if not self._running or self._out or not self._queue:
            return  # (with bytes waiting, the writer callback goes on once the socket drains)
        queue = self._queue
        batch = [queue.popleft() for _ in range(min(len(queue), BATCH_MAX))]
        self._out += self._frames(batch)
        self.sent += len(batch)
        self._send_some()
        if queue and not self._out:  # more than a batch came: the next one at once
            assert self._loop is not None
            self._flush_at = self._loop.call_soon(self._flush)

    def _frames(self, batch: list[Item]) -> bytes:
        """The batch's messages framed as the child reads them (Connection.recv_bytes)."""
        return b"".join(_frame(m) for m in self._messages(batch))

    def _messages(self, batch: list[Item]) -> list[bytes]:
        """The batch pickled, after the keys loaded since the last one (the TUI's "load key"):
        the child decrypts with them too."""
        messages = []
        keys = list(self.addon.keyring)
        if len(keys) > self._keys_sent:
            messages.append(pickle.dumps(("keys", keys[self._keys_sent:]), protocol=pickle.HIGHEST_PROTOCOL))
            self._keys_sent = len(keys)
        messages.append(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
        return messages

    def _send_some(self) -> None:
        assert self._sock is not None and self._loop is not None
        try:
            while self._out:
                del self._out[:self._sock.send(self._out, socket.MSG_DONTWAIT)]
        except BlockingIOError:
            pass
        except OSError as exc:
            self._child_gone(f"cannot reach the audit process ({exc})")
            return
        if self._out:
            self._loop.add_writer(self._sock.fileno(), self._on_writable)

    def _on_writable(self) -> None:
        assert self._sock is not None and self._loop is not None
        self._loop.remove_writer(self._sock.fileno())
        if not self._running:
            return
        self._send_some()
        if not self._out and self._queue and self._flush_at is None:
            self._flush_at = self._loop.call_soon(self._flush)

    def _on_readable(self) -> None:
        assert self._sock is not None
        try:
            data = self._sock.recv(1 << 16, socket.MSG_DONTWAIT)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._child_gone(f"the audit process ended (exit status {self.child.poll() if self.child else None})")
            return
        self._in += data
        for message in _messages(self._in):
            self._acknowledged(message)

    def _poll_rules(self) -> None:
        if not self._running:
            return
        self.addon.reload_rules()  # (the store's new lines only; the rules table decides)
        assert self._loop is not None
        self._rules_at = self._loop.call_later(self.addon.rules_poll, self._poll_rules)

    def _child_gone(self, why: str) -> None:
        """The child cannot be reached: what is queued and what comes next is audited by a
        worker thread here; what it had not acknowledged is lost with it."""
        if not self._running:
            return
        self._leave_loop()
        self._fall_back(why)
        assert self._fallback is not None
        self._acked = self.sent
        self._out.clear()
        pending, self._queue = self._queue, deque()
        fallback = self._fallback
        for item in pending:
            fallback.submit(*item)  # (counted once here already: is_idle counts the fallback's processed)
        if not fallback.is_alive():
            fallback.start()

    def _leave_loop(self) -> None:
        """No more callbacks on the loop (on its thread, or once it has stopped)."""
        self._running = False
        for handle in (self._flush_at, self._rules_at):
            if handle is not None:
                handle.cancel()
        self._flush_at = self._rules_at = None
        if self._loop is not None and self._sock is not None and not self._loop.is_closed():
            self._loop.remove_reader(self._sock.fileno())
            self._loop.remove_writer(self._sock.fileno())

    # ------------------------------------------------------------------ feeding from the thread
    def _process(self, batch: list[Any]) -> None:
        if self._fallback is None:
            try:
                for message in self._messages(batch):
                    self.conn.send_bytes(message)
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
                message = self.conn.recv()
            except (EOFError, OSError):
                break
            self._acknowledged(message)
        if not self.stopping.is_set():
            status = self.child.poll() if self.child is not None else None
            self._fall_back(f"the audit process ended (exit status {status})")
            with self._lock:
                self._acked = self.sent  # what it had not acknowledged is lost with it

    def _acknowledged(self, message: tuple[int, dict[str, int], list[Any] | None]) -> None:
        processed, stats, docs = message
        with self.addon._stats_lock:
            self.addon.stats.update(stats)
        for doc in docs or ():  # before the ack: idle means every callback has run
            self._call_back(_received(doc))
        self._acked = processed

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

    # ------------------------------------------------------------------ stopping
    def stop(self) -> None:
        if self._loop is None:
            super().stop()
            return
        if self._fallback is not None and not self._running:
            self.stopping.set()
            self._fallback.stop()
            self._send_end()
            return
        if threading.get_ident() == self._loop_thread or not self._loop.is_running():
            self._finish()
            return
        done = threading.Event()

        def finish() -> None:
            try:
                self._finish()
            finally:
                done.set()
        try:
            self._loop.call_soon_threadsafe(finish)
        except RuntimeError:  # the loop closed meanwhile
            self._finish()
            return
        if not done.wait(STOP_TIMEOUT):
            log.warning("telemetry-inspector: the proxy's event loop did not hand over the audit queue")

    def _finish(self) -> None:
        """Everything queued, then the end, down the socket (blocking: the proxy is stopping)."""
        if self._finished:
            return
        self._finished = True
        self.stopping.set()
        was_running = self._running
        self._leave_loop()
        if not was_running:
            self._send_end()
            return
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(len(self._queue), BATCH_MAX))]
            self._out += self._frames(batch)
            self.sent += len(batch)
        self._out += _frame(pickle.dumps(None))
        try:
            assert self._sock is not None
            self._sock.settimeout(STOP_TIMEOUT)  # (a child that no longer reads must not hold the proxy)
            self._sock.sendall(self._out)
        except OSError as exc:
            log.warning("telemetry-inspector: cannot hand the last events to the audit process (%s)", exc)
            self._acked = self.sent
        self._out.clear()

    def _send_end(self) -> None:
        try:
            self.conn.send_bytes(pickle.dumps(None))
        except (OSError, ValueError):
            pass

    def join(self, timeout: float | None = None) -> None:
        if self._loop is None:
            super().join(timeout)
        else:
            if self._fallback is not None and self._fallback.is_alive():
                self._fallback.join(timeout)
            self._drain(timeout)
        if self.child is not None:
            try:
                self.child.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("telemetry-inspector: the audit process did not finish in time; stopping it")
                self.child.kill()
                self.child.wait()
        if self._receiver is not None:
            self._receiver.join(1)
        if self._sock is not None:
            self._sock.close()
        self.conn.close()

    def _drain(self, timeout: float | None) -> None:
        """The acknowledgements (and events) of what the child still had, until it ends."""
        if self._sock is None or self._acked >= self.sent:
            return
        deadline = time.monotonic() + (timeout if timeout is not None else 60.0)
        while self._acked < self.sent:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._sock.settimeout(left)
            try:
                data = self._sock.recv(1 << 16)
            except (TimeoutError, OSError):
                return
            if not data:  # the child has ended: nothing more will be acknowledged
                self._acked = self.sent
                return
            self._in += data
            for message in _messages(self._in):
                self._acknowledged(message)


def _frame(data: bytes) -> bytes:
    """`data` framed as multiprocessing's Connection frames a message (recv_bytes reads it)."""
    if len(data) > 0x7FFFFFFF:
        return struct.pack("!i", -1) + struct.pack("!Q", len(data)) + data
    return struct.pack("!i", len(data)) + data


def _messages(buffer: bytearray) -> list[Any]:
    """The whole messages at the start of `buffer` (Connection's framing), taken out of it."""
    found = []
    while len(buffer) >= 4:
        (size,) = struct.unpack_from("!i", buffer)
        start = 4
        if size == -1:
            if len(buffer) < 12:
                break
            (size,) = struct.unpack_from("!Q", buffer, 4)
            start = 12
        if len(buffer) < start + size:
            break
        found.append(pickle.loads(bytes(buffer[start:start + size])))  # noqa: S301 - our own child, over its socket
        del buffer[:start + size]
    return found


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
