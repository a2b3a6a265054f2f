"""The HTML report opens with a summary chart: inline SVG per vendor and collector (declared
fields seen, never seen, undeclared observed; findings by severity), no script, no external
asset, every label escaped — and it renders in a real browser (headless Chromium)."""

from __future__ import annotations

import json
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path
from xml.etree import ElementTree

import pytest
from test_tui_snapshots import events

from inspector.core.event import event_from_dict
from inspector.core.policy import Catalogue, parse_policy_text
from inspector.report.formats.html import chart_rows
from inspector.report.model import report_model
from inspector.report.render import render

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE_VENDOR = '<script>alert(1)</script> & "Co" <img src=x onerror=alert(2)>'


def demo_events():
    rows = [event_from_dict(e) for e in events()]
    # a collector's request no policy claims: the chart has a row for the collector
    unclaimed = next(e for e in rows if e.collector)
    rows.append(event_from_dict(dict(unclaimed.to_dict(), policy=None, vendor=None, id="unclaimed")))
    return rows


def chart_of(page: str) -> ElementTree.Element:
    match = re.search(r"<svg .*?</svg>", page, re.DOTALL)
    assert match, "no chart"
    return ElementTree.fromstring(match.group(0))  # noqa: S314 - our own report; well-formed XML, or this raises


def test_the_chart_comes_first_and_holds_the_reports_counts():
    catalogue = Catalogue.load()
    rows = demo_events()
    page = render(rows, catalogue, "html")
    assert page.index("<svg") < page.index("<h2>")  # the report opens with it
    svg = chart_of(page)
    texts = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    with report_model(rows, catalogue) as model:
        expected = chart_rows(model)
    assert {who for who, _, _ in expected} >= {"Appsmith", "Hasura", "Refine", "Segment (Twilio) (collector)"}
    for who, (seen, never, undeclared), (violations, warnings, info) in expected:
        at = texts.index(who)
        assert texts[at + 1] == f"fields: {seen} seen · {never} never seen · {undeclared} undeclared"
        assert texts[at + 2] == f"findings: {violations} violations · {warnings} warnings · {info} info"
    appsmith = next(r for r in expected if r[0] == "Appsmith")
    assert appsmith[1][2] == 3  # the batch container is not counted as an undeclared field
    summary = model.summary["findings"]
    assert sum(sum(r[2]) for r in expected) == summary["violation"] + summary["warning"] + summary["info"]


def test_the_chart_runs_nothing_loads_nothing_and_escapes_its_labels():
    policy = (Path(__file__).parents[1] / "inspector" / "policies" / "refine-v4-browser.yaml").read_text()
    hostile = policy.replace("vendor: Refine", "vendor: " + json.dumps(HOSTILE_VENDOR))
    catalogue = Catalogue.load()
    catalogue.add(parse_policy_text(hostile, "hostile.yaml"))
    assert catalogue.get("refine-v4-browser").vendor == HOSTILE_VENDOR
    page = render(demo_events(), catalogue, "html")
    svg_text = re.search(r"<svg .*?</svg>", page, re.DOTALL).group(0)
    svg = chart_of(page)
    labels = ["".join(t.itertext()) for t in svg.iter(f"{SVG}text")]
    assert HOSTILE_VENDOR[:29] + "…" in labels  # shown as text (cut to 30 characters) …
    assert "<script" not in svg_text and "<img" not in svg_text  # … never as markup
    for element in svg.iter():
        assert element.tag.split("}")[-1] in {"svg", "title", "text", "rect", "line"}, element.tag
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on") and "href" not in name.lower(), name
            assert "url(" not in value and "javascript:" not in value.lower(), (name, value)
    lowered = page.lower()
    assert "<script" not in lowered.replace("&lt;script", "") and "<link" not in lowered
    assert "http-equiv=\"content-security-policy\" content=\"default-src 'none'" in lowered


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) bytes of an 8-bit, non-interlaced PNG (what Chromium writes)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour in (2, 6) and interlace == 0
            channels = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows, prev = [], bytearray(stride)
    for y in range(height):
        line = raw[y * (stride + 1):(y + 1) * (stride + 1)]
        kind, cur = line[0], bytearray(line[1:])
        for i in range(stride):
            a = cur[i - channels] if i >= channels else 0
            b, c = prev[i], prev[i - channels] if i >= channels else 0
            if kind == 1:
                cur[i] = (cur[i] + a) & 255
            elif kind == 2:
                cur[i] = (cur[i] + b) & 255
            elif kind == 3:
                cur[i] = (cur[i] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                cur[i] = (cur[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(cur) if channels == 3 else bytes(x for k in range(0, stride, 4) for x in cur[k:k + 3]))
        prev = cur
    return width, height, rows


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no Chromium on this machine (Debian: apt-get install chromium)")
def test_the_report_renders_its_chart_in_headless_chromium(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render(demo_events(), Catalogue.load(), "html"))
    shot = tmp_path / "report.png"
    done = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                           "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr",
                           "--window-size=1100,620", f"--screenshot={shot}", page.as_uri()],
                          capture_output=True, text=True, timeout=120, check=False)
    assert shot.exists(), done.stderr[-2000:]
    assert "Refused to" not in done.stderr  # the page's CSP blocked nothing: it asks for nothing
    width, height, rows = png_pixels(shot)
    assert (width, height) == (1100, 620)
    colours = {}
    for y in range(0, height, 2):
        row = rows[y]
        for x in range(0, width * 3, 6):
            colours[row[x:x + 3]] = colours.get(row[x:x + 3], 0) + 1
    for hex_colour in ("2e7d32", "9e9e9e", "c62828", "1565c0"):  # seen, never seen, undeclared/violation, info
        assert colours.get(bytes.fromhex(hex_colour), 0) > 50, hex_colour  # drawn: the bars are there
