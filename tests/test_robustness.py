"""Hostile input never escapes the pipeline: arbitrary bytes, JSON, headers; bombs and floods."""

from __future__ import annotations

import base64
import gzip
import json
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

CATALOGUE = Catalogue.load()
PIPE = Pipeline(CATALOGUE)
HOSTS = ["telemetry.refine.dev", "telemetry.hasura.io", "api.segment.io", "example.com"]
PATHS = ["/telemetry", "/send", "/v1/http", "/v1/track", "/v1/batch", "/v1/import/", "/cli", "/x"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=30,
)
headers = st.lists(st.tuples(st.sampled_from(["Content-Encoding", "Content-Type", "Cookie", "X-Any", "Authorization"]),
                             st.text(max_size=40)), max_size=6)


def check(obs: Observation) -> None:
    start = time.monotonic()
    event = PIPE.process(obs)
    assert time.monotonic() - start < 5
    assert isinstance(event.findings, list)
    json.dumps(event.to_dict(), default=str)  # always serialisable for the store and reports


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=2048), host=st.sampled_from(HOSTS), path=st.sampled_from(PATHS), hdrs=headers)
def test_arbitrary_bytes(body, host, path, hdrs):
    check(Observation("POST", f"https://{host}{path}", headers=tuple(hdrs), body=body))


@settings(max_examples=150, deadline=None)
@given(value=json_values, host=st.sampled_from(HOSTS), path=st.sampled_from(PATHS),
       wrap=st.sampled_from(["json", "b64", "gzip", "query"]))
def test_arbitrary_json_in_every_wrapping(value, host, path, wrap):
    raw = json.dumps(value).encode()
    if wrap == "b64":
        raw = base64.b64encode(raw)
    elif wrap == "gzip":
        raw = gzip.compress(raw)
    if wrap == "query":
        check(Observation("GET", f"https://{host}{path}?payload={base64.b64encode(raw).decode()}"))
    else:
        check(Observation("POST", f"https://{host}{path}", body=raw))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300), host=st.sampled_from(HOSTS))
def test_arbitrary_query_strings(text, host):
    check(Observation("GET", f"https://{host}/telemetry?{text}"))


def test_hostile_corpus():
    pipe = Pipeline(CATALOGUE, limits=Limits(max_body=8_000_000, max_decompressed=8_000_000))
    corpus = {
        "gzip bomb": (gzip.compress(b"\0" * 300_000_000, 9), (("Content-Encoding", "gzip"),)),
        "huge body": (b'{"a":"' + b"x" * 9_000_000 + b'"}', ()),
        "deep nesting": (b"[" * 100_000 + b"]" * 100_000, ()),
        "invalid utf-8": (b'{"a": "\xc3\x28"}', ()),
        "junk base64": (b"eyJh!!!!" * 1000, ()),
        "header flood": (b"{}", tuple(("X-Flood", "v" * 100) for _ in range(5000))),
        "truncated gzip": (gzip.compress(b'{"a": 1}')[:-8], (("Content-Encoding", "gzip"),)),
    }
    for name, (body, hdrs) in corpus.items():
        start = time.monotonic()
        event = pipe.process(Observation("POST", "https://api.segment.io/v1/track", headers=hdrs, body=body))
        assert time.monotonic() - start < 20, name
        assert event.findings is not None, name
        if name in ("gzip bomb", "huge body", "deep nesting", "truncated gzip"):
            assert "decode-error" in {f.code for f in event.findings}, name
    event = pipe.process(Observation("GET", "https://telemetry.refine.dev/telemetry?payload=" + "A" * 1_000_000))
    assert event.policy is None or event.findings is not None
