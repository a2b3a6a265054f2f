"""HAR files read as a stream: the entries json.loads read, one at a time, and the same errors.

The reader (`inspector.capture.har`) parses one entry at a time with the json module's scanner;
these tests hold it to a whole-file `load_json` of the same text, across block boundaries,
encodings and hostile values, and check that memory does not hold the entries read.
"""

from __future__ import annotations

import json
import re
import tracemalloc
from pathlib import Path

import pytest

from inspector.capture import har
from inspector.capture.load import CaptureError, load_capture
from inspector.core.decode import load_json, load_json_at

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "captures" / "all-channels.har"


def whole(path: Path) -> list:
    """The entries as the reader read them before it streamed: the whole file, then log.entries."""
    raw = path.read_bytes()
    data, _ = load_json(raw.decode(json.detect_encoding(raw)))
    return data["log"]["entries"]


def streamed(path: Path) -> list:
    return list(har._entries(path))


@pytest.fixture(params=[16, 1000, 1 << 20], ids=["tiny-blocks", "small-blocks", "default-blocks"])
def block(request, monkeypatch):
    """Blocks small enough that entries, strings, numbers and escapes are cut at every place."""
    monkeypatch.setattr(har, "BLOCK", request.param)
    return request.param


@pytest.mark.parametrize("indent", [None, 2])
def test_the_fixture_reads_entry_for_entry_as_json_loads_read_it(tmp_path, block, indent):
    path = tmp_path / "capture.har"
    path.write_text(json.dumps(json.loads(FIXTURE.read_text()), indent=indent))
    assert streamed(path) == whole(path)
    assert len(streamed(path)) == 27


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-32"])
def test_every_encoding_json_loads_reads(tmp_path, block, encoding):
    document = {"log": {"entries": [{"request": {"url": "https://x.example/é", "method": "GET"}, "n": i}
                                    for i in range(5)]}}
    path = tmp_path / "capture.har"
    path.write_bytes(json.dumps(document, ensure_ascii=False).encode(encoding))
    assert streamed(path) == whole(path) == document["log"]["entries"]


HOSTILE = [
    '{"a": ' + "9" * 5000 + "}",                    # more digits than int() converts: kept as text
    '{"a": 1e999, "b": -1e999}',                    # floats out of range: kept as text
    '{"a": NaN, "b": Infinity, "c": -Infinity}',    # json.loads' literals
    '{"a": "\\ud800x", "\\udc00": "\\ud83d\\ude00"}',  # lone surrogates replaced, a pair kept
    '{"a": "' + "x" * 5000 + '\\u00e9"}',            # a string (and an escape) across many blocks
    '{"a": 1, "a": 2}',                             # the last of duplicate names
    "[1, 2, 3]",                                    # an entry that is not an object
    "12345",
    '"text"',
    "null",
    '{"a": [[[[[[[[[[]]]]]]]]]]}',
]


def test_hostile_values_read_as_json_loads_read_them(tmp_path, block):
    path = tmp_path / "capture.har"
    path.write_text('{"log": {"pages": [{"x": 1}], "entries": [' + ", ".join(HOSTILE) + '], "z": 5}, "more": {}}')
    assert streamed(path) == whole(path)
    assert streamed(path)[0]["a"] == "9" * 5000


@pytest.mark.parametrize(("text", "message"), [
    ("", "not valid JSON"),
    ("{ not json", "not valid JSON"),
    ('{"log": {"entries": [{"a": 1}, {"b": ]}}', "not valid JSON"),
    ('{"log": {"entries": [{"a": 1}]}} trailing', "not valid JSON"),
    ('{"log": {"entries": [{"a": 1}]}', "not valid JSON"),           # cut short
    ('{"log": {"entries": [{"a": "unterminated}]}}', "not valid JSON"),
    ('{"log": {"entries": [' + "[" * 100_000 + "]" * 100_000 + "]}}", "nested too deeply"),
    ('{"log": {"entries": {"a": 1}}}', "not a HAR file (no log.entries)"),
    ('{"log": {"pages": []}}', "not a HAR file (no log.entries)"),
    ('{"log": 5}', "not a HAR file (no log.entries)"),
    ("[1, 2]", "not a HAR file (no log.entries)"),
    ("[1, 2", "not valid JSON"),
])
def test_what_json_loads_refused_is_refused(tmp_path, block, text, message):
    path = tmp_path / "capture.har"
    path.write_text(text)
    with pytest.raises(har.HarError, match=re.escape(message)):
        streamed(path)
    with pytest.raises(CaptureError, match=re.escape(message)):  # one line for the user
        list(load_capture(path))


def test_invalid_utf8_is_not_valid_json(tmp_path, block):
    path = tmp_path / "capture.har"
    path.write_bytes(b'{"log": {"entries": [{"a": "\xff"}]}}')
    with pytest.raises(har.HarError, match="not valid JSON"):
        streamed(path)


def test_an_error_far_into_a_value_is_reported_without_reading_the_rest(tmp_path, monkeypatch):
    # A syntax error inside the window is the text's, not a cut: the rest of a big file is not read.
    monkeypatch.setattr(har, "BLOCK", 64)
    path = tmp_path / "capture.har"
    path.write_text('{"log": {"entries": [{"a": 1 "b": 2}, ' + '"x", ' * 100_000 + '"y"]}}')
    reads = []
    real = har._Stream.more

    def more(self, size=har.BLOCK):
        reads.append(size)
        return real(self, size)

    monkeypatch.setattr(har._Stream, "more", more)
    with pytest.raises(har.HarError, match="Expecting ',' delimiter"):
        streamed(path)
    assert len(reads) < 5


def test_a_value_longer_than_the_bound_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(har, "MAX_VALUE", 10_000)
    monkeypatch.setattr(har, "BLOCK", 1000)  # the window grows to hold the value, up to the bound
    path = tmp_path / "capture.har"
    path.write_text('{"log": {"entries": [{"a": "' + "x" * 50_000 + '"}]}}')
    with pytest.raises(har.HarError, match="entry #0 is longer than 10000 characters"):
        streamed(path)


def test_entries_come_before_the_file_is_read_to_its_end(tmp_path):
    # Streamed: the first observations are there although the file is broken at its end.
    path = tmp_path / "capture.har"
    entry = {"request": {"method": "GET", "url": "https://t.demo.example/telemetry"}}
    path.write_text('{"log": {"entries": [' + ", ".join([json.dumps(entry)] * 3) + ", {broken")
    observations = load_capture(path)
    assert next(observations).url == "https://t.demo.example/telemetry"
    with pytest.raises(CaptureError, match="not valid JSON"):
        list(observations)


@pytest.mark.slow
def test_memory_holds_one_entry_not_the_file(tmp_path):
    entry = json.dumps({"request": {"method": "POST", "url": "https://t.demo.example/telemetry",
                                    "postData": {"text": "x" * 2000}}})

    def peak(n: int) -> int:
        path = tmp_path / f"capture-{n}.har"
        path.write_text('{"log": {"entries": [' + ", ".join([entry] * n) + "]}}")
        tracemalloc.start()
        try:
            for _ in har.read_har(path, "s"):
                pass
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    small, large = peak(5000), peak(20000)  # 10 MB and 40 MB of HAR
    assert large < 1.2 * small, (small, large)
    assert large < 8_000_000  # a few blocks, not the file


def test_load_json_at_reads_one_value_and_says_where_it_ends():
    text = '  {"a": "\\ud800", "b": ' + "7" * 5000 + "} , next"
    value, end, issues = load_json_at(text, 2)
    assert text[end:] == " , next"
    assert value == {"a": "\ufffd", "b": "7" * 5000}
    assert {i.code for i in issues} == {"decode-error", "number-out-of-range"}
    with pytest.raises(json.JSONDecodeError):
        load_json_at('{"a": ', 0)
