"""Next.js: the CLI's telemetry (documented format: `next` is not installed) decoded and
itemised; the documented request through `telemetry-inspector exec`."""

from __future__ import annotations

import json
import sys

import pytest
from collector_sdk import EMAIL, FIXTURES, check_sdk_run, codes, observation, on_host, others, pipeline, run_exec

from inspector.core import collectors
from inspector.core.observation import Observation

NEXT = collectors.get("nextjs")
URL = "https://telemetry.nextjs.org/api/v1/record"


def test_registered():
    assert NEXT is not None and NEXT.title == "Next.js"
    assert collectors.for_request("telemetry.nextjs.org", "POST", "/api/v1/record") is NEXT
    assert collectors.for_request("telemetry.nextjs.org", "POST", "/api/v1/other") is None


def test_events_are_items_with_anonymous_and_session_ids():
    result = pipeline().process(observation("nextjs", "record.json"))
    assert result.collector == "nextjs"
    assert [(i["kind"], i["name"], i["path"]) for i in result.items] == [
        ("event", "NEXT_CLI_SESSION_STARTED", "events[0]"), ("event", "NEXT_PACKAGE_DETECTED", "events[1]")]
    item = result.items[1]
    assert item["ids"] == {"anonymous": "7f4c2d1e9b8a6f5e4d3c2b1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a2f1e",
                           "session": "3b6f1d0a-8c2e-4f7a-9d5b-1e0c4a7f2b9d"}
    assert item["properties"] == {"packageName": EMAIL, "packageVersion": "1.0.0"}
    assert item["context"]["projectId"].startswith("0e9d") and item["context"]["meta"]["nextVersion"] == "15.5.4"
    assert codes(result) == [("pii", "events[1].fields.packageName")]


def test_sinkhole_is_200():
    answer = NEXT.sinkhole(observation("nextjs", "record.json"))
    assert (answer.status, answer.body) == (200, b"{}")


def test_recognised_on_another_host():
    assert pipeline().process(on_host(observation("nextjs", "record.json"), "next-telemetry.example")).collector == "nextjs"


@pytest.mark.parametrize("folder, name", others("nextjs"))
def test_never_claims_another_collectors_payload(folder, name):
    obs = observation(folder, name)
    assert not NEXT.recognises(NEXT.decode(obs, pipeline()).value)


def test_shape_is_strict():
    good = {"context": {"anonymousId": "a", "sessionId": "s"}, "events": [{"eventName": "X"}]}
    assert NEXT.recognises(good)
    assert not NEXT.recognises({**good, "context": {"anonymousId": "a"}})
    assert not NEXT.recognises({**good, "events": [{"name": "X"}]})
    assert not NEXT.recognises({"context": {"anonymousId": "a", "sessionId": "s"}})


@pytest.mark.parametrize("value", [{"context": [], "events": [1, None, {"eventName": 5, "fields": "x"}]},
                                   {"context": {"anonymousId": {}, "sessionId": [1]}, "events": [{"eventName": "x"}]},
                                   {"events": [{"eventName": "e"}] * 20000}, [], None])
def test_hostile_bodies_never_raise(value):
    result = pipeline(small=True).process(Observation("POST", URL, body=json.dumps(value).encode()))
    assert result.collector == "nextjs" and len(result.items) <= 10_000
    assert not [f for f in result.findings if "internal error" in f.message]


@pytest.mark.slow
def test_documented_request_through_exec_is_sinkholed(tmp_path):
    done, events = run_exec(tmp_path, "Next.js", [sys.executable, str(FIXTURES / "nextjs" / "send_next.py"),
                                                  "NEXT_PACKAGE_DETECTED", EMAIL])
    check_sdk_run(done, events, "nextjs", "NEXT_PACKAGE_DETECTED")
