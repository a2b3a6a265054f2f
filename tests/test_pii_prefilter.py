"""The PII scan's prefilters skip work, never a hit: the same answer with and without them.

`scan_text` skips a detector when the text lacks what any match of it needs (docs/performance.md:
the audit's largest cost per event was running every detector on every string). Random texts
built from the characters the detectors care about, and every string of every recorded
collector request and built-in channel payload, must scan the same either way.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspector.core.audit import _strings
from inspector.core.observation import Observation
from inspector.core.pii import scan_text
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue
from inspector.emit.channels import observation_of, wire_requests

ROOT = Path(__file__).resolve().parent.parent

# digits, hex, the separators of addresses, paths and host names, and pieces of every pattern
PIECES = st.sampled_from([
    "0", "1", "4", "9", "a", "F", ".", ":", "-", " ", "/", "\\", "@", "_", "x", "com", "io", "local", "corp",
    "home/", "Users", "C:\\Users\\", "Bearer ", "eyJ", "eyJhbGciOiJIUzI1NiJ9", "sk_live_", "AKIA", "ghp_",
    "xoxb-", "AIza", "npm_", "4111", "1111", "5555", "255.", "10.", "fe80", "::", "00:1A", "example",
    "\u0664", "\u0661\u0661\u0661\u0661", "\u0967",  # digits that are not ASCII: \d matches them too
])
KEYS = st.sampled_from([None, "value", "token", "api_key", "password", "name", "admin-secret"])
_num = st.integers(0, 999).map(str)
_hex = st.text("0123456789abcdefABCDEF", min_size=0, max_size=4)
_sep = st.sampled_from([":", "-", ".", " ", ""])
# near-misses and hits of each detector: addresses, MACs, card-like digit runs, host names
SHAPES = st.one_of(
    st.lists(_num, min_size=2, max_size=5).map(".".join),
    st.tuples(st.lists(_hex, min_size=2, max_size=8), st.sampled_from([":", "::"])).map(lambda t: t[1].join(t[0])),
    st.tuples(st.lists(st.text("0123456789abcdef", min_size=2, max_size=2), min_size=4, max_size=7), _sep)
    .map(lambda t: t[1].join(t[0])),
    st.tuples(st.lists(st.text("0123456789\u0661\u0664", min_size=1, max_size=5), min_size=2, max_size=6), _sep)
    .map(lambda t: t[1].join(t[0])),
    st.tuples(st.lists(st.text("abcxyz019-", min_size=1, max_size=6), min_size=1, max_size=4),
              st.sampled_from(["com", "io", "local", "lan", "corp", "me", "comx", "org-"]))
    .map(lambda t: ".".join([*t[0], t[1]])),
)
TEXTS = st.tuples(st.lists(PIECES, max_size=8).map("".join), SHAPES, st.lists(PIECES, max_size=8).map("".join)) \
    .map("".join)


@settings(max_examples=1500, deadline=None)
@given(st.lists(PIECES, max_size=40).map("".join), KEYS)
def test_random_texts_scan_the_same_with_and_without_the_prefilters(text, key):
    assert scan_text(text, key) == scan_text(text, key, prefilter=False)


@pytest.mark.slow
@settings(max_examples=3000, deadline=None)
@given(TEXTS, KEYS)
def test_address_and_number_shapes_scan_the_same_with_and_without_the_prefilters(text, key):
    assert scan_text(text, key) == scan_text(text, key, prefilter=False)


def test_every_recorded_string_scans_the_same_with_and_without_the_prefilters():
    pipeline = Pipeline(Catalogue.load())
    observations = [o for r in wire_requests() for o in observation_of(r)]
    for path in sorted((ROOT / "fixtures" / "collectors").glob("*/*.json")):
        data = json.loads(path.read_text())
        observations.append(Observation(method=data["method"], url=data["url"],
                                        headers=tuple((k, v) for k, v in data["headers"]),
                                        body=base64.b64decode(data["body_base64"])))
    scanned = 0
    for obs in observations:
        event = pipeline.process(obs)
        for _, key, text in _strings(event.decoded):
            assert scan_text(text, key) == scan_text(text, key, prefilter=False), (obs.url, text)
            scanned += 1
    assert scanned > 1000


@pytest.mark.parametrize("text", [
    "4" + "\u0661" * 3 + "1" * 12,                  # a card number with digits that are not ASCII
    "4111 1111 1111 \u0661\u0661\u0661\u0661",
    "1.2.3.4", "a 10.0.0.1 b", "00-1A-2B-3C-4D-5E", "fe80::1", "build.corp", "x.lan", "api.example.io",
])
def test_edge_cases_scan_the_same_with_and_without_the_prefilters(text):
    assert scan_text(text) == scan_text(text, prefilter=False)
    assert scan_text(text, prefilter=False)  # each is a hit: the prefilter must not skip it
