"""Nuxt: @nuxt/telemetry's request decoded and itemised; the module run under Node through
`telemetry-inspector exec`."""

from __future__ import annotations

import json

import pytest
from collector_sdk import (
    EMAIL,
    NODE,
    PRELOAD,
    check_sdk_run,
    codes,
    node_ready,
    observation,
    on_host,
    others,
    pipeline,
    run_exec,
)

from inspector.core import collectors
from inspector.core.observation import Observation

NUXT = collectors.get("nuxt")
URL = "https://telemetry.nuxt.com/"


def test_registered():
    assert NUXT is not None and NUXT.title == "Nuxt"
    for host in ("telemetry.nuxt.com", "telemetry.nuxtjs.com"):
        assert collectors.for_request(host, "POST", "/") is NUXT
    assert collectors.for_request("telemetry.nuxt.com", "POST", "/other") is None


def test_events_are_items_with_the_project_session():
    result = pipeline().process(observation("nuxt", "build.json"))
    assert result.collector == "nuxt"
    assert [(i["name"], i["path"]) for i in result.items] == [
        ("project", "events[0]"), ("command", "events[1]"), ("module", "events[2]"), ("checkout_enabled", "events[3]")]
    session = result.decoded["context"]["projectSession"]
    assert all(i["kind"] == "event" and i["ids"] == {"session": session} for i in result.items)
    assert result.items[1]["properties"] == {"command": "build"}
    assert result.items[2]["properties"]["moduleName"] == "@nuxtjs/tailwindcss"
    assert result.items[3]["context"]["nuxtVersion"] == "4.6.3"
    assert codes(result) == [("pii", "events[3].contact")]


def test_sinkhole_is_200():
    assert NUXT.sinkhole(observation("nuxt", "build.json")).status == 200


def test_recognised_on_a_custom_endpoint_host():
    """NUXT_TELEMETRY_ENDPOINT may point anywhere; the shape says it is Nuxt's."""
    assert pipeline().process(on_host(observation("nuxt", "build.json"), "telemetry.corp.example")).collector == "nuxt"


@pytest.mark.parametrize("folder, name", others("nuxt"))
def test_never_claims_another_collectors_payload(folder, name):
    obs = observation(folder, name)
    assert not NUXT.recognises(NUXT.decode(obs, pipeline()).value)


def test_any_post_to_slash_elsewhere_is_not_nuxt():
    obs = Observation("POST", "https://api.example.com/", body=b'{"timestamp": 1, "events": [{"name": "x"}]}')
    assert pipeline().process(obs).collector is None


@pytest.mark.parametrize("value", [{"timestamp": 1, "context": "x", "events": [None, 3, {"name": []}]},
                                   {"timestamp": 1, "context": {"projectSession": {"a": 1}}, "events": [{}] * 20000},
                                   {"events": "x"}, [], 0])
def test_hostile_bodies_never_raise(value):
    result = pipeline(small=True).process(Observation("POST", URL, body=json.dumps(value).encode()))
    assert result.collector == "nuxt" and len(result.items) <= 10_000
    assert not [f for f in result.findings if "internal error" in f.message]


@pytest.mark.slow
def test_module_through_exec_is_sinkholed(tmp_path):
    if (why := node_ready("nuxt")) is not None:
        pytest.skip(why)
    done, events = run_exec(tmp_path, "Nuxt", ["node", "-r", str(PRELOAD), "send.mjs", "build", "checkout_enabled", EMAIL],
                            env={"HOME": str(tmp_path)}, cwd=NODE / "nuxt")
    item = check_sdk_run(done, events, "nuxt", "checkout_enabled")
    assert item["path"] == "events[3]" and item["ids"]["session"]


@pytest.mark.slow
def test_disabled_module_sends_nothing(tmp_path):
    if (why := node_ready("nuxt")) is not None:
        pytest.skip(why)
    done, events = run_exec(tmp_path, "Nuxt", ["node", "-r", str(PRELOAD), "send.mjs", "build", "x", EMAIL],
                            env={"HOME": str(tmp_path), "NUXT_TELEMETRY_DISABLED": "1"}, cwd=NODE / "nuxt")
    assert done.returncode == 0 and events == []
