"""The mitmproxy addon: decide allow/block/sinkhole at once, audit and store off the event loop.

Used embedded (`telemetry-inspector proxy` / `run`) and by mitmproxy's own tools:
`mitmdump -s addons/telemetry_inspector.py --set ti_store=PATH`.
"""

from __future__ import annotations

import copy
import gc
import logging
import threading
import time
from collections.abc import (  # mitmproxy parses --set only for collections.abc.Sequence[str]
    Callable,
    Iterable,
    Sequence,
)
from dataclasses import replace as _replace
from typing import Any

from mitmproxy import ctx, exceptions, http, tls
from mitmproxy.proxy import commands, events, layer, layers, server_hooks

from inspector.capture.mitm import (
    flow_names,
    header_fields,
    raw_response,
    request_observation,
    websocket_message_observation,
)
from inspector.core.actions import LocalAnswer, block_answer, sinkhole_answer
from inspector.core.collectors import Collector
from inspector.core.decode import Decoder, Limits
from inspector.core.enforce import Enforcer, Outcome
from inspector.core.event import Event
from inspector.core.keys import KeyLoadError, Keyring
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, Policy
from inspector.core.rules import STRICTNESS, Decision, RuleBook
from inspector.proxy.config import OPTION_SETTINGS, AddonSettings, ConfigError, ProxyConfig, addon_settings
from inspector.proxy.worker import BATCH_MAX, BATCH_WINDOW, SWITCH_INTERVAL, Worker  # (importable from here too)

log = logging.getLogger("telemetry_inspector")

EventCallback = Callable[[Event], None]


# Telling policies of a shared endpoint apart by the payload's shape happens on mitmproxy's event
# loop: bounded tightly, and without keys (no decryption there). Past these, the strictest applies.
SHAPE_MAX_BODY = 64 * 1024
SHAPE_LIMITS = Limits(max_body=SHAPE_MAX_BODY, max_decompressed=1024 * 1024, max_depth=32, max_layers=4,
                      max_nested_json=8)

# Options that would let a blocked request out: streamed bodies are forwarded before the request
# hook, eager connections reach the vendor before a request is seen, and ignored or
# allow-listed hosts bypass the addon's hooks altogether.
DEFEATING_OPTIONS: dict[str, tuple[Any, str]] = {
    "stream_large_bodies": (None, "a streamed body is forwarded before the block decision"),
    "connection_strategy": ("lazy", "eager connections reach the vendor before a request is seen"),
    "ignore_hosts": ([], "ignored hosts pass through without the rules"),
    "allow_hosts": ([], "hosts outside allow_hosts pass through without the rules"),
    "tcp_hosts": ([], "tcp_hosts pass through as raw TCP, without the rules"),
}


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
        self._rules_read: tuple[list[dict[str, Any]], str] | None = None  # what reload_rules last read
        self.default_action = "allow"
        self.discover = False
        self.block_mode = "respond"
        self.block_status = 403
        self.redact = False
        self.rules_poll = 0.5
        self.session = "default"
        self.worker: Worker | None = None
        # Builds the worker when the proxy starts: a thread here, or auditproc's child process.
        self.make_worker: Callable[[TelemetryInspector], Worker] = Worker
        self.stats = {"events": 0, "violation": 0, "blocked": 0, "sinkholed": 0, "allowed": 0}
        self._stats_lock = threading.Lock()
        self._configured_from_options = catalogue is None
        self.decision_errors: dict[str, int] = {}
        # (client connection, host, port) an allowed request may open a connection to
        self._approved: set[tuple[str, str, int]] = set()
        self._enforcer: Enforcer | None = None
        self._enforcer_key: tuple[int, int, bool] | None = None
        self._shape: Pipeline | None = None
        self._shape_key: int | None = None
        # The process is the proxy's (the CLI, mitmdump -s): freeze start-up's objects once it runs
        # (settle_heap()). Off for an addon embedded in a longer-lived program, such as a test run.
        self.freeze_at_start = False

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
        # mitmproxy's own UIs (mitmweb, the console) show a telemetry request decoded and audited
        from mitmproxy import contentviews

        from inspector.proxy.contentview import TelemetryContentview
        contentviews.add(TelemetryContentview(lambda: self.pipeline, self._is_telemetry_flow))

    def _is_telemetry_flow(self, flow: http.HTTPFlow) -> bool:
        """A flow this addon decided on, or (read from a file) one to a host it would intercept."""
        state = flow.metadata.get("ti")
        if state is not None:
            return state.outcome.decision is not None
        names = flow_names(flow)
        return any(self.enforcer.intercepts(name) for _, name in names if name) and \
            self.enforcer.decide(request_observation(flow, names=names), names).decision is not None

    def configure(self, updated: set[str]) -> None:
        opts = ctx.options
        self._override_defeating_options(updated)
        config = ProxyConfig.from_options(opts)
        # Only what changed: embedded, the CLI configured the addon and the ti_ options keep
        # their defaults, unless someone sets one (`--set ti_discover=true`).
        changed = {OPTION_SETTINGS[name] for name in updated if name in OPTION_SETTINGS}
        if changed:
            try:
                settings = addon_settings(config)
            except ConfigError as exc:
                raise exceptions.OptionsError(exc.option_message()) from None
            self.apply_settings(settings, changed)
        if self._configured_from_options and ("ti_policies" in updated or "ti_keys" in updated):
            catalogue = Catalogue.load(paths=list(config.policy_paths))
            for problem in catalogue.problems:
                for line in problem.lines():
                    log.warning("telemetry-inspector: policy not loaded: %s", line)
            try:
                keyring = Keyring.from_paths(list(config.key_paths))
            except KeyLoadError as exc:
                raise exceptions.OptionsError(str(exc)) from None
            self.catalogue, self.keyring = catalogue, keyring
            self.pipeline = Pipeline(catalogue, keyring)
        if "ti_store" in updated and config.store_path is not None and self.store is None:
            from inspector.store import StoreError, open_recording
            try:  # write-only: memory stays flat
                self.store, warning = open_recording(config.store_path, max_events=config.max_events or None,
                                                     keep_events=False)
            except StoreError as exc:
                raise exceptions.OptionsError(str(exc)) from None
            if warning:
                log.warning("telemetry-inspector: %s", warning)
            self._own_store = True
        self.reload_rules()

    def apply_settings(self, settings: AddonSettings, fields: Iterable[str] | None = None) -> None:
        """Take `settings` (from `addon_settings`), or only its `fields`."""
        for name in fields if fields is not None else AddonSettings.__dataclass_fields__:
            setattr(self, name, getattr(settings, name))

    def _override_defeating_options(self, updated: set[str]) -> None:
        """Options that would defeat a block are set back, with one warning line each."""
        opts = ctx.options
        for name, (safe, why) in DEFEATING_OPTIONS.items():
            if (name in updated or not updated) and hasattr(opts, name):
                value = getattr(opts, name)
                if value != safe and not (safe == [] and not value):
                    # eager is mitmproxy's default: replaced quietly unless someone asked for it
                    explicit = bool(updated) and len(updated) < len(list(opts.keys()))
                    level = logging.WARNING if explicit or name != "connection_strategy" else logging.INFO
                    log.log(level, "telemetry-inspector: %s=%s is ignored: %s", name,
                            ",".join(value) if isinstance(value, (list, tuple)) else value, why)
                    opts.update(**{name: safe})

    def running(self) -> None:
        self._override_defeating_options(set())
        self.start()
        if self.freeze_at_start:
            settle_heap()

    def start(self) -> None:
        if self.worker is None or not self.worker.is_alive():
            if self.store is not None and self.session == "default":
                try:
                    self.session = f"s{self.store.start_session({'started': time.time()})}"
                except Exception:  # noqa: BLE001
                    self.session = f"s{int(time.time())}"
            self.worker = self.make_worker(self)
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
            except Exception:  # noqa: BLE001, S110 - shutting down: the session's summary is best effort
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
        """The store's rules, when they (or the default action) changed since they were last
        read: an unchanged poll keeps the book, so the decisions memoised with it stand (and
        rules given in memory, `use_rules`, stand until the store's change)."""
        rows: list[dict[str, Any]] = []
        if self.store is not None:
            try:
                self.store.refresh()
                rows = self.store.rules()
            except Exception as exc:  # noqa: BLE001 - keep the last good rules
                log.warning("telemetry-inspector: cannot read rules: %s", exc)
                return
        read = (rows, self.default_action)
        if read == self._rules_read:
            return
        self._rules_read = read
        self.rules = RuleBook.from_dicts(rows, default=self.default_action)

    def count(self, event: Event) -> None:
        with self._stats_lock:
            self.stats["events"] += 1
            if event.verdict == "violation":
                self.stats["violation"] += 1
            key = {"block": "blocked", "sinkhole": "sinkholed"}.get(event.action or "allow", "allowed")
            self.stats[key] += 1

    # ------------------------------------------------------------------ hooks
    @property
    def enforcer(self) -> Enforcer:
        key = (id(self.catalogue), id(self.rules), self.discover)
        if self._enforcer_key != key:  # the catalogue or the rules were swapped whole
            self._enforcer, self._enforcer_key = Enforcer(self.catalogue, self.rules, self.discover), key
        assert self._enforcer is not None
        return self._enforcer

    def intercepts(self, host: str) -> bool:
        return self.enforcer.intercepts(host)

    def tls_clienthello(self, data: tls.ClientHelloData) -> None:
        """Hosts no policy or rule names pass through without TLS interception. Both the SNI and
        the address the proxy connects to are asked: either may name a telemetry host."""
        names = [data.client_hello.sni or ""]
        if data.context.server.address:
            names.append(str(data.context.server.address[0]))
        try:
            intercept = any(self.intercepts(name) for name in names if name)
        except Exception as exc:  # noqa: BLE001 - fail closed: intercept, so each request is decided
            self._decision_error(exc)
            intercept = True
        if not intercept:
            data.ignore_connection = True

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        """The last gate: every connection mitmproxy is about to open. One an HTTP request of
        ours was allowed on goes ahead; any other to a telemetry host (raw TCP or UDP inside
        or instead of its TLS, anything a later addon started) only when every rule for the
        host allows it: it was not read, so nothing of it may leave."""
        server = data.server
        if server.address is None:
            return
        host, port = str(server.address[0]), server.address[1]
        if (data.client.id, host, port) in self._approved:
            return
        if self._connection_refused(host, port, server.sni):  # (the name this connection will send)
            server.error = "blocked by telemetry-inspector"

    def next_layer(self, nextlayer: Any) -> None:
        """Traffic mitmproxy would relay as raw TCP or UDP (not HTTP inside a telemetry host's
        TLS, or no TLS at all) is refused when any rule for the host is not allow. In upstream
        mode this is the only gate: the connection opened is the upstream proxy's."""
        chosen = nextlayer.layer
        if not isinstance(chosen, (layers.TCPLayer, layers.UDPLayer)):
            return
        context = nextlayer.context
        if context.server.address is None:
            return
        host, port = str(context.server.address[0]), context.server.address[1]
        if self._connection_refused(host, port, context.client.sni):
            nextlayer.layer = _Refused(context)

    def _connection_refused(self, host: str, port: int, sni: str | None) -> bool:
        try:
            names = [("destination", host)]
            if sni:
                names.append(("sni", sni))
            obs = Observation(method="CONNECT", url=f"tcp://{_authority(host)}:{port}/", transport="connection",
                              names=tuple(names))
            outcome = self.enforcer.decide(obs, tuple(names))
        except Exception as exc:  # noqa: BLE001 - fail closed
            self._decision_error(exc)
            return True
        if outcome.action == "allow":
            return False
        log.info("telemetry-inspector: refused a connection to %s:%s (%s)", host, port,
                 outcome.decision.reason if outcome.decision else "")
        return True

    def client_disconnected(self, client: Any) -> None:
        if self._approved:
            self._approved = {key for key in self._approved if key[0] != client.id}

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """Decide as soon as the request's head is read: before a byte of its body can be
        forwarded, whatever the options."""
        if flow.response or flow.error or not flow.live:
            return
        try:
            self._decide(flow, final=False)
        except Exception as exc:  # noqa: BLE001 - fail closed
            self._fail_closed(flow, exc)

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.error or not flow.live:
            return
        state = flow.metadata.get("ti")
        if flow.response and not (state and state.answered):
            return  # answered by another addon (replay, a script): nothing goes out
        if state is not None and state.failed:
            return
        try:
            self._decide(flow, final=True)
        except Exception as exc:  # noqa: BLE001 - fail closed
            self._fail_closed(flow, exc)

    def _decide(self, flow: http.HTTPFlow, final: bool) -> None:
        """Both hooks: at `requestheaders` the head decides (the shape, if needed, waits for the
        body); at `request` the body is there, and the destination is asked again (another
        addon may have rewritten it). When nothing the head's decision rested on has changed
        (the destination, port, scheme, method, path, every header, the SNI, the rules), it
        stands without being worked out again: this runs on the proxy's event loop for every
        request. What the worker needs beyond the head (the body, the answer) is handed to it
        as it is, and merged into the observation off the event loop."""
        state: _FlowState | None = flow.metadata.get("ti")
        request = flow.request
        enforcer = self.enforcer
        key = (request.host, request.port, request.scheme, request.method, request.path, request.headers.fields,
               flow.client_conn.sni if flow.client_conn is not None else None)
        if final and state is not None and state.key == key and state.enforcer is enforcer \
                and state.obs is not None and not state.outcome.pending:
            outcome = state.outcome
            obs = state.obs
            extras: dict[str, Any] = {"body": request.raw_content or b""}
        else:
            names = flow_names(flow)
            obs = request_observation(flow, session=self.session, names=names)
            extras = {}
            if _is_upgrade(obs):
                obs = _with_transport(obs, "websocket")
            select = (lambda candidates: self._select(obs, candidates)) if final else None
            outcome = enforcer.decide(obs, names, select)
            if state is not None and STRICTNESS[state.outcome.action] > STRICTNESS[outcome.action] \
                    and not state.outcome.pending:
                outcome = state.outcome  # what was decided on the head stands, or a stricter one
        if outcome.decision is None:
            flow.metadata.pop("ti", None)
            return  # not telemetry
        request.stream = False  # the body is held until the decision (see configure)
        answered = state.answered if state is not None else None
        if state is None or state.outcome is not outcome:
            _mark(flow, outcome)
        if state is None or state.obs is not obs:
            state = _FlowState(outcome, obs, key, enforcer)
        else:
            state.outcome = outcome
        state.answered = answered
        flow.metadata["ti"] = state
        if outcome.pending:
            return
        decision = outcome.decision
        policy_id = outcome.policy.id if outcome.policy else None
        is_upgrade = obs.transport == "websocket"
        if decision.action != "allow":
            if state.answered != decision.action or flow.response is None:
                # Answered at the head: mitmproxy reads the rest of the body and never connects upstream.
                self._answer(flow, decision.action, obs, outcome.answer_as, outcome.collector)
                state.answered = decision.action
            if not final:
                return
            if decision.action == "block" and self.block_mode == "kill":
                flow.response = None
                flow.kill()
            if not is_upgrade:  # recorded with the answer the client was given here
                extras["response"] = raw_response(flow.response, local=True)
                self.worker_submit(obs, decision, policy_id, extras)
        elif final:
            # server_connect lets this client's connection to the destination open
            self._approved.add((flow.client_conn.id, request.host, request.port))
            if not is_upgrade:
                flow.metadata["ti_obs"] = (obs, decision, policy_id, extras)

    def _select(self, obs: Observation, candidates: list[Policy]) -> Policy | None:
        """Which candidate's shape the body has; bounded, keyless work on the event loop. None:
        it cannot be told within the bounds (the caller takes the strictest)."""
        if len(obs.body) > SHAPE_MAX_BODY:
            return None
        pipeline = self._shape_pipeline()
        cache: dict[str, Any] = {}
        for policy in candidates:
            decoded = cache.get(policy.location)
            if decoded is None:
                decoded = cache[policy.location] = pipeline.decode_at(obs, policy.location)
            if not decoded.structured and any(issue.code == "decode-error" for issue in decoded.issues):
                return None
            if not policy.shape or policy.matches_shape(decoded.value):
                return policy
        return None

    def _shape_pipeline(self) -> Pipeline:
        if self._shape_key != id(self.catalogue):
            self._shape, self._shape_key = Pipeline(self.catalogue, Keyring(), SHAPE_LIMITS), id(self.catalogue)
        assert self._shape is not None
        return self._shape

    def _fail_closed(self, flow: http.HTTPFlow, exc: BaseException) -> None:
        self._decision_error(exc)
        state = _FlowState(Outcome(Decision("block", None, "an error while deciding")))
        state.failed, state.answered = True, "block"
        flow.metadata["ti"] = state
        if self.block_mode == "kill":
            flow.kill()
        else:
            flow.response = _response(block_answer(self.block_status))

    def _decision_error(self, exc: BaseException) -> None:
        """One warning line per kind of error, then every 1,000th with the count."""
        kind = type(exc).__name__
        with self._stats_lock:
            count = self.decision_errors[kind] = self.decision_errors.get(kind, 0) + 1
        if count == 1 or count % 1000 == 0:
            log.warning("telemetry-inspector: error while deciding a request (%s: %s); blocked it "
                        "(fail closed), %d so far", kind, str(exc)[:200].replace("\n", " "), count)

    def response(self, flow: http.HTTPFlow) -> None:
        pending = flow.metadata.pop("ti_obs", None)
        if pending is not None:
            obs, decision, policy_id, extras = pending
            if flow.response is not None:  # the request as seen in the request hook, plus the answer
                extras["response"] = raw_response(flow.response)
            self.worker_submit(obs, decision, policy_id, extras)

    def error(self, flow: http.HTTPFlow) -> None:
        self.response(flow)

    def websocket_message(self, flow: http.HTTPFlow) -> None:
        if flow.websocket is None:
            return
        message = flow.websocket.messages[-1]
        if not message.from_client:
            return
        state = flow.metadata.get("ti")
        if state is None or state.outcome.decision is None:
            return
        decision = state.outcome.decision
        url = flow.request.pretty_url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
        headers = header_fields(flow.request.headers)
        obs = websocket_message_observation(url, headers, message, len(flow.websocket.messages) - 1,
                                            self.session, "")
        obs = _replace(obs, names=state.names)
        if decision.action != "allow":
            message.drop()  # belt and braces: the upgrade was already answered locally
        self.worker_submit(obs, decision, None)

    def worker_submit(self, obs: Observation, decision: Decision, policy_id: str | None,
                      extras: dict[str, Any] | None = None) -> None:
        """Queue `obs` for the audit; `extras` (the body, the raw answer) are merged into it by
        the worker (worker.complete)."""
        if self.worker is None:
            self.start()
        assert self.worker is not None
        self.worker.submit(obs, decision, policy_id, extras)

    # ------------------------------------------------------------------ answers
    def _answer(self, flow: http.HTTPFlow, action: str, obs: Observation | None = None,
                policy: Policy | None = None, collector: Collector | None = None) -> None:
        if action == "block" and self.block_mode == "kill":
            flow.kill()
            return
        answer: LocalAnswer
        if action == "sinkhole" and obs is not None and collector is not None and not (policy and policy.sinkhole):
            answer = collector.sinkhole(obs)  # what the collector's SDKs accept without retrying
        elif action == "sinkhole" and obs is not None:
            answer = sinkhole_answer(obs, policy.sinkhole if policy else None)
        else:
            answer = block_answer(self.block_status)
        flow.response = _response(answer)


def settle_heap() -> None:
    """Once the proxy runs: move what start-up built (mitmproxy, the policies, their compiled
    checks — ~100k objects that live as long as the process) out of the collector's view
    (`gc.freeze`). A full collection then walks only what came since: on the proxy's event
    loop it had cost ~25 µs a request (a 75 ms walk every few thousand requests)."""
    gc.collect()
    gc.freeze()


MARKERS = {"allow": ":mag:", "block": ":no_entry:", "sinkhole": ":hole:"}


def _mark(flow: http.HTTPFlow, outcome: Outcome) -> None:
    """In mitmproxy's own UIs a telemetry flow carries a marker and its rule in the comment
    (its verdict is in the Telemetry contentview: the audit runs off the event loop)."""
    if outcome.decision is None:
        return
    who = outcome.policy.id if outcome.policy else (outcome.collector.name if outcome.collector else "telemetry")
    flow.marked = MARKERS.get(outcome.decision.action, ":mag:")
    flow.comment = f"telemetry-inspector: {who} — {outcome.decision.action} ({outcome.decision.reason})"


class _Refused(layer.Layer):
    """Closes the client's connection; opens none to the server."""

    def _handle_event(self, event: events.Event) -> layer.CommandGenerator[None]:
        if isinstance(event, events.Start):
            yield commands.CloseConnection(self.context.client)


class _FlowState:
    """What was decided for one flow (kept in flow.metadata["ti"])."""

    __slots__ = ("answered", "enforcer", "failed", "key", "obs", "outcome")

    def __init__(self, outcome: Outcome, obs: Observation | None = None, key: tuple[Any, ...] | None = None,
                 enforcer: Enforcer | None = None) -> None:
        self.outcome = outcome
        self.obs = obs            # the request as its head showed it (with every name of its destination)
        self.key = key            # what the decision rested on (see _decide)
        self.enforcer = enforcer  # and the rules it was made with
        self.answered: str | None = None  # the action whose local answer is on the flow
        self.failed = False    # deciding raised: blocked, nothing more to do

    @property
    def names(self) -> tuple[tuple[str, str], ...]:
        return self.obs.names if self.obs is not None else ()


# Local answers repeat (a block page, a collector's sinkhole reply): each is made once and
# copied. `Response.make` type-checks every field of a new message, four times the cost of the
# copy, on the event loop for every answered request.
_ANSWERS: dict[tuple[int, bytes, tuple[tuple[str, str], ...]], http.Response] = {}
_ANSWER_CACHE_MAX = 64
_ANSWER_CACHE_BODY = 4096


def _response(answer: LocalAnswer) -> http.Response:
    key = (answer.status, answer.body, tuple(answer.headers))
    template = _ANSWERS.get(key)
    if template is None:
        template = http.Response.make(answer.status, answer.body, dict(answer.headers))
        if len(answer.body) > _ANSWER_CACHE_BODY:
            return template  # (an answer built from the request: not worth keeping)
        if len(_ANSWERS) >= _ANSWER_CACHE_MAX:
            _ANSWERS.clear()
        _ANSWERS[key] = template
    response = copy.copy(template)
    response.data = copy.copy(template.data)
    response.data.headers = template.data.headers.copy()
    response.data.timestamp_start = response.data.timestamp_end = time.time()
    return response


def _authority(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _with_transport(obs: Observation, transport: str) -> Observation:
    return _replace(obs, transport=transport)


def _is_upgrade(obs: Observation) -> bool:
    """A WebSocket upgrade (read from the decoded head: no second parse of the headers)."""
    return any(k.lower() == "upgrade" and v.strip().lower() == "websocket" for k, v in obs.headers)


__all__ = ["BATCH_MAX", "BATCH_WINDOW", "SWITCH_INTERVAL", "Decoder", "TelemetryInspector", "Worker"]
