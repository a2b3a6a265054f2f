"""Plausible: `/api/event` of both npm trackers decoded and itemised; the trackers through
`telemetry-inspector exec` under Node."""

from __future__ import annotations

import json

import pytest
from collector_sdk import (
    EMAIL,
    NODE,
    PRELOAD,
    check_sdk_run,
    codes,
    fixtures,
    node_ready,
    observation,
    on_host,
    others,
    pipeline,
    run_exec,
)

from inspector.core import collectors
from inspector.core.observation import Observation

PLAUSIBLE = collectors.get("plausible")
URL = "https://plausible.io/api/event"


def test_registered():
    assert PLAUSIBLE is not None and PLAUSIBLE.title == "Plausible"
    assert collectors.for_request("plausible.io", "POST", "/api/event") is PLAUSIBLE
    assert collectors.for_request("plausible.io", "GET", "/api/event") is None
    assert PLAUSIBLE.credential_headers == ()


@pytest.mark.parametrize("name, kind, event", [("official-event.json", "event", "Signup"),
                                               ("official-pageview.json", "page", "pageview"),
                                               ("legacy-event.json", "event", "Signup")])
def test_fixtures_are_itemised(name, kind, event):
    result = pipeline().process(observation("plausible", name))
    assert result.collector == "plausible"
    (item,) = result.items
    assert (item["kind"], item["name"], item["path"]) == (kind, event, "")
    # props: an object (official) or a JSON string (legacy), decoded either way
    assert item["properties"] == {"plan": "pro", "contact": EMAIL}
    assert item["context"]["u"] == "https://shop.example/pricing?plan=pro" and item["context"]["d"] == "shop.example"
    assert item["ids"] == {}
    assert codes(result) == [("pii", "p.contact")]


def test_legacy_props_string_is_a_decoding_layer():
    result = pipeline().process(observation("plausible", "legacy-event.json"))
    assert result.decoding == ["body", "json", "json@p"]
    assert result.items[0]["context"]["w"] == 1280


def test_props_that_are_not_json_stay_text():
    body = json.dumps({"n": "x", "u": "https://a.example/", "d": "a.example", "p": "plain words"}).encode()
    (item,) = pipeline().process(Observation("POST", URL, body=body)).items
    assert item["properties"] == "plain words"


def test_sinkhole_is_202_ok():
    answer = PLAUSIBLE.sinkhole(observation("plausible", "official-event.json"))
    assert (answer.status, answer.body) == (202, b"ok")


@pytest.mark.parametrize("name", fixtures("plausible"))
def test_recognised_on_a_proxied_host(name):
    """Sites proxy Plausible through their own domain (`/api/event` on it)."""
    result = pipeline().process(on_host(observation("plausible", name), "shop.example"))
    assert result.collector == "plausible"


@pytest.mark.parametrize("folder, name", others("plausible"))
def test_never_claims_another_collectors_payload(folder, name):
    obs = observation(folder, name)
    assert not PLAUSIBLE.recognises(PLAUSIBLE.decode(obs, pipeline()).value)


def test_shape_is_strict():
    assert PLAUSIBLE.recognises({"n": "a", "u": "b", "d": "c"})
    assert not PLAUSIBLE.recognises({"n": "a", "u": "b"})
    assert not PLAUSIBLE.recognises({"n": "a", "u": "b", "d": "c", "userId": "u1"})
    assert not PLAUSIBLE.recognises({"n": 1, "u": "b", "d": "c"})
    assert not PLAUSIBLE.recognises([{"n": "a", "u": "b", "d": "c"}])


@pytest.mark.parametrize("body", [b'{"n": ["x"], "u": {}, "d": 3, "p": [1, 2]}', b"[1, 2, 3]", b'"n"', b"\xff\xfe",
                                  b'{"n": "x", "p": ' + b'{"a":' * 100 + b"1" + b"}" * 100 + b"}", b"",
                                  b'{"n": "x", "p": "' + b'{\\"a\\":' * 50 + b'1' + b'}' * 50 + b'"}'])
def test_hostile_bodies_never_raise(body):
    result = pipeline(small=True).process(Observation("POST", URL, body=body))
    assert result.collector == "plausible"
    assert not [f for f in result.findings if "internal error" in f.message]
    assert len(result.items) <= 1


# --------------------------------------------------------------------------- real clients

@pytest.mark.slow
@pytest.mark.parametrize("tracker", ["official", "legacy"])
def test_tracker_through_exec_is_sinkholed(tmp_path, tracker):
    if (why := node_ready("plausible")) is not None:
        pytest.skip(why)
    done, events = run_exec(tmp_path, "Plausible", ["node", "-r", str(PRELOAD), "send.mjs", tracker, "Signup", EMAIL],
                            cwd=NODE / "plausible")
    item = check_sdk_run(done, events, "plausible", "Signup")
    assert item["kind"] == "event" and events[0]["response_status"] in (202, None)
