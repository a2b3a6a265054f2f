"""Captured data is hostile: every output shows it and none lets it act (docs/security.md).

A corpus of terminal escapes (OSC title, OSC 52 clipboard write, CSI clear, C1 CSI), a bidi
override, DEL, a bare CR, a lone surrogate, HTML, Markdown and Textual markup, and numbers past
float range is put in a payload's keys and values, a header, the method and the URL path, then
sent through every report format, `event_line` and the JSON lines of `proxy`, the CLI (`audit`,
`report`, `decode`, error messages) and the TUI (list, detail tabs, the screen as written to
the terminal, export).
"""

from __future__ import annotations

import base64
import html as htmllib
import json
import re
import stat
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from jsonschema import Draft4Validator, FormatChecker
from markdown_it import MarkdownIt

from inspector.cli.main import cli
from inspector.core.event import Event
from inspector.core.findings import Finding
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, parse_policy_text
from inspector.core.textsafe import escape_json_text, finite, safe_block, safe_json, safe_line
from inspector.report.files import write_private
from inspector.report.model import build_sections
from inspector.report.render import FORMATS, event_line, md_code, md_text, render

SCHEMA = Path(__file__).parent / "data" / "sarif-schema-2.1.0.json"

POLICY = """\
id: demo-pixel
vendor: Demo
product: Demo pixel
source: {document: "demo.md", title: "Demo docs"}
match:
  hosts: ["t.demo.example"]
  methods: [GET]
  paths: ["/telemetry"]
payload:
  location: "query:payload"
  encoding: [base64, json]
declared:
  version: {type: string, cite: {section: What, quote: "version | string"}}
  count: {type: integer}
claims:
  - check: no-cookies
    cite: {section: Summary, quote: "does not use cookies"}
"""

HOSTILE = {
    "osc-title": "\x1b]0;title\x07",
    "osc52-clipboard": "\x1b]52;c;aGVsbG8=\x07",
    "csi-clear": "\x1b[2J",
    "c1-csi": "\x9b2J",
    "bidi-override": "\u202eevil",
    "del": "a\x7fb",
    "html": "<script>alert(1)</script>",
    "backticks": "``code`",
    "md-link": "[x](javascript:alert(1))",
    "bare-cr": "over\rwrite",
    "surrogate": "\ud800",
    "markup": "[bold]B[/bold] [link=https://evil.example]L[/link] [@click=app.quit]Q[/] [$accent]A [B]b",
    "separators": "a\u2028b\u2029c\x0bd\x0ce\x85f",
}
# What each shows as (textsafe's escapes).
VISIBLE = ["\\x1b]0;title\\x07", "\\x1b]52;c;aGVsbG8=\\x07", "\\x1b[2J", "\\x9b2J", "\\u202eevil",
           "a\\x7fb", "over\\rwrite", "\\ud800"]

# Nothing of these may reach an output raw (a newline only in block text).
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069\ud800-\udfff]")


def assert_shown(text: str, block: bool = True) -> None:
    """No raw control, bidi, separator or surrogate character; encodable as UTF-8."""
    found = RAW.search(text) or (None if block else re.search("\n", text))
    assert found is None, f"raw {found.group()!r} in …{text[max(0, found.start() - 60):found.start() + 60]!r}…"
    text.encode("utf-8")


# ---------------------------------------------------------------------- the corpus

def payload_text() -> str:
    """The payload as JSON text: every hostile string as a key and a value, and big numbers."""
    pairs = [f"{json.dumps(v)}: {json.dumps(v)}" for v in HOSTILE.values()]
    return "{" + ", ".join(pairs) + ', "version": "1", "big": 1e999, "huge": ' + "9" * 400 + "}"


def pixel_url() -> str:
    body = payload_text().encode("utf-8", "surrogatepass")  # the lone surrogate as JSON \ud800 text
    return "https://t.demo.example/telemetry?payload=" + base64.b64encode(body).decode()


HOSTILE_PATH_URL = ("https://t.demo.example/\x1b]0;title\x07/\u202eevil/\x9b2J/<script>alert(1)</script>"
                    "/[x](javascript:alert(1))/over\rwrite?x=``code`")
HEADERS = (("X-\x1b[2J", "v\x9b2J\u202eevil\ud800"), ("X-Markup", HOSTILE["markup"]),
           ("Cookie", "sid=\x1b]52;c;aGVsbG8=\x07"))


@pytest.fixture()
def catalogue() -> Catalogue:
    return Catalogue([parse_policy_text(POLICY, "demo.yaml")])


@pytest.fixture()
def events(catalogue: Catalogue) -> list[Event]:
    pipe = Pipeline(catalogue)
    pixel = pipe.process(Observation("GET", pixel_url(), headers=HEADERS, source="hostile\x1b[2J.har#0"))
    assert pixel.policy == "demo-pixel" and pixel.findings
    # Whatever the decoder makes of 1e999 or of a lone surrogate (it may keep them as text or
    # replace them), the writers must cope with floats out of JSON's range and with surrogates.
    pixel = replace(pixel, decoded={**pixel.decoded, "inf": float("inf"), "nan": float("nan"),
                                    "parsed": json.loads('{"n": 1e999}')["n"], float("-inf"): "key",
                                    "\ud800": "\udfff"},
                    findings=[*pixel.findings, Finding("pii", "warning", "inf\ud800", "a number \x1b[2J \ud800",
                                                       evidence=float("inf"))])
    path = pipe.process(Observation("GET", HOSTILE_PATH_URL, headers=HEADERS))
    path = replace(path, method="G\x1b[2JT\u202e", action="block\x9b")
    return [pixel, path]


# ---------------------------------------------------------------------- textsafe

@pytest.mark.parametrize("raw, shown", [
    ("\x1b", "\\x1b"), ("\x07", "\\x07"), ("\x00", "\\x00"), ("\r", "\\r"), ("\t", "\\t"), ("\n", "\\n"),
    ("\x0b", "\\x0b"), ("\x0c", "\\x0c"), ("\x7f", "\\x7f"), ("\x85", "\\x85"), ("\x9b", "\\x9b"),
    ("\u202a", "\\u202a"), ("\u202e", "\\u202e"), ("\u2066", "\\u2066"), ("\u2069", "\\u2069"),
    ("\u200e", "\\u200e"), ("\u200f", "\\u200f"), ("\u061c", "\\u061c"), ("\u2028", "\\u2028"),
    ("\u2029", "\\u2029"), ("\ud800", "\\ud800"), ("\udfff", "\\udfff"),
])
def test_safe_line_shows_each_unsafe_character_as_an_escape(raw, shown):
    assert safe_line(f"a{raw}b") == f"a{shown}b"
    assert safe_block(f"a{raw}b") == (f"a{raw}b" if raw == "\n" else f"a{shown}b")


def test_safe_line_leaves_clean_text_alone_and_takes_any_value():
    clean = "2026-11-24 08:00:00  ✗ violation  demo-pixel  GET  t.demo.example/p?q=é 😀 [b]"
    assert safe_line(clean) is clean  # the fast path hands back the same object
    assert safe_line(12) == "12" and safe_line(None) == "None"


def test_safe_json_is_strict_lossless_and_printable():
    value = {"k\x9b\u202e": ["\ud800", "a\x7fb", "\x1b[2J", "x\u2028y"], "inf": float("inf"),
             "ninf": float("-inf"), "nan": float("nan"), "big": json.loads("1e999"), float("inf"): 1,
             "huge": 10 ** 5000, "ok": 1.5}
    for indent in (None, 2):
        text = safe_json(value, indent=indent)
        assert_shown(text, block=indent is not None)
        back = json.loads(text, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
        assert back["k\x9b\u202e"] == ["\ud800", "a\x7fb", "\x1b[2J", "x\u2028y"]  # escaped, not altered
        assert back["inf"] == "Infinity" and back["ninf"] == "-Infinity" and back["nan"] == "NaN"
        assert back["big"] == "Infinity" and back["Infinity"] == 1 and back["ok"] == 1.5
        assert back["huge"].startswith("<integer of")
    assert escape_json_text('"\x9b"') == '"\\u009b"' and finite([float("nan")]) == ["NaN"]


# ---------------------------------------------------------------------- report formats

@pytest.mark.parametrize("fmt", FORMATS)
def test_every_format_shows_the_corpus_without_raw_characters(events, catalogue, fmt):
    out = render(events, catalogue, fmt, ["in\x1b]0;x\x07put.har"])
    assert_shown(out)
    if fmt == "text":
        for needle in VISIBLE:
            assert needle in out
    if fmt in ("json", "sarif"):
        json.loads(out, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
        outside_strings = re.sub(r'"(?:[^"\\]|\\.)*"', '""', out)
        assert "Infinity" not in outside_strings and "NaN" not in outside_strings
    if fmt == "json":
        doc = json.loads(out)
        decoded = doc["events"][0]["decoded"]
        for name, value in HOSTILE.items():  # JSON keeps the data exactly: escaped, not rewritten
            if name != "surrogate":  # (the decoder may replace a lone surrogate in a payload)
                assert decoded[value] == value
        assert decoded["\ud800"] == "\udfff" and doc["events"][0]["request"]["headers"][0][1] == HEADERS[0][1]
        assert decoded["inf"] == "Infinity" and doc["events"][1]["method"] == "G\x1b[2JT\u202e"


def test_text_report_lines_are_one_line_each(events, catalogue):
    out = render(events, catalogue, "text")
    for line in out.splitlines():
        assert_shown(line, block=False)
    assert "\\r" in out and "\\u2028" in out  # a CR or U+2028 would have split or overwritten a line


class Elements(HTMLParser):
    """Every element and attribute of a document, and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse_html(text: str) -> Elements:
    parser = Elements()
    parser.feed(text)
    parser.close()
    return parser


def test_html_report_has_no_element_or_attribute_from_captured_data(events, catalogue):
    doc = parse_html(render(events, catalogue, "html", ["<img src=x onerror=alert(1)>.har"]))
    report_tags = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "p", "strong",
                   "code", "table", "tr", "th", "td", "ul", "li", "span", "br", "blockquote", "small",
                   "figure", "svg", "text", "rect", "line"}  # (the summary chart: inline SVG)
    chart_attributes = {"xmlns", "role", "width", "height", "viewbox", "font-family", "font-size", "aria-labelledby",
                        "id", "x", "y", "font-weight", "fill", "x1", "y1", "x2", "y2", "stroke"}
    assert {tag for tag, _ in doc.tags} <= report_tags
    for tag, attrs in doc.tags:
        allowed = chart_attributes if tag in ("svg", "text", "rect", "line", "title") else set()
        assert set(attrs) <= {"lang", "charset", "http-equiv", "content", "class"} | allowed, (tag, attrs)
        if "class" in attrs:
            assert attrs["class"] in ("violation", "warning", "info", "chart")
        for name in set(attrs) & chart_attributes - {"xmlns", "font-family", "aria-labelledby", "id", "role"}:
            assert re.fullmatch(r"[0-9.]+|#[0-9a-f]{6}|bold|0 0 [0-9]+ [0-9]+", attrs[name] or ""), (tag, name, attrs)
    csp = [a["content"] for t, a in doc.tags if t == "meta" and a.get("http-equiv") == "Content-Security-Policy"]
    assert csp and "default-src 'none'" in csp[0]
    text = "".join(doc.text)
    assert "<script>alert(1)</script>" in text and "<img src=x onerror=alert(1)>.har" in text  # shown


def render_markdown_html(text: str) -> str:
    """The Markdown as a CommonMark renderer (with GFM tables) turns it into HTML."""
    return MarkdownIt("commonmark").enable("table").render(text)


def test_markdown_report_renders_inert(events, catalogue):
    md = render(events, catalogue, "markdown", ["<b>in</b>`put`.har"])
    assert_shown(md)
    html = render_markdown_html(md)
    doc = parse_html(html)
    tags = {tag for tag, _ in doc.tags}
    assert tags <= {"h1", "h2", "h3", "p", "strong", "code", "table", "thead", "tbody", "tr", "th", "td",
                    "ul", "li", "br"}, tags
    assert not any(attrs for _, attrs in doc.tags), "no attribute (href, src, on…) may come from data"
    assert "<script" not in html and "<a " not in html and "<b>" not in html
    text = "".join(doc.text)
    for value in ("<script>alert(1)</script>", "[x](javascript:alert(1))", "``code`", "[bold]B[/bold]",
                  "\\x1b]0;title\\x07", "\\u202eevil", "over\\rwrite", "<b>in</b>`put`.har"):
        assert value in text, value
    # One table row per field of the policy's section, five cells each: nothing split a row.
    section = next(s for s in build_sections(events, catalogue) if s.policy is not None)
    table = html[html.index("<table>"):html.index("</table>")]
    assert table.count("<tr>") == len(section.rows) + 1
    assert table.count("<td>") == 5 * len(section.rows)


def code_spans(rendered: str) -> list[str]:
    return [htmllib.unescape(inner) for inner in re.findall(r"<code>(.*?)</code>", rendered, re.S)]


@pytest.mark.parametrize("content", ["`", "``a", "a`", "a ``` b `", " x ", "`x`", "|a|", "  ", "<i>x</i>", "a\\"])
def test_markdown_code_spans_hold_any_content(content):
    # CommonMark: the fence is longer than any backtick run inside; padding keeps end backticks
    # and end spaces as they are.
    assert code_spans(render_markdown_html(f"see {md_code(content)} here\n")) == [content]
    table = render_markdown_html(f"| a | b |\n|---|---|\n| {md_code(content, in_table=True)} | {md_text(content)} |\n")
    assert table.count("<td>") == 2, table  # a | in the content did not split the row
    assert code_spans(table) == [content]
    second = table[table.rindex("<td>") + 4:table.rindex("</td>")]
    assert htmllib.unescape(second) == content.strip(" ") and "<i>" not in second  # (GFM trims cells)


def test_empty_code_span_is_still_a_span():
    assert code_spans(render_markdown_html(f"see {md_code('')} here\n"))[0].strip() == ""


# ---------------------------------------------------------------------- SARIF

def sarif_checker() -> FormatChecker:
    """RFC 3986 `uri` (absolute) and `uri-reference`, checked here: jsonschema only checks them
    with rfc3987 installed, and would otherwise let anything pass."""
    char = r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})"
    absolute = re.compile(rf"[A-Za-z][A-Za-z0-9+.\-]*:{char}*(?:#{char}*)?\Z")
    relative = re.compile(rf"(?![^/?#]*:){char}*(?:#{char}*)?\Z")
    checker = FormatChecker(formats=())
    checker.checks("uri")(lambda value: not isinstance(value, str) or bool(absolute.match(value)))
    checker.checks("uri-reference")(
        lambda value: not isinstance(value, str) or bool(absolute.match(value) or relative.match(value)))
    return checker


def test_the_uri_checker_rejects_what_the_schema_forbids():
    checker = sarif_checker()
    assert not checker.conforms("docs/findings.md#pii", "uri")  # helpUri as it was: relative
    assert not checker.conforms("hostile har.har", "uri-reference")
    assert checker.conforms("https://json.schemastore.org/sarif-2.1.0.json", "uri")
    assert checker.conforms("file:///tmp/a%20b.har", "uri") and checker.conforms("a%20b.har", "uri-reference")


def test_sarif_validates_against_the_oasis_schema(events, catalogue):
    schema = json.loads(SCHEMA.read_text())
    assert schema["id"].startswith("https://docs.oasis-open.org/sarif/sarif/v2.1.0/")
    Draft4Validator.check_schema(schema)
    out = render(events, catalogue, "sarif", ["captures/hostile \x1b[2J.har", "/tmp/a b/c:d.har"])
    document = json.loads(out)
    errors = sorted(Draft4Validator(schema, format_checker=sarif_checker()).iter_errors(document), key=str)
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
    assert document["runs"][0]["results"], "the corpus has findings"


# ---------------------------------------------------------------------- proxy / exec lines

def test_event_line_is_one_visible_line(events):
    for event in events:
        line = event_line(event)
        assert_shown(line, block=False)
    assert "G\\x1b[2JT\\u202e" in event_line(events[1]) and "\\x9b2J" in event_line(events[1])


def test_proxy_json_lines_are_strict_one_line_json(events, capsys):
    from inspector.proxy.output import event_printer

    emit = event_printer(True)
    for event in events:
        emit(event)
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert len(lines) == len(events) and out.endswith("\n")  # U+2028 or a CR split no line
    for event, line in zip(events, lines, strict=True):
        assert_shown(line, block=False)
        row = json.loads(line, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
        assert row["id"] == event.id and row["method"] == event.method  # escaped, not altered
    assert '"G\\u001b[2JT\\u202e"' in lines[1] and '"block\\u009b"' in lines[1]
    assert '"inf": "Infinity"' in lines[0]

    emit = event_printer(False)
    for event in events:
        emit(event)
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(events) and lines == [event_line(e) for e in events]


# ---------------------------------------------------------------------- the CLI

def har_entry(method: str, url: str) -> dict[str, Any]:
    return {"startedDateTime": "2026-11-24T08:00:00+00:00",
            "request": {"method": method, "url": url, "headers": [{"name": n, "value": v} for n, v in HEADERS]},
            "response": {"status": 200, "headers": []}}


@pytest.fixture()
def capture(tmp_path: Path) -> dict[str, Path]:
    policy = tmp_path / "demo.yaml"
    policy.write_text(POLICY)
    har = tmp_path / "hostile.har"
    document = {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": [
        har_entry("GET", pixel_url()), har_entry("G\x1b[2JT", HOSTILE_PATH_URL)]}}
    har.write_text(json.dumps(document))  # ensure_ascii: the lone surrogate is written as \ud800
    return {"policy": policy, "har": har, "dir": tmp_path}


def run(*args: str, input: bytes | None = None) -> Any:
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


@pytest.mark.parametrize("fmt", FORMATS)
def test_cli_audit_of_a_hostile_har(capture, fmt):
    result = run("audit", str(capture["har"]), "--policy", str(capture["policy"]), "--format", fmt)
    assert result.exit_code == 1, result.output  # violations: the undeclared keys
    assert_shown(result.output)
    if fmt == "text":
        assert "\\x1b]0;title\\x07" in result.output and "\\u202eevil" in result.output


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_report_files_are_written_0600(capture, tmp_path):
    out = tmp_path / "report.md"
    result = run("audit", str(capture["har"]), "--policy", str(capture["policy"]), "--format", "markdown",
                 "-o", str(out))
    assert result.exit_code == 1 and mode(out) == 0o600
    assert_shown(out.read_text())
    existing = tmp_path / "existing.html"
    existing.write_text("old")
    existing.chmod(0o644)
    run("audit", str(capture["har"]), "--policy", str(capture["policy"]), "--format", "html", "-o", str(existing))
    assert mode(existing) == 0o600 and "<table>" in existing.read_text()
    drafts = tmp_path / "drafts.yaml"
    assert run("policies", "infer", str(capture["har"]), "-o", str(drafts)).exit_code == 0
    assert mode(drafts) == 0o600


def test_store_report_file_is_written_0600(events, tmp_path):
    from inspector.store import Store

    store_path = tmp_path / "store.json"
    with Store(store_path) as store:
        store.add_events([e.to_dict() for e in events])
    out = tmp_path / "store-report.sarif"
    out.write_text("")
    out.chmod(0o666)
    result = run("report", "--store", str(store_path), "--format", "sarif", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert mode(out) == 0o600
    json.loads(out.read_text(), parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
    result = run("report", "--store", str(store_path), "--format", "text")
    assert result.exit_code == 0, result.output
    assert_shown(result.output)
    assert "G\\x1b[2JT" in result.output


def test_write_private_narrows_an_existing_file(tmp_path):
    target = tmp_path / "r.txt"
    target.write_text("x" * 100)
    target.chmod(0o644)
    write_private(target, "new \ud800")
    assert mode(target) == 0o600 and target.read_text() == "new \\ud800"


def test_cli_errors_show_file_names_visibly(capture, tmp_path):
    missing = tmp_path / "no\x1b]0;pwned\x07such\u202e.har"
    result = run("audit", str(missing))
    assert result.exit_code == 2
    assert_shown(result.output)
    assert "\\x1b]0;pwned\\x07" in result.output and "\\u202e" in result.output
    broken = tmp_path / "bad\x9b2J.har"
    broken.write_text("{ not json")
    result = run("audit", str(broken))
    assert result.exit_code == 2 and "\\x9b2J" in result.output
    assert_shown(result.output)


def test_cli_decode_shows_hostile_payloads(tmp_path):
    result = run("decode", "-", input=payload_text().encode("utf-8", "surrogatepass"))
    assert_shown(result.output)
    assert "\\u001b]0;title\\u0007" in result.output and "\\u202eevil" in result.output
    result = run("decode", "--json", "-", input=payload_text().encode("utf-8", "surrogatepass"))
    assert_shown(result.output)
    document = json.loads(result.output, parse_constant=lambda name: pytest.fail(f"non-standard JSON {name}"))
    assert document["value"]["\x1b]0;title\x07"] == "\x1b]0;title\x07"
    # A text payload is a block: its newlines stay, a bare CR (which would overwrite the line
    # on a terminal) is shown. (The decoder calls other controls and bidi characters binary.)
    result = run("decode", "-", input=b"first line\nsecond line\rovertyped\n")
    assert_shown(result.output)
    assert "first line\nsecond line\\rovertyped" in result.output


# ---------------------------------------------------------------------- the TUI

CSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def terminal_output(app: Any) -> str:
    """What the app writes to the terminal for its whole screen, less its own CSI sequences
    (cursor moves, colours): anything left that is an escape came from the data."""
    update = app.screen._compositor.render_full_update()
    return CSI.sub("", update.render_segments(app.console))


@pytest.mark.slow
async def test_tui_shows_hostile_data_literally(events, catalogue, tmp_path):
    from inspector.tui.app import InspectorApp
    from inspector.tui.detail import DetailPane
    from inspector.tui.event_list import EventList

    app = InspectorApp(catalogue, export_dir=tmp_path)
    async with app.run_test(size=(160, 50)) as pilot:
        app.feed.add([e.to_dict() for e in events])
        app._refresh_list()
        await pilot.pause()
        listing = app.query_one(EventList)
        rows = [listing.render_line(y + 1).text for y in range(len(events))]  # (line 0: the headers)
        for row in rows:
            assert_shown(row, block=False)
        assert "G\\x1" in rows[1] and "\\x1b]0;title\\x07" in rows[1] and "block\\x9b" in rows[1]

        pane = app.query_one(DetailPane)
        for index in (0, 1):
            await pilot.press("home" if index == 0 else "end")
            await pilot.pause()
            labels = [str(node.label) for node in app.query_one("#payload-tree").root.children]
            texts = {name: str(app.query_one(f"#{name}-text").render()) for name in ("findings", "decoding", "request")}
            for text in [*labels, *texts.values()]:
                assert_shown(text)
            request = texts["request"]
            assert "v\\x9b2J\\u202eevil\\ud800" in request and "X-\\x1b[2J" in request
            assert HOSTILE["markup"] in request  # Textual markup shown as written, not applied
            if index == 0:
                assert any("\\x1b]0;title\\x07" in label for label in labels)
                assert any("[$accent]A [B]b" in label for label in labels)
                assert "undeclared-field" in texts["findings"] and "\\x1b[2J" in texts["findings"]
            else:
                assert "G\\x1b[2JT\\u202e" in request and "\\x1b]0;title\\x07/\\u202eevil" in request
            for tab in ("payload", "findings", "decoding", "request"):
                pane.active = f"tab-{tab}"
                await pilot.pause()
                screen = terminal_output(app)
                assert "\x1b" not in screen and "\x9b" not in screen, f"{tab}: {screen[screen.find(chr(27)) - 40:][:80]!r}"
                assert_shown(screen.replace("\r", "").replace("\n", ""))
        assert app.is_running  # no markup error took the app down

        await pilot.press("e", "enter")  # the export directory the prompt offers
        await pilot.pause()
        reports = list(tmp_path.glob("telemetry-report-*.md"))
        assert len(reports) == 1 and mode(reports[0]) == 0o600
        assert_shown(reports[0].read_text())


async def test_tui_vendors_view_shows_policy_text_literally_and_rules_by_id(tmp_path):
    from inspector.tui.app import InspectorApp

    hostile = POLICY.replace("vendor: Demo", 'vendor: "[@click=app.quit]V[/] [bold]W \\e]0;x\\a"')
    catalogue = Catalogue([parse_policy_text(hostile, "demo.yaml")])
    app = InspectorApp(catalogue, export_dir=tmp_path)
    async with app.run_test(size=(160, 30)) as pilot:
        await pilot.press("v")
        await pilot.pause()
        table = app.screen.query_one("#vendors-table")
        cell = table.get_row_at(0)[1]
        shown = str(table._get_row_renderables(0).cells[1])  # as the table draws it
        assert shown == "[@click=app.quit]V[/] [bold]W \\x1b]0;x\\x07", (cell, shown)
        await pilot.press("b")
        await pilot.pause()
        assert app.rules.decide("demo-pixel", "Demo", "t.demo.example").action == "block"
