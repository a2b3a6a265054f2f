"""The Microsoft 1DS / OneCollector profile: requests recorded from @microsoft/1ds-core-js and
@microsoft/1ds-post-js (fixtures/collectors/onecollector/), hostile variants, and the real SDK
through the real proxy."""

from __future__ import annotations

import gzip
import json
import shutil
import time
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_exec import EMAIL, check_run, exec_sdk, observation, reported

from inspector.core import collectors
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline

HERE = FIXTURES / "collectors" / "onecollector"
NODE = ROOT / "tests" / "node" / "onecollector"
ONE = collectors.get("onecollector")
APIKEY = "0c6ae279ed8443289764825290e4f9e2-1a736e7c-1324-4338-be46-fc2a58ae4d14-7255"
URL = "https://mobile.events.data.microsoft.com/OneCollector/1.0/"


def run(pipeline: Pipeline, obs: Observation) -> dict:
    return pipeline.process(obs).to_dict()


def recorded_line() -> dict:
    return json.loads(observation(HERE / "default-endpoint.json").body)


def stream(*records: dict) -> bytes:
    return "\n".join(json.dumps(r) for r in records).encode()


def test_hosts_and_endpoints() -> None:
    assert ONE.title == "Microsoft 1DS" and ONE.owner == "Microsoft"
    for host in ("browser.events.data.microsoft.com", "mobile.events.data.microsoft.com"):
        assert collectors.for_request(host, "POST", "/OneCollector/1.0/") is ONE
        assert collectors.for_request(host, "POST", "/OneCollector/1.0") is ONE
        assert collectors.for_request(host, "GET", "/ping") is ONE
    assert not ONE.serves("events.data.microsoft.com.evil.example")


@pytest.mark.parametrize("name, event_name", [("default-endpoint", "acme/shop/checkout"),
                                              ("vscode-endpoint", "monacoworkbench/acme/checkout")])
def test_recorded_requests(pipeline: Pipeline, name: str, event_name: str) -> None:
    event = run(pipeline, observation(HERE / f"{name}.json"))
    assert event["collector"] == "onecollector" and event["decoding"] == ["body", "ndjson"]
    (item,) = event["items"]
    assert (item["kind"], item["name"], item["path"]) == ("event", event_name, "[0]")
    assert item["ids"] == {"device": "5d2f3c8a9b7e6d1c0f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c9d8e7f6a5b4c3d2e"}
    assert item["properties"]["contact"] == EMAIL and item["context"] == {"sdk": {"ver": "1DS-Web-JS-4.4.4"}}
    findings = {(f["code"], f["path"]) for f in event["findings"]}
    assert {("credential", "[0].iKey"), ("credential", "headers.apikey"), ("pii", "[0].data.contact")} <= findings
    assert not [f for f in event["findings"] if f["code"] == "pii" and "iKey" in f["path"]]


def test_common_schema_ids_and_several_lines(pipeline: Pipeline) -> None:
    line = recorded_line()
    ext = {"user": {"localId": "c:1234"}, "device": {"localId": "s:ABCD"}, "app": {"sesId": "sess-9", "id": "app-1"},
           "metadata": {"f": {"contact": 8}}}
    second = {**line, "name": "acme/shop/second", "ext": ext, "data": {"baseType": "x", "baseData": {"name": "inner"}}}
    unnamed = {"iKey": "o:1", "ver": "4.0", "time": "t", "data": {"baseData": {"name": "from baseData"}}}
    body = stream(line, second, unnamed)
    event = run(pipeline, Observation(method="POST", url=f"{URL}?apikey={APIKEY}&client-id=NO_AUTH", body=body))
    _first, middle, last = event["items"]
    assert middle["ids"] == {"user": "c:1234", "device": "s:ABCD", "session": "sess-9", "install": "app-1"}
    assert (middle["path"], last["name"]) == ("[1]", "from baseData")
    credentials = {f["path"] for f in event["findings"] if f["code"] == "credential"}
    assert {"query.apikey", "[0].iKey", "[1].iKey", "[2].iKey"} <= credentials


def test_gzip_body(pipeline: Pipeline) -> None:
    plain = observation(HERE / "vscode-endpoint.json")
    squeezed = Observation(method="POST", url=plain.url, headers=(*plain.headers, ("content-encoding", "gzip")),
                           body=gzip.compress(plain.body))
    event = run(pipeline, squeezed)
    assert event["decoding"] == ["body", "gzip", "ndjson"] and len(event["items"]) == 1
    assert ONE.sinkhole(squeezed).body == b'{"acc":1}'


def test_recognised_on_any_host(pipeline: Pipeline) -> None:
    body = observation(HERE / "default-endpoint.json").body
    event = run(pipeline, Observation(method="POST", url="https://telemetry.internal.example/OneCollector/1.0/", body=body))
    assert event["collector"] == "onecollector"
    assert not ONE.recognises([{"type": "view", "_dd": {}}]) and not ONE.recognises({"batch": []})


def test_sinkhole_counts_the_accepted_events() -> None:
    obs = Observation(method="POST", url=URL, body=stream(recorded_line(), recorded_line(), recorded_line()) + b"\n")
    answer = ONE.sinkhole(obs)
    assert answer.status == 200 and json.loads(answer.body) == {"acc": 3}  # only 200 and 204 are not retried
    assert ONE.sinkhole(Observation(method="GET", url="https://mobile.events.data.microsoft.com/ping")).status == 200


@pytest.mark.parametrize("body", [b"", b"\n", b"[]", b"nope\n{}", b'{"name": 5, "ext": "x", "data": []}',
                                  b'{"ext": {"user": [], "device": {"localId": {}}, "app": 7}, "data": {"baseData": 3}}',
                                  b"\x1f\x8b\x08 broken", b"[" * 100000])
def test_hostile_bodies_never_raise(pipeline: Pipeline, body: bytes) -> None:
    event = run(pipeline, Observation(method="POST", url=URL, body=body))
    assert event["collector"] == "onecollector" and isinstance(event["items"], list)
    assert not any("internal error" in f["message"] for f in event["findings"])


def test_linear_in_lines(pipeline: Pipeline) -> None:
    body = stream(*[recorded_line()] * 5000)
    started = time.thread_time()
    event = run(pipeline, Observation(method="POST", url=URL, body=body))
    assert len(event["items"]) == 5000 and time.thread_time() - started < 15


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not (NODE / "node_modules").is_dir(), reason="tests/node/onecollector/node_modules is missing (./dev setup)")
@pytest.mark.parametrize("endpoint", [None, "https://mobile.events.data.microsoft.com/OneCollector/1.0"])
def test_sdk_through_the_proxy_is_sinkholed(tmp_path: Path, endpoint: str | None) -> None:
    argv = ["node", str(NODE / "send.mjs"), "monacoworkbench/acme/run7", EMAIL, *([endpoint] if endpoint else [])]
    done, events = exec_sdk(tmp_path, "Microsoft 1DS", argv, cwd=NODE)
    assert reported(done, "status") == "200"
    event = check_run(events, int(reported(done, "requests")), "onecollector", "monacoworkbench/acme/run7",
                      credential_paths=("headers.apikey", "[0].iKey"))
    assert event["host"] == ("mobile" if endpoint else "browser") + ".events.data.microsoft.com"


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                         ["name", "iKey", "ver", "ext", "data", "baseData", "user", "device", "app", "localId",
                          "sesId", "id", "common.machineId", "sessionID"]), inner, max_size=5), max_leaves=20)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_json, max_size=6), noise=st.binary(max_size=40), squeeze=st.booleans())
def test_random_streams_never_raise(pipeline: Pipeline, lines: list, noise: bytes, squeeze: bool) -> None:
    body = b"\n".join(json.dumps(line).encode() for line in lines) + noise
    headers: tuple[tuple[str, str], ...] = ()
    if squeeze:
        body, headers = gzip.compress(body)[: max(4, len(body))], (("content-encoding", "gzip"),)
    obs = Observation(method="POST", url=URL, headers=headers, body=body)
    event = run(pipeline, obs)
    assert event["collector"] == "onecollector"
    assert not any("internal error" in f["message"] for f in event["findings"])
    assert ONE.sinkhole(obs).status == 200
