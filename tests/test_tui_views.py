"""The TUI as a user meets it, driven with Pilot: the newest event in view at every size and
while events arrive, the list's columns at 80 and 120 columns, a store another tool rewrote,
keys loaded one after another, export, and the first run before anything was recorded."""

from __future__ import annotations

import base64
import json
import stat
import threading
from pathlib import Path

import pytest
from jwcrypto import jwe, jwk

from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, parse_policy_text
from inspector.store import Store
from inspector.tui.app import InspectorApp
from inspector.tui.event_list import EventList, format_row

POLICY = """\
id: demo-pixel
vendor: Demo
product: Demo pixel
source: {document: "demo.md", title: "Demo docs"}
match:
  hosts: ["t.demo.example"]
  methods: [GET, POST]
  paths: ["/telemetry", "/send"]
payload:
  location: "query:payload"
  encoding: [base64, json]
declared:
  version: {type: string, cite: {section: What, quote: "version | string"}}
  count: {type: integer}
claims:
  - check: no-pii
    cite: {section: Summary, quote: "anonymous"}
"""

SIZES = [(80, 24), (100, 30), (120, 40), (200, 40), (200, 60)]


@pytest.fixture()
def catalogue() -> Catalogue:
    return Catalogue([parse_policy_text(POLICY, "demo.yaml")])


def pixel(pipe: Pipeline, payload: dict, path: str = "/telemetry"):
    url = f"https://t.demo.example{path}?payload=" + base64.b64encode(json.dumps(payload).encode()).decode()
    return pipe.process(Observation("GET", url))


def assert_cursor_row_shown(listing: EventList) -> None:
    """The row under the cursor is one of the rows drawn, and drawn highlighted as that event."""
    shown = listing.visible_range()
    assert listing.cursor in shown, (listing.cursor, shown, listing.page_height, listing.scroll_offset)
    line = listing.cursor - listing.scroll_offset.y + 1  # (line 0: the column headers)
    assert 1 <= line < listing.container_size.height
    drawn = listing.render_line(line).text
    expected = "".join(text for text, _ in format_row(listing.selected(), listing.line_width, listing.columns()))
    assert drawn.rstrip() == expected.rstrip()


@pytest.mark.slow
@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_the_newest_event_is_on_screen_after_end_and_as_events_arrive(catalogue, size):
    pipe = Pipeline(catalogue)
    app = InspectorApp(catalogue)
    async with app.run_test(size=size) as pilot:
        app.feed.add([pixel(pipe, {"version": "1", "count": i}).to_dict() for i in range(120)])
        app._refresh_list()
        await pilot.pause()
        listing = app.query_one(EventList)
        assert listing.cursor == 119 and listing.follow
        assert_cursor_row_shown(listing)
        await pilot.press("home")
        await pilot.pause()
        assert listing.cursor == 0 and listing.scroll_offset.y == 0
        assert_cursor_row_shown(listing)
        await pilot.press("end")
        await pilot.pause()
        assert listing.cursor == 119
        assert_cursor_row_shown(listing)
        assert app.selected()["decoded"]["count"] == 119  # the detail pane shows the row drawn
        # Live: events come from another thread (as the proxy's worker delivers them), in batches.
        for batch in range(6):
            def deliver(first: int = 1000 + batch * 7) -> None:
                for k in range(7):
                    app._from_proxy(pixel(pipe, {"version": "1", "count": first + k}))
            worker = threading.Thread(target=deliver)
            worker.start()
            worker.join()
            for _ in range(100):  # the UI flushes every 0.1 s (slower on a loaded machine)
                await pilot.pause(0.05)
                if len(app.feed.view) == 120 + 7 * (batch + 1):
                    break
            await pilot.pause()
            assert listing.cursor == len(app.feed.view) - 1 == 120 + 7 * (batch + 1) - 1
            assert_cursor_row_shown(listing)
            assert app.selected()["decoded"]["count"] == 1006 + batch * 7
        # A smaller terminal: the bottom of the list moves up, the cursor stays in view.
        await pilot.resize_terminal(80, 24)
        await pilot.pause(0.2)
        assert_cursor_row_shown(listing)
        # The user's place is kept as events arrive: in view, not followed.
        await pilot.press("pageup", "up")
        await pilot.pause()
        placed = listing.cursor
        app.feed.add([pixel(pipe, {"version": "1", "count": 5000}).to_dict()])
        app._refresh_list()
        await pilot.pause()
        assert listing.cursor == placed and not listing.follow
        assert_cursor_row_shown(listing)


@pytest.mark.slow
@pytest.mark.slow
async def test_columns_headers_and_paths_at_80_and_120_columns(catalogue):
    full = Catalogue.load()
    pipe = Pipeline(catalogue)
    rows = [pixel(pipe, {"version": "1", "count": 1}, "/send").to_dict(),
            pixel(pipe, {"version": "1", "count": 2}, "/telemetry").to_dict()]
    long_name = max((p.id for p in full.policies), key=len)
    rows.append(dict(rows[0], policy=long_name, owner="Twilio", collector="segment", host="api.segment.io",
                     path="/v1/import/"))
    for size in [(80, 24), (120, 40)]:
        app = InspectorApp(full)
        async with app.run_test(size=size) as pilot:
            app.feed.add(rows)
            app._refresh_list()
            await pilot.pause()
            listing = app.query_one(EventList)
            lines = [listing.render_line(y).text for y in range(4)]
            header = lines[0]
            for title in ("time", "verdict", "policy", "host and path", "action"):
                assert title in header, header
            assert ("owner" in header) == (size[0] >= 100)
            targets = [next(word for word in line.split() if "/" in word) for line in lines[1:]]
            assert targets[0].endswith("/send") and targets[1].endswith("/telemetry"), targets
            assert targets[2].endswith("/v1/import/")
            if size[0] >= 120:
                assert long_name in lines[3] and "Twilio (segment)" in lines[3]
            footer = " ".join(str(w.render()) for w in app.screen.query("FooterKey"))
            for key in ("Quit", "Block", "Allow", "Sinkhole", "Filter", "Vendors", "Key", "Export", "Help"):
                assert key in footer
            keys = list(app.screen.query("FooterKey"))
            assert max(k.region.right for k in keys) <= size[0]  # none cut at the edge
            await pilot.press("question_mark")
            await pilot.pause()
            box = app.screen.query_one("#help-box")
            assert box.max_scroll_y == 0 and box.region.height <= size[1]  # all of it, no scrolling
            assert "quit" in str(app.screen.query_one("#help-text").render())


@pytest.mark.slow
@pytest.mark.slow
async def test_a_store_line_rewritten_by_another_json_tool_opens_in_the_tui(catalogue, tmp_path):
    pipe = Pipeline(catalogue)
    path = tmp_path / "store.json"
    with Store(path) as writer:
        writer.add_events([pixel(pipe, {"version": "1", "count": i}).to_dict() for i in range(3)])
    lines = path.read_text().splitlines()
    record = json.loads(lines[2])
    record["d"]["host"] = "t.démo.example"
    del record["d"]["findings"], record["d"]["layers"], record["d"]["items"]  # optional keys missing
    lines[2] = json.dumps(dict(sorted(record.items(), reverse=True)), ensure_ascii=False, indent=None,
                          separators=(", ", ": "))
    path.write_text("\n".join(lines) + "\n")
    from inspector.store import check_store
    assert check_store(path).ok
    store = Store(path, lazy_events=True)
    app = InspectorApp(catalogue, store=store, poll_store=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            assert app.is_running and len(app.feed.all) == 3
            await pilot.press("up")
            await pilot.pause()
            assert app.selected()["host"] == "t.démo.example"
            assert "t.démo.example/telemetry" in app.query_one(EventList).render_line(2).text
            await pilot.press("v")
            await pilot.pause()
            assert app.screen.query_one("#vendors-table").row_count >= 1
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.slow
async def test_keys_loaded_one_after_another_update_the_finding(catalogue, tmp_path):
    keys = [jwk.JWK.generate(kty="RSA", size=2048) for _ in range(3)]
    for i, key in enumerate(keys):
        (tmp_path / f"key{i}.json").write_text(key.export_private())
    elsewhere = jwk.JWK.generate(kty="RSA", size=2048)  # what the app really encrypted to
    token = jwe.JWE(b'{"version": "3", "count": 2}', json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM"}))
    token.add_recipient(elsewhere)
    policy = POLICY.replace('location: "query:payload"', "location: body").replace("[base64, json]", "[jwe, json]")
    cat = Catalogue([parse_policy_text(policy, "jwe.yaml")])
    from inspector.core.keys import Keyring
    keyring = Keyring.from_paths([tmp_path / "key0.json"])
    event = Pipeline(cat, keyring).process(Observation("POST", "https://t.demo.example/send",
                                                       body=token.serialize(compact=True).encode())).to_dict()
    message = next(f["message"] for f in event["findings"] if f["code"] == "unverifiable-encrypted")
    assert "none of 1 supplied key(s)" in message
    # stored, as `tui --store` reads it; and a violation besides (its verdict is not "encrypted")
    event["findings"].append({"code": "cookie", "severity": "violation", "path": "", "message": "a cookie"})
    event["verdict"] = "violation"
    path = tmp_path / "store.json"
    with Store(path) as writer:
        writer.add_events([event])
    store = Store(path, lazy_events=True)
    app = InspectorApp(cat, keyring, store=store, poll_store=True)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            for i in (1, 2):
                await pilot.press("k", *str(tmp_path / f"key{i}.json"), "enter")
                await pilot.pause(0.3)
                shown = str(app.query_one("#findings-text").render())
                assert f"none of {i + 1} supplied key(s) opened it" in shown, shown
                assert "a cookie" in shown and app.selected()["verdict"] == "violation"
            assert any("3 in all" in n.message for n in app._notifications)
            store.refresh()
            stored = store.events()[0]["findings"]
            assert "none of 3 supplied key(s)" in next(f["message"] for f in stored if f["code"] == "unverifiable-encrypted")
            # the right key at last: decoded, and the list and the detail say so
            (tmp_path / "right.json").write_text(elsewhere.export_private())
            await pilot.press("k", *str(tmp_path / "right.json"), "enter")
            await pilot.pause(0.3)
            assert app.selected()["decoded"] == {"version": "3", "count": 2}
            # what the audit found beyond the payload (here a cookie) stays, and so does the verdict
            codes = [f["code"] for f in app.selected()["findings"]]
            assert "cookie" in codes and "unverifiable-encrypted" not in codes
            assert app.selected()["verdict"] == "violation"
    finally:
        store.close()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.slow
@pytest.mark.slow
async def test_export_asks_where_defaults_to_the_data_directory_and_says_where(catalogue, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.chdir(tmp_path)
    pipe = Pipeline(catalogue)
    app = InspectorApp(catalogue)
    async with app.run_test(size=(100, 30)) as pilot:
        app.feed.add([pixel(pipe, {"version": "1", "count": i}).to_dict() for i in range(3)])
        app._refresh_list()
        await pilot.pause()
        await pilot.press("e")
        await pilot.pause()
        offered = app.screen.query_one("#prompt-input").value
        assert offered.startswith(str(tmp_path / "data" / "telemetry-inspector" / "telemetry-report-"))
        await pilot.press("enter")
        await pilot.pause()
        written = Path(offered)
        assert written.exists() and mode(written) == 0o600 and mode(written.parent) == 0o700
        assert "Declared vs. observed" in written.read_text()
        assert any(str(written) in n.message and "3 events" in n.message for n in app._notifications)
        assert not list(tmp_path.glob("telemetry-report-*"))  # not where the command was started
        # another place, another format (by its extension)
        await pilot.press("e")
        await pilot.pause()
        prompt = app.screen.query_one("#prompt-input")
        prompt.value = str(tmp_path / "out" / "audit.html")
        await pilot.press("enter")
        await pilot.pause()
        html = tmp_path / "out" / "audit.html"
        assert html.read_text().startswith("<!doctype html>") and mode(html) == 0o600
        assert any(str(html) in n.message for n in app._notifications)
        # Esc: nothing written
        before = set(tmp_path.rglob("*"))
        await pilot.press("e", "escape")
        await pilot.pause()
        assert set(tmp_path.rglob("*")) == before


@pytest.mark.slow
@pytest.mark.slow
async def test_first_run_without_a_store_explains_and_creates_nothing(catalogue, tmp_path):
    path = tmp_path / "data" / "telemetry-inspector" / "store.json"
    # what `tui` without --store does when the default store does not exist yet
    app = InspectorApp(catalogue, store=None, poll_store=True, store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause(1.2)  # a few polls
        listing = app.query_one(EventList)
        text = "\n".join(listing.render_line(y).text for y in range(1, 8))
        assert "Nothing recorded yet" in text and "telemetry-inspector exec -- your-app" in text
        assert "telemetry-inspector proxy" in text and "telemetry-inspector run" in text
        assert "no store yet" in str(app.query_one("#status").render())
        assert not path.exists() and not path.parent.exists()
        # a proxy records its first events: the view opens the store and shows them
        pipe = Pipeline(catalogue)
        with Store(path) as writer:
            writer.add_events([pixel(pipe, {"version": "1", "count": 7}).to_dict()])
        for _ in range(40):
            await pilot.pause(0.1)
            if len(app.feed.all):
                break
        assert len(app.feed.all) == 1 and app.selected()["decoded"]["count"] == 7
        assert "demo-pixel" in listing.render_line(1).text


@pytest.mark.slow
async def test_a_rule_set_before_anything_was_recorded_creates_the_store(catalogue, tmp_path):
    path = tmp_path / "store.json"
    app = InspectorApp(catalogue, store=None, poll_store=True, store_path=path)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        app.set_rule("t.demo.example", "host", "block")
        await pilot.pause()
        assert path.exists()
    with Store(path, readonly=True) as store:
        assert store.rules()[0]["target"] == "t.demo.example"


@pytest.mark.slow
async def test_the_request_tab_shows_the_response_and_a_sinkholed_requests_local_answer(tmp_path, upstream):
    """Live: the server's answer to an allowed request; the inspector's own to a sinkholed one."""
    from test_tui_live import make_app, pick, sent, until

    from inspector.tui.detail import DetailPane
    app = make_app(tmp_path, upstream)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.runner.listen_addrs)
            usage = pick("appsmith-server-usage")
            assert await sent(app, usage) == 200
            await until(pilot, lambda: len(app.feed.all) == 1)
            app.query_one(DetailPane).active = "tab-request"
            await pilot.pause()
            shown = str(app.query_one("#request-text").render())
            assert "Response 200 — from the server" in shown and "response: 200 from the server" in shown, shown
            stored = app.store.get_event(app.feed.ids[0])["response"]
            assert stored["status"] == 200 and not stored["local"] and stored["headers"]
            assert stored["body_size"] == len(stored.get("body_text", "")) or stored["body_truncated"]
            await pilot.press("s")  # sinkhole the policy: the next request is answered here
            await pilot.pause()
            before = upstream.count()
            assert await sent(app, usage) == 200
            await until(pilot, lambda: len(app.feed.all) == 2)
            assert upstream.count() == before  # nothing reached the server
            await pilot.press("end")
            await pilot.pause()
            shown = str(app.query_one("#request-text").render())
            assert "the inspector's local answer (sinkhole): nothing reached the server" in shown, shown
            assert "X-Telemetry-Inspector: sinkhole" in shown
            event = app.selected()
            assert event["response"]["local"] and event["response"]["status"] == 200
            assert "body_text" in event["response"] or "body_base64" in event["response"]
    finally:
        app.store.close()


# ---------------------------------------------------------------- quotes, containers, the vendors view


def demo_events() -> list[dict]:
    from test_tui_snapshots import events
    return events()


def test_every_builtin_quote_reads_the_same_with_its_cells_apart():
    from inspector.core.quotes import CELL, readable_quote
    quotes = []
    for policy in Catalogue.load().policies:
        quotes += [c.citation.quote for c in policy.claims if c.citation.quote]
        quotes += [spec["cite"]["quote"] for spec in policy.declared_paths().values()
                   if isinstance(spec, dict) and isinstance(spec.get("cite"), dict) and spec["cite"].get("quote")]
    split = {q: readable_quote(q) for q in quotes if readable_quote(q) != q}
    assert split  # the flattened Refine v4 table rows
    for quote, shown in split.items():
        assert shown.replace(CELL, "") == quote  # display only: the same words, verbatim
    assert readable_quote("providersboolean[]List of providers used in the project (auth, data, router, live, "
                          "notification, auditLog, i18n or accessControl)").startswith(
        "providers │ boolean[] │ List of providers")
    assert readable_quote("versionstringVersion of the Refine package.") == "version │ string │ Version of the Refine package."
    for prose in ("The telemetry system does not use cookies.", "| providers | boolean[] | List |", "Stringify"):
        assert readable_quote(prose) == prose


@pytest.mark.slow
async def test_findings_and_reports_show_a_flattened_table_row_with_its_cells():
    from inspector.core.event import event_from_dict
    from inspector.report.render import render
    catalogue = Catalogue.load()
    rows = [e for e in demo_events() if e["policy"] == "refine-v4-browser"][:1]
    app = InspectorApp(catalogue)
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed.add(rows)
        app._refresh_list()
        await pilot.press("2")
        await pilot.pause()
        shown = str(app.query_one("#findings-text").render())
        assert "“providers │ boolean[] │ List of providers used in the project" in shown
        assert "providersboolean[]" not in shown
    events = [event_from_dict(e) for e in rows]
    for fmt in ("text", "markdown", "html"):
        text = render(events, catalogue, fmt)
        assert "providers │ boolean[] │ List of providers" in text.replace("\\[\\]", "[]"), fmt
    assert "providersboolean[]List" in render(events, catalogue, "json")  # machine output: verbatim


@pytest.mark.slow
async def test_a_batch_container_is_shown_as_the_container_it_is():
    from inspector.core.event import event_from_dict
    from inspector.report.render import render
    catalogue = Catalogue.load()
    rows = [e for e in demo_events() if e["policy"] == "appsmith-server-usage"]
    assert rows and isinstance(rows[0]["decoded"]["batch"], list)
    app = InspectorApp(catalogue)
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed.add(rows)
        app._refresh_list()
        await pilot.pause()
        labels = [str(node.label) for node in app.query_one("#payload-tree").root.children]
        batch = next(label for label in labels if label.startswith("batch"))
        assert "container of the items" in batch and "undeclared" not in batch
        await pilot.press("v")
        await pilot.pause()
        table = app.screen.query_one("#vendors-table")
        table.move_cursor(row=table.get_row_index("appsmith-server-usage"))
        await pilot.press("enter")
        await pilot.pause()
        details = str(app.screen.query_one("#policy-text").render())
        extra = details.split("Observed fields it does not declare")[1].split("Claims")[0]
        assert "batch  ▣ container of the items" in extra
        assert not any(line.strip().startswith("batch ") and "event(s)" in line for line in extra.splitlines())
    markdown = render([event_from_dict(e) for e in rows], catalogue, "markdown")
    assert "| `batch` | — | 2 | `[1 items]` | container of the items |" in markdown
    assert "undeclared, observed |" not in next(line for line in markdown.splitlines() if "`batch`" in line)


@pytest.mark.slow
async def test_vendors_view_drills_into_a_policy_and_lists_host_rules(catalogue):
    pipe = Pipeline(catalogue)
    rows = [pixel(pipe, {"version": "1", "count": i}).to_dict() for i in range(4)]
    rows += [pixel(pipe, {"version": "2", "owner": "dev@example.com", "extra": {"n": k}}).to_dict() for k in range(2)]
    app = InspectorApp(catalogue)
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed.add(rows)
        app._refresh_list()
        await pilot.pause()
        await pilot.press("B")  # block the selected event's host
        await pilot.pause()
        await pilot.press("v")
        await pilot.pause()
        table = app.screen.query_one("#vendors-table")
        headers = [str(c.label) for c in table.ordered_columns]
        assert headers == ["policy", "seen", "decl. seen", "undecl.", "rule"]  # what fits 80 columns
        assert sum(c.get_render_width(table) for c in table.ordered_columns) <= 80
        cells = dict(zip(headers, table.get_row_at(0), strict=True))
        assert cells["policy"] == "demo-pixel" and cells["seen"] == "6" and cells["decl. seen"] == "2/2"
        assert cells["undecl."] == "2" and cells["rule"] == "block (host t.demo.example)"  # what its requests get
        host_row = dict(zip(headers, table.get_row_at(1), strict=True))
        assert host_row["policy"] == "host t.demo.example" and host_row["rule"] == "block (host rule)"
        await pilot.press("down", "a")  # allow that host, from the view
        await pilot.pause()
        assert app.rules.decide(None, None, "t.demo.example").action == "allow"
        await pilot.press("up", "enter")
        await pilot.pause()
        assert type(app.screen).__name__ == "PolicyScreen"
        details = str(app.screen.query_one("#policy-text").render())
        assert "demo-pixel — Demo: Demo pixel" in details and "seen 6 event(s)" in details
        assert "Declared fields never seen (0 of 2)" in details
        extra = details.split("Observed fields it does not declare")[1].split("Claims")[0]
        assert "owner  2 event(s)  e.g. dev@example.com  ✗ undeclared-field" in extra
        assert "extra.n  2 event(s)  e.g. 0" in extra
        assert "no-pii" in details and "✗ broken by 2 finding(s)" in details and "“anonymous”" in details
        assert "declared-fields" in details
        await pilot.press("s")  # sinkhole it from the drill-down: the text says so at once
        await pilot.pause()
        assert "rule sinkhole" in str(app.screen.query_one("#policy-text").render())
        await pilot.press("escape")
        await pilot.pause()
        assert "sinkhole" in dict(zip(headers, table.get_row_at(0), strict=True))["rule"]


@pytest.mark.slow
async def test_events_recorded_by_another_handle_are_read_when_they_arrive(catalogue, tmp_path):
    """`run` audits in a helper process, which records: the events reach the UI whole, their
    records are in the file, not yet in the UI's handle of the store."""
    pipe = Pipeline(catalogue)
    path = tmp_path / "store.json"
    writer = Store(path)  # the helper process's handle
    reader = Store(path, lazy_events=True)  # the UI's
    app = InspectorApp(catalogue, store=reader)
    try:
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause()
            for batch in range(4):
                events = [pixel(pipe, {"version": "1", "count": batch * 10 + k}) for k in range(3)]
                for event, doc_id in zip(events, writer.add_events([e.to_dict() for e in events]), strict=True):
                    event.store_id = doc_id
                    app._from_proxy(event)
                for _ in range(100):
                    await pilot.pause(0.05)
                    if len(app.feed.all) == 3 * (batch + 1):
                        break
            assert len(app.feed.all) == 12
            assert [e["decoded"]["count"] for e in app.feed.all][-3:] == [30, 31, 32]
            assert not [e for e in app.feed.all if e.get("verdict") == "error"]
            assert_cursor_row_shown(app.query_one(EventList))
    finally:
        writer.close()
        reader.close()
