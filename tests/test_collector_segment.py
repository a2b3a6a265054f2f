"""The Segment collector profile: requests recorded from segment-analytics-python and
@segment/analytics-node, analytics.js's batch and a batch-level context in the HTTP API's format
(fixtures/collectors/segment/), hostile variants, and the real SDKs through the real proxy."""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from sdk_exec import EMAIL, check_run, exec_sdk, observation, reported

from inspector.core import collectors
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline

HERE = FIXTURES / "collectors" / "segment"
NODE = ROOT / "tests" / "node" / "segment"
SEGMENT = collectors.get("segment")
WRITE_KEY = "wk5f2c9a1e7b3d4c60TestOnly"


def run(pipeline: Pipeline, obs: Observation) -> dict:
    return pipeline.process(obs).to_dict()


@pytest.mark.parametrize("name, second", [("python-batch", ("page", "Getting started")),
                                          ("python-batch-gzip", ("page", "Getting started")),
                                          ("node-batch", ("identify", None))])
def test_recorded_sdk_batches(pipeline: Pipeline, name: str, second: tuple[str, str | None]) -> None:
    event = run(pipeline, observation(HERE / f"{name}.json"))
    assert event["collector"] == "segment" and event["owner"] == "Twilio"
    assert event["decoding"] == (["body", "gzip", "json"] if "gzip" in name else ["body", "json"])
    track, other = event["items"]
    assert (track["kind"], track["name"], track["path"], track["ids"]) == (
        "track", "Order Completed", "batch[0]", {"user": "user-4711"})
    assert (other["kind"], other["name"]) == second
    findings = {(f["code"], f["path"]) for f in event["findings"]}
    assert {("credential", "writeKey"), ("credential", "headers.authorization"),
            ("pii", "batch[0].properties.contact")} <= findings
    assert not [f for f in event["findings"] if f["code"] == "pii" and f["evidence"] == WRITE_KEY]


def test_gzip_without_content_encoding(pipeline: Pipeline) -> None:
    plain = observation(HERE / "python-batch.json")
    squeezed = Observation(method="POST", url=plain.url, headers=(("content-type", "application/json"),),
                           body=gzip.compress(plain.body))
    event = run(pipeline, squeezed)
    assert event["decoding"] == ["body", "gzip", "json"] and len(event["items"]) == 2


def test_analytics_js_batch_is_text_plain(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "ajs-batch.json"))
    assert event["collector"] == "segment"
    assert [(i["kind"], i["name"]) for i in event["items"]] == [("track", "Order Completed"), ("page", "Checkout")]
    assert event["items"][0]["ids"] == {"anonymous": "b1c2d3e4-0001"}
    credentials = sorted(f["path"] for f in event["findings"] if f["code"] == "credential")
    assert credentials == ["batch[0].writeKey", "batch[1].writeKey", "writeKey"]


def test_batch_level_context_is_each_messages(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "batch-context.json"))
    track, identify = event["items"]
    shared = {"device": {"id": "device-9f8e7d", "type": "ios"}, "app": {"name": "Player"}}
    assert track["context"] == identify["context"] == shared
    assert track["ids"] == {"user": "user-4711", "device": "device-9f8e7d"}
    # a message's own context wins over the batch's
    value = {"batch": [{"type": "track", "event": "x", "userId": "u", "context": {"ip": "1"}}], "context": shared}
    (item,) = SEGMENT.items(value, observation(HERE / "batch-context.json"))
    assert item.context == {"ip": "1"}


def test_short_endpoints_imply_the_type() -> None:
    obs = Observation(method="POST", url="https://api.segment.io/v1/t")
    (item,) = SEGMENT.items({"event": "Clicked", "anonymousId": "a", "properties": {}}, obs)
    assert (item.kind, item.name, item.path) == ("track", "Clicked", "")


@pytest.mark.parametrize("value", [
    {"batch": "x", "context": "y"}, {"batch": [None, 1, "s"], "context": []}, {"batch": [{"type": ["track"]}]},
    {"batch": [{"type": "track", "context": 5, "event": 3}], "context": {"device": "not an object"}},
    [{"type": "page"}], "text", None, 3.5,
])
def test_hostile_values_never_raise(value: object) -> None:
    obs = Observation(method="POST", url="https://api.segment.io/v1/batch")
    assert isinstance(SEGMENT.items(value, obs), list)
    assert SEGMENT.recognises(value) in (True, False)


def test_hostile_bodies(pipeline: Pipeline) -> None:
    url = "https://api.segment.io/v1/batch"
    for body in (b"", b"{", b"\x1f\x8b\x08\x00garbage", b'{"batch": [' + b"[" * 500 + b"]" * 500 + b"]}"):
        event = run(pipeline, Observation(method="POST", url=url, body=body))
        assert event["collector"] == "segment" and event["items"] == []


def test_sinkhole_is_a_2xx_success() -> None:
    answer = SEGMENT.sinkhole(observation(HERE / "python-batch.json"))
    assert 200 <= answer.status < 300 and json.loads(answer.body) == {"success": True}


# --------------------------------------------------------------------------- the real SDKs, through the proxy

@pytest.mark.slow
@pytest.mark.parametrize("gzip_option", [False, True])
def test_python_sdk_through_the_proxy_is_sinkholed(tmp_path: Path, gzip_option: bool) -> None:
    pytest.importorskip("segment.analytics", reason="segment-analytics-python is not installed "
                        "(./dev setup installs requirements-sdks.txt)")
    argv = [sys.executable, str(HERE / "send_python.py"), "Order Completed 7", EMAIL, *(["gzip"] if gzip_option else [])]
    done, events = exec_sdk(tmp_path, "Segment", argv)
    assert reported(done, "errors") == "0"
    event = check_run(events, int(reported(done, "requests")), "segment", "Order Completed 7",
                      credential_paths=("writeKey", "headers.authorization"))
    assert event["host"] == "api.segment.io" and ("gzip" in event["decoding"]) is gzip_option


@pytest.mark.slow
def test_python_sdk_allowed_reaches_the_upstream(tmp_path: Path) -> None:
    pytest.importorskip("segment.analytics", reason="segment-analytics-python is not installed")
    from inspector.emit.upstream import Upstream
    with Upstream(extra_hosts=("api.segment.io",)) as upstream:
        done, events = exec_sdk(tmp_path, None, [sys.executable, str(HERE / "send_python.py"), "Allowed 7", EMAIL],
                                "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                                "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}")
        assert upstream.count(host="api.segment.io", path="/v1/batch") == int(reported(done, "requests")) == 1
    check_run(events, 1, "segment", "Allowed 7", action="allow")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.skipif(not (NODE / "node_modules").is_dir(), reason="tests/node/segment/node_modules is missing (./dev setup)")
def test_node_sdk_through_the_proxy_is_sinkholed(tmp_path: Path) -> None:
    done, events = exec_sdk(tmp_path, "Segment", ["node", str(NODE / "send.mjs"), "Order Completed 7", EMAIL], cwd=NODE)
    assert reported(done, "errors") == "0"
    event = check_run(events, int(reported(done, "requests")), "segment", "Order Completed 7",
                      credential_paths=("writeKey", "headers.authorization"))
    assert event["path"] == "/v1/batch"
    assert [i["kind"] for i in event["items"]] == ["track", "identify"]
