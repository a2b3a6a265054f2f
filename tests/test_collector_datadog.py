"""The Datadog browser-intake collector profile: requests recorded from @datadog/browser-logs and
@datadog/browser-rum run under Node (fixtures/collectors/datadog/), a replay upload in
buildReplayPayload's format, hostile variants, and the real SDKs through the real proxy."""

from __future__ import annotations

import gzip
import json
import shutil
import time
import zlib
from pathlib import Path

import pytest
from conftest import FIXTURES, ROOT
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sdk_exec import EMAIL, check_run, exec_sdk, observation, reported

from inspector.core import collectors
from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

HERE = FIXTURES / "collectors" / "datadog"
NODE = ROOT / "tests" / "node" / "datadog"
DATADOG = collectors.get("datadog")
TOKEN = "pub0123456789abcdef0123456789abcdef"
QUERY = f"ddsource=browser&dd-api-key={TOKEN}&dd-evp-origin=browser&dd-request-id=1"


def run(pipeline: Pipeline, obs: Observation) -> dict:
    return pipeline.process(obs).to_dict()


def rum_lines() -> bytes:
    """The plain NDJSON of the recorded RUM batch."""
    return observation(HERE / "rum.json").body


@pytest.mark.parametrize("host, served", [
    ("browser-intake-datadoghq.com", True), ("browser-intake-datadoghq.eu", True),
    ("browser-intake-us3-datadoghq.com", True), ("browser-intake-us5-datadoghq.com", True),
    ("browser-intake-ap1-datadoghq.com", True), ("browser-intake-ddog-gov.com", True),
    ("browser-intake-us2-ddog-gov.com", True), ("quota.browser-intake-datadoghq.com", True),
    ("browser-intake-datadoghq.com.evil.example", False), ("browser-intake-x.y-datadoghq.com", False),
    ("datadoghq.com", False), ("browser-intake-notdatadoghq.com", False),
])
def test_hosts(host: str, served: bool) -> None:
    assert DATADOG.serves(host) is served


def test_logs(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "logs.json"))
    assert event["collector"] == "datadog" and event["decoding"] == ["body", "ndjson"]
    (item,) = event["items"]
    assert (item["kind"], item["name"], item["path"]) == ("log", "checkout started", "[0]")
    assert item["ids"]["user"] == "user-4711" and set(item["ids"]) == {"user", "anonymous", "session"}
    assert item["properties"] == {"contact": EMAIL, "cart": {"items": 3}}
    findings = {(f["code"], f["path"]) for f in event["findings"]}
    assert {("credential", "query.dd-api-key"), ("pii", "[0].contact")} <= findings


def test_rum_batch(pipeline: Pipeline) -> None:
    event = run(pipeline, observation(HERE / "rum.json"))
    kinds = [(i["kind"], i["name"]) for i in event["items"]]
    assert kinds == [("track", "checkout clicked"), ("exception", "payment declined"),
                     ("page", "https://shop.example.com/checkout?step=2")]
    action = event["items"][0]
    assert action["properties"] == {"contact": EMAIL} and action["ids"]["user"] == "user-4711"
    assert action["context"]["application"] == {"id": "0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"}
    assert ("pii", "[0].context.contact") in {(f["code"], f["path"]) for f in event["findings"]}


def test_the_sdks_deflate_stream(pipeline: Pipeline) -> None:
    recorded = [observation(p) for p in sorted(HERE.glob("rum-deflate.*.json"))]
    deflated = [o for o in recorded if "dd-evp-encoding=deflate" in o.url]
    assert len(deflated) == 1 and deflated[0].body[:1] == b"\x78"  # zlib-wrapped, as the worker writes it
    event = run(pipeline, deflated[0])
    assert event["decoding"] == ["body", "deflate", "ndjson"] and event["items"]
    names = {i["name"] for o in recorded for i in run(pipeline, o)["items"]}
    assert "checkout clicked" in names


@pytest.mark.parametrize("compress", ["raw", "zlib-no-query", "gzip-header"])
def test_other_compressions(pipeline: Pipeline, compress: str) -> None:
    lines = rum_lines()
    url, headers = f"https://browser-intake-datadoghq.com/api/v2/rum?{QUERY}", ()
    if compress == "raw":
        squeezer = zlib.compressobj(wbits=-15)
        body = squeezer.compress(lines) + squeezer.flush()
        url += "&dd-evp-encoding=deflate"
    elif compress == "zlib-no-query":
        body = zlib.compress(lines)
    else:
        body, headers = gzip.compress(lines), (("content-encoding", "gzip"),)
    event = run(pipeline, Observation(method="POST", url=url, headers=headers, body=body))
    assert len(event["items"]) == 3, event["findings"]


def test_a_cut_deflate_stream_keeps_what_it_held(pipeline: Pipeline) -> None:
    squeezer = zlib.compressobj()
    body = squeezer.compress(rum_lines()) + squeezer.flush(zlib.Z_SYNC_FLUSH)  # no final block
    event = run(pipeline, Observation(method="POST", url=f"https://browser-intake-datadoghq.com/api/v2/rum?{QUERY}"
                                      "&dd-evp-encoding=deflate", body=body))
    assert len(event["items"]) == 3 and any("truncated" in f["message"] for f in event["findings"])


def replay_upload() -> Observation:
    """A session-replay upload as buildReplayPayload (browser-rum's segmentCollection) makes it."""
    meta = {"application": {"id": "app-1"}, "session": {"id": "sess-1"}, "view": {"id": "view-1"},
            "start": 1, "end": 2, "creation_reason": "init", "records_count": 1, "has_full_snapshot": True,
            "index_in_view": 0, "source": "browser"}
    records = {"records": [{"type": 4, "timestamp": 1, "data": {"href": f"https://shop.example.com/?u={EMAIL}"}}]}
    segment = zlib.compress((json.dumps(records)[:-1] + "," + json.dumps(meta)[1:] + "\n").encode())
    event = json.dumps({"raw_segment_size": 300, "compressed_segment_size": len(segment), **meta}).encode()
    boundary = "----formdata-undici-0123456789"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"segment\"; filename=\"sess-1-1\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + segment + (
            f"\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"event\"; filename=\"blob\"\r\n"
            "Content-Type: application/json\r\n\r\n").encode() + event + f"\r\n--{boundary}--\r\n".encode()
    return Observation(method="POST", url=f"https://browser-intake-datadoghq.com/api/v2/replay?{QUERY}",
                       headers=(("content-type", f"multipart/form-data; boundary={boundary}"),), body=body)


def test_replay_upload(pipeline: Pipeline) -> None:
    event = run(pipeline, replay_upload())
    assert event["decoded"]["event"]["session"] == {"id": "sess-1"}
    assert event["decoded"]["segment"]["records"][0]["type"] == 4  # the recording, inflated
    (item,) = event["items"]
    assert (item["kind"], item["name"], item["ids"]) == ("attachment", "session replay", {"session": "sess-1"})
    assert any(f["code"] == "pii" and f["path"].startswith("segment.records[0]") for f in event["findings"])


def test_recognised_on_any_host(pipeline: Pipeline) -> None:
    lines = rum_lines()
    event = run(pipeline, Observation(method="POST", url="https://dd-proxy.internal.example/api/v2/rum", body=lines))
    assert event["collector"] == "datadog"
    assert not DATADOG.recognises([{"type": "track", "event": "x"}])
    assert not DATADOG.recognises([{"iKey": "o:1", "name": "x", "ver": "4.0"}])
    assert not DATADOG.recognises({"batch": []})


def test_sinkhole_is_202() -> None:
    answer = DATADOG.sinkhole(observation(HERE / "rum.json"))
    assert answer.status == 202 and answer.body == b"{}"  # retried are 408, 429, 5xx only


@pytest.mark.parametrize("body", [b"", b"\n\n", b"not json\n{}", b"[1,2]\n{\"type\": 5}\n\"s\"",
                                  b'{"type":"view","_dd":{},"view":"x","usr":[]}',
                                  b'{"type":"action","action":{"target":"x"},"session":{"id":{}}}',
                                  b"\x78\x9c\x00\x00", b"{" * 10000])
def test_hostile_bodies_never_raise(pipeline: Pipeline, body: bytes) -> None:
    event = run(pipeline, Observation(method="POST", url=f"https://browser-intake-datadoghq.com/api/v2/rum?{QUERY}",
                                      body=body))
    assert event["collector"] == "datadog" and isinstance(event["items"], list)
    assert not any("internal error" in f["message"] for f in event["findings"])


def test_hostile_multipart(pipeline: Pipeline) -> None:
    url = f"https://browser-intake-datadoghq.com/api/v2/replay?{QUERY}"
    for content_type, body in (("multipart/form-data", b"--x\r\n"), ("multipart/form-data; boundary=x", b"--x\r\n" * 5000),
                               ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data; name=\"event\""
                                                                   b"\r\n\r\n\x78\x9c garbage\r\n--x--")):
        event = run(pipeline, Observation(method="POST", url=url, headers=(("content-type", content_type),), body=body))
        assert event["collector"] == "datadog" and not any("internal error" in f["message"] for f in event["findings"])


@pytest.mark.slow
def test_bounded_and_linear(pipeline: Pipeline) -> None:
    bomb = zlib.compress(b"\n" * (8 * 1024 * 1024))
    small = Pipeline(Catalogue.load(), limits=Limits(max_decompressed=1024 * 1024))
    event = run(small, Observation(method="POST", url=f"https://browser-intake-datadoghq.com/api/v2/rum?{QUERY}"
                                   "&dd-evp-encoding=deflate", body=bomb))
    assert event["items"] == [] and any("exceeds" in f["message"] for f in event["findings"])
    line = rum_lines().split(b"\n")[0]
    started = time.thread_time()
    event = run(pipeline, Observation(method="POST", url=f"https://browser-intake-datadoghq.com/api/v2/rum?{QUERY}",
                                      body=b"\n".join([line] * 12000)))
    assert len(event["items"]) == 10000 and any("more than 10000 lines" in f["message"] for f in event["findings"])
    assert time.thread_time() - started < 20


# --------------------------------------------------------------------------- the real SDKs, through the proxy

needs_node = [pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed"),
              pytest.mark.skipif(not (NODE / "node_modules").is_dir(),
                                 reason="tests/node/datadog/node_modules is missing (./dev setup)")]


@pytest.mark.slow
@pytest.mark.parametrize("mode, kind", [("logs", "log"), ("rum", "track"), ("rum-deflate", "track")])
@needs_node[0]
@needs_node[1]
def test_browser_sdks_through_the_proxy_are_sinkholed(tmp_path: Path, mode: str, kind: str) -> None:
    done, events = exec_sdk(tmp_path, "Datadog", ["node", str(NODE / "send.mjs"), mode, "checkout clicked 7", EMAIL],
                            cwd=NODE)
    requests = int(reported(done, "requests"))
    assert set(reported(done, "status").split(",")) == {"202"}
    event = check_run(events, requests, "datadog", "checkout clicked 7", credential_paths=("query.dd-api-key",))
    assert [i["kind"] for i in event["items"] if i["name"] == "checkout clicked 7"] == [kind]
    if mode == "rum-deflate":
        assert any("deflate" in e["decoding"] for e in events)


# --------------------------------------------------------------------------- random input

_json = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=8),
                     lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(
                         ["type", "_dd", "usr", "session", "view", "action", "error", "message", "status",
                          "context", "id", "name", "target", "ddtags"]), inner, max_size=5), max_leaves=20)


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(_json, max_size=6), noise=st.binary(max_size=40), deflate=st.booleans())
def test_random_batches_never_raise(pipeline: Pipeline, lines: list, noise: bytes, deflate: bool) -> None:
    body = b"\n".join(json.dumps(line).encode() for line in lines) + noise
    url = f"https://browser-intake-datadoghq.com/api/v2/rum?{QUERY}"
    if deflate:
        body, url = zlib.compress(body)[: max(2, len(body) // 2 + 2)], url + "&dd-evp-encoding=deflate"
    event = run(pipeline, Observation(method="POST", url=url, body=body))
    assert event["collector"] == "datadog"
    assert not any("internal error" in f["message"] for f in event["findings"])
    assert DATADOG.recognises(event["decoded"]) in (True, False)
