"""Hostile input never escapes the pipeline: arbitrary bytes, JSON, headers; bombs and floods."""

from __future__ import annotations

import base64
import gzip
import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from inspector.core.decode import Limits
from inspector.core.fastcheck import compile_errors
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import FORMAT_CHECKER, Catalogue

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


@pytest.mark.slow
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


@pytest.mark.slow
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
    events = {}
    for name, (body, hdrs) in corpus.items():
        start = time.monotonic()
        events[name] = pipe.process(Observation("POST", "https://api.segment.io/v1/track", headers=hdrs, body=body))
        assert time.monotonic() - start < 20, name
        assert events[name].collector == "segment", name  # still the collector's request, whatever its body
        if name in ("gzip bomb", "huge body", "deep nesting", "truncated gzip"):
            assert "decode-error" in {f.code for f in events[name].findings}, name
    # bad UTF-8 is replaced and said, the JSON around it still read
    bad_utf8 = events["invalid utf-8"]
    assert bad_utf8.decoded == {"a": "\ufffd("} and bad_utf8.to_dict()["decoding"] == ["body", "json"]
    assert [(f.code, "invalid UTF-8" in f.message) for f in bad_utf8.findings] == [("decode-error", True)]
    # text that only starts like Base64 stays the text it is: nothing invented, nothing found
    junk = events["junk base64"]
    assert junk.decoded == (b"eyJh!!!!" * 1000).decode() and junk.to_dict()["decoding"] == ["body"]
    assert junk.findings == []
    # 5,000 headers do not keep the body from being read
    flood = events["header flood"]
    assert flood.decoded == {} and flood.to_dict()["decoding"] == ["body", "json"] and flood.findings == []
    # a megabyte of Base64 that is no JSON: the policy still matched, the payload said undecodable
    event = pipe.process(Observation("GET", "https://telemetry.refine.dev/telemetry?payload=" + "A" * 1_000_000))
    assert event.policy == "refine-v4-browser"
    assert [f.code for f in event.findings] == ["decode-error"] and "base64" in event.findings[0].message


# ---------------------------------------------------------------- the fast validity check
def _wire_payloads() -> list[tuple[str, object]]:
    from inspector.emit.channels import observation_of, wire_requests
    pairs = []
    for request in wire_requests():
        made = observation_of(request)
        for obs in made if isinstance(made, list) else [made]:
            event = PIPE.process(obs)
            if event.policy and isinstance(event.decoded, (dict, list)):
                pairs.append((event.policy, event.decoded))
    return pairs


WIRE_PAYLOADS = _wire_payloads()


def _nodes(value, path=()):
    yield path, value
    if isinstance(value, dict):
        for key, child in value.items():
            yield from _nodes(child, (*path, key))
    elif isinstance(value, list):
        for i, child in enumerate(value):
            yield from _nodes(child, (*path, i))


def _mutate(value, ops):
    import copy
    value = copy.deepcopy(value)
    for op, index, new, name in ops:
        nodes = list(_nodes(value))
        path, node = nodes[index % len(nodes)]
        if op == "add" and isinstance(node, dict):
            node[name] = new
        elif op == "drop" and isinstance(node, dict) and node:
            node.pop(sorted(node)[index % len(node)])
        elif op == "set" and path:
            parent = value
            for part in path[:-1]:
                parent = parent[part]
            parent[path[-1]] = new
    return value


def _errors(errors) -> list[tuple]:
    # As a multiset: jsonschema visits the extra keys of an additionalProperties schema through a
    # set (its order changes with the hash seed); the compiled check goes in the payload's order.
    return sorted((e.validator, repr(e.validator_value), repr(e.instance), repr(tuple(e.absolute_path)))
                  for e in errors)


def _agree(policy_id, value) -> None:
    policy = CATALOGUE.get(policy_id)
    compiled = compile_errors(policy.schema, FORMAT_CHECKER.conforms)
    assert compiled is not None, policy_id
    assert _errors(compiled(value)) == _errors(policy.validator.iter_errors(value)), (policy_id, value)


def test_compiled_schema_errors_match_jsonschema_on_the_wire_payloads_and_edge_values():
    assert len({p for p, _ in WIRE_PAYLOADS}) >= 12
    for policy_id, value in WIRE_PAYLOADS:
        _agree(policy_id, value)
    # jsonschema's own corners: bool is not a number, 1.0 is an integer, True is not 1 in enums.
    schemas = [{"type": "integer"}, {"type": "number", "minimum": 0}, {"enum": [1, "a", [1, 2], {"k": 0}]},
               {"type": ["string", "null"], "format": "ipv4"}, {"type": "string", "pattern": "^v[0-9]"},
               {"type": "object", "properties": {"a": {"type": "boolean"}}, "required": ["a", "c"],
                "additionalProperties": {"type": "integer", "maximum": 3}},
               {"type": "object", "properties": {"a": {"type": "array", "items": {"enum": [False]}}},
                "additionalProperties": False}]
    values = [0, 1, 1.0, 1.5, -1, True, False, None, "a", "v1", "x", "10.0.0.1", "999.1.1.1", [1, 2], [True, 2],
              [1.0, 2], {"k": 0}, {"k": False}, {"a": True}, {"a": 1}, {"a": True, "b": 3}, {"a": True, "b": 4},
              {"a": True, "b": True, "z": "s"}, {"a": [False, 0, True]}, [False], [0], []]
    for schema in schemas:
        compiled = compile_errors(schema, FORMAT_CHECKER.conforms)
        reference = Draft202012Validator(schema, format_checker=FORMAT_CHECKER)
        for value in values:
            assert _errors(compiled(value)) == _errors(reference.iter_errors(value)), (schema, value)
    assert compile_errors({"type": "object", "patternProperties": {}}, FORMAT_CHECKER.conforms) is None


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(pair=st.sampled_from(WIRE_PAYLOADS),
       ops=st.lists(st.tuples(st.sampled_from(["add", "drop", "set"]), st.integers(0, 500), json_values,
                              st.text(max_size=8)), max_size=3))
def test_compiled_schema_errors_match_jsonschema_on_mutated_payloads(pair, ops):
    policy_id, value = pair
    _agree(policy_id, _mutate(value, ops))


@settings(max_examples=400, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("aeyJAKIUsers/home\\:.-@_ 0123456789fFbBrkptxz")), max_size=60),
       key=st.sampled_from([None, "token", "name"]))
def test_pii_prefilter_is_only_a_shortcut(text, key):
    from inspector.core.pii import scan_text
    assert scan_text(text, key) == scan_text(text, key, prefilter=False)
