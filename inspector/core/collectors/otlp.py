"""OpenTelemetry OTLP/HTTP: traces, logs and metrics, protobuf or JSON, on any host.

Confirmed against opentelemetry-exporter-otlp-proto-http 1.45.2 with opentelemetry-sdk 1.45.2
(Python) and @opentelemetry/exporter-trace-otlp-http 0.223.1 (JavaScript):

- Host: the exporters' only default is `http://localhost:4318` (Python
  opentelemetry/exporter/otlp/proto/http/_common/__init__.py `_DEFAULT_ENDPOINT`; JS
  otlp-exporter-base build/src/configuration/otlp-node-http-env-configuration.js); every other
  host is the app's choice (OTEL_EXPORTER_OTLP_ENDPOINT). `hosts` lists hosted backends'
  documented OTLP endpoints (Honeycomb, New Relic, Grafana Cloud, Axiom) — not from the SDKs.
  On any other host a request is recognised by path, content type and a complete parse.
- Endpoints: `<endpoint>/v1/traces`, `/v1/metrics`, `/v1/logs` (`_resolve_endpoint`; a base
  path such as Grafana's `/otlp` may precede them).
- Body: `Content-Type: application/x-protobuf` (`_OTLP_HTTP_HEADERS`), an
  Export{Trace,Metrics,Logs}ServiceRequest; gzip or deflate with OTEL_EXPORTER_OTLP_COMPRESSION
  (opentelemetry/exporter/otlp/common/http.py `_compress`). The JS exporter sends proto3 JSON
  (`application/json`, trace and span ids in hex). Protobuf is read here by a small bounded
  wire-format reader over the OTLP schema (no protobuf runtime; ids as hex like OTLP/JSON).
- Credentials: the backend's header (OTEL_EXPORTER_OTLP_HEADERS): `x-honeycomb-team`, `api-key`
  (New Relic), `authorization` (Grafana Cloud, bearer tokens), …
- Success: any status 200–399, the body unread (Python `_OTLPHTTPClient.export`); JS reads a
  JSON `partialSuccess` if present (otlp-exporter-base logging-response-handler.js). 429, 502,
  503 and 504 are retried (up to 6 times in Python, is-export-retryable.js in JS). The
  sinkhole answers an empty Export*ServiceResponse in the request's encoding, 200.
"""

from __future__ import annotations

import base64
import math
import struct
from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import SINKHOLE_HEADERS, Collector, Endpoint, Item, text
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer, Limits, inflate
from inspector.core.destination import normalize_host, normalize_path
from inspector.core.observation import Observation

if TYPE_CHECKING:  # (the pipeline imports the collectors: no cycle at run time)
    from inspector.core.pipeline import Pipeline

MAX_FIELDS = 500_000  # protobuf fields read from one request (a 512-span batch has some 50,000)
MAX_ITEMS = 2000
MAX_POINTS = 20       # data points of a metric shown in its item (all are counted)
MAX_NAME = 200

# --------------------------------------------------------------------------- the OTLP schema
# message → {field number: (JSON name, type, repeated, message type)}; types: string, bytes
# (Base64, as proto3 JSON), hex (trace and span ids, as OTLP/JSON), bool, int64, uint, int32
# (enums too), sint32, fixed32, fixed64, sfixed64, double, message.
SCHEMA: dict[str, dict[int, tuple[str, str, bool, str | None]]] = {
    "AnyValue": {1: ("stringValue", "string", False, None), 2: ("boolValue", "bool", False, None),
                 3: ("intValue", "int64", False, None), 4: ("doubleValue", "double", False, None),
                 5: ("arrayValue", "message", False, "ArrayValue"), 6: ("kvlistValue", "message", False, "KeyValueList"),
                 7: ("bytesValue", "bytes", False, None), 8: ("stringValueStrindex", "int32", False, None)},
    "ArrayValue": {1: ("values", "message", True, "AnyValue")},
    "KeyValueList": {1: ("values", "message", True, "KeyValue")},
    "KeyValue": {1: ("key", "string", False, None), 2: ("value", "message", False, "AnyValue"),
                 3: ("keyStrindex", "int32", False, None)},
    "EntityRef": {1: ("schemaUrl", "string", False, None), 2: ("type", "string", False, None),
                  3: ("idKeys", "string", True, None), 4: ("descriptionKeys", "string", True, None)},
    "Resource": {1: ("attributes", "message", True, "KeyValue"), 2: ("droppedAttributesCount", "uint", False, None),
                 3: ("entityRefs", "message", True, "EntityRef")},
    "InstrumentationScope": {1: ("name", "string", False, None), 2: ("version", "string", False, None),
                             3: ("attributes", "message", True, "KeyValue"),
                             4: ("droppedAttributesCount", "uint", False, None)},
    # traces
    "ExportTraceServiceRequest": {1: ("resourceSpans", "message", True, "ResourceSpans")},
    "ResourceSpans": {1: ("resource", "message", False, "Resource"), 2: ("scopeSpans", "message", True, "ScopeSpans"),
                      3: ("schemaUrl", "string", False, None)},
    "ScopeSpans": {1: ("scope", "message", False, "InstrumentationScope"), 2: ("spans", "message", True, "Span"),
                   3: ("schemaUrl", "string", False, None)},
    "Span": {1: ("traceId", "hex", False, None), 2: ("spanId", "hex", False, None), 3: ("traceState", "string", False, None),
             4: ("parentSpanId", "hex", False, None), 16: ("flags", "fixed32", False, None),
             5: ("name", "string", False, None), 6: ("kind", "int32", False, None),
             7: ("startTimeUnixNano", "fixed64", False, None), 8: ("endTimeUnixNano", "fixed64", False, None),
             9: ("attributes", "message", True, "KeyValue"), 10: ("droppedAttributesCount", "uint", False, None),
             11: ("events", "message", True, "SpanEvent"), 12: ("droppedEventsCount", "uint", False, None),
             13: ("links", "message", True, "SpanLink"), 14: ("droppedLinksCount", "uint", False, None),
             15: ("status", "message", False, "Status")},
    "SpanEvent": {1: ("timeUnixNano", "fixed64", False, None), 2: ("name", "string", False, None),
                  3: ("attributes", "message", True, "KeyValue"), 4: ("droppedAttributesCount", "uint", False, None)},
    "SpanLink": {1: ("traceId", "hex", False, None), 2: ("spanId", "hex", False, None),
                 3: ("traceState", "string", False, None), 4: ("attributes", "message", True, "KeyValue"),
                 5: ("droppedAttributesCount", "uint", False, None), 6: ("flags", "fixed32", False, None)},
    "Status": {2: ("message", "string", False, None), 3: ("code", "int32", False, None)},
    # logs
    "ExportLogsServiceRequest": {1: ("resourceLogs", "message", True, "ResourceLogs")},
    "ResourceLogs": {1: ("resource", "message", False, "Resource"), 2: ("scopeLogs", "message", True, "ScopeLogs"),
                     3: ("schemaUrl", "string", False, None)},
    "ScopeLogs": {1: ("scope", "message", False, "InstrumentationScope"), 2: ("logRecords", "message", True, "LogRecord"),
                  3: ("schemaUrl", "string", False, None)},
    "LogRecord": {1: ("timeUnixNano", "fixed64", False, None), 11: ("observedTimeUnixNano", "fixed64", False, None),
                  2: ("severityNumber", "int32", False, None), 3: ("severityText", "string", False, None),
                  5: ("body", "message", False, "AnyValue"), 6: ("attributes", "message", True, "KeyValue"),
                  7: ("droppedAttributesCount", "uint", False, None), 8: ("flags", "fixed32", False, None),
                  9: ("traceId", "hex", False, None), 10: ("spanId", "hex", False, None),
                  12: ("eventName", "string", False, None)},
    # metrics
    "ExportMetricsServiceRequest": {1: ("resourceMetrics", "message", True, "ResourceMetrics")},
    "ResourceMetrics": {1: ("resource", "message", False, "Resource"),
                        2: ("scopeMetrics", "message", True, "ScopeMetrics"), 3: ("schemaUrl", "string", False, None)},
    "ScopeMetrics": {1: ("scope", "message", False, "InstrumentationScope"), 2: ("metrics", "message", True, "Metric"),
                     3: ("schemaUrl", "string", False, None)},
    "Metric": {1: ("name", "string", False, None), 2: ("description", "string", False, None),
               3: ("unit", "string", False, None), 5: ("gauge", "message", False, "Gauge"),
               7: ("sum", "message", False, "Sum"), 9: ("histogram", "message", False, "Histogram"),
               10: ("exponentialHistogram", "message", False, "ExponentialHistogram"),
               11: ("summary", "message", False, "Summary"), 12: ("metadata", "message", True, "KeyValue")},
    "Gauge": {1: ("dataPoints", "message", True, "NumberDataPoint")},
    "Sum": {1: ("dataPoints", "message", True, "NumberDataPoint"), 2: ("aggregationTemporality", "int32", False, None),
            3: ("isMonotonic", "bool", False, None)},
    "Histogram": {1: ("dataPoints", "message", True, "HistogramDataPoint"),
                  2: ("aggregationTemporality", "int32", False, None)},
    "ExponentialHistogram": {1: ("dataPoints", "message", True, "ExponentialHistogramDataPoint"),
                             2: ("aggregationTemporality", "int32", False, None)},
    "Summary": {1: ("dataPoints", "message", True, "SummaryDataPoint")},
    "NumberDataPoint": {7: ("attributes", "message", True, "KeyValue"), 2: ("startTimeUnixNano", "fixed64", False, None),
                        3: ("timeUnixNano", "fixed64", False, None), 4: ("asDouble", "double", False, None),
                        6: ("asInt", "sfixed64", False, None), 5: ("exemplars", "message", True, "Exemplar"),
                        8: ("flags", "uint", False, None)},
    "Exemplar": {7: ("filteredAttributes", "message", True, "KeyValue"), 2: ("timeUnixNano", "fixed64", False, None),
                 3: ("asDouble", "double", False, None), 6: ("asInt", "sfixed64", False, None),
                 4: ("spanId", "hex", False, None), 5: ("traceId", "hex", False, None)},
    "HistogramDataPoint": {9: ("attributes", "message", True, "KeyValue"),
                           2: ("startTimeUnixNano", "fixed64", False, None), 3: ("timeUnixNano", "fixed64", False, None),
                           4: ("count", "fixed64", False, None), 5: ("sum", "double", False, None),
                           6: ("bucketCounts", "fixed64", True, None), 7: ("explicitBounds", "double", True, None),
                           8: ("exemplars", "message", True, "Exemplar"), 10: ("flags", "uint", False, None),
                           11: ("min", "double", False, None), 12: ("max", "double", False, None)},
    "ExponentialHistogramDataPoint": {
        1: ("attributes", "message", True, "KeyValue"), 2: ("startTimeUnixNano", "fixed64", False, None),
        3: ("timeUnixNano", "fixed64", False, None), 4: ("count", "fixed64", False, None),
        5: ("sum", "double", False, None), 6: ("scale", "sint32", False, None), 7: ("zeroCount", "fixed64", False, None),
        8: ("positive", "message", False, "Buckets"), 9: ("negative", "message", False, "Buckets"),
        10: ("flags", "uint", False, None), 11: ("exemplars", "message", True, "Exemplar"),
        12: ("min", "double", False, None), 13: ("max", "double", False, None),
        14: ("zeroThreshold", "double", False, None)},
    "Buckets": {1: ("offset", "sint32", False, None), 2: ("bucketCounts", "uint", True, None)},
    "SummaryDataPoint": {
        7: ("attributes", "message", True, "KeyValue"), 2: ("startTimeUnixNano", "fixed64", False, None),
        3: ("timeUnixNano", "fixed64", False, None), 4: ("count", "fixed64", False, None),
        5: ("sum", "double", False, None), 6: ("quantileValues", "message", True, "ValueAtQuantile"),
        8: ("flags", "uint", False, None)},
    "ValueAtQuantile": {1: ("quantile", "double", False, None), 2: ("value", "double", False, None)},
}
# signal (the path's last segment) → root message; decoded key → (scope key, record key, item kind)
ROOTS = {"traces": "ExportTraceServiceRequest", "logs": "ExportLogsServiceRequest",
         "metrics": "ExportMetricsServiceRequest"}
SIGNALS = {"resourceSpans": ("scopeSpans", "spans", "span"), "resourceLogs": ("scopeLogs", "logRecords", "log"),
           "resourceMetrics": ("scopeMetrics", "metrics", "metric")}
_SNAKE = {"resourceSpans": "resource_spans", "resourceLogs": "resource_logs", "resourceMetrics": "resource_metrics",
          "scopeSpans": "scope_spans", "scopeLogs": "scope_logs", "scopeMetrics": "scope_metrics",
          "logRecords": "log_records"}
_WIRE = {"string": 2, "bytes": 2, "hex": 2, "message": 2, "bool": 0, "int64": 0, "uint": 0, "int32": 0, "sint32": 0,
         "fixed32": 5, "fixed64": 1, "sfixed64": 1, "double": 1}
_FIXED = {"fixed32": (4, "<I"), "fixed64": (8, "<Q"), "sfixed64": (8, "<q"), "double": (8, "<d")}
_MASK64 = (1 << 64) - 1
_POINTS = ("gauge", "sum", "histogram", "exponentialHistogram", "summary")


class _Malformed(Exception):
    """The protobuf cannot be read on: what was read so far is kept."""


@register
class OpenTelemetry(Collector):
    name = "otlp"
    title = "OpenTelemetry"
    owner = "OpenTelemetry (CNCF)"
    category = "observability"
    hosts = ("api.honeycomb.io", "api.eu1.honeycomb.io", "otlp.nr-data.net", "otlp.eu01.nr-data.net",
             "otlp-gateway-*.grafana.net", "api.axiom.co")
    endpoints = (Endpoint(tuple(f"{prefix}/v1/{signal}" for signal in ROOTS for prefix in ("", "*"))),)
    credential_headers = ("authorization", "x-honeycomb-team", "api-key", "x-api-key", "dd-api-key",
                          "lightstep-access-token", "signoz-ingestion-key", "uptrace-dsn")
    envelope_fields = tuple(f"{key}[].{part}" for key, (scope, _, _) in SIGNALS.items()
                            for part in ("schemaUrl", f"{scope}[].scope", f"{scope}[].schemaUrl",
                                         "resource.droppedAttributesCount"))

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """OTLP/JSON by the generic decoder; OTLP/protobuf by the schema, once the Content-Encoding
        is undone. Off the collector's own hosts only a request that says it is OTLP (its content
        type) and parses completely counts as structured."""
        content_type = (obs.header("content-type") or "").split(";")[0].strip().lower()
        own = self.serves(normalize_host(obs.host) or obs.host)
        if content_type.endswith("json"):
            return _json_decoded(pipeline.decode_at(obs, "body"))
        if content_type not in ("application/x-protobuf", "application/protobuf"):
            if not own or content_type not in ("", "application/octet-stream"):
                return Decoded(layers=[Layer("body")], issues=[Issue(
                    "decode-error", f"not OTLP: the content type is {content_type[:60] or 'missing'}")])
            if obs.body.lstrip()[:1] in (b"{", b"["):  # no content type: JSON shows itself
                return _json_decoded(pipeline.decode_at(obs, "body"))
        signal = normalize_path(obs.path).rstrip("/").rsplit("/", 1)[-1]
        return decode_protobuf(obs, ROOTS.get(signal), pipeline.limits, own)

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, dict) or len(value) != 1:
            return False
        key = next(iter(value))
        signal = next((k for k in SIGNALS if key in (k, _SNAKE[k])), None)
        groups = value[key]
        if signal is None or not isinstance(groups, list) or not groups:
            return False
        scope_key, record_key, kind = SIGNALS[signal]
        records = 0
        for group in groups:
            if not isinstance(group, dict):
                return False
            for scope in _list(group, scope_key):
                for record in _list(scope, record_key):
                    if not _looks_like(kind, record):
                        return False
                    records += 1
        return records > 0

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, dict):
            return []
        out: list[Item] = []
        for signal, (scope_key, record_key, kind) in SIGNALS.items():
            key = signal if signal in value else _SNAKE[signal]
            groups = value.get(key)
            for i, group in enumerate(groups if isinstance(groups, list) else ()):
                if not isinstance(group, dict):
                    continue
                resource = _get(group, "resource")
                resource_attrs = attributes(_get(resource, "attributes")) or {}
                skey = scope_key if scope_key in group else _SNAKE[scope_key]
                for j, scope in enumerate(_list(group, scope_key)):
                    if not isinstance(scope, dict):
                        continue
                    scope_info = _scope(_get(scope, "scope"))
                    context = {"resource": resource_attrs, "scope": scope_info}
                    rkey = record_key if record_key in scope else _SNAKE.get(record_key, record_key)
                    for k, record in enumerate(_list(scope, record_key)):
                        if len(out) >= MAX_ITEMS:
                            return out
                        if isinstance(record, dict):
                            out.append(_item(kind, f"{key}[{i}].{skey}[{j}].{rkey}[{k}]", record, context,
                                             resource_attrs))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """An empty Export*ServiceResponse (no partial success) in the request's own encoding."""
        if "json" in (obs.header("content-type") or "").lower():
            return LocalAnswer(200, (("Content-Type", "application/json"), *SINKHOLE_HEADERS), b"{}")
        return LocalAnswer(200, (("Content-Type", "application/x-protobuf"), *SINKHOLE_HEADERS), b"")


# --------------------------------------------------------------------------- OTLP/JSON

# 64-bit integer fields OTLP/JSON writes as strings (proto3 JSON): read as numbers, as from
# protobuf — a 19-digit nanosecond time is otherwise a string the PII scan may take for a
# card number.
_INT64_KEYS = frozenset({"timeUnixNano", "startTimeUnixNano", "endTimeUnixNano", "observedTimeUnixNano", "count",
                         "zeroCount", "bucketCounts", "asInt", "time_unix_nano", "start_time_unix_nano",
                         "end_time_unix_nano", "observed_time_unix_nano", "zero_count", "bucket_counts", "as_int"})


def _json_decoded(decoded: Decoded) -> Decoded:
    """The generic decoder's OTLP/JSON, its 64-bit integer strings made numbers (one pass)."""
    if not decoded.structured:
        return decoded
    stack = [decoded.value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                if key in _INT64_KEYS:
                    if isinstance(child, str):
                        node[key] = _int(child)
                    elif isinstance(child, list):
                        node[key] = [_int(v) if isinstance(v, str) else v for v in child]
                elif isinstance(child, (dict, list)):
                    stack.append(child)
        elif isinstance(node, list):
            stack.extend(child for child in node if isinstance(child, (dict, list)))
    return decoded


def _int(value: str) -> int | str:
    stripped = value.strip()
    digits = stripped[1:] if stripped[:1] == "-" else stripped
    if 0 < len(digits) <= 20 and digits.isascii() and digits.isdigit():
        return int(stripped)
    return value


# --------------------------------------------------------------------------- protobuf

def decode_protobuf(obs: Observation, root: str | None, limits: Limits, partial_ok: bool = True) -> Decoded:
    """The body as the OTLP message `root`. `partial_ok`: a truncated or broken message still
    counts as structured (what was read before the damage is audited)."""
    data, layers, issues = inflate(obs.body, None if obs.content_decoded else obs.header("content-encoding"), limits)
    layers = [Layer("body"), *layers]
    if not issues and data[:2] == b"\x1f\x8b":  # gzip without a Content-Encoding header
        data, peeled, issues = inflate(data, "gzip", limits)
        layers += [Layer("gzip")] if peeled else []
    if issues:
        return Decoded(layers=layers, issues=issues)
    if root is None:
        return Decoded(layers=layers, issues=[Issue("decode-error", "not an OTLP signal path (/v1/traces, "
                                                                    "/v1/metrics, /v1/logs)")])
    if len(data) > limits.max_decompressed:
        return Decoded(layers=layers, issues=[Issue(
            "decode-error", f"decoded size exceeds the limit of {limits.max_decompressed} bytes")])
    value, found, complete = read_message(data, root, limits.max_depth)
    layers.append(Layer("protobuf", {"message": root}))
    return Decoded(value=value, layers=layers, issues=found, structured=complete or (partial_ok and bool(value)))


def read_message(data: bytes, root: str, max_depth: int = 64) -> tuple[dict[str, Any], list[Issue], bool]:
    """Decode protobuf `data` as `root` of SCHEMA, without recursion and in one pass: (value,
    issues, complete). Unknown fields are skipped, as protobuf does; a field of a known
    number but another wire type is skipped too."""
    out: dict[str, Any] = {}
    issues: list[Issue] = []
    # frames: (end of the message, its schema, where its fields go, its depth)
    stack: list[tuple[int, dict[int, tuple[str, str, bool, str | None]], dict[str, Any], int]] = [
        (len(data), SCHEMA[root], out, 1)]
    pos = 0
    fields = 0
    truncated = False
    try:
        while stack:
            end, schema, target, depth = stack[-1]
            if pos >= end:
                stack.pop()
                continue
            tag, pos = _varint(data, pos, end)
            number, wire = tag >> 3, tag & 7
            if number == 0:
                raise _Malformed("field number 0")
            fields += 1
            if fields > MAX_FIELDS:
                raise _Malformed(f"more than {MAX_FIELDS} fields; the rest was not read")
            spec = schema.get(number)
            if spec is None or (wire != _WIRE[spec[1]] and not (spec[2] and wire == 2)):
                pos = _skip(data, pos, end, wire)
                continue
            name, kind, repeated, sub = spec
            if wire == 2:
                length, pos = _varint(data, pos, end)
                if length > end - pos:
                    if kind != "message":
                        raise _Malformed(f"a field of {length} bytes runs past its message")
                    # a truncated body: read on into what is there of the message, then stop
                    truncated = True
                    length = end - pos
                if kind == "message":
                    if depth >= max_depth:
                        raise _Malformed(f"nesting deeper than {max_depth} levels")
                    child: dict[str, Any]
                    if repeated:
                        child = {}
                        target.setdefault(name, []).append(child)
                    else:  # a message field seen twice is merged, as protobuf does
                        existing = target.get(name)
                        child = existing if isinstance(existing, dict) else {}
                        target[name] = child
                    assert sub is not None
                    stack.append((pos + length, SCHEMA[sub], child, depth + 1))
                    continue
                chunk = data[pos:pos + length]
                pos += length
                if kind in ("string", "hex", "bytes"):
                    value: Any
                    if kind == "hex":
                        value = chunk.hex()
                    elif kind == "bytes":
                        value = base64.b64encode(chunk).decode("ascii")
                    else:
                        try:
                            value = chunk.decode("utf-8")
                        except UnicodeDecodeError:
                            value = chunk.decode("utf-8", "replace")
                            issues.append(Issue("decode-error", f"invalid UTF-8 in {name}; replaced with U+FFFD"))
                    if repeated:
                        target.setdefault(name, []).append(value)
                    else:
                        target[name] = value
                else:  # packed repeated numbers
                    target.setdefault(name, []).extend(_packed(chunk, kind))
                continue
            raw, pos = _scalar(data, pos, end, kind)
            if repeated:
                target.setdefault(name, []).append(raw)
            else:
                target[name] = raw
    except _Malformed as bad:
        issues.append(Issue("decode-error", f"protobuf ({root}): {bad} at byte {pos}"))
        return out, issues, False
    if truncated:
        issues.append(Issue("decode-error", f"protobuf ({root}): truncated: a message runs past the end of the body"))
    return out, issues, not truncated


def _varint(data: bytes, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end:
            raise _Malformed("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & _MASK64, pos
        shift += 7
        if shift >= 70:
            raise _Malformed("varint longer than 10 bytes")


def _skip(data: bytes, pos: int, end: int, wire: int) -> int:
    if wire == 0:
        return _varint(data, pos, end)[1]
    if wire == 1:
        size = 8
    elif wire == 5:
        size = 4
    elif wire == 2:
        size, pos = _varint(data, pos, end)
    else:  # 3 and 4: groups, which no OTLP message has; 6 and 7 do not exist
        raise _Malformed(f"wire type {wire}")
    if size > end - pos:
        raise _Malformed("a field runs past its message")
    return pos + size


def _scalar(data: bytes, pos: int, end: int, kind: str) -> tuple[Any, int]:
    fixed = _FIXED.get(kind)
    if fixed is not None:
        size, fmt = fixed
        if size > end - pos:
            raise _Malformed("a field runs past its message")
        return _number(struct.unpack_from(fmt, data, pos)[0]), pos + size
    raw, pos = _varint(data, pos, end)
    return _from_varint(raw, kind), pos


def _from_varint(raw: int, kind: str) -> Any:
    if kind == "bool":
        return raw != 0
    if kind == "sint32":
        raw &= 0xFFFFFFFF
        return (raw >> 1) ^ -(raw & 1)
    if kind in ("int64", "int32") and raw >= 1 << 63:
        return raw - (1 << 64)
    return raw


def _packed(chunk: bytes, kind: str) -> list[Any]:
    fixed = _FIXED.get(kind)
    if fixed is not None:
        size, fmt = fixed
        count = len(chunk) // size
        if count * size != len(chunk):
            raise _Malformed("a packed field's length is not a multiple of its element size")
        return [_number(v) for v in struct.unpack_from(f"<{count}{fmt[1]}", chunk)]
    out, pos = [], 0
    while pos < len(chunk):
        raw, pos = _varint(chunk, pos, len(chunk))
        out.append(_from_varint(raw, kind))
    return out


def _number(value: Any) -> Any:
    """NaN and the infinities as proto3 JSON writes them (JSON has no such numbers)."""
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


# --------------------------------------------------------------------------- items

def _get(value: Any, key: str) -> Any:
    if not isinstance(value, dict):
        return None
    found = value.get(key)
    return found if found is not None else value.get(_SNAKE.get(key, key))


def _list(value: Any, key: str) -> list[Any]:
    found = _get(value, key)
    return found if isinstance(found, list) else []


def _looks_like(kind: str, record: Any) -> bool:
    """A span has hex trace and span ids; a log record a time, body or severity; a metric a name."""
    if not isinstance(record, dict):
        return False
    if kind == "span":
        trace, span = _get(record, "traceId"), _get(record, "spanId")
        return (isinstance(trace, str) and len(trace) == 32 and _is_hex(trace)
                and isinstance(span, str) and len(span) == 16 and _is_hex(span))
    if kind == "log":
        return any(k in record for k in ("timeUnixNano", "observedTimeUnixNano", "body", "severityNumber",
                                         "time_unix_nano", "observed_time_unix_nano", "severity_number"))
    return isinstance(record.get("name"), str) and bool(record["name"])


def _is_hex(value: str) -> bool:
    try:
        int(value, 16)
    except ValueError:
        return False
    return True


def plain(value: Any, depth: int = 0) -> Any:
    """An AnyValue as the value it holds (arrays as lists, key-value lists as objects)."""
    if not isinstance(value, dict) or depth > 64:
        return value
    for key in ("stringValue", "boolValue", "intValue", "doubleValue", "bytesValue",
                "string_value", "bool_value", "int_value", "double_value", "bytes_value"):
        if key in value:
            found = value[key]
            if key in ("intValue", "int_value") and isinstance(found, str):
                try:  # OTLP/JSON writes 64-bit integers as strings
                    return int(found)
                except ValueError:
                    return found
            return found
    array = value.get("arrayValue", value.get("array_value"))
    if isinstance(array, dict):
        values = array.get("values")
        return [plain(v, depth + 1) for v in values] if isinstance(values, list) else []
    kvlist = value.get("kvlistValue", value.get("kvlist_value"))
    if isinstance(kvlist, dict):
        return attributes(kvlist.get("values"), depth + 1) or {}
    return None


def attributes(raw: Any, depth: int = 0) -> dict[str, Any] | None:
    """A KeyValue list as `{key: value}` (the last of a repeated key wins)."""
    if not isinstance(raw, list):
        return None
    out: dict[str, Any] = {}
    for pair in raw:
        if isinstance(pair, dict) and isinstance(pair.get("key"), str):
            out[pair["key"]] = plain(pair.get("value"), depth)
    return out


def _scope(scope: Any) -> dict[str, Any] | None:
    if not isinstance(scope, dict):
        return None
    info = {k: scope[k] for k in ("name", "version") if isinstance(scope.get(k), str)}
    attrs = attributes(scope.get("attributes"))
    if attrs:
        info["attributes"] = attrs
    return info


def _ids(record: dict[str, Any], attrs: dict[str, Any], resource: dict[str, Any]) -> dict[str, str]:
    ids: dict[str, str] = {}
    trace = _get(record, "traceId")
    if isinstance(trace, str) and trace.strip("0"):
        ids["trace"] = trace
    for role, keys in (("user", ("user.id", "enduser.id")), ("session", ("session.id",)), ("device", ("device.id",))):
        for key in keys:
            value = attrs.get(key, resource.get(key))
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                ids.setdefault(role, str(value))
    return ids


def _item(kind: str, path: str, record: dict[str, Any], context: dict[str, Any], resource: dict[str, Any]) -> Item:
    attrs = attributes(_get(record, "attributes")) or {}
    ids = _ids(record, attrs, resource)
    if kind == "span":
        props: dict[str, Any] = {k: record[k] for k in ("spanId", "parentSpanId", "kind", "startTimeUnixNano",
                                                         "endTimeUnixNano", "status", "traceState") if k in record}
        props["attributes"] = attrs
        events = _list(record, "events")
        if events:
            props["events"] = [{"name": e.get("name"), "timeUnixNano": e.get("timeUnixNano"),
                                "attributes": attributes(e.get("attributes")) or {}}
                               for e in events[:MAX_ITEMS] if isinstance(e, dict)]
        links = _list(record, "links")
        if links:
            props["links"] = [{"traceId": link.get("traceId"), "spanId": link.get("spanId"),
                               "attributes": attributes(link.get("attributes")) or {}}
                              for link in links[:MAX_ITEMS] if isinstance(link, dict)]
        return Item("span", _short(text(record.get("name"))), path, ids, props, context)
    if kind == "log":
        body = plain(_get(record, "body"))
        props = {k: record[k] for k in ("timeUnixNano", "severityNumber", "severityText", "spanId", "eventName")
                 if k in record}
        props.update(body=body, attributes=attrs)
        name = text(record.get("eventName")) or (body if isinstance(body, str) and body else None) \
            or text(record.get("severityText"))
        return Item("log", _short(name), path, ids, props, context)
    props = {k: record[k] for k in ("description", "unit") if isinstance(record.get(k), str)}
    for data_kind in _POINTS:
        data = _get(record, data_kind)
        if not isinstance(data, dict):
            continue
        props["type"] = data_kind
        for key in ("aggregationTemporality", "isMonotonic"):
            if key in data:
                props[key] = data[key]
        points = _list(data, "dataPoints")
        props["points"] = len(points)
        props["dataPoints"] = [_point(p) for p in points[:MAX_POINTS] if isinstance(p, dict)]
        break
    return Item("metric", _short(text(record.get("name"))), path, ids, props, context)


def _point(point: dict[str, Any]) -> dict[str, Any]:
    """A data point's attributes and its value (or count, sum, min, max)."""
    summary: dict[str, Any] = {k: point[k] for k in ("asDouble", "asInt", "count", "sum", "min", "max", "timeUnixNano")
                               if k in point}
    summary["attributes"] = attributes(_get(point, "attributes")) or {}
    return summary


def _short(name: str | None) -> str | None:
    if not name:
        return None
    return name if len(name) <= MAX_NAME else name[:MAX_NAME] + "…"
