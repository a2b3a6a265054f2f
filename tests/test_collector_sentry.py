"""The Sentry collector profile: envelopes recorded from sentry-sdk and @sentry/node
(fixtures/collectors/sentry/), hostile envelopes, and the real SDKs through the real proxy."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest
from collector_sdk import recorded
from conftest import FIXTURES, ROOT, cli_env, run_cli
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.core import collectors
from inspector.core.collectors.sentry import MAX_ENVELOPE_ITEMS, MAX_ITEMS, parse_envelope
from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

HERE = FIXTURES / "collectors" / "sentry"
NODE = ROOT / "tests" / "node" / "sentry"
KEY = "b2f1c3d4e5f60718293a4b5c6d7e8f90"
EMAIL = "jane.doe@example.com"
SENTRY = collectors.get("sentry")
ENVELOPE_URL = "https://o4507042.ingest.us.sentry.io/api/4507042123/envelope/"


fixture, observation = recorded("sentry")


def plain_body(name: str) -> bytes:
    """A fixture's envelope with its Content-Encoding undone (by the standard library)."""
    obs = observation(name)
    coding = obs.header("content-encoding")
    if coding == "br":
        import brotli
        return brotli.decompress(obs.body)
    return gzip.decompress(obs.body) if coding == "gzip" else obs.body


def envelope(body: bytes, url: str = ENVELOPE_URL, headers: tuple[tuple[str, str], ...] = ()) -> Observation:
    return Observation("POST", url, (("Content-Type", "application/x-sentry-envelope"), *headers), body)


def codes(event: Any, code: str) -> list[Any]:
    return [f for f in event.findings if f.code == code]


# --------------------------------------------------------------------------- the recorded fixtures

EXPECTED = {  # fixture → (kind, name) of each item
    "python-exception": [("exception", "RuntimeError: checkout failed")],
    "python-message": [("event", "cart abandoned")],
    "python-transaction": [("transaction", "process order")],
    "python-log": [("log", "order shipped")],
    "node-exception.1": [("session", "shop@1.4.2")],
    "node-exception.2": [("exception", "TypeError: payment declined")],
    "node-message.1": [("session", "shop@1.4.2")],
    "node-message.2": [("event", "cart abandoned")],  # captureMessage's synthetic exception is no exception
}


def test_every_fixture_is_listed() -> None:
    assert sorted(p.stem for p in HERE.glob("*.json")) == sorted(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_items(pipeline: Pipeline, name: str) -> None:
    event = pipeline.process(observation(name))
    assert event.collector == "sentry"
    assert [(i["kind"], i["name"]) for i in event.items] == EXPECTED[name]
    assert not codes(event, "decode-error")
    assert event.decoding[-1] == "envelope"
    if fixture(name)["sdk"].startswith("sentry-sdk"):
        assert event.decoding == ["body", "br", "envelope"]  # Python's default compression


def test_exception_item_carries_ids_properties_and_context(pipeline: Pipeline) -> None:
    event = pipeline.process(observation("python-exception"))
    item = event.items[0]
    header = event.decoded["header"]
    assert item["path"] == "items[0]"
    assert item["ids"] == {"user": "user-4711", "trace": header["trace"]["trace_id"]}
    assert item["properties"]["extra"]["contact"] == EMAIL
    assert item["properties"]["exception"] == [{"type": "RuntimeError", "value": "checkout failed",
                                                "mechanism": "generic"}]
    assert item["context"]["release"] == "shop@1.4.2" and "runtime" in item["context"]["contexts"]
    # the stack frames stay in the decoded payload, not in the item
    assert "stacktrace" not in json.dumps(item["properties"])


def test_session_and_log_items(pipeline: Pipeline) -> None:
    session = pipeline.process(observation("node-exception.1")).items[0]
    assert session["ids"] == {"session": session["ids"]["session"], "distinct": "user-4711"}
    assert session["properties"]["errors"] == 1 and session["context"]["environment"] == "test"
    log = pipeline.process(observation("python-log")).items[0]
    assert log["path"] == "items[0].payload.items[0]"
    assert log["properties"]["attributes"]["contact"] == EMAIL and log["properties"]["level"] == "info"
    assert set(log["ids"]) == {"trace"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_credentials_are_labelled_and_the_planted_email_is_pii(pipeline: Pipeline, name: str) -> None:
    event = pipeline.process(observation(name))
    credentials = {f.path for f in codes(event, "credential")}
    pii = codes(event, "pii")
    if fixture(name)["sdk"].startswith("sentry-sdk"):
        assert "headers.x-sentry-auth" in credentials
    else:
        assert "query.sentry_key" in credentials
    if "trace" in event.decoded["header"]:
        assert "header.trace.public_key" in credentials
    assert not [f for f in pii if f.path.startswith("header")]  # the key is no personal data
    if not name.endswith(".1"):  # (the sessions carry no e-mail)
        item_path = event.items[0]["path"]
        assert any(f.evidence == EMAIL and f.path.startswith(item_path + ".") for f in pii)


def test_dsn_in_the_envelope_header_is_a_credential_not_an_email(pipeline: Pipeline) -> None:
    body = plain_body("python-message")
    head, rest = body.split(b"\n", 1)
    header = json.loads(head)
    header["dsn"] = f"https://{KEY}@o4507042.ingest.us.sentry.io/4507042123"
    event = pipeline.process(envelope(json.dumps(header).encode() + b"\n" + rest))
    assert any(f.path == "header.dsn" for f in codes(event, "credential"))
    assert not [f for f in codes(event, "pii") if f.path == "header.dsn"]


def test_parser_agrees_with_sentry_sdks_own(pipeline: Pipeline) -> None:
    sdk_envelope = pytest.importorskip("sentry_sdk.envelope", reason="sentry-sdk is not installed")
    for name in EXPECTED:
        body = plain_body(name)
        theirs = sdk_envelope.Envelope.deserialize(body)
        ours = parse_envelope(body, Limits()).value
        assert ours["header"] == theirs.headers, name
        # (sentry_sdk's Item adds the content_type it infers when the header has none)
        assert [e["header"] for e in ours["items"]] == [
            {k: v for k, v in i.headers.items() if k != "content_type" or b'"content_type"' in body}
            for i in theirs.items], name
        for entry, item in zip(ours["items"], theirs.items, strict=True):
            assert entry["payload"] == json.loads(item.get_bytes()), name
            assert entry["size"] == len(item.get_bytes())


# --------------------------------------------------------------------------- hostile envelopes

def test_gzip_and_deflate_bodies_and_gzip_without_a_header(pipeline: Pipeline) -> None:
    body = plain_body("python-exception")
    for coded, headers, layers in (
            (gzip.compress(body), (("Content-Encoding", "gzip"),), ["body", "gzip", "envelope"]),
            (zlib.compress(body), (("Content-Encoding", "deflate"),), ["body", "deflate", "envelope"]),
            (gzip.compress(body), (), ["body", "gzip", "envelope"])):
        event = pipeline.process(envelope(coded, headers=headers))
        assert event.decoding == layers
        assert [i["name"] for i in event.items] == ["RuntimeError: checkout failed"]


def test_items_without_lengths_with_lengths_and_blank_lines() -> None:
    events = [{"event_id": "a" * 32, "message": "one"}, {"event_id": "b" * 32, "message": "two"}]
    first = json.dumps(events[0]).encode()
    body = (b'{"event_id":"' + b"a" * 32 + b'"}\n' + b'{"type":"event","length":%d}\n' % len(first) + first
            + b"\n\n" + b'{"type":"event"}\n' + json.dumps(events[1]).encode())  # no newline at the end
    value = parse_envelope(body, Limits()).value
    assert [e["payload"] for e in value["items"]] == events


def test_payload_holding_newlines_is_read_by_its_length() -> None:
    payload = b'{"message": "line\\none", "extra": {"a": 1}}'
    pretty = json.dumps(json.loads(payload), indent=2).encode()  # newlines inside the payload
    body = b'{}\n{"type":"event","length":%d}\n' % len(pretty) + pretty + b'\n{"type":"client_report"}\n{"discarded_events":[]}\n'
    value = parse_envelope(body, Limits()).value
    assert value["items"][0]["payload"]["extra"] == {"a": 1}
    assert value["items"][1]["header"]["type"] == "client_report"


@pytest.mark.parametrize("declared", [10, 10**15])
def test_length_past_the_end_is_truncated_not_read_beyond(pipeline: Pipeline, declared: int) -> None:
    body = b'{"event_id":"' + b"c" * 32 + b'"}\n{"type":"attachment","length":%d}\nabc' % declared
    decoded = parse_envelope(body, Limits())
    entry = decoded.value["items"][0]
    assert entry["size"] == 3 and entry["truncated"] is True and "payload" not in entry
    assert any("truncated" in i.message for i in decoded.issues)
    event = pipeline.process(envelope(body))
    assert event.collector == "sentry" and codes(event, "decode-error")
    assert event.items[0]["kind"] == "attachment" and event.items[0]["properties"]["size"] == 3


def test_truncated_envelope_keeps_what_came_before(pipeline: Pipeline) -> None:
    body = plain_body("python-transaction")
    event = pipeline.process(envelope(body[: len(body) // 2]))
    assert event.collector == "sentry"
    assert event.decoded["header"]["event_id"]  # the header line survived
    assert codes(event, "decode-error")


@pytest.mark.parametrize("length", ["12", -1, True, 1.5, None])
def test_bad_lengths(length: Any) -> None:
    header = {"type": "event"} if length is None else {"type": "event", "length": length}
    body = b"{}\n" + json.dumps(header).encode() + b'\n{"message":"x"}\n'
    decoded = parse_envelope(body, Limits())
    if length is None:
        assert decoded.value["items"][0]["payload"] == {"message": "x"}
    else:
        assert decoded.value["items"] == [] and decoded.issues


def test_binary_attachment_is_recorded_by_size_never_decoded(pipeline: Pipeline) -> None:
    blob = bytes(range(256)) * 4 + b"\n\n{not json"
    text_attachment = f"contact: {EMAIL}".encode()
    body = (b'{"event_id":"' + b"d" * 32 + b'"}\n'
            + b'{"type":"attachment","length":%d,"filename":"core.dmp","attachment_type":"event.minidump"}\n' % len(blob)
            + blob + b"\n"
            + b'{"type":"attachment","length":%d,"filename":"notes.txt","content_type":"text/plain"}\n'
            % len(text_attachment) + text_attachment + b"\n")
    event = pipeline.process(envelope(body))
    assert [(i["kind"], i["name"], i["properties"]["size"]) for i in event.items] == [
        ("attachment", "core.dmp", len(blob)), ("attachment", "notes.txt", len(text_attachment))]
    assert all("payload" not in e for e in event.decoded["items"])
    assert not codes(event, "decode-error")


def test_header_lines_that_are_not_json_objects(pipeline: Pipeline) -> None:
    assert parse_envelope(b"[1, 2]\n{}\n", Limits()).value is None
    assert not parse_envelope(b"\xff\xfe garbage", Limits()).structured
    decoded = parse_envelope(b'{}\n{"type":"event"}\n{}\n["not an item header"]\n{}\n', Limits())
    assert len(decoded.value["items"]) == 1 and decoded.issues
    event = pipeline.process(envelope(b"plain text, no envelope"))
    assert event.collector == "sentry" and event.items == [] and codes(event, "decode-error")


def test_deep_nesting_and_many_items_are_bounded() -> None:
    deep = b"[" * 5000 + b"]" * 5000
    decoded = parse_envelope(b'{}\n{"type":"event"}\n' + deep + b"\n", Limits())
    assert "payload" not in decoded.value["items"][0] and decoded.issues
    many = b"{}\n" + b'{"type":"client_report"}\n{}\n' * (MAX_ENVELOPE_ITEMS + 50)
    decoded = parse_envelope(many, Limits())
    assert len(decoded.value["items"]) == MAX_ENVELOPE_ITEMS
    assert any("more than" in i.message for i in decoded.issues)
    logs = {"version": 2, "items": [{"body": f"log {i}", "level": "info"} for i in range(MAX_ITEMS + 500)]}
    body = b'{}\n{"type":"log"}\n' + json.dumps(logs).encode() + b"\n"
    items = SENTRY.items(parse_envelope(body, Limits()).value, envelope(body))
    assert len(items) == MAX_ITEMS and items[-1].path == f"items[0].payload.items[{MAX_ITEMS - 1}]"


def test_decompression_is_bounded(pipeline: Pipeline) -> None:
    bomb = gzip.compress(b"{}\n" + b" " * 50_000_000)
    small = Pipeline(Catalogue.load(), limits=Limits(max_decompressed=1_000_000))
    event = small.process(envelope(bomb, headers=(("Content-Encoding", "gzip"),)))
    assert event.collector == "sentry" and codes(event, "decode-error") and event.items == []


def test_wrong_types_everywhere_give_fewer_items_never_an_error(pipeline: Pipeline) -> None:
    odd_payloads = [
        {"exception": "boom", "user": "not an object", "contexts": [], "message": {"formatted": 5}},
        {"exception": {"values": [None, 3, {"type": ["x"], "value": {"a": 1}, "mechanism": "str"}]}},
        {"exception": {"values": {"type": "X"}}, "logentry": {"message": "from logentry"}},
        [1, 2, 3], "text", 12, None,
    ]
    lines = [b"{}"]
    for kind in ("event", "transaction", "session", "sessions", "log", "span", "check_in", "client_report",
                 "replay_event", "feedback", "trace_metric", "profile", "unknown_type"):
        for payload in odd_payloads:
            lines += [json.dumps({"type": kind}).encode(), json.dumps(payload).encode()]
    event = pipeline.process(envelope(b"\n".join(lines) + b"\n"))
    assert event.collector == "sentry" and not [f for f in event.findings if "internal error" in f.message]
    names = [i["name"] for i in event.items if i["kind"] == "event"]
    assert "from logentry" in names


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_random_bytes_never_raise(data: bytes) -> None:
    decoded = parse_envelope(data, Limits(max_depth=16))
    SENTRY.items(decoded.value, envelope(data))
    SENTRY.recognises(decoded.value)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                               st.sampled_from(["type", "items", "exception", "values", "user", "attrs", "body",
                                                "contexts", "trace", "trace_id", "message", "attributes", "value"]),
                               inner, max_size=5), max_leaves=30)


@pytest.mark.slow
@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["event", "transaction", "session", "log", "span", "attachment",
                                          "check_in", "replay_event", "x"]), json_values), max_size=5))
def test_random_envelopes_never_raise(entries: list[tuple[str, Any]]) -> None:
    body = b"{}\n" + b"".join(json.dumps({"type": t}).encode() + b"\n" + json.dumps(p).encode() + b"\n"
                              for t, p in entries)
    value = parse_envelope(body, Limits()).value
    for item in SENTRY.items(value, envelope(body)):
        assert item.kind in collectors.base.KINDS


# --------------------------------------------------------------------------- on any host, and not others'

def test_recognised_on_a_self_hosted_sentry_by_endpoint_and_shape(pipeline: Pipeline) -> None:
    body = plain_body("python-exception")
    event = pipeline.process(envelope(body, url="https://sentry.internal.example.test/api/7/envelope/"))
    assert event.collector == "sentry" and event.items[0]["kind"] == "exception"
    # a DSN with a path prefix
    event = pipeline.process(envelope(body, url="https://example.test/errors/api/7/envelope/"))
    assert event.collector == "sentry"


@pytest.mark.parametrize("body", [
    b'{"batch": [{"type": "track", "event": "x", "userId": "u"}]}',
    b'{"api_key": "phc_x", "batch": [{"event": "$pageview", "properties": {"distinct_id": "d"}}]}',
    b'{"resourceSpans": []}',
    b'{"header": {"a": 1}, "items": [{"header": {"kind": "x"}}]}',
    b"{}\n{\"type\": \"not-a-sentry-type\"}\n{}\n",
])
def test_not_recognised_for_other_payloads_on_other_hosts(pipeline: Pipeline, body: bytes) -> None:
    event = pipeline.process(envelope(body, url="https://example.test/api/7/envelope/"))
    assert event.collector != "sentry"


def test_legacy_store_endpoint_is_one_event(pipeline: Pipeline) -> None:
    payload = plain_body("python-message").split(b"\n")[2]
    obs = Observation("POST", "https://o1.ingest.sentry.io/api/5/store/?sentry_key=" + KEY,
                      (("Content-Type", "application/json"),), payload)
    event = pipeline.process(obs)
    assert event.collector == "sentry" and [(i["kind"], i["name"], i["path"]) for i in event.items] == [
        ("event", "cart abandoned", "")]
    assert any(f.path == "query.sentry_key" for f in codes(event, "credential"))


# --------------------------------------------------------------------------- the sinkhole answer

def test_sinkhole_answers_the_event_id_or_an_empty_object() -> None:
    for name in ("python-exception", "node-exception.2"):
        obs = observation(name)
        answer = SENTRY.sinkhole(obs)
        event_id = json.loads(plain_body(name).split(b"\n", 1)[0])["event_id"]
        assert answer.status == 200 and json.loads(answer.body) == {"id": event_id}
    for obs in (observation("python-exception", body=b""), observation("node-exception.1"),
                envelope(b"\x1f\x8b garbage", headers=(("Content-Encoding", "gzip"),)), envelope(b"[[[[" * 1000)):
        answer = SENTRY.sinkhole(obs)
        assert answer.status == 200 and answer.body == b"{}"
    headers = {k.lower() for k, _ in SENTRY.sinkhole(observation("python-exception")).headers}
    assert "x-sentry-rate-limits" not in headers and "retry-after" not in headers


# --------------------------------------------------------------------------- the real SDKs, through the proxy

def _exec(tmp_path: Path, argv: list[str], env: dict[str, str], *extra: str, rule: bool = True,
          cwd: Path | None = None) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`telemetry-inspector exec` around an SDK script, with `rules sinkhole Sentry` set first."""
    from inspector.store import Store
    store = tmp_path / "store.json"
    if rule:
        done = run_cli("rules", "sinkhole", "Sentry", "--store", str(store))
        assert done.returncode == 0 and "vendor" in done.stdout, done.stderr
    done = subprocess.run([sys.executable, "-m", "inspector", "exec", "--store", str(store),
                           "--confdir", str(tmp_path / "mitmproxy"), *extra, "--", *argv],
                          capture_output=True, text=True, timeout=180, env=cli_env(**env), cwd=cwd or ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    with Store(store, readonly=True) as opened:
        return done, opened.events()


def _sent(done: subprocess.CompletedProcess[str]) -> int:
    """How many envelopes the script says its SDK sent."""
    line = next(line for line in done.stdout.splitlines() if line.startswith("envelopes: "))
    return int(line.split(": ")[1])


def _check_events(events: list[dict[str, Any]], sent: int, name: str, action: str = "sinkhole") -> None:
    assert sent >= 1 and len(events) == sent  # intercepted, each envelope once: no retry
    assert {e["collector"] for e in events} == {"sentry"}
    assert {e["action"] for e in events} == {action}
    named = [(e, i) for e in events for i in e["items"] if i["name"] and name in i["name"]]
    assert len(named) == 1, [i["name"] for e in events for i in e["items"]]
    event, item = named[0]
    pii = [f for f in event["findings"] if f["code"] == "pii" and f["evidence"] == EMAIL]
    assert pii and all(f["path"].startswith(item["path"] + ".") for f in pii)
    credentials = [f for f in event["findings"] if f["code"] == "credential"]
    assert credentials and not [f for f in event["findings"] if f["code"] == "pii" and KEY in str(f["evidence"])]
    assert any(f["path"] in ("headers.x-sentry-auth", "query.sentry_key") for f in credentials)


@pytest.mark.slow
@pytest.mark.parametrize("mode, name", [("exception", "checkout failed 7"), ("transaction", "process order 7"),
                                        ("log", "order shipped 7")])
def test_python_sdk_through_the_proxy_is_sinkholed(tmp_path: Path, mode: str, name: str) -> None:
    pytest.importorskip("sentry_sdk", reason="sentry-sdk is not installed (./dev setup installs requirements-sdks.txt)")
    dsn = f"https://{KEY}@o4507042.ingest.us.sentry.io/4507042123"
    done, events = _exec(tmp_path, [sys.executable, str(HERE / "send_python.py"), mode, name, EMAIL],
                         {"SENTRY_DSN": dsn})
    _check_events(events, _sent(done), name)
    assert "Unexpected status code" not in done.stderr  # the SDK took the sinkhole's answer as success


@pytest.mark.slow
def test_python_sdk_allowed_reaches_the_upstream(tmp_path: Path) -> None:
    pytest.importorskip("sentry_sdk", reason="sentry-sdk is not installed")
    from inspector.emit.upstream import Upstream
    host = "o4507042.ingest.us.sentry.io"
    with Upstream(extra_hosts=(host,)) as upstream:
        done, events = _exec(tmp_path, [sys.executable, str(HERE / "send_python.py"), "exception", "allowed 7", EMAIL],
                             {"SENTRY_DSN": f"https://{KEY}@{host}/4507042123"},
                             "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                             "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}", rule=False)
        assert upstream.count(host=host) == _sent(done) == 1
    _check_events(events, 1, "allowed 7", action="allow")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not (NODE / "node_modules").is_dir(), reason="tests/node/sentry/node_modules is missing (./dev setup)")
def test_node_sdk_through_the_proxy_is_sinkholed(tmp_path: Path) -> None:
    dsn = f"https://{KEY}@o4507042.ingest.de.sentry.io/4507042456"
    done, events = _exec(tmp_path, ["node", str(NODE / "send.mjs"), "exception", "payment declined 7", EMAIL],
                         {"SENTRY_DSN": dsn}, cwd=NODE)
    sent = _sent(done)
    assert sent == 2  # the error event and the release-health session it ended
    _check_events(events, sent, "payment declined 7")
    assert sorted(i["kind"] for e in events for i in e["items"]) == ["exception", "session"]
