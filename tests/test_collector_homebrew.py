"""Homebrew: brew's InfluxDB line-protocol analytics, parsed (bounded), itemised, the token a
credential; the request sent by curl as brew sends it, through `telemetry-inspector exec`."""

from __future__ import annotations

import gzip
import importlib.util
import shutil
import sys

import pytest
from collector_sdk import EMAIL, FIXTURES, check_sdk_run, codes, observation, on_host, others, pipeline, run_exec

from inspector.core import collectors
from inspector.core.collectors.homebrew import LineError, parse_line, parse_lines
from inspector.core.observation import Observation

BREW = collectors.get("homebrew")
URL = "https://eu-central-1-1.aws.cloud2.influxdata.com/api/v2/write?bucket=analytics&precision=s"


def test_registered():
    assert BREW is not None and BREW.title == "Homebrew"
    assert collectors.for_request("eu-central-1-1.aws.cloud2.influxdata.com", "POST", "/api/v2/write") is BREW
    assert collectors.for_request("us-east-1-1.aws.cloud2.influxdata.com", "POST", "/api/v2/write") is None


def test_install_point_is_an_item():
    result = pipeline().process(observation("homebrew", "install.json"))
    assert result.collector == "homebrew" and result.decoding == ["body", "line-protocol"]
    (item,) = result.items
    assert (item["kind"], item["name"], item["path"]) == ("event", "install", "[0]")
    assert item["properties"]["os_name_and_version"] == "Ubuntu 22.04"  # an escaped space in a tag
    assert item["properties"]["package"] == "wget" and item["properties"]["on_request"] is True
    assert isinstance(item["context"]["timestamp"], int)
    assert codes(result) == [("credential", "headers.authorization"), ("pii", "[0].fields.options")]


def test_line_protocol_escapes_and_types():
    point = parse_line(r'm\,x\ y,t\=k=a\,b\ c\=d,u=v f="say \"hi\" \\ ok, x=1",i=-3i,n=7u,fl=1.5e3,b=F,c=true 1700000000')
    assert point == {"measurement": "m,x y", "tags": {"t=k": "a,b c=d", "u": "v"},
                     "fields": {"f": 'say "hi" \\ ok, x=1', "i": -3, "n": 7, "fl": 1500.0, "b": False, "c": True},
                     "timestamp": 1700000000}
    assert parse_line("m f=1")["timestamp"] is None
    for bad in ("m", "m,t f=1", "m f", "m f=", 'm f="open', "m f=1 12x", "m f=nan", "m f=abc", ",t=1 f=1"):
        with pytest.raises(LineError):
            parse_line(bad)


@pytest.mark.skipif(importlib.util.find_spec("influxdb_client") is None,
                    reason="influxdb-client is not installed (requirements-sdks.txt; ./dev setup)")
def test_parser_reads_what_the_official_client_writes():
    from influxdb_client import Point
    # (a key ending in a backslash cannot round-trip: the client writes `\=`, which reads as an
    # escaped equals sign, by InfluxDB's grammar too)
    tricky = ["plain", "with space", "comma,here", "equals=here", 'quote"here', "back\\slash", "all , = \" \\ x",
              "ünïcode"]
    for i, text in enumerate(tricky):
        point = (Point(f"command_run {text}").tag(f"tag {text}", f"v {text}").field(f"f {text}", text)
                 .field("n", i).field("ok", i % 2 == 0).field("x", 0.25).time(1700000000 + i, "s"))
        parsed = parse_line(point.to_line_protocol())
        assert parsed == {"measurement": f"command_run {text}", "tags": {f"tag {text}": f"v {text}"},
                          "fields": {f"f {text}": text, "n": i, "ok": i % 2 == 0, "x": 0.25},
                          "timestamp": 1700000000 + i}, text


def test_bad_lines_are_kept_as_text_and_reported():
    points, issues = parse_lines("# comment\n\ncommand_run,command=x package=\"a\"\nthis is not a point jane.doe@example.com\n")
    assert points[1] == {"unparsed": "this is not a point jane.doe@example.com"} and len(issues) == 1
    result = pipeline().process(Observation("POST", URL, body=b"garbage jane.doe@example.com\n"))
    assert ("pii", "[0].unparsed") in codes(result) and any(c == "decode-error" for c, _ in codes(result))


def test_bounded_in_lines_and_issues():
    points, issues = parse_lines("\n".join(["x"] * 50) + "\n" + "\n".join(["m f=1i 1"] * 12000))
    assert len(points) == 10_000
    assert len(issues) <= 22 and any("50 lines" in i.message for i in issues) and any("10000" in i.message for i in issues)


def test_sinkhole_is_204():
    answer = BREW.sinkhole(observation("homebrew", "install.json"))
    assert (answer.status, answer.body) == (204, b"")


def test_recognised_on_another_influx_host():
    result = pipeline().process(on_host(observation("homebrew", "command-run.json"), "us-east-1-1.aws.cloud2.influxdata.com"))
    assert result.collector == "homebrew"


def test_other_influx_writes_are_not_homebrews():
    obs = Observation("POST", "https://us-east-1-1.aws.cloud2.influxdata.com/api/v2/write?bucket=b",
                      body=b"cpu,host=a usage=0.5 1700000000\n")
    assert pipeline().process(obs).collector is None


@pytest.mark.parametrize("folder, name", others("homebrew"))
def test_never_claims_another_collectors_payload(folder, name):
    obs = observation(folder, name)
    assert not BREW.recognises(BREW.decode(obs, pipeline()).value)


@pytest.mark.parametrize("body, headers", [
    (b"\xff\xfe\x00\x01", ()), (b'{"json": "instead"}', ()), (b"m," + b"t=v," * 50000 + b" f=1", ()),
    (b'm f="' + b"a" * 200000, ()), (gzip.compress(b"m f=1i 1\n" * 200000), (("Content-Encoding", "gzip"),)),
    (b"\\" * 10000, ()), (b"m f=" + b"9" * 5000 + b"i", ()),
])
def test_hostile_bodies_never_raise(body, headers):
    result = pipeline(small=True).process(Observation("POST", URL, headers, body))
    assert result.collector == "homebrew" and len(result.items) <= 10_000
    assert not [f for f in result.findings if "internal error" in f.message]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_brews_curl_request_through_exec_is_sinkholed(tmp_path):
    done, events = run_exec(tmp_path, "Homebrew", [sys.executable, str(FIXTURES / "homebrew" / "send_brew.py"),
                                                   "install", "wget", f"--with-contact={EMAIL}"])
    check_sdk_run(done, events, "homebrew", "install", credential="headers.authorization")
