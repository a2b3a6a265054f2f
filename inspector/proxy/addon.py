"""The mitmproxy addon: decide allow/block/sinkhole at once, audit and store off the event loop.

Used embedded (`telemetry-inspector proxy` / `run`) and by mitmproxy's own tools:
`mitmdump -s addons/telemetry_inspector.py --set ti_store=PATH`.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections import deque
from dataclasses import replace as _replace
import time
from pathlib import Path
from collections.abc import Sequence  # mitmproxy parses --set only for collections.abc.Sequence[str]
from typing import Any, Callable

from mitmproxy import ctx, exceptions, http, tls

from inspector.capture.mitm import header_fields, request_observation, websocket_message_observation
from inspector.core.actions import LocalAnswer, block_answer, sinkhole_answer
from inspector.core.decode import Decoder
from inspector.core.event import Event
from inspector.core.keys import KeyLoadError, Keyring
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, Policy
from inspector.core.redact import redact_event
from inspector.core.rules import ACTIONS, Decision, RuleBook
from inspector.core.discover import looks_like_telemetry

log = logging.getLogger("telemetry_inspector")

EventCallback = Callable[[Event], None]


BATCH_WINDOW = 0.05  # seconds
BATCH_MAX = 500
SWITCH_INTERVAL = 0.0005  # seconds

Item = tuple[Observation, Decision, "str | None"]


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

    def __init__(self, addon: TelemetryInspector) -> None:
        super().__init__(name="telemetry-inspector-worker", daemon=True)
        self.addon = addon
        self.pending: deque[Item] = deque()
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.submitted = 0  # accepted by submit()
        self.dropped = 0    # refused by submit(): the inbox was full
        self.processed = 0  # of those, done (audited, stored or lost with a failed store)
        self.store_error: str | None = None

    def submit(self, obs: Observation, decision: Decision, policy_id: str | None) -> None:
        if len(self.pending) >= self.max_pending:
            self.dropped += 1  # a line per drop would itself load the proxy when it is overloaded
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("telemetry-inspector: audit queue full, %d event(s) dropped so far "
                            "(the action was still applied)", self.dropped)
            return
        self.submitted += 1
        self.pending.append((obs, decision, policy_id))
        if not self.wake.is_set():
            self.wake.set()

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
        for obs, decision, policy_id in batch:
            policy = addon.catalogue.get(policy_id) if policy_id else None
            event = addon.pipeline.process(obs, action=decision.action, policy=policy)
            if self.yield_cpu:
                os.sched_yield()
            if addon.redact:
                event = redact_event(event)
            events.append(event)
        if addon.store is not None and not addon.store.readonly:  # read-only: rules only
            try:
                ids = addon.store.add_events([e.to_dict() for e in events])
                for event, doc_id in zip(events, ids):
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
                except Exception:  # noqa: BLE001
                    log.exception("telemetry-inspector: event callback failed")
        self.processed += len(events)


class TelemetryInspector:
    """One addon for embedded use and for `mitmdump -s`."""

    def __init__(self, catalogue: Catalogue | None = None, keyring: Keyring | None = None,
                 store: Any = None, callbacks: Sequence[EventCallback] = ()) -> None:
        self.catalogue = catalogue or Catalogue.load()
        self.keyring = keyring if keyring is not None else Keyring()
        self.pipeline = Pipeline(self.catalogue, self.keyring)
        self.store = store
        self._own_store = False
        self.callbacks: list[EventCallback] = list(callbacks)
        self.rules = RuleBook()
        self.default_action = "allow"
        self.discover = False
        self.block_mode = "respond"
        self.block_status = 403
        self.redact = False
        self.rules_poll = 0.5
        self.session = "default"
        self.worker: Worker | None = None
        self.audit_config: Any = None  # an AuditConfig: audit in a child process (auditproc)
        self.stats = {"events": 0, "violation": 0, "blocked": 0, "sinkholed": 0, "allowed": 0}
        self._stats_lock = threading.Lock()
        self._configured_from_options = catalogue is None

    # ------------------------------------------------------------------ options
    def load(self, loader: Any) -> None:
        loader.add_option("ti_store", str, "", "telemetry-inspector: store file (empty: no store).")
        loader.add_option("ti_policies", Sequence[str], [], "telemetry-inspector: extra policy files or directories.")
        loader.add_option("ti_keys", Sequence[str], [], "telemetry-inspector: private key files or directories for JWE.")
        loader.add_option("ti_default_action", str, "allow", "telemetry-inspector: action without a rule: allow, block or sinkhole.")
        loader.add_option("ti_block_all", bool, False, "telemetry-inspector: start blocking every matched telemetry channel.")
        loader.add_option("ti_discover", bool, False, "telemetry-inspector: also inspect unknown hosts and flag likely telemetry.")
        loader.add_option("ti_block_mode", str, "respond", "telemetry-inspector: answer blocked requests locally (respond) or kill the connection (kill).")
        loader.add_option("ti_block_status", int, 403, "telemetry-inspector: status code of the local answer to a blocked request.")
        loader.add_option("ti_redact", bool, False, "telemetry-inspector: store events with personal data masked.")
        loader.add_option("ti_max_events", int, 0, "telemetry-inspector: keep at most this many events in the store (0: no limit).")

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        if "ti_default_action" in updated or "ti_block_all" in updated:
            action = "block" if opts.ti_block_all else opts.ti_default_action
            if action not in ACTIONS:
                raise exceptions.OptionsError(f"ti_default_action must be one of {', '.join(ACTIONS)}")
            self.default_action = action
        if "ti_block_mode" in updated:
            if opts.ti_block_mode not in ("respond", "kill"):
                raise exceptions.OptionsError("ti_block_mode must be respond or kill")
            self.block_mode = opts.ti_block_mode
        if "ti_block_status" in updated:
            if not 100 <= opts.ti_block_status <= 599:
                raise exceptions.OptionsError("ti_block_status must be an HTTP status code")
            self.block_status = opts.ti_block_status
        if "ti_discover" in updated:
            self.discover = opts.ti_discover
        if "ti_redact" in updated:
            self.redact = opts.ti_redact
        if self._configured_from_options and ("ti_policies" in updated or "ti_keys" in updated):
            catalogue = Catalogue.load(paths=[Path(p) for p in opts.ti_policies])
            for problem in catalogue.problems:
                for line in problem.lines():
                    log.warning("telemetry-inspector: policy not loaded: %s", line)
            try:
                keyring = Keyring.from_paths([Path(p) for p in opts.ti_keys])
            except KeyLoadError as exc:
                raise exceptions.OptionsError(str(exc)) from None
            self.catalogue, self.keyring = catalogue, keyring
            self.pipeline = Pipeline(catalogue, keyring)
        if "ti_store" in updated and opts.ti_store and self.store is None:
            from inspector.store import StoreError, open_recording
            try:  # write-only: memory stays flat
                self.store, warning = open_recording(Path(opts.ti_store).expanduser(),
                                                     max_events=opts.ti_max_events or None, keep_events=False)
            except StoreError as exc:
                raise exceptions.OptionsError(str(exc)) from None
            if warning:
                log.warning("telemetry-inspector: %s", warning)
            self._own_store = True
        self.reload_rules()

    def running(self) -> None:
        # Eager upstream connections would contact the vendor before a block can apply.
        if ctx.options.connection_strategy != "lazy":
            ctx.options.update(connection_strategy="lazy")
            log.info("telemetry-inspector: set connection_strategy=lazy so blocked requests never connect upstream")
        self.start()

    def start(self) -> None:
        if self.worker is None or not self.worker.is_alive():
            if self.store is not None and self.session == "default":
                try:
                    self.session = f"s{self.store.start_session({'started': time.time()})}"
                except Exception:  # noqa: BLE001
                    self.session = f"s{int(time.time())}"
            if self.audit_config is not None:
                from inspector.proxy.auditproc import AuditProcess
                self.worker = AuditProcess(self, _replace(self.audit_config, session=self.session))
            else:
                self.worker = Worker(self)
            self.worker.start()

    def done(self) -> None:
        self.stop()

    def stop(self, timeout: float = 10.0) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker.join(timeout)
            self.worker = None
        if self.store is not None:
            try:
                if self.session.startswith("s") and self.session[1:].isdigit():
                    self.store.end_session(int(self.session[1:]), dict(self.stats))
            except Exception:  # noqa: BLE001
                pass
            if self._own_store:
                self.store.close()
                self.store = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """For tests and `exec`: wait until every submitted observation is stored."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.worker is None or self.worker.is_idle():
                return True
            time.sleep(0.02)
        return False

    # ------------------------------------------------------------------ rules
    def reload_rules(self) -> None:
        rows: list[dict[str, Any]] = []
        if self.store is not None:
            try:
                self.store.refresh()
                rows = self.store.rules()
            except Exception as exc:  # noqa: BLE001 - keep the last good rules
                log.warning("telemetry-inspector: cannot read rules: %s", exc)
                return
        self.rules = RuleBook.from_dicts(rows, default=self.default_action)

    def count(self, event: Event) -> None:
        with self._stats_lock:
            self.stats["events"] += 1
            if event.verdict == "violation":
                self.stats["violation"] += 1
            key = {"block": "blocked", "sinkhole": "sinkholed"}.get(event.action or "allow", "allowed")
            self.stats[key] += 1

    # ------------------------------------------------------------------ hooks
    def intercepts(self, host: str) -> bool:
        return self.discover or self.catalogue.is_telemetry_host(host)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Hosts no policy matches pass through without TLS interception."""
        host = data.client_hello.sni or (data.context.server.address[0] if data.context.server.address else "")
        if not host or not self.intercepts(host.lower()):
            data.ignore_connection = True

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        try:
            self._request(flow)
        except Exception:  # noqa: BLE001 - fail closed for telemetry hosts
            log.exception("telemetry-inspector: request hook failed")
            host = flow.request.pretty_host.lower()
            if self.catalogue.is_telemetry_host(host):
                decision = self.rules.decide(None, None, host)
                strict = [d for d in (self.rules.decide(p.id, p.vendor, host) for p in self.catalogue.policies
                                      if any(_host_ok(h, host) for h in p.hosts))]
                if decision.action != "allow" or any(d.action != "allow" for d in strict):
                    self._answer(flow, "block")

    def _request(self, flow: http.HTTPFlow) -> None:
        is_upgrade = flow.request.headers.get("upgrade", "").lower() == "websocket"
        obs = request_observation(flow, session=self.session)
        if is_upgrade:
            obs = _with_transport(obs, "websocket")
        candidates = self.catalogue.candidates(obs)
        if not candidates:
            if self.catalogue.is_telemetry_host(obs.host) or (self.discover and looks_like_telemetry(obs)):
                decision = self.rules.decide(None, None, obs.host)
                flow.metadata["ti"] = (decision, None)
                if decision.action != "allow":
                    self._answer(flow, decision.action, obs, None)
                    if not is_upgrade:
                        self.worker_submit(obs, decision, None)
                elif not is_upgrade:
                    flow.metadata["ti_obs"] = obs
            return
        decisions = [self.rules.decide(p.id, p.vendor, obs.host) for p in candidates]
        if len({d.action for d in decisions}) == 1 and len({repr(p.sinkhole) for p in candidates}) == 1:
            # Every candidate gets the same answer: no need to decode on the event loop to tell
            # them apart; the worker matches and decodes once.
            policy = candidates[0] if len(candidates) == 1 else None
            decision, answer_as = decisions[0], candidates[0]
        else:
            policy = answer_as = self._select(obs, candidates)
            if policy is not None:
                decision = self.rules.decide(policy.id, policy.vendor, obs.host)
            else:  # shape undecidable: the strictest action of the candidates (fail closed)
                decision = self.rules.decide_any([(p.id, p.vendor) for p in candidates], obs.host)
        flow.metadata["ti"] = (decision, policy.id if policy else None)
        if decision.action != "allow":
            self._answer(flow, decision.action, obs, answer_as)
            if not is_upgrade:
                self.worker_submit(obs, decision, policy.id if policy else None)
        elif not is_upgrade:
            flow.metadata["ti_obs"] = obs

    def _select(self, obs: Observation, candidates: list[Policy]) -> Policy | None:
        """Choose among candidates; shape conditions need the decoded body (bounded)."""
        if not any(p.shape for p in candidates):
            return candidates[0]
        try:
            policy, decoded = self.pipeline.match_and_decode(obs)
        except Exception:  # noqa: BLE001 - undecidable: the caller fails closed
            return None
        if not decoded.structured and any(issue.code == "decode-error" for issue in decoded.issues):
            return None  # the shape could not be read (too large, corrupt): the caller fails closed
        return policy

    def response(self, flow: http.HTTPFlow) -> None:
        obs = flow.metadata.pop("ti_obs", None)
        if obs is not None:
            decision, policy_id = flow.metadata.get("ti", (Decision("allow", None), None))
            if flow.response is not None:  # the request as seen in the request hook, plus the answer
                obs = _replace(obs, response_status=flow.response.status_code,
                               response_headers=header_fields(flow.response.headers))
            self.worker_submit(obs, decision, policy_id)

    def error(self, flow: http.HTTPFlow) -> None:
        self.response(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        if not message.from_client:
            return
        meta = flow.metadata.get("ti")
        if meta is None:
            return
        decision, policy_id = meta
        url = flow.request.pretty_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        headers = header_fields(flow.request.headers)
        obs = websocket_message_observation(url, headers, message, len(flow.websocket.messages) - 1,
                                            self.session, "")
        if decision.action != "allow":
            message.drop()  # belt and braces: the upgrade was already answered locally
        self.worker_submit(obs, decision, None)

    def worker_submit(self, obs: Observation, decision: Decision, policy_id: str | None) -> None:
        if self.worker is None:
            self.start()
        assert self.worker is not None
        self.worker.submit(obs, decision, policy_id)

    # ------------------------------------------------------------------ answers
    def _answer(self, flow: http.HTTPFlow, action: str, obs: Observation | None = None,
                policy: Policy | None = None) -> None:
        if action == "block" and self.block_mode == "kill":
            flow.kill()
            return
        answer: LocalAnswer
        if action == "sinkhole" and obs is not None:
            answer = sinkhole_answer(obs, policy.sinkhole if policy else None)
        else:
            answer = block_answer(self.block_status)
        flow.response = http.Response.make(answer.status, answer.body, dict(answer.headers))


def _host_ok(pattern: str, host: str) -> bool:
    from inspector.core.policy import host_matches
    return host_matches(pattern, host)


def _with_transport(obs: Observation, transport: str) -> Observation:
    return _replace(obs, transport=transport)


__all__ = ["TelemetryInspector", "Decoder"]
