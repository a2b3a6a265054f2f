"""The Amplitude collector profile: on requests recorded from its real Python SDK
(fixtures/collectors/amplitude), on amplitude-js's legacy form as its source writes it, on
hostile variants, and with the real SDK sending through `telemetry-inspector exec`."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import sys
from typing import Any
from urllib.parse import quote

import pytest
from collector_sdk import code_set as codes
from collector_sdk import recorded
from conftest import ROOT, run_cli

from inspector.core import collectors
from inspector.core.collectors.amplitude import MAX_ITEMS, Amplitude
from inspector.core.observation import Observation

FIXTURES = ROOT / "fixtures" / "collectors" / "amplitude"
EMAIL = "jane.doe@example.com"
API_KEY = "0123456789abcdef0123456789abcdef"


fixture, observation = recorded("amplitude")


def test_registered_on_the_sdks_default_hosts_and_endpoints():
    profile = collectors.get("amplitude")
    assert isinstance(profile, Amplitude) and profile.title == "Amplitude"
    for host in ("api2.amplitude.com", "api.eu.amplitude.com"):
        for path in ("/2/httpapi", "/batch"):
            assert collectors.for_request(host, "POST", path) is profile
    assert collectors.for_request("api.amplitude.com", "POST", "/") is profile  # amplitude-js
    assert collectors.for_request("api2.amplitude.com", "POST", "/identify") is None


CASES = [
    ("python-track", "/2/httpapi", ("track", "Order Completed"), "events[0].event_properties.email"),
    ("python-identify", "/2/httpapi", ("identify", "$identify"), "events[0].user_properties.$set.email"),
    ("python-batch", "/batch", ("track", "Order Completed"), "events[0].event_properties.email"),
]


@pytest.mark.parametrize("name, path, item, pii", CASES, ids=[c[0] for c in CASES])
def test_recorded_requests_decode_itemise_and_label_the_api_key(pipeline, name, path, item, pii):
    obs = observation(name)
    assert obs.path == path
    event = pipeline.process(obs)
    assert event.collector == "amplitude" and event.decoding == ["body", "json"]
    assert [(i["kind"], i["name"], i["path"]) for i in event.items] == [(*item, "events[0]")]
    assert event.items[0]["ids"] == {"user": "user-42", "device": "device-7", "session": "1700000000000"}
    found = codes(event)
    assert ("pii", pii) in found and ("credential", "api_key") in found and ("pii", "api_key") not in found
    assert event.items[0]["context"]["library"].startswith("amplitude-python/")


def test_identify_items_carry_the_user_properties(pipeline):
    item = pipeline.process(observation("python-identify")).items[0]
    assert item["properties"] == {"$set": {"email": EMAIL, "plan": "pro"}}


@pytest.mark.parametrize("name", ["python-track", "python-batch"])
def test_recognised_by_shape_on_another_host(pipeline, name):
    url = fixture(name)["url"].replace("api2.amplitude.com", "amp-proxy.internal.example")
    assert pipeline.process(observation(name, url)).collector == "amplitude"


def test_does_not_claim_other_collectors_payloads():
    profile = Amplitude()
    posthog = {"api_key": "phc", "batch": [{"event": "e", "distinct_id": "u"}]}
    mixpanel = {"event": "Order", "properties": {"token": "t", "mp_lib": "python"}}
    for payload in (posthog, mixpanel, {"api_key": "k", "events": []}, {"api_key": "k", "events": [{"event": "e"}]},
                    {"events": [{"event_type": "e"}]}, {"client": "k", "e": "[]"}, [], "x", None):
        assert not profile.recognises(payload), payload
    assert profile.recognises({"api_key": "k", "events": [{"event_type": "e", "user_id": "u"}]})


# ---------------------------------------------------------------- amplitude-js's legacy form (amplitude.esm.js sendEvents)

def _legacy_form(events: list[dict[str, Any]]) -> bytes:
    e = json.dumps(events)
    upload = "1764669600000"
    checksum = hashlib.md5(("2" + API_KEY + e + upload).encode()).hexdigest()
    fields = {"checksum": checksum, "client": API_KEY, "e": e, "upload_time": upload, "v": "2"}
    return "&".join(f"{k}={quote(v, safe='')}" for k, v in fields.items()).encode()  # query-string's encoding


LEGACY = [{"device_id": "d1", "user_id": "u1", "timestamp": 1764669600000, "event_id": 3, "session_id": -1,
           "event_type": "Clicked Buy", "event_properties": {"contact": EMAIL}, "user_properties": {},
           "uuid": "0c9e", "library": {"name": "amplitude-js", "version": "8.21.10"}, "sequence_number": 4}]


def test_the_legacy_form_upload(pipeline):
    obs = Observation("POST", "https://api.amplitude.com/",
                      (("Content-Type", "application/x-www-form-urlencoded; charset=UTF-8"),), _legacy_form(LEGACY))
    event = pipeline.process(obs)
    assert event.collector == "amplitude"
    assert [(i["kind"], i["name"], i["path"], i["ids"]) for i in event.items] == [
        ("track", "Clicked Buy", "e[0]", {"user": "u1", "device": "d1"})]  # session -1: none
    assert ("credential", "client") in codes(event) and ("pii", "e[0].event_properties.contact") in codes(event)
    assert Amplitude().recognises(event.decoded)


def test_a_gzipped_body(pipeline):
    """@amplitude/analytics-browser compresses with Content-Encoding: gzip where it can."""
    body = gzip.compress(json.dumps({"api_key": API_KEY, "events": LEGACY}).encode())
    event = pipeline.process(Observation("POST", "https://api2.amplitude.com/2/httpapi",
                                         (("Content-Encoding", "gzip"),), body))
    assert event.decoding == ["body", "gzip", "json"] and event.items[0]["name"] == "Clicked Buy"


# ---------------------------------------------------------------- hostile payloads

HOSTILE: list[Any] = [
    {"api_key": 5, "events": "not a list"},
    {"api_key": API_KEY, "events": [1, None, "x", [], {"event_type": 5}, {"event_type": None, "user_id": {"a": 1}}]},
    {"api_key": API_KEY, "events": [{"event_type": "e", "user_id": ["x"], "session_id": 1.5,
                                     "event_properties": "text", "device_id": True}]},
    {"client": API_KEY, "e": {"not": "a list"}},
    [{"event_type": "e"}], "text", 3, None, {},
]


@pytest.mark.parametrize("payload", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
@pytest.mark.parametrize("path", ["/2/httpapi", "/batch", "/"])
def test_wrong_types_anywhere_never_raise(pipeline, payload, path):
    host = "api.amplitude.com" if path == "/" else "api2.amplitude.com"
    event = pipeline.process(Observation("POST", f"https://{host}{path}", (), json.dumps(payload).encode()))
    assert event.collector == "amplitude"
    assert not any("internal error" in f.message for f in event.findings)
    for item in event.items:
        assert all(isinstance(v, str) for v in item["ids"].values())


def test_a_huge_list_is_itemised_up_to_the_bound(pipeline):
    events = [{"event_type": f"e{i}", "user_id": "u"} for i in range(MAX_ITEMS + 3)]
    event = pipeline.process(Observation("POST", "https://api2.amplitude.com/batch", (),
                                         json.dumps({"api_key": API_KEY, "events": events}).encode()))
    assert len(event.items) == MAX_ITEMS
    assert any(f.code == "decode-error" and "only the first" in f.message for f in event.findings)


@pytest.mark.parametrize("body, headers", [
    (b"[" * 100_000 + b"]" * 100_000, ()),
    (b"\x1f\x8b\x08\x00broken", ()),
    (b"not json at all {", ()),
    (b"{}", (("Content-Encoding", "zstd"),)),
])
def test_undecodable_bodies_never_raise(pipeline, body, headers):
    event = pipeline.process(Observation("POST", "https://api2.amplitude.com/2/httpapi", headers, body))
    assert event.collector == "amplitude" and event.items == []
    assert not any("internal error" in f.message for f in event.findings)


# ---------------------------------------------------------------- sinkhole answers

def test_sinkhole_answers():
    answer = Amplitude().sinkhole(Observation("POST", "https://api2.amplitude.com/2/httpapi"))
    body = json.loads(answer.body)
    assert answer.status == 200 and body["code"] == 200 and body["events_ingested"] == 0
    legacy = Amplitude().sinkhole(Observation("POST", "https://api.amplitude.com/"))
    assert legacy.status == 200 and legacy.body == b"success"


def test_the_python_sdk_parses_the_answer_as_success():
    """amplitude.http_client.Response.parse on the sinkhole's body: SUCCESS (nothing to retry)."""
    pytest.importorskip("amplitude", reason="the amplitude-analytics SDK is not installed (./dev setup)")
    from amplitude.http_client import HttpStatus, Response
    body = Amplitude().sinkhole(Observation("POST", "https://api2.amplitude.com/2/httpapi")).body
    assert Response().parse(io.BytesIO(body)).status == HttpStatus.SUCCESS


# ---------------------------------------------------------------- the real SDK through the proxy

RUNS = [("track", "Checkout Done", "/2/httpapi", "Checkout Done"),
        ("identify", "-", "/2/httpapi", "$identify"),
        ("batch", "Checkout Done", "/batch", "Checkout Done")]


@pytest.mark.slow
@pytest.mark.parametrize("mode, name, path, item_name", RUNS, ids=[r[0] for r in RUNS])
def test_the_python_sdk_through_the_proxy(tmp_path, mode, name, path, item_name):
    pytest.importorskip("amplitude", reason="amplitude-analytics is not installed (./dev setup installs requirements-sdks.txt)")
    from inspector.store import Store
    store = tmp_path / "store.json"
    rule = run_cli("rules", "sinkhole", "Amplitude", "--store", str(store))
    assert rule.returncode == 0, rule.stderr
    done = run_cli("exec", "--store", str(store), "--confdir", str(tmp_path / "mitmproxy"), "--",
                   sys.executable, str(FIXTURES / "send_python.py"), mode, name, EMAIL, timeout=180)
    assert done.returncode == 0 and "sent" in done.stdout, done.stdout + done.stderr  # its callback saw success
    with Store(store, readonly=True) as opened:
        events = opened.events()
    assert len(events) == 1, [e["url"] for e in events]  # one request, not retried
    event = events[0]
    assert event["collector"] == "amplitude" and event["action"] == "sinkhole" and event["path"] == path
    assert [i["name"] for i in event["items"]] == [item_name]
    pii = [f["path"] for f in event["findings"] if f["code"] == "pii" and EMAIL in str(f.get("evidence"))]
    assert pii and all(p.startswith("events[0].") for p in pii)
    assert any(f["code"] == "credential" and f["path"] == "api_key" for f in event["findings"])
    assert not any(f["code"] == "pii" and f["path"] == "api_key" for f in event["findings"])


# ---------------------------------------------------------------- strict against every other collector

OTHERS = sorted(p for p in (ROOT / "fixtures" / "collectors").glob("*/*.json") if p.parent.name != "amplitude")


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_other_collectors_recorded_request_is_taken_for_amplitude(pipeline, path):
    data = json.loads(path.read_text())
    obs = Observation(data["method"], data["url"], tuple((k, v) for k, v in data["headers"]),
                      base64.b64decode(data["body_base64"]))
    profile = Amplitude()
    assert not profile.recognises(profile.decode(obs, pipeline).value)
    assert not profile.recognises(pipeline.decode_auto(obs).value)
