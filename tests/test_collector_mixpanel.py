"""The Mixpanel collector profile: on requests recorded from its real Python SDK
(fixtures/collectors/mixpanel), on the Node and browser SDKs' encodings as their source writes
them, on hostile variants, and with the real SDK sending through `telemetry-inspector exec`."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from collector_sdk import code_set as codes
from collector_sdk import recorded
from conftest import ROOT, run_cli

from inspector.core import collectors
from inspector.core.collectors.mixpanel import MAX_ITEMS, Mixpanel
from inspector.core.observation import Observation

FIXTURES = ROOT / "fixtures" / "collectors" / "mixpanel"
EMAIL = "jane.doe@example.com"
TOKEN = "0123456789abcdef0123456789abcdef"
FORM = (("Content-Type", "application/x-www-form-urlencoded"),)


fixture, observation = recorded("mixpanel")


EVENT = {"event": "Signed Up", "properties": {"token": TOKEN, "distinct_id": "u1", "$device_id": "dev-1",
                                              "$user_id": "u1", "time": 1764669600123, "$insert_id": "i1",
                                              "mp_lib": "web", "email": EMAIL}}


def test_registered_on_the_sdks_default_hosts_and_endpoints():
    profile = collectors.get("mixpanel")
    assert isinstance(profile, Mixpanel) and profile.title == "Mixpanel"
    for host in ("api.mixpanel.com", "api-js.mixpanel.com", "api-eu.mixpanel.com"):
        for path in ("/track", "/track/", "/engage", "/groups/", "/import", "/record/", "/flags"):
            assert collectors.for_request(host, "POST", path) is profile, (host, path)
    assert collectors.for_request("api.mixpanel.com", "GET", "/track") is profile  # the Node SDK's default
    assert collectors.for_request("api.mixpanel.com", "POST", "/api/2.0/export") is None


# (fixture, [(kind, name, path)], ids, the e-mail's path, the credential's path)
CASES = [
    ("python-track", [("track", "Order Completed", "")], {"distinct": "user-42"}, "properties.email",
     "properties.token"),
    ("python-people", [("identify", "$set", "")], {"distinct": "user-42"}, "$set.$email", "$token"),
    ("python-buffered", [("track", "Step Viewed", "[0]"), ("track", "Step Viewed 1", "[1]"),
                         ("track", "Step Viewed 2", "[2]")], {"distinct": "user-42"}, "[1].properties.email",
     "[2].properties.token"),
]


@pytest.mark.parametrize("name, items, ids, pii, credential", CASES, ids=[c[0] for c in CASES])
def test_recorded_requests_decode_itemise_and_label_the_token(pipeline, name, items, ids, pii, credential):
    event = pipeline.process(observation(name))
    assert event.collector == "mixpanel" and event.decoding == ["form:data", "json"]
    assert [(i["kind"], i["name"], i["path"]) for i in event.items] == items
    assert event.items[0]["ids"] == ids
    found = codes(event)
    assert ("pii", pii) in found and ("credential", credential) in found and ("pii", credential) not in found
    assert not any(f.code == "decode-error" for f in event.findings)


def test_a_plus_in_the_form_is_a_space(pipeline):
    """PyPI requests form-encodes a space as `+` ("Order+Completed" on the wire)."""
    assert b"Order+Completed" in observation("python-track").body
    event = pipeline.process(observation("python-track"))
    assert event.decoded["event"] == "Order Completed" and event.decoded["properties"]["email"] == EMAIL


@pytest.mark.parametrize("name", ["python-track", "python-people", "python-buffered"])
def test_recognised_by_shape_on_another_host(pipeline, name):
    url = fixture(name)["url"].replace("api.mixpanel.com", "mp-proxy.internal.example")
    event = pipeline.process(observation(name, url))
    assert event.collector == "mixpanel" and event.items


def test_does_not_claim_other_collectors_payloads():
    profile = Mixpanel()
    posthog_event = {"event": "e", "uuid": "1", "properties": {"token": "phc", "distinct_id": "u", "$lib": "web"}}
    posthog_python = {"event": "e", "distinct_id": "u", "properties": {"$lib": "posthog-python", "token": "t",
                                                                      "time": 1}}
    amplitude = {"api_key": "k", "events": [{"event_type": "Order", "user_id": "u"}]}
    segment = {"type": "track", "event": "Order", "userId": "u", "properties": {}}
    for payload in (posthog_event, [posthog_event], posthog_python, amplitude, segment, {"event": "x"},
                    {"$set": {"a": 1}}, [], {}, "text", None):
        assert not profile.recognises(payload), payload
    assert profile.recognises(EVENT) and profile.recognises([EVENT])
    assert profile.recognises({"$token": TOKEN, "$distinct_id": "u1", "$set": {"$email": EMAIL}})


# ---------------------------------------------------------------- the other SDKs' encodings, per their source

def test_the_node_sdks_get_with_base64_data(pipeline):
    """npm mixpanel: `GET /track?ip=0&verbose=0&data=<Base64 JSON>` (lib/mixpanel-node.js send_request)."""
    data = base64.b64encode(json.dumps(EVENT).encode()).decode()
    event = pipeline.process(Observation("GET", f"https://api.mixpanel.com/track?ip=0&verbose=0&data={quote(data)}"))
    assert event.collector == "mixpanel" and event.decoding == ["query:data", "base64", "json"]
    assert [(i["kind"], i["name"]) for i in event.items] == [("track", "Signed Up")]
    assert event.items[0]["ids"] == {"distinct": "u1", "device": "dev-1", "user": "u1"}
    assert ("pii", "properties.email") in codes(event) and ("credential", "properties.token") in codes(event)


def test_the_node_sdks_post_with_unescaped_base64(pipeline):
    """npm mixpanel with method POST: the body is `data=` + raw Base64 (a `+` stays a `+`)."""
    payload = dict(EVENT, properties=dict(EVENT["properties"], note="?>?>?>"))  # Base64 of this has + and /
    data = base64.b64encode(json.dumps(payload).encode()).decode()
    assert "+" in data
    event = pipeline.process(Observation("POST", "https://api.mixpanel.com/track?ip=0&verbose=0&api_key=K1", FORM,
                                         f"data={data}".encode()))
    assert event.decoding == ["form:data", "base64", "json"] and event.decoded["properties"]["note"] == "?>?>?>"
    assert ("credential", "query.api_key") in codes(event)


def test_the_browser_sdks_batch_with_json_data(pipeline):
    """mixpanel-browser on mixpanel.com: form `data=<JSON list>`, `?verbose=1&ip=1&_=…` (mixpanel-core.js)."""
    body = "data=" + quote(json.dumps([EVENT, dict(EVENT, event="$mp_web_page_view")]), safe="")
    event = pipeline.process(Observation("POST", "https://api-js.mixpanel.com/track/?verbose=1&ip=1&_=1764669600000",
                                         FORM, body.encode()))
    assert [(i["kind"], i["name"], i["path"]) for i in event.items] == [("track", "Signed Up", "[0]"),
                                                                         ("page", "$mp_web_page_view", "[1]")]


def test_a_groups_update(pipeline):
    body = "data=" + quote_plus(json.dumps({"$token": TOKEN, "$group_key": "company", "$group_id": "Acme",
                                            "$set": {"contact": EMAIL}}))
    event = pipeline.process(Observation("POST", "https://api.mixpanel.com/groups", FORM, body.encode()))
    assert [(i["kind"], i["name"]) for i in event.items] == [("group", "$set")]
    assert event.items[0]["context"]["$group_id"] == "Acme" and ("pii", "$set.contact") in codes(event)


def test_a_session_replay_upload(pipeline):
    """mixpanel-browser's recorder: gzipped rrweb events, the ids in the query, Basic auth with the token."""
    rrweb = [{"type": 2, "timestamp": 1, "data": {"node": {"text": EMAIL}}}]
    auth = "Basic " + base64.b64encode(f"{TOKEN}:".encode()).decode()
    obs = Observation("POST", "https://api-js.mixpanel.com/record/?format=gzip&distinct_id=u1&$device_id=dev-1"
                              "&replay_id=r-9&seq=0&mp_lib=web",
                      (("Authorization", auth), ("Content-Type", "application/octet-stream")),
                      gzip.compress(json.dumps(rrweb).encode()))
    event = pipeline.process(obs)
    assert [(i["kind"], i["ids"]) for i in event.items] == [("session", {"distinct": "u1", "device": "dev-1",
                                                                         "session": "r-9"})]
    assert ("pii", "[0].data.node.text") in codes(event) and ("credential", "headers.authorization") in codes(event)


def test_a_remote_flags_request(pipeline):
    """mixpanel (PyPI) remote flags: `GET /flags?context=<JSON>&token=…` (flags/remote_feature_flags.py)."""
    context = json.dumps({"distinct_id": "u1", "custom_properties": {"email": EMAIL}})
    event = pipeline.process(Observation("GET", f"https://api.mixpanel.com/flags?mp_lib=python&token={TOKEN}"
                                                f"&context={quote(context)}"))
    assert [(i["kind"], i["ids"]) for i in event.items] == [("flags", {"distinct": "u1"})]
    assert ("credential", "query.token") in codes(event) and ("pii", "custom_properties.email") in codes(event)


# ---------------------------------------------------------------- hostile payloads

HOSTILE: list[Any] = [
    [1, "a", None, [], {"event": 5}, {"event": "e", "properties": "x"}],
    {"event": "e", "properties": ["list"]},
    {"event": "e", "properties": {"distinct_id": {"x": 1}, "$device_id": [1], "$user_id": None}},
    {"$set": "not an object", "$token": 5, "$distinct_id": ["x"]},
    "text", 5, None, [], {},
]


@pytest.mark.parametrize("payload", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
@pytest.mark.parametrize("path", ["/track", "/engage", "/groups", "/flags", "/record"])
def test_wrong_types_anywhere_never_raise(pipeline, payload, path):
    body = ("data=" + quote(json.dumps(payload))).encode()
    for obs in (Observation("POST", f"https://api.mixpanel.com{path}", FORM, body),
                Observation("GET", f"https://api.mixpanel.com{path}?data={quote(json.dumps(payload))}"
                                   f"&context={quote(json.dumps(payload))}")):
        event = pipeline.process(obs)
        assert event.collector == "mixpanel"
        assert not any("internal error" in f.message for f in event.findings)
        for item in event.items:
            assert all(isinstance(v, str) for v in item["ids"].values())


def test_a_huge_list_is_itemised_up_to_the_bound(pipeline):
    events = [{"event": f"e{i}", "properties": {"token": TOKEN, "distinct_id": "u"}} for i in range(MAX_ITEMS + 10)]
    event = pipeline.process(Observation("POST", "https://api.mixpanel.com/track", FORM,
                                         ("data=" + quote(json.dumps(events))).encode()))
    assert len(event.items) == MAX_ITEMS
    assert any(f.code == "decode-error" and "only the first" in f.message for f in event.findings)


@pytest.mark.parametrize("body", [
    b"data=" + b"%5B" * 50_000 + b"%5D" * 50_000,    # nesting past max_depth
    b"data=%ZZ%%%7B",                                # bad escapes, broken JSON
    b"data=\xff\xfe\x00",                            # not UTF-8
    b"data=" + b"QUJD" * 10,                         # Base64 of no JSON
    b"\x1f\x8b\x08\x00broken",                       # a broken gzip
])
def test_undecodable_bodies_never_raise(pipeline, body):
    event = pipeline.process(Observation("POST", "https://api.mixpanel.com/track", FORM, body))
    assert event.collector == "mixpanel" and event.items == []
    assert not any("internal error" in f.message for f in event.findings)


# ---------------------------------------------------------------- sinkhole answers

@pytest.mark.parametrize("url, body, expected", [
    ("https://api.mixpanel.com/track", b"", {"status": 1, "error": None}),            # the head: body not yet read
    ("https://api.mixpanel.com/track", b"data=%7B%7D&verbose=1&ip=0", {"status": 1, "error": None}),
    ("https://api.mixpanel.com/track?ip=0&verbose=0", b"", 1),                          # npm mixpanel, not verbose
    ("https://api.mixpanel.com/track?ip=0&verbose=1", b"", {"status": 1, "error": None}),
    ("https://api-js.mixpanel.com/track/?verbose=1&ip=1&_=1", b"data=x", {"status": 1, "error": None}),
    ("https://api.mixpanel.com/track", b"data=x&verbose=0", 1),
    ("https://api.mixpanel.com/flags?token=t", b"", {"code": 200, "flags": {}}),
])
def test_sinkhole_answers_what_the_client_asked_for(url, body, expected):
    answer = Mixpanel().sinkhole(Observation("POST", url, FORM, body))
    assert answer.status == 200 and json.loads(answer.body) == expected


def test_the_python_sdk_takes_the_answer_as_success(monkeypatch):
    """mixpanel.Consumer._write_request, fed the sinkhole's answer: True, no exception."""
    pytest.importorskip("mixpanel", reason="the mixpanel SDK is not installed (./dev setup)")
    import requests
    from mixpanel import Consumer
    answer = Mixpanel().sinkhole(Observation("POST", "https://api.mixpanel.com/track"))
    response = requests.models.Response()
    response.status_code, response._content = answer.status, answer.body
    consumer = Consumer()
    monkeypatch.setattr(consumer._session, "post", lambda *a, **k: response)
    assert consumer._write_request("https://api.mixpanel.com/track", json.dumps(EVENT)) is True


def test_the_python_sdks_flags_parse_the_answer():
    pytest.importorskip("mixpanel", reason="the mixpanel SDK is not installed (./dev setup)")
    from mixpanel.flags.types import RemoteFlagsResponse
    body = json.loads(Mixpanel().sinkhole(Observation("GET", "https://api.mixpanel.com/flags?token=t")).body)
    assert RemoteFlagsResponse.from_dict(body).flags == {}


# ---------------------------------------------------------------- the real SDK through the proxy

RUNS = [("track", "Checkout Done", ["Checkout Done"], "/track", "properties.token"),
        ("people", "-", ["$set"], "/engage", "$token"),
        ("buffered", "Tour Step", ["Tour Step", "Tour Step 1", "Tour Step 2"], "/track", "[0].properties.token")]


@pytest.mark.slow
@pytest.mark.parametrize("mode, name, names, path, credential", RUNS, ids=[r[0] for r in RUNS])
def test_the_python_sdk_through_the_proxy(tmp_path, mode, name, names, path, credential):
    pytest.importorskip("mixpanel", reason="the mixpanel SDK is not installed (./dev setup installs requirements-sdks.txt)")
    from inspector.store import Store
    store = tmp_path / "store.json"
    rule = run_cli("rules", "sinkhole", "Mixpanel", "--store", str(store))
    assert rule.returncode == 0, rule.stderr
    done = run_cli("exec", "--store", str(store), "--confdir", str(tmp_path / "mitmproxy"), "--",
                   sys.executable, str(FIXTURES / "send_python.py"), mode, name, EMAIL, timeout=180)
    assert done.returncode == 0 and "sent" in done.stdout, done.stdout + done.stderr  # the SDK took the answer
    with Store(store, readonly=True) as opened:
        events = opened.events()
    assert len(events) == 1, [e["url"] for e in events]  # one request, not retried
    event = events[0]
    assert event["collector"] == "mixpanel" and event["action"] == "sinkhole" and event["path"] == path
    assert [i["name"] for i in event["items"]] == names
    pii = [f["path"] for f in event["findings"] if f["code"] == "pii" and EMAIL in str(f.get("evidence"))]
    assert pii and all(any(p.startswith(i["path"]) for i in event["items"]) for p in pii)
    assert any(f["code"] == "credential" and f["path"] == credential for f in event["findings"])
    assert not any(f["code"] == "pii" and f["path"] == credential for f in event["findings"])


# ---------------------------------------------------------------- strict against every other collector

OTHERS = sorted(p for p in (ROOT / "fixtures" / "collectors").glob("*/*.json") if p.parent.name != "mixpanel")


@pytest.mark.parametrize("path", OTHERS, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_other_collectors_recorded_request_is_taken_for_mixpanel(pipeline, path):
    data = json.loads(path.read_text())
    obs = Observation(data["method"], data["url"], tuple((k, v) for k, v in data["headers"]),
                      base64.b64decode(data["body_base64"]))
    profile = Mixpanel()
    assert not profile.recognises(profile.decode(obs, pipeline).value)
    assert not profile.recognises(pipeline.decode_auto(obs).value)
