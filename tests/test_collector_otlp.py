"""The OpenTelemetry OTLP/HTTP collector profile: requests recorded from the Python exporter
(protobuf) and the JS exporter (JSON) in fixtures/collectors/otlp/, the wire reader against
opentelemetry-proto, hostile bodies, and the real SDKs through the real proxy."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from collector_sdk import recorded
from conftest import FIXTURES, ROOT, cli_env, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.core import collectors
from inspector.core.collectors import otlp
from inspector.core.collectors.otlp import read_message
from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

HERE = FIXTURES / "collectors" / "otlp"
NODE = ROOT / "tests" / "node" / "otlp"
KEY = "hcaik_01j9testtesttesttesttesttest"
EMAIL = "jane.doe@example.com"
OTLP = collectors.get("otlp")
PROTOBUF = (("Content-Type", "application/x-protobuf"),)
JSON = (("Content-Type", "application/json"),)


fixture, observation = recorded("otlp")


def request(body: bytes, url: str = "https://api.honeycomb.io/v1/traces", headers: tuple = PROTOBUF) -> Observation:
    return Observation("POST", url, headers, body)


def codes(event: Any, code: str) -> list[Any]:
    return [f for f in event.findings if f.code == code]


def proto():
    """opentelemetry-proto's request classes (installed with the exporter)."""
    pytest.importorskip("opentelemetry.proto", reason="opentelemetry-proto is not installed (requirements-sdks.txt)")
    from opentelemetry.proto.collector.logs.v1 import logs_service_pb2
    from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2
    from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
    return trace_service_pb2, logs_service_pb2, metrics_service_pb2


# --------------------------------------------------------------------------- the recorded fixtures

EXPECTED = {  # fixture → (kind, name) of each item, the decoding layers
    "python-traces": ([("span", "load cart"), ("span", "GET /checkout")], ["body", "protobuf"]),
    "python-traces-gzip": ([("span", "load cart"), ("span", "GET /checkout")], ["body", "gzip", "protobuf"]),
    "python-logs": ([("log", "payment retried")], ["body", "protobuf"]),
    "python-metrics": ([("metric", "orders.placed")], ["body", "protobuf"]),
    "node-traces-json": ([("span", "fetch prices"), ("span", "GET /cart")], ["body", "json"]),
}


def test_every_fixture_is_listed() -> None:
    assert sorted(p.stem for p in HERE.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_items(pipeline: Pipeline, name: str) -> None:
    obs = observation(name)
    if name.startswith("node"):  # recorded from a local listener: the same request to a hosted backend
        obs = Observation(obs.method, "https://api.honeycomb.io/v1/traces", obs.headers, obs.body)
    event = pipeline.process(obs)
    items, layers = EXPECTED[name]
    assert event.collector == "otlp"
    assert [(i["kind"], i["name"]) for i in event.items] == items
    assert event.decoding == layers and not codes(event, "decode-error")
    for item in event.items:
        assert item["context"]["resource"]["service.name"] in ("checkout", "storefront")
        assert item["context"]["scope"]["name"] in ("shop.orders", "storefront.web")


def test_span_item(pipeline: Pipeline) -> None:
    event = pipeline.process(observation("python-traces"))
    child, root = event.items
    span = event.decoded["resourceSpans"][0]["scopeSpans"][0]["spans"][1]
    assert root["path"] == "resourceSpans[0].scopeSpans[0].spans[1]"
    assert len(span["traceId"]) == 32 and len(span["spanId"]) == 16  # bytes shown as hex
    assert root["ids"] == {"trace": span["traceId"], "session": "sess-31337"}
    assert root["properties"]["attributes"] == {"user.email": EMAIL, "session.id": "sess-31337"}
    assert root["properties"]["events"][0]["name"] == "cart loaded"
    assert root["properties"]["events"][0]["attributes"] == {"items": 3}
    assert child["properties"]["parentSpanId"] == span["spanId"]
    assert root["context"]["resource"]["telemetry.sdk.language"] == "python"


def test_log_and_metric_items(pipeline: Pipeline) -> None:
    log = pipeline.process(observation("python-logs")).items[0]
    assert log["properties"]["body"] == "payment retried" and log["properties"]["severityText"] == "WARN"
    assert log["properties"]["attributes"]["contact"] == EMAIL
    metric = pipeline.process(observation("python-metrics")).items[0]
    assert metric["properties"]["type"] == "sum" and metric["properties"]["points"] == 1
    assert metric["properties"]["isMonotonic"] is True
    assert metric["properties"]["dataPoints"][0]["asInt"] == 2
    assert metric["properties"]["dataPoints"][0]["attributes"] == {"contact": EMAIL}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_credential_header_is_labelled_and_the_planted_email_is_pii(pipeline: Pipeline, name: str) -> None:
    event = pipeline.process(observation(name, url="https://api.honeycomb.io/v1/" + fixture(name)["url"].rsplit("/", 1)[1]))
    assert [f.path for f in codes(event, "credential")] == ["headers.x-honeycomb-team"]
    pii = codes(event, "pii")
    assert pii and all(f.evidence == EMAIL for f in pii)  # no timestamp taken for a card number
    item_paths = [i["path"] for i in event.items]
    assert all(any(f.path.startswith(p + ".") for p in item_paths) for f in pii)


def test_json_64_bit_integers_are_numbers(pipeline: Pipeline) -> None:
    obs = observation("node-traces-json", url="https://api.honeycomb.io/v1/traces")
    assert b'"startTimeUnixNano":"' in obs.body  # proto3 JSON writes them as strings
    span = pipeline.process(obs).decoded["resourceSpans"][0]["scopeSpans"][0]["spans"][0]
    assert isinstance(span["startTimeUnixNano"], int) and isinstance(span["endTimeUnixNano"], int)


# --------------------------------------------------------------------------- the wire reader vs opentelemetry-proto

_IDS = ("traceId", "spanId", "parentSpanId")
_INT64 = otlp._INT64_KEYS | {"intValue"}


def _as_ours(value: Any, key: str = "") -> Any:
    """json_format.MessageToDict's output in the reader's conventions: ids in hex, 64-bit
    integers as numbers."""
    if isinstance(value, dict):
        return {k: _as_ours(v, k) for k, v in value.items()}
    if isinstance(value, list):
        return [_as_ours(v, key) for v in value]
    if key in _IDS and isinstance(value, str):
        return base64.b64decode(value).hex()
    if key in _INT64 and isinstance(value, str):
        return int(value)
    return value


def _compare(message: Any, root: str) -> None:
    from google.protobuf.json_format import MessageToDict
    ours, issues, complete = read_message(message.SerializeToString(), root)
    assert complete and not issues
    assert ours == _as_ours(MessageToDict(message, use_integers_for_enums=True))


@pytest.mark.parametrize("name", ["python-traces", "python-logs", "python-metrics"])
def test_reader_agrees_with_opentelemetry_proto_on_the_fixtures(name: str) -> None:
    traces, logs, metrics = proto()
    cls = {"python-traces": traces.ExportTraceServiceRequest, "python-logs": logs.ExportLogsServiceRequest,
           "python-metrics": metrics.ExportMetricsServiceRequest}[name]
    message = cls()
    message.ParseFromString(observation(name).body)
    _compare(message, cls.DESCRIPTOR.name)


def _any_values() -> list[Any]:
    from opentelemetry.proto.common.v1 import common_pb2 as common
    nested = common.AnyValue(kvlist_value=common.KeyValueList(values=[
        common.KeyValue(key="inner", value=common.AnyValue(array_value=common.ArrayValue(values=[
            common.AnyValue(string_value="x"), common.AnyValue(int_value=-7)])))]))
    return [common.KeyValue(key=k, value=v) for k, v in (
        ("s", common.AnyValue(string_value="héllo")), ("b", common.AnyValue(bool_value=True)),
        ("i", common.AnyValue(int_value=-(2 ** 63))), ("d", common.AnyValue(double_value=-1.5)),
        ("bytes", common.AnyValue(bytes_value=b"\x00\xff")), ("nested", nested),
        ("idx", common.AnyValue(string_value_strindex=3)))]


def test_reader_agrees_on_every_field_of_every_signal() -> None:
    traces, logs, metrics = proto()
    from opentelemetry.proto.common.v1 import common_pb2 as common
    from opentelemetry.proto.logs.v1 import logs_pb2
    from opentelemetry.proto.metrics.v1 import metrics_pb2 as m
    from opentelemetry.proto.resource.v1 import resource_pb2
    from opentelemetry.proto.trace.v1 import trace_pb2 as t
    attrs = _any_values()
    resource = resource_pb2.Resource(attributes=attrs, dropped_attributes_count=2, entity_refs=[
        common.EntityRef(schema_url="u", type="host", id_keys=["host.id", "x"], description_keys=["d"])])
    scope = common.InstrumentationScope(name="lib", version="1", attributes=attrs[:1], dropped_attributes_count=1)
    span = t.Span(trace_id=bytes(range(16)), span_id=bytes(range(8)), parent_span_id=b"\x01" * 8, trace_state="a=b",
                  flags=0x301, name="op", kind=t.Span.SPAN_KIND_CLIENT, start_time_unix_nano=2 ** 64 - 1,
                  end_time_unix_nano=1, attributes=attrs, dropped_attributes_count=4,
                  events=[t.Span.Event(time_unix_nano=5, name="e", attributes=attrs[:2], dropped_attributes_count=1)],
                  dropped_events_count=2,
                  links=[t.Span.Link(trace_id=b"\x02" * 16, span_id=b"\x03" * 8, trace_state="c=d", attributes=attrs[:1],
                                     dropped_attributes_count=1, flags=1)],
                  dropped_links_count=3, status=t.Status(message="bad", code=t.Status.STATUS_CODE_ERROR))
    _compare(traces.ExportTraceServiceRequest(resource_spans=[t.ResourceSpans(
        resource=resource, schema_url="s", scope_spans=[t.ScopeSpans(scope=scope, spans=[span, span], schema_url="q")])]),
        "ExportTraceServiceRequest")
    record = logs_pb2.LogRecord(time_unix_nano=1, observed_time_unix_nano=2, severity_number=17, severity_text="ERROR",
                                body=attrs[5].value, attributes=attrs, dropped_attributes_count=1, flags=1,
                                trace_id=b"\x04" * 16, span_id=b"\x05" * 8, event_name="ev")
    _compare(logs.ExportLogsServiceRequest(resource_logs=[logs_pb2.ResourceLogs(
        resource=resource, scope_logs=[logs_pb2.ScopeLogs(scope=scope, log_records=[record])])]),
        "ExportLogsServiceRequest")
    exemplar = m.Exemplar(filtered_attributes=attrs[:1], time_unix_nano=3, as_int=-4, span_id=b"\x06" * 8,
                          trace_id=b"\x07" * 16)
    number = m.NumberDataPoint(attributes=attrs[:2], start_time_unix_nano=1, time_unix_nano=2, as_double=2.5,
                               exemplars=[exemplar], flags=1)
    metric_list = [
        m.Metric(name="g", description="d", unit="ms", gauge=m.Gauge(data_points=[number]),
                 metadata=attrs[:1]),
        m.Metric(name="s", sum=m.Sum(data_points=[m.NumberDataPoint(as_int=-(2 ** 62))], aggregation_temporality=2,
                                     is_monotonic=True)),
        m.Metric(name="h", histogram=m.Histogram(aggregation_temporality=1, data_points=[m.HistogramDataPoint(
            attributes=attrs[:1], count=10, sum=1.25, bucket_counts=[1, 2, 2 ** 63], explicit_bounds=[0.5, -1.0],
            exemplars=[exemplar], flags=1, min=-3.0, max=9.0)])),
        m.Metric(name="e", exponential_histogram=m.ExponentialHistogram(aggregation_temporality=2, data_points=[
            m.ExponentialHistogramDataPoint(count=4, sum=2.0, scale=-3, zero_count=1, zero_threshold=0.001,
                                            positive=m.ExponentialHistogramDataPoint.Buckets(offset=-2, bucket_counts=[1, 300]),
                                            negative=m.ExponentialHistogramDataPoint.Buckets(offset=5, bucket_counts=[7]),
                                            min=0.1, max=8.0)])),
        m.Metric(name="q", summary=m.Summary(data_points=[m.SummaryDataPoint(count=3, sum=6.0, quantile_values=[
            m.SummaryDataPoint.ValueAtQuantile(quantile=0.5, value=2.0)])])),
    ]
    _compare(metrics.ExportMetricsServiceRequest(resource_metrics=[m.ResourceMetrics(
        resource=resource, scope_metrics=[m.ScopeMetrics(scope=scope, metrics=metric_list)])]),
        "ExportMetricsServiceRequest")


def test_unknown_fields_and_odd_wire_types_are_skipped() -> None:
    traces, _, _ = proto()
    message = traces.ExportTraceServiceRequest()
    message.ParseFromString(observation("python-traces").body)
    data = message.SerializeToString()
    # unknown fields of every wire type at the top level, then `resourceSpans` sent as a varint
    extra = b"\xa8\x06\x96\x01" + b"\xb1\x06" + b"\x00" * 8 + b"\xba\x06\x03abc" + b"\xc5\x06" + b"\x00" * 4 + b"\x08\x05"
    ours, issues, complete = read_message(extra + data, "ExportTraceServiceRequest")
    assert complete and not issues
    assert ours == read_message(data, "ExportTraceServiceRequest")[0]


# --------------------------------------------------------------------------- hostile protobuf

def _field(number: int, payload: bytes) -> bytes:
    return otlp_key(number, 2) + _varint(len(payload)) + payload


def otlp_key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


@pytest.mark.parametrize("data, message", [
    (b"\x0a\x05\x0a\x03", "runs past"),                 # a length beyond the message
    (b"\x0a\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", "truncated"),  # a huge length
    (b"\x0a\x02\x1a\x05ab", "runs past"),          # a string longer than its message
    (b"\x0a" + b"\xff" * 11, "varint longer"),
    (b"\x0a\x80", "truncated varint"),
    (b"\x0b\x01", "wire type 3"),                       # a group
    (b"\x00\x01", "field number 0"),
])
def test_malformed_protobuf_is_an_issue_not_an_error(data: bytes, message: str) -> None:
    _value, issues, complete = read_message(data, "ExportTraceServiceRequest")
    assert not complete and message in issues[0].message


def test_deep_nesting_is_bounded_without_recursion() -> None:
    inner = b""
    for _ in range(3000):  # AnyValue{arrayValue{values[AnyValue{…}]}}
        inner = _field(5, _field(1, inner))
    _value, issues, complete = read_message(inner, "AnyValue", max_depth=64)
    assert not complete and "deeper than 64" in issues[0].message


def test_field_count_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(otlp, "MAX_FIELDS", 100)
    data = b"".join(_field(1, b"") for _ in range(500))
    value, _issues, complete = read_message(data, "ExportTraceServiceRequest")
    assert not complete and len(value["resourceSpans"]) == 100


def test_bad_utf8_and_non_finite_doubles() -> None:
    key_value = _field(1, b"k\xff") + _field(2, otlp_key(4, 1) + b"\x00\x00\x00\x00\x00\x00\xf8\x7f")
    value, issues, complete = read_message(key_value, "KeyValue")
    assert complete and value == {"key": "k\ufffd", "value": {"doubleValue": "NaN"}}
    assert "invalid UTF-8" in issues[0].message
    assert read_message(otlp_key(4, 1) + b"\x00\x00\x00\x00\x00\x00\xf0\xff", "AnyValue")[0] == {"doubleValue": "-Infinity"}


def test_truncated_body_partial_on_the_own_host_refused_elsewhere(pipeline: Pipeline) -> None:
    body = observation("python-traces").body
    cut = body[: len(body) - 40]
    event = pipeline.process(request(cut))
    assert event.collector == "otlp" and codes(event, "decode-error")
    assert event.decoded["resourceSpans"][0]["resource"]["attributes"]  # what came before the cut
    elsewhere = pipeline.process(request(cut, url="https://collector.example.test:4318/v1/traces"))
    assert elsewhere.collector != "otlp"


def test_decompression_is_bounded() -> None:
    bomb = gzip.compress(b"\x00" * 30_000_000)
    small = Pipeline(Catalogue.load(), limits=Limits(max_decompressed=1_000_000))
    event = small.process(request(bomb, headers=(*PROTOBUF, ("Content-Encoding", "gzip"))))
    assert event.collector == "otlp" and codes(event, "decode-error") and event.items == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300), st.sampled_from(sorted(otlp.ROOTS.values())))
def test_random_bytes_never_raise(data: bytes, root: str) -> None:
    value, _issues, _complete = read_message(data, root, max_depth=16)
    OTLP.items(value, request(data))
    OTLP.recognises(value)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["resourceSpans", "scopeSpans", "spans", "resource", "attributes",
                                                "key", "value", "stringValue", "arrayValue", "kvlistValue", "values",
                                                "name", "traceId", "events", "body", "sum", "dataPoints"]),
                               inner, max_size=5), max_leaves=40)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(json_values)
def test_random_json_never_raises(value: Any) -> None:
    for candidate in (value, {"resourceSpans": value}, {"resourceLogs": [{"scopeLogs": value}]},
                      {"resourceMetrics": [{"scopeMetrics": [{"metrics": value}]}]}):
        for item in OTLP.items(candidate, request(b"")):
            assert item.kind in ("span", "log", "metric")
        OTLP.recognises(candidate)


# --------------------------------------------------------------------------- on any host, and not others'

def test_recognised_on_any_host_by_path_content_type_and_parse(pipeline: Pipeline) -> None:
    body = observation("python-traces").body
    for url in ("https://collector.example.test:4318/v1/traces", "https://grafana.example.test/otlp/v1/traces"):
        event = pipeline.process(request(body, url=url))
        assert event.collector == "otlp" and len(event.items) == 2
    node = observation("node-traces-json")
    assert pipeline.process(request(node.body, url="https://x.example.test/v1/traces", headers=JSON)).collector == "otlp"
    # no content type: not said to be OTLP, so not taken for it on another host
    assert pipeline.process(request(body, url="https://collector.example.test/v1/traces", headers=())).collector != "otlp"
    # the wrong signal's schema does not parse into the right shape
    assert pipeline.process(request(body, url="https://collector.example.test/v1/metrics")).collector != "otlp"


@pytest.mark.parametrize("body", [
    b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"name": "no ids"}]}]}]}',
    b'{"resourceSpans": []}',
    b'{"batch": [{"type": "track", "event": "x", "userId": "u"}]}',
    b'{"traces": [{"traceId": "00112233445566778899aabbccddeeff"}]}',
    b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"foo": 1}]}]}]}',
])
def test_not_recognised_for_other_json(pipeline: Pipeline, body: bytes) -> None:
    event = pipeline.process(request(body, url="https://collector.example.test/v1/traces", headers=JSON))
    assert event.collector != "otlp"


def test_not_recognised_for_random_protobuf_like_bytes(pipeline: Pipeline) -> None:
    event = pipeline.process(request(b"\x0a\x02\x08\x01" * 10, url="https://collector.example.test/v1/traces"))
    assert event.collector != "otlp"


# --------------------------------------------------------------------------- the sinkhole answer

def test_sinkhole_is_an_empty_response_in_the_request_encoding() -> None:
    answer = OTLP.sinkhole(observation("python-traces"))
    assert answer.status == 200 and answer.body == b""
    assert dict(answer.headers)["Content-Type"] == "application/x-protobuf"
    answer = OTLP.sinkhole(observation("node-traces-json"))
    assert answer.status == 200 and json.loads(answer.body) == {}
    assert dict(answer.headers)["Content-Type"] == "application/json"
    traces, logs, metrics = proto()
    for cls in (traces.ExportTraceServiceResponse, logs.ExportLogsServiceResponse, metrics.ExportMetricsServiceResponse):
        response = cls()
        response.ParseFromString(b"")
        assert not response.HasField("partial_success")


# --------------------------------------------------------------------------- the real SDKs

def _exec(tmp_path: Path, argv: list[str], env: dict[str, str], *extra: str, rule: tuple[str, ...] | None = None,
          cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`telemetry-inspector exec` around an SDK script, `rules sinkhole RULE…` set first."""
    from inspector.store import Store
    store = tmp_path / "store.json"
    if rule:
        done = run_cli("rules", "sinkhole", *rule, "--store", str(store))
        assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "inspector", "exec", "--store", str(store),
                           "--confdir", str(tmp_path / "mitmproxy"), *extra, "--", *argv],
                          capture_output=True, text=True, timeout=180, env=cli_env(**env), cwd=cwd or ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    with Store(store, readonly=True) as opened:
        return done, opened.events()


def _exports(done: subprocess.CompletedProcess[str]) -> int:
    line = next(line for line in done.stdout.splitlines() if line.startswith("exports: "))
    return int(line.split(": ")[1])


def _check_events(events: list[dict[str, Any]], sent: int, kind: str, name: str, action: str = "sinkhole",
                  credential: str | None = "headers.x-honeycomb-team") -> None:
    assert sent == 1 and len(events) == sent  # intercepted, exported once: no retry
    event = events[0]
    assert event["collector"] == "otlp" and event["action"] == action
    named = [i for i in event["items"] if i["kind"] == kind and i["name"] == name]
    assert len(named) == 1, [(i["kind"], i["name"]) for i in event["items"]]
    pii = [f for f in event["findings"] if f["code"] == "pii"]
    assert [f["evidence"] for f in pii] == [EMAIL] and pii[0]["path"].startswith(named[0]["path"] + ".")
    if credential:
        assert [f["path"] for f in event["findings"] if f["code"] == "credential"] == [credential]


def _sdk_env(endpoint: str = "https://api.honeycomb.io") -> dict[str, str]:
    return {"OTEL_EXPORTER_OTLP_ENDPOINT": endpoint, "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={KEY}"}


def _needs_exporter() -> None:
    pytest.importorskip("opentelemetry.exporter.otlp.proto.http",
                        reason="opentelemetry-exporter-otlp-proto-http is not installed (requirements-sdks.txt)")


@pytest.mark.slow
@pytest.mark.parametrize("signal, kind, name", [("traces", "span", "GET /checkout 7"),
                                                ("logs", "log", "payment retried 7"),
                                                ("metrics", "metric", "orders.placed.7")])
def test_python_exporter_to_a_hosted_default_is_sinkholed(tmp_path: Path, signal: str, kind: str, name: str) -> None:
    _needs_exporter()
    done, events = _exec(tmp_path, [sys.executable, str(HERE / "send_python.py"), signal, name, EMAIL],
                         _sdk_env(), rule=("OpenTelemetry",))
    _check_events(events, _exports(done), kind, name)
    assert "Failed to export" not in done.stderr  # the SDK took the sinkhole's answer as success


@pytest.mark.slow
def test_discover_recognises_otlp_on_an_arbitrary_host(tmp_path: Path) -> None:
    _needs_exporter()
    from inspector.emit.upstream import Upstream
    host = "otlp.example-collector.test"
    with Upstream(extra_hosts=(host,)) as upstream:
        upstream_mode = ("--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                         "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}")
        argv = [sys.executable, str(HERE / "send_python.py"), "traces", "GET /discover 7", EMAIL]
        done, events = _exec(tmp_path, argv, _sdk_env(f"https://{host}:4318"), "--discover", *upstream_mode)
        _check_events(events, _exports(done), "span", "GET /discover 7", action="allow")
        assert upstream.count(host=host, path="/v1/traces") == 1
        # without --discover the host is not intercepted: no event
        (tmp_path / "plain").mkdir()
        done, events = _exec(tmp_path / "plain", argv, _sdk_env(f"https://{host}:4318"), *upstream_mode)
        assert events == []


@pytest.mark.slow
def test_host_rule_sinkholes_an_arbitrary_host_with_the_otlp_answer(tmp_path: Path) -> None:
    _needs_exporter()
    host = "otlp.example-collector.test"
    done, events = _exec(tmp_path, [sys.executable, str(HERE / "send_python.py"), "logs", "payment retried 8", EMAIL],
                         _sdk_env(f"https://{host}:4318"), rule=("--host", host))
    _check_events(events, _exports(done), "log", "payment retried 8")
    assert "Failed to export" not in done.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not (NODE / "node_modules").is_dir(), reason="tests/node/otlp/node_modules is missing (./dev setup)")
def test_js_exporter_accepts_the_sinkhole_answer_and_its_json_is_itemised(pipeline: Pipeline) -> None:
    """The JS exporter ignores proxy variables on Node 20: it sends to a local listener that
    answers what the sinkhole answers; its one request then goes through the pipeline."""
    sys.path.insert(0, str(FIXTURES / "collectors"))
    try:
        from _record import serve_local
    finally:
        sys.path.pop(0)
    answer = OTLP.sinkhole(Observation("POST", "http://x/v1/traces", JSON))
    with serve_local(answer.status, answer.body, dict(answer.headers)["Content-Type"]) as (port, seen):
        done = subprocess.run(["node", str(NODE / "send.mjs"), "GET /cart 7", EMAIL], capture_output=True, text=True,
                              timeout=120, cwd=NODE, env=cli_env(**_sdk_env(f"http://127.0.0.1:{port}")))
    assert done.returncode == 0, done.stderr
    assert _exports(done) == len(seen) == 1
    captured = seen[0]
    obs = Observation("POST", "https://api.honeycomb.io/v1/traces", tuple(tuple(h) for h in captured["headers"]),
                      base64.b64decode(captured["body_base64"]))
    event = pipeline.process(obs, action="sinkhole")
    _check_events([event.to_dict()], 1, "span", "GET /cart 7")
