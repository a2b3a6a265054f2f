"""Google Analytics 4: gtag hits and the Measurement Protocol, decoded, itemised, credentials
labelled; ga4mp and the documented gtag format through `telemetry-inspector exec`."""

from __future__ import annotations

import gzip
import importlib.util
import sys

import pytest
from collector_sdk import (
    EMAIL,
    FIXTURES,
    check_sdk_run,
    codes,
    fixtures,
    observation,
    on_host,
    others,
    pipeline,
    run_exec,
)

from inspector.core import collectors
from inspector.core.observation import Observation

GA4 = collectors.get("ga4")
GTAG = "https://region1.google-analytics.com/g/collect"


def test_registered_with_its_hosts_and_endpoints():
    assert GA4 is not None and GA4.title == "Google Analytics 4"
    for host in ("www.google-analytics.com", "region1.google-analytics.com", "analytics.google.com"):
        assert collectors.for_request(host, "POST", "/g/collect") is GA4
    assert collectors.for_request("www.google-analytics.com", "POST", "/mp/collect") is GA4
    assert collectors.for_request("www.google-analytics.com", "POST", "/debug/mp/collect") is GA4
    assert collectors.for_request("www.google-analytics.com", "GET", "/g/collect") is GA4
    assert collectors.for_request("www.google-analytics.com", "POST", "/collect") is None  # Universal Analytics


@pytest.mark.parametrize("name, items", [
    ("mp-gtag.json", [("track", "sign_up", "events[0]")]),
    ("mp-firebase.json", [("track", "level_up", "events[0]")]),
    ("mp-debug.json", [("track", "sign_up", "events[0]")]),
    ("gtag-single.json", [("track", "generate_lead", "query")]),
    ("gtag-get.json", [("track", "generate_lead", "query")]),
    ("gtag-batch.json", [("page", "page_view", "events[0]"), ("track", "generate_lead", "events[1]")]),
])
def test_fixtures_are_itemised(name, items):
    event = pipeline().process(observation("ga4", name))
    assert event.collector == "ga4" and event.policy is None
    assert [(i["kind"], i["name"], i["path"]) for i in event.items] == items
    # the planted e-mail is PII inside the last item, nothing else is
    pii = [(c, p) for c, p in codes(event) if c == "pii"]
    assert len(pii) == 1 and pii[0][1].startswith(items[-1][2] + ".")
    assert not [c for c, _ in codes(event) if c in ("decode-error", "unknown-endpoint")]


def test_measurement_protocol_ids_properties_and_credentials():
    event = pipeline().process(observation("ga4", "mp-gtag.json"))
    (item,) = event.items
    assert item["ids"]["anonymous"] == "1234567890.1700000000" and item["ids"]["user"] == "user-4711"
    assert item["ids"]["session"].isdigit()  # ga4mp adds session_id to every event's params
    assert item["properties"]["contact"] == EMAIL and item["context"]["user_properties"] == {"plan": {"value": "pro"}}
    found = codes(event)
    assert ("credential", "query.api_secret") in found and ("credential", "query.measurement_id") in found
    firebase = pipeline().process(observation("ga4", "mp-firebase.json"))
    assert firebase.items[0]["ids"]["device"] == "a1b2c3d4e5f60718293a4b5c6d7e8f90"
    assert ("credential", "query.firebase_app_id") in codes(firebase)


def test_gtag_batch_shares_the_query_and_groups_event_parameters():
    event = pipeline().process(observation("ga4", "gtag-batch.json"))
    assert event.decoding == ["query", "body", "gtag-lines"]
    assert event.decoded["query"]["up"] == {"plan": "pro"}
    assert event.decoded["events"][1]["ep"] == {"method": "newsletter", "contact": EMAIL}
    assert event.decoded["events"][1]["epn"] == {"value": "3"}
    view, lead = event.items
    assert lead["ids"] == {"anonymous": "1234567890.1700000000", "session": "1700000000", "user": "user-4711"}
    assert lead["properties"] == {"method": "newsletter", "contact": EMAIL, "value": "3"}
    assert lead["context"]["dl"] == "https://shop.example/checkout?step=2" and lead["context"]["_et"] == "1520"
    assert view["context"]["_et"] == "12"
    # the property id is the collector's credential, never PII
    assert ("credential", "query.tid") in codes(event)


def test_gtag_repeated_and_bare_group_parameters_are_kept():
    obs = Observation("POST", f"{GTAG}?v=2&tid=G-X1&en=a&ep=bare&ep.k=1&ep.k=2&cid=1.2&cid=3.4", body=b"")
    decoded = GA4.decode(obs, pipeline())
    assert decoded.value["query"]["ep"] == {"": "bare", "k": ["1", "2"]}
    assert decoded.value["query"]["cid"] == ["1.2", "3.4"]
    (item,) = GA4.items(decoded.value, obs)
    assert "anonymous" not in item.ids  # a repeated id is no single id


def test_sinkhole_answers():
    assert GA4.sinkhole(observation("ga4", "gtag-batch.json")).status == 204
    assert GA4.sinkhole(observation("ga4", "mp-gtag.json")).status == 204
    debug = GA4.sinkhole(observation("ga4", "mp-debug.json"))
    assert debug.status == 200 and debug.body == b'{"validationMessages":[]}'


@pytest.mark.parametrize("name", fixtures("ga4"))
def test_recognised_on_another_host(name):
    event = pipeline().process(on_host(observation("ga4", name), "sgtm.shop.example"))
    assert event.collector == "ga4" and event.items


@pytest.mark.parametrize("folder, name", others("ga4"))
def test_never_claims_another_collectors_payload(folder, name):
    obs = observation(folder, name)
    assert not GA4.recognises(GA4.decode(obs, pipeline()).value)


def test_mp_shape_is_strict():
    good = {"client_id": "1.2", "events": [{"name": "x", "params": {}}]}
    assert GA4.recognises(good)
    assert not GA4.recognises({**good, "context": {}})                  # a key GA4 never sends
    assert not GA4.recognises({"events": [{"name": "x"}]})              # no client
    assert not GA4.recognises({"client_id": "1", "events": [{"name": "x", "fields": {}}]})
    assert not GA4.recognises({"client_id": "1", "events": []})
    assert not GA4.recognises({"query": {"v": "2", "tid": "UA-1"}, "events": [{"en": "x"}]})  # not GA4


HOSTILE_MP = [
    b'{"client_id": 7, "events": "x"}', b'{"client_id": [], "events": [1, "a", null, {"name": 3, "params": []}]}',
    b'[' * 5000, b'{"events": ' + b'[' * 40 + b']' * 40 + b'}', b"\xff\xfe\x00garbage",
    b'{"client_id": "1", "events": [' + b",".join([b'{"name": "e"}'] * 20000) + b']}',
]


@pytest.mark.parametrize("body", HOSTILE_MP)
def test_hostile_measurement_protocol_bodies_never_raise(body):
    event = pipeline(small=True).process(Observation("POST", "https://www.google-analytics.com/mp/collect", body=body))
    assert event.collector == "ga4"
    assert not [f for f in event.findings if "internal error" in f.message]


HOSTILE_GTAG = [
    (f"{GTAG}?v=2&tid=G-1&" + "&".join(f"p{i}=1" for i in range(5000)), b""),
    (f"{GTAG}?v=2&tid=G-1", b"\n".join(b"en=e&ep.k=%ff%fe" for _ in range(3000))),
    (f"{GTAG}?v=2&tid=G-1", b'{"en": "json, not lines"}'),
    (f"{GTAG}?v=2&tid=%ff%00&en=%zz&ep.=1&=2&&&", b"\x00\x01\x02 binary"),
    (f"{GTAG}?ep.a.b.c=1&epn.=2&up=3&upn.x.y=4", b"en=x\r\n\r\n\r\nen=y"),
]


@pytest.mark.parametrize("url, body", HOSTILE_GTAG)
def test_hostile_gtag_hits_never_raise_and_are_bounded(url, body):
    event = pipeline(small=True).process(Observation("POST", url, body=body))
    assert event.collector == "ga4"
    assert not [f for f in event.findings if "internal error" in f.message]
    assert len(event.items) <= 1_000


def test_too_many_lines_is_reported_and_cut():
    body = b"\n".join(b"en=e%d" % i for i in range(1500))
    event = pipeline().process(Observation("POST", f"{GTAG}?v=2&tid=G-1", body=body))
    assert len(event.items) == 1000
    assert any(f.code == "decode-error" and "1500 events" in f.message for f in event.findings)


def test_gzip_bomb_in_a_gtag_body_is_refused():
    bomb = gzip.compress(b"en=x&" * (400_000))  # 2 MB > the small limit
    event = pipeline(small=True).process(Observation("POST", f"{GTAG}?v=2&tid=G-1&en=q", (("Content-Encoding", "gzip"),), bomb))
    assert any(f.code == "decode-error" and "exceeds" in f.message for f in event.findings)


# --------------------------------------------------------------------------- real clients

needs_ga4mp = pytest.mark.skipif(importlib.util.find_spec("ga4mp") is None,
                                 reason="ga4mp is not installed (requirements-sdks.txt; ./dev setup)")


@pytest.mark.slow
@needs_ga4mp
@pytest.mark.parametrize("mode, name, credential", [("gtag", "sign_up", "query.api_secret"),
                                                   ("firebase", "level_up", "query.firebase_app_id")])
def test_ga4mp_through_exec_is_sinkholed(tmp_path, mode, name, credential):
    done, events = run_exec(tmp_path, "Google Analytics 4",
                            [sys.executable, str(FIXTURES / "ga4" / "send_mp.py"), mode, name, EMAIL])
    item = check_sdk_run(done, events, "ga4", name, credential=credential)
    assert item["path"] == "events[0]" and events[0]["response_status"] in (204, None)


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["single", "batch", "get"])
def test_documented_gtag_hits_through_exec_are_sinkholed(tmp_path, mode):
    done, events = run_exec(tmp_path, "Google Analytics 4",
                            [sys.executable, str(FIXTURES / "ga4" / "send_gtag.py"), mode, "generate_lead", EMAIL])
    check_sdk_run(done, events, "ga4", "generate_lead", credential="query.tid")


@pytest.mark.slow
@needs_ga4mp
def test_ga4mp_allowed_reaches_the_upstream(tmp_path):
    from inspector.emit.upstream import Upstream
    with Upstream(extra_hosts=("www.google-analytics.com",)) as upstream:
        done, events = run_exec(tmp_path, "Google Analytics 4",
                                [sys.executable, str(FIXTURES / "ga4" / "send_mp.py"), "gtag", "sign_up", EMAIL],
                                args=("--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                                      "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}"), sinkhole=False)
        forwarded = upstream.count()
    assert done.returncode == 0, done.stderr[-2000:]
    assert forwarded == 1 and len(events) == 1
    assert events[0]["collector"] == "ga4" and events[0]["action"] != "sinkhole"
