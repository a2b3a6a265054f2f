"""The addon's worker: decodes, audits and records observations off mitmproxy's event loop."""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from inspector.core.event import Event
from inspector.core.keys import Keyring
from inspector.core.observation import Observation, response_fields
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue
from inspector.core.redact import redact_event
from inspector.core.rules import Decision

log = logging.getLogger("telemetry_inspector")

BATCH_WINDOW = 0.05  # seconds
BATCH_MAX = 500
SWITCH_INTERVAL = 0.0005  # seconds

# (observation, decision, policy id, extras): the extras (the body, the raw answer) as the hooks
# took them, merged into the observation here, off the proxy's event loop (`complete`)
Item = tuple[Observation, Decision, "str | None", "dict[str, Any] | None"]


def complete(obs: Observation, extras: dict[str, Any] | None) -> Observation:
    """The observation with what the hooks handed over beside it: the request's body, and the
    response as it is (`RawResponse`)."""
    if not extras:
        return obs
    fields = response_fields(extras.get("response"))
    if "body" in extras:
        fields["body"] = extras["body"]
    return replace(obs, **fields) if fields else obs


class WorkerHost(Protocol):
    """What the worker uses of its addon (TelemetryInspector)."""

    catalogue: Catalogue
    keyring: Keyring
    pipeline: Pipeline
    store: Any
    redact: bool
    rules_poll: float
    callbacks: list[Callable[[Event], None]]
    stats: dict[str, int]
    _stats_lock: threading.Lock

    def reload_rules(self) -> None: ...

    def count(self, event: Event) -> None: ...


class Worker(threading.Thread):
    """Decodes, audits and stores observations off mitmproxy's event loop, in batches.

    The hooks append to a deque and wake the worker only when it sleeps with nothing to do; the
    worker then lets BATCH_WINDOW pass and takes what has come (at most BATCH_MAX): one store
    write per batch costs the same as one per event, every event is handled within BATCH_WINDOW
    of its request, and the event loop does not hand the GIL to this thread once per request
    (a `queue.Queue` woke it on every put: bench/bench_proxy.py's CPU per request).
    """

    switch_interval: float | None = SWITCH_INTERVAL
    max_pending = 100_000
    yield_cpu = False  # give the CPU up after each event (the audit process: see auditproc)

    def __init__(self, addon: WorkerHost) -> None:
        super().__init__(name="telemetry-inspector-worker", daemon=True)
        self.addon = addon
        self.pending: deque[Item] = deque()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.submitted = 0  # accepted by submit()
        self.dropped = 0    # refused by submit(): the inbox was full
        self.processed = 0  # of those, done (audited, stored or lost with a failed store)
        self.store_error: str | None = None

    def submit(self, obs: Observation, decision: Decision, policy_id: str | None,
               extras: dict[str, Any] | None = None) -> None:
        if not self._admit(len(self.pending)):
            return
        self.pending.append((obs, decision, policy_id, extras))
        if not self.wake.is_set():
            self.wake.set()

    def _admit(self, queued: int) -> bool:
        """Whether one more observation fits beside the `queued` ones (counted), else a drop."""
        if queued >= self.max_pending:
            self.dropped += 1  # a line per drop would itself load the proxy when it is overloaded
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("telemetry-inspector: audit queue full, %d event(s) dropped so far "
                            "(the action was still applied)", self.dropped)
            return False
        self.submitted += 1
        return True

    def is_idle(self) -> bool:
        """Every submitted observation is done."""
        return self.processed >= self.submitted

    def stop(self) -> None:
        """Finish what is pending, then end (join() to wait)."""
        self.stopping.set()
        self.wake.set()

    def run(self) -> None:
        # The audit shares the GIL with mitmproxy's event loop: hand it back sooner than the
        # default 5 ms so the proxy's latency does not wait on a long audit (bench/bench_proxy.py).
        if self.switch_interval and sys.getswitchinterval() > self.switch_interval:
            sys.setswitchinterval(self.switch_interval)
        last_rules = 0.0
        pending = self.pending
        while pending or not self.stopping.is_set():
            if not pending:
                self.wake.clear()
                if not pending:  # (checked again: submit() may have come in between)
                    self.wake.wait(self.addon.rules_poll)
            if pending:
                if len(pending) < BATCH_MAX and not self.stopping.is_set():
                    self.stopping.wait(BATCH_WINDOW)  # let the batch fill
                batch = [pending.popleft() for _ in range(min(len(pending), BATCH_MAX))]
                self._process(batch)
            now = time.monotonic()
            if now - last_rules >= self.addon.rules_poll:
                last_rules = now
                self.addon.reload_rules()

    def _process(self, batch: list[Item]) -> None:
        addon = self.addon
        events = []
        for head, decision, policy_id, extras in batch:
            obs = complete(head, extras)
            policy = addon.catalogue.get(policy_id) if policy_id else None
            event = addon.pipeline.process(obs, action=decision.action, policy=policy)
            if decision.rule is not None or decision.why:
                event.action_reason = decision.reason
            if self.yield_cpu:
                os.sched_yield()
            if addon.redact:
                event = redact_event(event)
            events.append(event)
        if addon.store is not None and not addon.store.readonly:  # read-only: rules only
            try:
                ids = addon.store.add_events([e.to_dict() for e in events])
                for event, doc_id in zip(events, ids, strict=False):
                    event.store_id = doc_id  # lets the TUI update it later
                self.store_error = None
            except Exception as exc:  # noqa: BLE001 - the proxy must keep running (and blocking)
                message = f"telemetry-inspector: cannot write the store ({len(events)} event(s) not stored): {exc}"
                if str(exc) != self.store_error:  # once per distinct problem, not once per batch
                    log.error("%s", message)
                self.store_error = str(exc)
        for event in events:
            addon.count(event)
            for callback in list(addon.callbacks):
                try:
                    callback(event)
                except Exception:
                    log.exception("telemetry-inspector: event callback failed")
        self.processed += len(events)
