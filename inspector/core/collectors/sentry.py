"""Sentry (Functional Software): the SDKs' envelope endpoint — errors, transactions, sessions,
logs, spans, check-ins, client reports, attachments, replays.

Confirmed against sentry-sdk 2.75.0 (Python) and @sentry/node 11.12.0 (@sentry/core 11.12.0):

- Host: the DSN's, `https://<public key>@o<org>.ingest[.us|.de].sentry.io/<project>`; the SDKs
  have no other default (sentry_sdk/utils.py `Dsn`, @sentry/core build/esm/utils/dsn.js).
- Endpoint: `POST <DSN path>/api/<project>/envelope/` (sentry_sdk/utils.py `Auth.get_api_url`,
  consts.py `EndpointType`; @sentry/core build/esm/api.js `_getIngestEndpoint`); `/store/` is
  the legacy single-event endpoint (a JSON event).
- Credential: the DSN's public key — Python in `X-Sentry-Auth: Sentry sentry_key=…,
  sentry_version=7, sentry_client=…` (utils.py `Auth.to_header`), JavaScript in the query
  (`?sentry_version=7&sentry_key=…&sentry_client=…`, api.js `_encodedAuth`); in the envelope
  header as `dsn` (when the SDK sets it) and `trace.public_key`.
- Body: `application/x-sentry-envelope`, newline-delimited: the envelope header, then per item a
  header line (`type`, `length`, `content_type`, `filename`, `item_count`) and its payload —
  `length` bytes, or up to the end of the line when there is no `length` (sentry_sdk/envelope.py
  `Item.deserialize_from`; Python always writes `length`, @sentry/core's `serializeEnvelope`
  only for binary payloads). Python compresses with brotli (`Content-Encoding: br`; gzip -9
  without brotli; transport.py `_serialize_envelope`), @sentry/node gzips bodies over 32 KiB
  (build/esm/transports/http.js). Logs, spans and trace metrics are batched in one item
  (`{"version": 2, "items": […]}`, sentry_sdk/_batcher.py `_to_envelope_item`).
- Success: any 2xx; neither SDK reads the body. A 429 or an `X-Sentry-Rate-Limits` header
  makes them stop sending for a while, they never retry (transport.py `_handle_response`,
  `_update_rate_limits`; @sentry/core build/esm/transports/base.js, utils/ratelimit.js). The
  sinkhole answers what Sentry does, `{"id": "<event_id>"}` (or `{}`), 200, no rate limits.

The envelope is parsed here, bounded (items, lengths, nesting); the core does not depend on
sentry_sdk.
"""

from __future__ import annotations

import json
import re
import zlib
from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer, Limits, inflate, parse_json
from inspector.core.destination import normalize_path
from inspector.core.observation import Observation

if TYPE_CHECKING:  # (the pipeline imports the collectors: no cycle at run time)
    from inspector.core.pipeline import Pipeline

MAX_ENVELOPE_ITEMS = 1000  # Sentry's own limit on an envelope is far lower (one event, 100 attachments)
MAX_ITEMS = 2000           # items of one request (a batched log or span item holds up to 1000)
MAX_NAME = 200
# Item types whose payload is not JSON: recorded by size only, never decoded.
BINARY_TYPES = frozenset({"attachment", "replay_recording", "replay_video"})
KNOWN_TYPES = frozenset({"event", "transaction", "session", "sessions", "attachment", "client_report", "check_in",
                         "log", "span", "otel_log", "otel_span", "trace_metric", "profile", "profile_chunk",
                         "replay_event", "replay_recording", "replay_video", "feedback", "user_report", "statsd",
                         "metric_buckets", "security", "raw_security", "unreal_report", "form_data", "nel"})
HEADER_KEYS = frozenset({"event_id", "dsn", "sent_at", "sdk", "trace"})
_EVENT_ID = re.compile(r"[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_USER = {"user": "user.id"}
_USER_FALLBACKS = ("email", "ip_address", "username")  # what Sentry itself takes as the user when there is no id
_EVENT_PROPERTIES = ("level", "logger", "message", "logentry", "tags", "extra", "user", "request", "fingerprint",
                     "transaction")
_EVENT_CONTEXT = ("contexts", "release", "environment", "dist", "platform", "sdk", "server_name")


@register
class Sentry(Collector):
    name = "sentry"
    title = "Sentry"
    owner = "Functional Software (Sentry)"
    category = "error-reporting"
    hosts = ("*.ingest.sentry.io", "*.ingest.us.sentry.io", "*.ingest.de.sentry.io")
    endpoints = (Endpoint(("/api/*/envelope/", "*/api/*/envelope/", "/api/*/store/", "*/api/*/store/")),)
    # The DSN's public key (the rest of a DSN is its host and project: not personal either).
    credential_paths = ("header.dsn", "header.trace.public_key")
    credential_params = ("sentry_key", "sentry_secret")
    credential_headers = ("x-sentry-auth", "authorization")
    envelope_fields = ("header.event_id", "header.sent_at", "header.sdk", "header.dsn", "header.trace",
                       "items[].header", "items[].size", "items[].payload.event_id", "items[].payload.timestamp",
                       "items[].payload.platform", "items[].payload.sdk", "items[].payload.level",
                       "items[].payload.environment", "items[].payload.release")

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """An envelope, parsed item by item; `/store/` bodies (one JSON event) by the generic decoder."""
        if normalize_path(obs.path).rstrip("/").endswith("/store"):
            return pipeline.decode_at(obs, "body")
        limits = pipeline.limits
        layers = [Layer("body")]
        data = obs.body
        if obs.content_decoded and obs.header("content-encoding"):
            layers += [Layer(c.strip().lower(), {"via": "content-encoding", "by": "capture"})
                       for c in (obs.header("content-encoding") or "").split(",") if c.strip()]
            issues: list[Issue] = []
        else:
            data, peeled, issues = inflate(data, obs.header("content-encoding"), limits)
            layers += peeled
        if not issues and data[:2] == b"\x1f\x8b":  # gzip without a Content-Encoding header
            data, peeled, issues = inflate(data, "gzip", limits)
            layers += [Layer("gzip")] if peeled else []
        if issues:
            return Decoded(layers=layers, issues=issues)
        if len(data) > limits.max_decompressed:
            return Decoded(layers=layers, issues=[Issue(
                "decode-error", f"decoded size exceeds the limit of {limits.max_decompressed} bytes")])
        return parse_envelope(data, limits, layers)

    def recognises(self, value: Any) -> bool:
        if _is_envelope(value):
            header, entries = value["header"], value["items"]
            types = [e["header"].get("type") for e in entries]
            return bool(HEADER_KEYS & header.keys()) or (bool(types) and all(t in KNOWN_TYPES for t in types))
        return _is_event(value)

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not _is_envelope(value):
            return [_event_item("", value, None, "event")] if _is_event(value) else []
        header = value["header"]
        trace = header.get("trace") if isinstance(header.get("trace"), dict) else {}
        header_ids = ids_of(trace, {"trace": "trace_id"})
        out: list[Item] = []
        for index, entry in enumerate(value["items"]):
            if len(out) >= MAX_ITEMS:
                break
            out.extend(_items_of(f"items[{index}]", entry, header_ids)[: MAX_ITEMS - len(out)])
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        event_id = _event_id(obs)
        return json_answer(json.dumps({"id": event_id}).encode() if event_id else b"{}")


# --------------------------------------------------------------------------- the envelope

def parse_envelope(data: bytes, limits: Limits, layers: list[Layer] | None = None) -> Decoded:
    """`{"header": {…}, "items": [{"header": {…}, "payload": …, "size": n}, …]}` from an
    envelope's bytes. Never raises: what cannot be read becomes an issue, and what was read
    before it is kept."""
    result = Decoded(layers=list(layers or [Layer("body")]))
    end = len(data)
    line_end = _line_end(data, 0)
    header, problem = _json_object(data[:line_end], limits)
    if header is None:
        result.issues.append(Issue("decode-error", f"not a Sentry envelope: its first line {problem}"))
        return result
    entries: list[dict[str, Any]] = []
    result.value = {"header": header, "items": entries}
    result.structured = True
    pos = line_end + 1
    while pos < end:
        if data[pos:pos + 1] in (b"\n", b"\r"):  # blank lines between items
            pos += 1
            continue
        where = f"items[{len(entries)}]"
        if len(entries) >= MAX_ENVELOPE_ITEMS:
            result.issues.append(Issue("decode-error", f"more than {MAX_ENVELOPE_ITEMS} envelope items; the rest "
                                                       "was not read", where))
            break
        line_end = _line_end(data, pos)
        item_header, problem = _json_object(data[pos:line_end], limits)
        if item_header is None:
            result.issues.append(Issue("decode-error", f"item header {problem}; the rest was not read", where))
            break
        pos = line_end + 1
        length = item_header.get("length")
        truncated = False
        if length is None:  # the payload runs to the end of the line
            payload_end = min(_line_end(data, pos), end)
            payload, pos = data[pos:payload_end], payload_end + 1
        elif isinstance(length, int) and not isinstance(length, bool) and length >= 0:
            if length > end - pos:
                result.issues.append(Issue("decode-error", f"the item declares {length} bytes, only {max(end - pos, 0)} "
                                                           "are left: truncated", where))
                truncated = True
            payload = data[pos:pos + length]
            pos += length
            if data[pos:pos + 1] == b"\n":
                pos += 1
        else:
            result.issues.append(Issue("decode-error", f"the item's length is not a byte count: {str(length)[:40]}; "
                                                       "the rest was not read", where))
            break
        entry: dict[str, Any] = {"header": item_header, "size": len(payload)}
        if truncated:
            entry["truncated"] = True
        entry_payload = _payload(item_header, payload, f"{where}.payload", limits, result.issues)
        if entry_payload is not None:
            entry["payload"] = entry_payload
        entries.append(entry)
        if truncated:
            break
    result.layers.append(Layer("envelope", {"format": "sentry", "items": len(entries)}))
    return result


def _line_end(data: bytes, start: int) -> int:
    found = data.find(b"\n", start)
    return len(data) if found < 0 else found


def _json_object(line: bytes, limits: Limits) -> tuple[dict[str, Any] | None, str]:
    """A header line as a JSON object, or (None, what is wrong with it)."""
    text_line = line.decode("utf-8", "replace").strip()
    if not text_line.startswith("{"):
        return None, "is not a JSON object"
    try:
        value, _issues = parse_json(text_line, limits)
    except Exception as exc:  # noqa: BLE001 - parse_json's bounded errors
        return None, f"is not JSON ({str(exc)[:120]})"
    return (value, "") if isinstance(value, dict) else (None, "is not a JSON object")


def _payload(header: dict[str, Any], payload: bytes, where: str, limits: Limits, issues: list[Issue]) -> Any:
    """An item's payload: JSON when it is JSON, text when it is text, nothing when binary."""
    kind = header.get("type")
    if kind in BINARY_TYPES or not payload.strip():
        return None
    try:
        decoded = payload.decode("utf-8")
    except UnicodeDecodeError:
        if payload.lstrip()[:1] not in (b"{", b"["):
            return None  # binary (a minidump, a compressed replay): its size is recorded
        issues.append(Issue("decode-error", "invalid UTF-8 in the item's payload; replaced with U+FFFD", where))
        decoded = payload.decode("utf-8", "replace")
    stripped = decoded.strip()
    if stripped[:1] not in ("{", "["):
        return decoded
    try:
        value, found = parse_json(stripped, limits)
    except Exception as exc:  # noqa: BLE001 - parse_json's bounded errors
        issues.append(Issue("decode-error", f"the item's payload is not JSON: {str(exc)[:160]}", where))
        return None
    issues.extend(Issue(i.code, i.message, f"{where}.{i.path}" if i.path and not i.path.startswith("[")
                        else f"{where}{i.path}") for i in found)
    return value


def _is_envelope(value: Any) -> bool:
    return (isinstance(value, dict) and isinstance(value.get("header"), dict) and isinstance(value.get("items"), list)
            and len(value) == 2 and all(isinstance(e, dict) and isinstance(e.get("header"), dict)
                                        and isinstance(e["header"].get("type"), str) for e in value["items"]))


def _is_event(value: Any) -> bool:
    """A bare event (the legacy /store/ body)."""
    return (isinstance(value, dict) and isinstance(value.get("event_id"), str)
            and bool(_EVENT_ID.fullmatch(value["event_id"]))
            and sum(k in value for k in ("platform", "sdk", "exception", "message", "level", "timestamp", "contexts")) >= 2)


# --------------------------------------------------------------------------- items

def _items_of(path: str, entry: dict[str, Any], header_ids: dict[str, str]) -> list[Item]:
    header = entry["header"]
    kind = header["type"]
    payload = entry.get("payload")
    record = payload if isinstance(payload, dict) else {}
    if kind in ("event", "transaction", "feedback", "user_report") and record:
        return [_event_item(path, record, header_ids, kind)]
    if kind in ("log", "otel_log", "span", "otel_span", "trace_metric"):
        inner = record.get("items")
        if isinstance(inner, list):
            return [_record_item(f"{path}.payload.items[{i}]", kind, r, header_ids)
                    for i, r in enumerate(inner[:MAX_ITEMS]) if isinstance(r, dict)]
        return [_record_item(f"{path}.payload", kind, record, header_ids)] if record else []
    if kind == "session" and record:
        attrs = record.get("attrs") if isinstance(record.get("attrs"), dict) else None
        ids = ids_of(record, {"session": "sid", "distinct": "did"})
        props = {k: record[k] for k in ("status", "errors", "init", "started", "timestamp", "duration", "seq")
                 if k in record}
        return [Item("session", text(attrs.get("release")) if attrs else None, path, ids, props, attrs)]
    if kind == "sessions" and record:
        attrs = record.get("attrs") if isinstance(record.get("attrs"), dict) else None
        return [Item("session", text(attrs.get("release")) if attrs else None, path, {},
                     {"aggregates": record.get("aggregates")}, attrs)]
    if kind == "client_report" and record:
        return [Item("report", "client_report", path, {}, {"discarded_events": record.get("discarded_events")}, None)]
    if kind == "check_in" and record:
        ids = ids_of(record, {"trace": "contexts.trace.trace_id"}) or dict(header_ids)
        props = {k: record[k] for k in ("check_in_id", "status", "duration", "environment", "release") if k in record}
        return [Item("event", text(record.get("monitor_slug")), path, ids, props, record.get("monitor_config"))]
    if kind == "replay_event" and record:
        ids = ids_of(record, {"session": "replay_id"})
        props = {k: record[k] for k in ("replay_type", "segment_id", "urls", "error_ids", "trace_ids") if k in record}
        return [Item("event", "replay", path, ids, props, record.get("contexts"))]
    props = {"size": entry.get("size")}
    for key in ("content_type", "attachment_type", "filename"):
        if isinstance(header.get(key), str):
            props[key] = header[key]
    if kind in BINARY_TYPES:
        name = text(header.get("filename")) if kind == "attachment" else kind
        return [Item("attachment", _short(name or kind), path, {}, props, None)]
    if kind in ("statsd", "metric_buckets"):
        return [Item("metric", kind, path, {}, props, None)]
    return [Item("other", _short(kind), path, dict(header_ids), props, None)]


def _event_item(path: str, event: dict[str, Any], header_ids: dict[str, str] | None, kind: str) -> Item:
    """An error, message, transaction or feedback event."""
    ids = _user_ids(event)
    ids.update(ids_of(event, {"trace": "contexts.trace.trace_id"}))
    for role, value in (header_ids or {}).items():
        ids.setdefault(role, value)
    props: dict[str, Any] = {k: event[k] for k in _EVENT_PROPERTIES if k in event}
    context = {k: event[k] for k in _EVENT_CONTEXT if k in event} or None
    if kind == "transaction":
        trace = _dig(event, "contexts", "trace")
        for key in ("op", "status"):
            if isinstance(trace, dict) and key in trace:
                props[key] = trace[key]
        if isinstance(event.get("spans"), list):
            props["spans"] = len(event["spans"])
        if "measurements" in event:
            props["measurements"] = event["measurements"]
        return Item("transaction", _short(text(event.get("transaction"))), path, ids, props, context)
    if kind == "feedback":
        return Item("event", _short(text(_dig(event, "contexts", "feedback", "message"))), path, ids, props, context)
    if kind == "user_report":
        return Item("event", _short(text(event.get("comments"))), path, ids, props, context)
    exceptions = _exceptions(event)
    if exceptions:
        props["exception"] = exceptions
    real = [e for e in exceptions if not e.get("synthetic")]
    if real:
        last = real[-1]  # Sentry lists chained exceptions oldest first: the last one was raised
        name = ": ".join(str(last[k]) for k in ("type", "value") if last.get(k) not in (None, ""))
        return Item("exception", _short(name or None), path, ids, props, context)
    label = _message(event) or next((str(e["value"]) for e in exceptions if e.get("value")), None)
    return Item("event", _short(label), path, ids, props, context)


def _record_item(path: str, kind: str, record: dict[str, Any], header_ids: dict[str, str]) -> Item:
    """One log, span or trace metric of a batched item."""
    ids = ids_of(record, {"trace": "trace_id"}) or dict(header_ids)
    attributes = _attributes(record.get("attributes"))
    for role, key in (("user", "user.id"), ("session", "session.id")):
        value = attributes.get(key) if attributes else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            ids.setdefault(role, str(value))
    if kind in ("log", "otel_log"):
        body = record.get("body")
        props: dict[str, Any] = {k: record[k] for k in ("level", "severity_number", "timestamp", "span_id") if k in record}
        props.update(body=body, attributes=attributes)
        return Item("log", _short(body if isinstance(body, str) else text(record.get("level"))), path, ids, props, None)
    if kind == "trace_metric":
        props = {k: record[k] for k in ("type", "value", "unit", "timestamp", "span_id") if k in record}
        props["attributes"] = attributes
        return Item("metric", _short(text(record.get("name"))), path, ids, props, None)
    props = {k: record[k] for k in ("span_id", "parent_span_id", "op", "status", "is_segment", "start_timestamp",
                                    "end_timestamp", "timestamp") if k in record}
    props["attributes"] = attributes
    name = text(record.get("name")) or text(record.get("description")) or text(record.get("op"))
    return Item("span", _short(name), path, ids, props, None)


def _user_ids(event: dict[str, Any]) -> dict[str, str]:
    ids = ids_of(event, _USER)
    user = event.get("user")
    if "user" not in ids and isinstance(user, dict):
        for key in _USER_FALLBACKS:
            value = user.get(key)
            if isinstance(value, str) and value and value != "{{auto}}":
                ids["user"] = value
                break
    return ids


def _exceptions(event: dict[str, Any]) -> list[dict[str, Any]]:
    """type, value, module (and whether the SDK made it up) of each exception, without frames."""
    raw = event.get("exception")
    values = raw.get("values") if isinstance(raw, dict) else raw
    out = []
    for value in values[:MAX_ITEMS] if isinstance(values, list) else ():
        if not isinstance(value, dict):
            continue
        summary = {k: value[k] for k in ("type", "value", "module") if isinstance(value.get(k), (str, int, float))}
        mechanism = value.get("mechanism")
        if isinstance(mechanism, dict):
            if isinstance(mechanism.get("type"), str):
                summary["mechanism"] = mechanism["type"]
            if mechanism.get("synthetic") is True:  # captureMessage's stack, not an exception
                summary["synthetic"] = True
        out.append(summary)
    return out


def _message(event: dict[str, Any]) -> str | None:
    for key in ("logentry", "message"):
        value = event.get(key)
        if isinstance(value, str) and value:
            return value
        if isinstance(value, dict):
            found = text(value.get("formatted")) or text(value.get("message"))
            if found:
                return found
    return None


def _attributes(raw: Any) -> dict[str, Any] | None:
    """Sentry's typed attributes (`{"k": {"value": v, "type": t}}`) as `{"k": v}`."""
    if not isinstance(raw, dict):
        return None
    return {str(k): v["value"] if isinstance(v, dict) and "value" in v else v for k, v in raw.items()}


def _dig(value: Any, *keys: str) -> Any:
    for key in keys:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def _short(name: str | None) -> str | None:
    if not name:
        return None
    return name if len(name) <= MAX_NAME else name[:MAX_NAME] + "…"


# --------------------------------------------------------------------------- the sinkhole

def _event_id(obs: Observation) -> str | None:
    """The envelope header's event_id, from the first line of the body (a few KiB of it, inflated
    as far as needed): Sentry answers it, though no SDK reads it. None when not at hand (a
    sinkhole decided on the request's head has no body yet)."""
    if not obs.body:
        return None
    coding = (obs.header("content-encoding") or "").strip().lower()
    head = obs.body[:65536]
    try:
        if coding in ("gzip", "x-gzip", "deflate"):
            wbits = 16 + zlib.MAX_WBITS if coding != "deflate" else zlib.MAX_WBITS
            head = zlib.decompressobj(wbits).decompress(obs.body, 8192)
        elif coding == "br":
            import brotli
            head = brotli.Decompressor().process(obs.body[:65536], output_buffer_limit=8192)
        elif coding not in ("", "identity"):
            return None
        line = head.split(b"\n", 1)[0].decode("utf-8")
        found = json.loads(line).get("event_id")
    except Exception:  # noqa: BLE001 - any bad body: answer without an id
        return None
    return found if isinstance(found, str) and _EVENT_ID.fullmatch(found) else None
