"""The RudderStack collector profile: requests recorded from rudder-sdk-python and built in the
data plane's beacon and pixel formats (fixtures/collectors/rudderstack/), hostile variants, and
the real SDK through the real proxy."""

from __future__ import annotations

import gzip
import json
import sys
import time
from pathlib import Path

import pytest
from conftest import FIXTURES
from hypothesis import given, settings
from hypothesis import strategies as st
from sdk_exec import EMAIL, check_run, exec_sdk, observation, reported

from inspector.core import collectors
from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

HERE = FIXTURES / "collectors" / "rudderstack"
RUDDER = collectors.get("rudderstack")
WRITE_KEY = "2QeUrbbTestWriteKey0000000A"
HOST = "acmeshop.dataplane.rudderstack.com"


def run(pipeline: Pipeline, obs: Observation) -> dict:
    return pipeline.process(obs).to_dict()


def post(url: str, body: bytes, *headers: tuple[str, str]) -> Observation:
    return Observation(method="POST", url=url, headers=(("content-type", "application/json"), *headers), body=body)


# --------------------------------------------------------------------------- the profile

def test_hosts_and_endpoints() -> None:
    assert RUDDER is not None and RUDDER.title == "RudderStack"
    for host in (HOST, "hosted.rudderlabs.com", "api.rudderstack.com"):
        assert collectors.for_request(host, "POST", "/v1/batch") is RUDDER
    assert collectors.for_request(HOST, "POST", "/beacon/v1/batch") is RUDDER
    assert collectors.for_request(HOST, "GET", "/pixel/v1/track") is RUDDER
    assert collectors.for_request(HOST, "POST", "/pixel/v1/track") is None  # pixels are GETs
    assert collectors.for_request(HOST, "POST", "/v1/unknown") is None
    assert not RUDDER.serves("dataplane.rudderstack.com.evil.example")


def test_python_sdk_batch(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "python-batch.json"))
    assert event["collector"] == "rudderstack" and event["owner"] == "RudderStack"
    assert event["decoding"] == ["body", "gzip", "json"]
    track, identify = event["items"]
    assert (track["kind"], track["name"], track["path"]) == ("track", "Order Completed", "batch[0]")
    assert track["ids"] == {"user": "user-4711"} and track["properties"]["contact"] == EMAIL
    # rudder-sdk-python puts identify's traits into context.traits
    assert (identify["kind"], identify["properties"]) == ("identify", {"name": "Jane Doe", "plan": "pro"})
    codes = {(f["code"], f["path"]) for f in event["findings"]}
    assert ("credential", "headers.authorization") in codes and ("pii", "batch[0].properties.contact") in codes


def test_beacon_batch_and_its_write_key_in_the_query(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "beacon-batch.json"))
    assert event["collector"] == "rudderstack"
    assert [(i["kind"], i["name"]) for i in event["items"]] == [("track", "Order Completed"), ("page", "Checkout")]
    assert event["items"][0]["ids"]["session"] == "1796190000123"  # context.sessionId
    credential = [f for f in event["findings"] if f["code"] == "credential"]
    assert [f["path"] for f in credential] == ["query.writeKey"] and credential[0]["evidence"] == WRITE_KEY


def test_pixel_query_is_the_message(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "pixel-track.json"))
    assert event["collector"] == "rudderstack"
    assert event["decoded"]["properties"] == {"campaign": "winter", "contact": EMAIL}
    assert event["decoded"]["context"] == {"page": {"url": "https://shop.example.com/"}}
    (item,) = event["items"]
    assert (item["kind"], item["name"]) == ("track", "Newsletter Opened")  # `+` is a space here
    findings = {(f["code"], f["path"]) for f in event["findings"]}
    assert {("credential", "writeKey"), ("credential", "query.writeKey"), ("pii", "properties.contact")} <= findings
    assert ("pii", "writeKey") not in findings


def test_recognised_on_any_host_but_not_segments_payloads(pipeline: Pipeline) -> None:
    beacon = observation(HERE / "beacon-batch.json")
    body = beacon.body
    selfhosted = post("https://rudder.internal.example/v1/batch", body)
    assert run(pipeline, selfhosted)["collector"] == "rudderstack"
    segment = observation(FIXTURES / "collectors" / "segment" / "python-batch.json")
    assert not RUDDER.recognises(json.loads(segment.body))
    moved = post("https://analytics.internal.example/v1/batch", segment.body)
    assert run(pipeline, moved)["collector"] == "segment"


def test_sinkhole_answers_like_the_data_plane() -> None:
    answer = RUDDER.sinkhole(observation(HERE / "python-batch.json"))
    assert (answer.status, answer.body) == (200, b"OK")  # rudder-sdk-python wants exactly 200
    pixel = RUDDER.sinkhole(observation(HERE / "pixel-track.json"))
    assert pixel.status == 200 and pixel.body.startswith(b"GIF89a")
    assert ("Content-Type", "image/gif") in pixel.headers


# --------------------------------------------------------------------------- hostile input

@pytest.mark.parametrize("value", [
    {"batch": "nope"}, {"batch": [1, None, "x", []]}, {"batch": [{"type": 7, "context": "x"}]},
    {"batch": [{"type": "identify", "context": {"traits": "not an object"}, "userId": ["a"]}]},
    {"batch": [{"type": "track", "event": {"nested": True}, "context": {"library": 5, "app": []}}]},
    [], "text", 12, None,
])
def test_hostile_values_never_raise(value: object) -> None:
    obs = post(f"https://{HOST}/v1/batch", b"")
    items = RUDDER.items(value, obs)
    assert isinstance(items, list)
    assert RUDDER.recognises(value) in (True, False)


def test_hostile_bodies_through_the_pipeline(pipeline: Pipeline) -> None:
    url = f"https://{HOST}/v1/batch"
    bomb = gzip.compress(b" " * (4 * 1024 * 1024))  # 4 MiB from a few KiB
    small = Pipeline(Catalogue.load(), limits=Limits(max_decompressed=1024 * 1024))
    event = run(small, post(url, bomb, ("content-encoding", "gzip")))
    assert event["collector"] == "rudderstack" and event["items"] == []
    assert any(f["code"] == "decode-error" for f in event["findings"])
    deep = b'{"batch": [' + b'{"a":' * 200 + b"1" + b"}" * 200 + b"]}"
    assert run(pipeline, post(url, deep))["items"] == []
    assert run(pipeline, post(url, b"\xff\xfe garbage"))["collector"] == "rudderstack"


def test_pixel_bounds() -> None:
    many = "&".join(f"p{i}=v" for i in range(1000))
    decoded = RUDDER.decode(Observation(method="GET", url=f"https://{HOST}/pixel/v1/track?{many}"), None)
    assert len(decoded.value) <= 257 and any("more than" in i.message for i in decoded.issues)
    deep = ".".join(["a"] * 50)
    decoded = RUDDER.decode(Observation(method="GET", url=f"https://{HOST}/pixel/v1/page?{deep}=1&a=2&a.b=3"), None)
    assert decoded.value["type"] == "page" and "a" in decoded.value
    assert any("not used" in i.message for i in decoded.issues)


@pytest.mark.slow
def test_a_large_batch_is_linear(pipeline: Pipeline) -> None:
    message = {"type": "track", "event": "e", "userId": "u", "channel": "server", "properties": {"n": 1}}
    body = json.dumps({"batch": [message] * 20000}).encode()
    started = time.thread_time()
    event = run(pipeline, post(f"https://{HOST}/v1/batch", body))
    assert len(event["items"]) == 20000 and time.thread_time() - started < 10


# --------------------------------------------------------------------------- the real SDK, through the proxy

@pytest.mark.slow
def test_python_sdk_through_the_proxy_is_sinkholed(tmp_path: Path) -> None:
    pytest.importorskip("rudderstack.analytics", reason="rudder-sdk-python is not installed "
                        "(./dev setup installs requirements-sdks.txt)")
    done, events = exec_sdk(tmp_path, "RudderStack",
                            [sys.executable, str(HERE / "send_python.py"), "Order Completed 7", EMAIL])
    assert reported(done, "errors") == "0"  # the SDK took the sinkhole's answer as success
    event = check_run(events, int(reported(done, "requests")), "rudderstack", "Order Completed 7",
                      credential_paths=("headers.authorization",))
    assert event["host"] == HOST and event["path"] == "/v1/batch"


@pytest.mark.slow
def test_python_sdk_allowed_reaches_the_upstream(tmp_path: Path) -> None:
    pytest.importorskip("rudderstack.analytics", reason="rudder-sdk-python is not installed")
    from inspector.emit.upstream import Upstream
    with Upstream(extra_hosts=(HOST,)) as upstream:
        done, events = exec_sdk(tmp_path, None, [sys.executable, str(HERE / "send_python.py"), "Allowed 7", EMAIL],
                                "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                                "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}")
        assert upstream.count(host=HOST, path="/v1/batch") == int(reported(done, "requests")) == 1
        assert upstream.requests[0].header("content-encoding") == "gzip"
    check_run(events, 1, "rudderstack", "Allowed 7", action="allow")


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                         ["batch", "type", "event", "name", "userId", "anonymousId", "context", "traits", "library",
                          "app", "channel", "properties", "writeKey", "device", "id"]), inner, max_size=5),
                     max_leaves=25)


@settings(max_examples=200, deadline=None)
@given(value=_json, query=st.text(max_size=60))
def test_random_messages_and_pixels_never_raise(value: object, query: str) -> None:
    segment = collectors.get("segment")
    for profile in (RUDDER, segment):
        assert isinstance(profile.items(value, post(f"https://{HOST}/v1/t", b"")), list)
        assert profile.recognises(value) in (True, False)
    pixel = Observation(method="GET", url=f"https://{HOST}/pixel/v1/page?type=track&{query}")
    decoded = RUDDER.decode(pixel, None)
    assert decoded.structured and RUDDER.items(decoded.value, pixel)[0].kind == "page"
