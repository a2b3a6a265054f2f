"""The PostHog collector profile: on requests recorded from its real SDKs (fixtures/collectors/posthog),
on hostile variants of them, and with the real SDKs (PyPI posthog, npm posthog-node) sending
through `telemetry-inspector exec` with a sinkhole rule."""

from __future__ import annotations

import base64
import gzip
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from collector_sdk import code_set as codes
from collector_sdk import recorded
from conftest import ROOT, run_cli

from inspector.core import collectors
from inspector.core.collectors.posthog import MAX_ITEMS, LZError, PostHog, lz_decompress_base64
from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

FIXTURES = ROOT / "fixtures" / "collectors" / "posthog"
NODE = ROOT / "tests" / "node" / "posthog"
EMAIL = "jane.doe@example.com"
TOKEN = "phc_TestProjectToken0123456789abcdefABCDEF"


fixture, observation = recorded("posthog")


# ---------------------------------------------------------------- the profile

def test_registered_on_the_sdks_default_hosts_and_endpoints():
    profile = collectors.get("posthog")
    assert isinstance(profile, PostHog) and profile.title == "PostHog"
    for host in ("us.i.posthog.com", "eu.i.posthog.com", "app.posthog.com", "eu.posthog.com"):
        assert collectors.for_request(host, "POST", "/batch/") is profile
    for path in ("/e/", "/i/v0/e/", "/capture/", "/track/", "/engage/", "/batch", "/s/", "/decide/", "/flags/",
                 "/i/v1/analytics/events"):
        assert profile.endpoint("POST", path), path
    assert not profile.endpoint("POST", "/api/projects/")
    assert collectors.for_request("us.i.posthog.com", "POST", "/api/projects/") is None


# (fixture, decoding, [(kind, name, path)], ids of the first item, the e-mail's path, the credential's path)
CASES = [
    ("python-capture", ["body", "json"], [("track", "order completed", "batch[0]")], {"distinct": "user-42"},
     "batch[0].properties.email", "api_key"),
    ("python-batch", ["body", "json"], [("track", "step viewed", "batch[0]"), ("track", "step viewed 1", "batch[1]"),
                                        ("track", "step viewed 2", "batch[2]")], {"distinct": "user-42"},
     "batch[2].properties.email", "api_key"),
    ("python-gzip", ["body", "gzip", "json"], [("track", "order completed", "batch[0]")], {"distinct": "user-42"},
     "batch[0].properties.email", "api_key"),
    ("python-identify", ["body", "json"], [("identify", "$set", "batch[0]")], {"distinct": "user-42"},
     "batch[0].$set.email", "api_key"),
    ("python-flags", ["body", "json"], [("flags", None, "")], {"distinct": "user-42"},
     "person_properties.email", "api_key"),
    ("node-capture", ["body", "gzip", "json"], [("track", "order completed", "batch[0]")], {"distinct": "user-42"},
     "batch[0].properties.email", "api_key"),
    ("node-flags", ["body", "json"], [("flags", None, "")], {"distinct": "user-42"},
     "person_properties.email", "token"),
    ("js-lz64", ["form:data", "lz-string", "json"], [("page", "$pageview", "[0]")],
     {"distinct": "user-42", "device": "device-7", "session": "session-9"}, "[0].properties.email",
     "[0].properties.token"),
]


@pytest.mark.parametrize("name, decoding, items, ids, pii, credential", CASES, ids=[c[0] for c in CASES])
def test_recorded_requests_decode_itemise_and_label_the_token(pipeline, name, decoding, items, ids, pii, credential):
    event = pipeline.process(observation(name))
    assert event.collector == "posthog" and event.policy is None
    assert event.decoding == decoding
    assert [(i["kind"], i["name"], i["path"]) for i in event.items] == items
    assert event.items[0]["ids"] == ids
    found = codes(event)
    assert ("pii", pii) in found
    assert pii.startswith(items[-1][2] or "")  # the e-mail is inside its item
    assert ("credential", credential) in found and ("pii", credential) not in found
    assert not any(f.code == "decode-error" for f in event.findings)


def test_the_lz64_fixture_holds_what_was_compressed(pipeline):
    event = pipeline.process(observation("js-lz64"))
    assert event.decoded[0]["properties"]["title"] == "Käse 😀"  # UTF-16 surrogate pairs joined


def test_items_carry_properties_and_the_records_other_fields(pipeline):
    event = pipeline.process(observation("python-capture"))
    item = event.items[0]
    assert item["properties"]["email"] == EMAIL and item["properties"]["$lib"] == "posthog-python"
    assert {"uuid", "timestamp", "distinct_id"} <= set(item["context"]) and "properties" not in item["context"]


@pytest.mark.parametrize("name", ["python-capture", "python-gzip", "node-capture", "python-flags", "js-lz64"])
def test_recognised_by_shape_on_a_self_hosted_instance(pipeline, name):
    data = fixture(name)
    url = data["url"].replace("us.i.posthog.com", "posthog.internal.example")
    event = pipeline.process(observation(name, url))
    assert event.collector == "posthog" and event.items


def test_does_not_claim_other_collectors_payloads():
    profile = PostHog()
    mixpanel = {"event": "Order", "properties": {"token": "t", "distinct_id": "u", "time": 1, "mp_lib": "python"}}
    amplitude = {"api_key": "k", "events": [{"event_type": "Order", "user_id": "u"}]}
    segment = {"batch": [{"type": "track", "event": "Order", "userId": "u", "messageId": "m"}], "writeKey": "w"}
    for payload in (mixpanel, [mixpanel], amplitude, segment, {"event": "x"}, [], {}, "text", None, 7):
        assert not profile.recognises(payload), payload
    assert profile.recognises({"api_key": TOKEN, "batch": [{"event": "e", "distinct_id": "u", "properties": {}}]})
    assert profile.recognises([{"event": "$pageview", "uuid": "1", "properties": {"$lib": "web"}}])


# ---------------------------------------------------------------- posthog-js encodings (request.js)

JS_EVENTS = [{"uuid": "0190", "event": "$autocapture", "timestamp": "2026-12-02T10:00:00Z",
              "properties": {"$lib": "web", "token": TOKEN, "distinct_id": "d1", "$device_id": "dev",
                             "$session_id": "s1", "$set": {"email": EMAIL}}}]


def test_posthog_js_gzip_js_text_plain_without_content_encoding(pipeline):
    obs = Observation("POST", "https://us.i.posthog.com/e/?ip=0&_=1764669600000&ver=1.449.2&compression=gzip-js",
                      (("Content-Type", "text/plain"),), gzip.compress(json.dumps(JS_EVENTS).encode(), mtime=0))
    event = pipeline.process(obs)
    assert event.decoding == ["body", "gzip", "json"]
    assert [(i["kind"], i["name"], i["ids"].get("session")) for i in event.items] == [("track", "$autocapture", "s1")]
    assert ("pii", "[0].properties.$set.email") in codes(event)


def test_posthog_js_base64_form_is_unwrapped(pipeline):
    body = "data=" + quote(base64.b64encode(json.dumps(JS_EVENTS).encode()).decode(), safe="")
    obs = Observation("POST", "https://us.i.posthog.com/e/?compression=base64",
                      (("Content-Type", "application/x-www-form-urlencoded"),), body.encode())
    event = pipeline.process(obs)
    assert event.decoding == ["form:data", "base64", "json"]
    assert event.items[0]["name"] == "$autocapture" and ("credential", "[0].properties.token") in codes(event)


def test_a_get_with_data_in_the_query(pipeline):
    data = base64.b64encode(json.dumps(JS_EVENTS[0]).encode()).decode()
    event = pipeline.process(Observation("GET", f"https://us.i.posthog.com/e/?data={quote(data)}&token={TOKEN}"))
    assert event.collector == "posthog" and event.items[0]["path"] == ""
    assert ("credential", "query.token") in codes(event) and ("credential", "properties.token") in codes(event)


def test_an_engage_people_update(pipeline):
    body = json.dumps({"$set": {"email": EMAIL}, "$token": TOKEN, "$distinct_id": "d1"}).encode()
    event = pipeline.process(Observation("POST", "https://us.i.posthog.com/engage/", (), body))
    assert [(i["kind"], i["name"], i["ids"]) for i in event.items] == [("identify", "$set", {"distinct": "d1"})]
    assert ("credential", "$token") in codes(event) and ("pii", "$set.email") in codes(event)


# ---------------------------------------------------------------- lz-string

def test_lz_string_matches_npm_lz_string_on_varied_text():
    node = shutil.which("node")
    if node is None or not (NODE / "node_modules" / "lz-string").is_dir():
        pytest.skip("npm lz-string not installed (run ./dev setup: npm ci in tests/node/posthog)")
    texts = ["", "a", "ab" * 700, json.dumps(JS_EVENTS), "€ 😀 \u0000 \uffff " * 40,
             "".join(chr(32 + (i * 7919) % 5000) for i in range(3000))]
    script = ("const LZ=require('lz-string');let s='';process.stdin.on('data',d=>s+=d).on('end',()=>"
              "process.stdout.write(JSON.stringify(JSON.parse(s).map(t=>LZ.compressToBase64(t)))))")
    out = subprocess.run([node, "-e", script], input=json.dumps(texts), capture_output=True, text=True,
                         cwd=NODE, timeout=60, check=True).stdout
    for plain, compressed in zip(texts, json.loads(out), strict=True):
        assert lz_decompress_base64(compressed, 10_000_000) == plain


@pytest.mark.parametrize("data, why", [
    ("NobwRA!!", "character"),                  # not lz-string Base64
    ("N", "truncated"),                          # stops mid-stream
    ("////////////////", "bad first code"),      # neither a character code nor the end
    ("AAsA", "names no entry"),                  # a back-reference past the dictionary
])
def test_lz_string_refuses_malformed_input(data, why):
    with pytest.raises(LZError, match=why):
        lz_decompress_base64(data, 1_000_000)


def test_lz_string_output_is_bounded():
    # the classic LZW worst case: each code one longer than the last, output quadratic in input
    compressed = _lz_compress("a" * 200_000)
    assert len(compressed) < 2_000
    assert lz_decompress_base64(compressed, 10_000_000) == "a" * 200_000
    with pytest.raises(LZError, match="exceeds the limit"):
        lz_decompress_base64(compressed, 10_000)


def test_a_hostile_lz64_request_is_a_decode_error_not_an_exception():
    tight = Pipeline(Catalogue.load(), limits=Limits(max_decompressed=5_000))
    body = ("data=" + quote(_lz_compress("[" + "1," * 50_000 + "1]"), safe="") + "&compression=lz64").encode()
    event = tight.process(Observation("POST", "https://us.i.posthog.com/e/",
                                      (("Content-Type", "application/x-www-form-urlencoded"),), body))
    assert event.collector == "posthog" and event.items == []
    assert any(f.code == "decode-error" and "exceeds the limit" in f.message for f in event.findings)


def _lz_compress(text: str) -> str:
    """lz-string's compressToBase64 (a direct port, for building inputs)."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
    bits_per_char = 6
    dictionary: dict[str, int] = {}
    to_create: set[str] = set()
    w, enlarge_in, dict_size, num_bits = "", 2, 3, 2
    out: list[str] = []
    val, pos = 0, 0

    def write(value: int, count: int) -> None:
        nonlocal val, pos
        for _ in range(count):
            val = (val << 1) | (value & 1)
            if pos == bits_per_char - 1:
                pos = 0
                out.append(alphabet[val])
                val = 0
            else:
                pos += 1
            value >>= 1

    def emit(word: str) -> None:
        nonlocal enlarge_in, num_bits
        if word in to_create:
            code = ord(word[0])
            if code < 256:
                write(0, num_bits)
                write(code, 8)
            else:
                write(1, num_bits)
                write(code, 16)
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in, num_bits = 1 << num_bits, num_bits + 1
            to_create.discard(word)
        else:
            write(dictionary[word], num_bits)
        enlarge_in -= 1
        if enlarge_in == 0:
            enlarge_in, num_bits = 1 << num_bits, num_bits + 1

    for c in text:
        if c not in dictionary:
            dictionary[c] = dict_size
            dict_size += 1
            to_create.add(c)
        wc = w + c
        if wc in dictionary:
            w = wc
        else:
            emit(w)
            dictionary[wc] = dict_size
            dict_size += 1
            w = c
    if w:
        emit(w)
    write(2, num_bits)
    while True:
        val <<= 1
        if pos == bits_per_char - 1:
            out.append(alphabet[val])
            break
        pos += 1
    result = "".join(out)
    return result + "=" * (-len(result) % 4)


# ---------------------------------------------------------------- hostile payloads

HOSTILE: list[Any] = [
    {"batch": "not a list", "api_key": 5},
    {"batch": [1, "a", None, [], {"event": 5}, {"event": None, "properties": "x"}], "api_key": TOKEN},
    {"batch": [{"event": "e", "properties": ["not", "a", "dict"], "distinct_id": {"nested": 1}}]},
    [{"event": "e", "properties": {"distinct_id": ["x"], "$session_id": 1.5, "$device_id": True}}],
    {"event": {"name": "x"}, "properties": None},
    "just text", 12, None, [],
]


@pytest.mark.parametrize("payload", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
@pytest.mark.parametrize("path", ["/batch/", "/e/", "/flags/?v=2"])
def test_wrong_types_anywhere_never_raise(pipeline, payload, path):
    obs = Observation("POST", f"https://us.i.posthog.com{path}", (), json.dumps(payload).encode())
    event = pipeline.process(obs)
    assert event.collector == "posthog"
    assert not any("internal error" in f.message for f in event.findings)
    for item in event.items:
        assert all(isinstance(v, str) for v in item["ids"].values())


def test_a_huge_batch_is_itemised_up_to_the_bound(pipeline):
    batch = [{"event": f"e{i}", "distinct_id": "u"} for i in range(MAX_ITEMS + 500)]
    event = pipeline.process(Observation("POST", "https://us.i.posthog.com/batch/", (),
                                         json.dumps({"api_key": TOKEN, "batch": batch}).encode()))
    assert len(event.items) == MAX_ITEMS
    assert any(f.code == "decode-error" and "only the first" in f.message for f in event.findings)


@pytest.mark.parametrize("body, headers", [
    (b"[" * 100_000 + b"]" * 100_000, ()),                                    # nesting far past max_depth
    (b"\x1f\x8b\x08\x00garbage", ()),                                          # a broken gzip (sniffed)
    (gzip.compress(b"{" * 10), (("Content-Encoding", "gzip"),)),               # gzip of broken JSON
    (b"data=%ZZ%%&compression=lz64", (("Content-Type", "application/x-www-form-urlencoded"),)),
    (b"data=\xff\xfe&compression=base64", (("Content-Type", "application/x-www-form-urlencoded"),)),
    (b"\x00\x01\x02binary", ()),
])
def test_undecodable_bodies_are_decode_errors(pipeline, body, headers):
    event = pipeline.process(Observation("POST", "https://us.i.posthog.com/e/", headers, body))
    assert event.collector == "posthog" and event.items == []
    assert any(f.code == "decode-error" for f in event.findings)
    assert not any("internal error" in f.message for f in event.findings)


@pytest.mark.slow
def test_timing_stays_linear_on_a_large_batch(pipeline):
    """Eight times the events, about eight times the time (a quadratic step would take 64x)."""
    import gc

    def took(n: int) -> float:
        body = json.dumps({"api_key": TOKEN, "batch": [{"event": "e", "distinct_id": "u", "properties": {"i": i}}
                                                        for i in range(n)]}).encode()
        obs = Observation("POST", "https://us.i.posthog.com/batch/", (), body)
        gc.collect()
        start = time.thread_time()  # this thread's CPU: neither the machine's load nor other threads count
        pipeline.process(obs)
        return time.thread_time() - start
    took(500)
    small, large = min(took(1_000) for _ in range(3)), min(took(8_000) for _ in range(3))
    assert large < small * 24


# ---------------------------------------------------------------- sinkhole answers

def test_sinkhole_answers_by_endpoint():
    profile = PostHog()
    answer = profile.sinkhole(Observation("POST", "https://us.i.posthog.com/batch/"))
    assert answer.status == 200 and json.loads(answer.body) == {"status": 1}
    flags = json.loads(profile.sinkhole(Observation("POST", "https://us.i.posthog.com/flags/?v=2")).body)
    assert flags["flags"] == {} and flags["featureFlags"] == {} and flags["errorsWhileComputingFlags"] is False
    assert json.loads(profile.sinkhole(Observation("POST", "https://us.i.posthog.com/decide/?v=3")).body)["featureFlags"] == {}
    assert json.loads(profile.sinkhole(Observation("POST", "https://us.i.posthog.com/i/v1/analytics/events")).body) \
        == {"results": {}}
    script = profile.sinkhole(Observation("GET", "https://us-assets.i.posthog.com/static/array.js"))
    assert script.body == b"" and ("Content-Type", "application/javascript") in script.headers


def test_the_flags_answer_is_what_the_python_sdk_parses_without_warning():
    pytest.importorskip("posthog", reason="the posthog SDK is not installed (./dev setup)")
    from posthog.types import _has_untyped_flag_records, normalize_flags_response
    body = json.loads(PostHog().sinkhole(Observation("POST", "https://us.i.posthog.com/flags/?v=4")).body)
    assert not _has_untyped_flag_records(body)
    assert normalize_flags_response(body)["flags"] == {}


def test_the_v1_answer_is_a_success_with_nothing_to_retry():
    pytest.importorskip("posthog", reason="the posthog SDK is not installed (./dev setup)")
    import requests
    from posthog.capture_v1 import _parse_v1_response
    response = requests.models.Response()
    response.status_code = 200
    response._content = PostHog().sinkhole(Observation("POST", "https://us.i.posthog.com/i/v1/analytics/events")).body
    parsed = _parse_v1_response(response)
    assert parsed.is_success and parsed.results == {} and not parsed.malformed


# ---------------------------------------------------------------- the real SDKs through the proxy

def _run_sdk(tmp_path: Path, argv: list[str], cwd: Path | None = None,
             extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run an SDK script under `telemetry-inspector exec` (PostHog sinkholed beforehand, unless
    `extra` says otherwise); its result and the events the store got."""
    from inspector.store import Store
    store = tmp_path / "store.json"
    if not extra:
        rule = run_cli("rules", "sinkhole", "PostHog", "--store", str(store))
        assert rule.returncode == 0, rule.stderr
    done = run_cli("exec", "--store", str(store), "--confdir", str(tmp_path / "mitmproxy"), *extra, "--", *argv,
                   timeout=180, cwd=cwd)
    assert done.returncode == 0, done.stdout + done.stderr
    with Store(store, readonly=True) as opened:
        return done, opened.events()


def _assert_posthog_event(event: dict[str, Any], names: list[str | None], credential: str) -> None:
    assert event["collector"] == "posthog"
    assert [i["name"] for i in event["items"]] == names
    pii = [f["path"] for f in event["findings"] if f["code"] == "pii" and EMAIL in str(f.get("evidence"))]
    assert pii and all(any(p.startswith(i["path"]) for i in event["items"]) for p in pii)
    assert any(f["code"] == "credential" and f["path"] == credential for f in event["findings"])
    assert not any(f["code"] == "pii" and f["path"] == credential for f in event["findings"])


PYTHON_RUNS = [
    ("capture", "checkout done", ["checkout done"], "api_key"),
    ("batch", "tour step", ["tour step", "tour step 1", "tour step 2"], "api_key"),
    ("gzip", "checkout done", ["checkout done"], "api_key"),
    ("identify", "-", ["$set"], "api_key"),
    ("flags", "new-checkout", [None], "api_key"),
]


@pytest.mark.slow
@pytest.mark.parametrize("mode, name, names, credential", PYTHON_RUNS, ids=[r[0] for r in PYTHON_RUNS])
def test_the_python_sdk_through_the_proxy(tmp_path, mode, name, names, credential):
    pytest.importorskip("posthog", reason="the posthog SDK is not installed (./dev setup installs requirements-sdks.txt)")
    done, events = _run_sdk(tmp_path, [sys.executable, str(FIXTURES / "send_python.py"), mode, name, EMAIL])
    assert len(events) == 1, [e["url"] for e in events]  # one request: accepted, never retried
    event = events[0]
    assert event["action"] == "sinkhole" and event["host"] == "us.i.posthog.com"
    _assert_posthog_event(event, names, credential)
    if mode == "flags":
        assert "flag=None" in done.stdout  # the empty flags answer was parsed


NODE_RUNS = [("capture", "checkout done", ["checkout done"], "api_key", "/batch/"),
             ("flags", "new-checkout", [None], "token", "/flags/")]


@pytest.mark.slow
@pytest.mark.parametrize("mode, name, names, credential, path", NODE_RUNS, ids=[r[0] for r in NODE_RUNS])
def test_posthog_node_through_the_proxy(tmp_path, mode, name, names, credential, path):
    if not (NODE / "node_modules" / "posthog-node").is_dir() or shutil.which("node") is None:
        pytest.skip("posthog-node is not installed (./dev setup runs npm ci in tests/node/posthog)")
    node = ["node", "--no-warnings", "--import", str(NODE / "env-proxy.mjs"), str(NODE / "send.mjs"), mode, name, EMAIL]
    done, events = _run_sdk(tmp_path, node, cwd=NODE)
    assert "sent" in done.stdout
    assert len(events) == 1, [e["url"] for e in events]
    assert events[0]["path"] == path and events[0]["action"] == "sinkhole"
    _assert_posthog_event(events[0], names, credential)


@pytest.mark.slow
def test_the_python_sdk_allowed_reaches_the_upstream_once(tmp_path):
    pytest.importorskip("posthog", reason="the posthog SDK is not installed (./dev setup installs requirements-sdks.txt)")
    from inspector.emit.upstream import Upstream
    with Upstream(extra_hosts=("us.i.posthog.com",)) as up:
        extra = ("--mode", f"upstream:http://127.0.0.1:{up.port}", "--set", f"ssl_verify_upstream_trusted_ca={up.ca_file}")
        _, events = _run_sdk(tmp_path, [sys.executable, str(FIXTURES / "send_python.py"), "capture", "paid", EMAIL],
                             extra=extra)
        assert up.count("us.i.posthog.com", "/batch/") == 1
    assert len(events) == 1 and events[0]["action"] == "allow" and events[0]["response_status"] == 200
    _assert_posthog_event(events[0], ["paid"], "api_key")


# ---------------------------------------------------------------- strict against every other collector

OTHERS = sorted(p for p in (ROOT / "fixtures" / "collectors").glob("*/*.json") if p.parent.name != "posthog")


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_other_collectors_recorded_request_is_taken_for_posthog(pipeline, path):
    data = json.loads(path.read_text())
    obs = Observation(data["method"], data["url"], tuple((k, v) for k, v in data["headers"]),
                      base64.b64decode(data["body_base64"]))
    profile = PostHog()
    assert not profile.recognises(profile.decode(obs, pipeline).value)
    assert not profile.recognises(pipeline.decode_auto(obs).value)
