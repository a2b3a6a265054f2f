"""The TUI driven with Pilot on audited events (no proxy): list, detail tabs, filter, vendors, help, keys."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from jwcrypto import jwe, jwk

from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, parse_policy_text
from inspector.tui.app import InspectorApp
from inspector.tui.event_list import EventList

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


@pytest.fixture()
def catalogue() -> Catalogue:
    return Catalogue([parse_policy_text(POLICY, "demo.yaml")])


def pixel_event(pipe: Pipeline, payload: dict) -> dict:
    url = "https://t.demo.example/telemetry?payload=" + base64.b64encode(json.dumps(payload).encode()).decode()
    return pipe.process(Observation("GET", url)).to_dict()


@pytest.mark.slow
async def test_list_detail_filter_vendors_help(catalogue, tmp_path):
    pipe = Pipeline(catalogue)
    app = InspectorApp(catalogue, export_dir=tmp_path)
    async with app.run_test(size=(80, 24)) as pilot:
        events = [pixel_event(pipe, {"version": "1", "count": i}) for i in range(30)]
        events.append(pixel_event(pipe, {"version": "1", "count": 1, "owner": "dev@example.com"}))
        app.feed.add(events)
        app._refresh_list()
        await pilot.pause()
        listing = app.query_one(EventList)
        assert listing.cursor == 30  # follows the newest
        findings = str(app.query_one("#findings-text").render())
        assert "undeclared-field" in findings and "owner" in findings and "“anonymous”" in findings
        tree_labels = [str(node.label) for node in app.query_one("#payload-tree").root.children]
        assert any("owner" in label and "undeclared" in label for label in tree_labels)
        assert any("version" in label and "declared" in label for label in tree_labels)
        assert "query:payload → base64 → json" in str(app.query_one("#decoding-text").render())
        await pilot.press("up")
        await pilot.pause()
        assert listing.cursor == 29 and not listing.follow
        # a new event does not move the cursor the user placed
        app.feed.add([pixel_event(pipe, {"version": "1", "count": 99})])
        app._refresh_list()
        await pilot.pause()
        assert listing.cursor == 29
        # filter by free text in the decoded payload
        await pilot.press("slash")
        await pilot.press(*"dev@example")
        await pilot.press("enter")
        await pilot.pause()
        assert len(app.feed.view) == 1 and "filter: dev@example" in str(app.query_one("#filter-bar").render())
        await pilot.press("escape")
        await pilot.pause()
        assert len(app.feed.view) == 32
        await pilot.press("v")
        await pilot.pause()
        table = app.screen.query_one("#vendors-table")
        row = table.get_row_at(0)  # (80 columns: policy, seen, declared seen, undeclared, rule)
        assert row[0] == "demo-pixel" and row[1] == "32" and row[2] == "2/2" and row[3] == "1"
        await pilot.press("escape")
        await pilot.press("question_mark")
        await pilot.pause()
        assert type(app.screen).__name__ == "HelpScreen"
        await pilot.press("escape")
        await pilot.press("e")  # asks where, the export directory by default
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        reports = list(tmp_path.glob("telemetry-report-*.md"))
        assert reports and "Declared vs. observed" in reports[0].read_text()


async def test_block_key_sets_a_policy_rule_without_store(catalogue):
    pipe = Pipeline(catalogue)
    app = InspectorApp(catalogue)
    async with app.run_test(size=(100, 30)) as pilot:
        app.feed.add([pixel_event(pipe, {"version": "1", "count": 1})])
        app._refresh_list()
        await pilot.pause()
        await pilot.press("b")
        await pilot.pause()
        assert app.rules.decide("demo-pixel", "Demo", "t.demo.example").action == "block"
        await pilot.press("a")
        await pilot.pause()
        assert app.rules.decide("demo-pixel", "Demo", "t.demo.example").action == "allow"
        await pilot.press("S")  # shift: the host only
        await pilot.pause()
        assert app.rules.decide(None, None, "t.demo.example").action == "sinkhole"


@pytest.mark.slow
async def test_key_loading_decodes_encrypted_events(catalogue, tmp_path: Path):
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="tui-key")
    (tmp_path / "key.json").write_text(key.export_private())
    token = jwe.JWE(b'{"version": "3", "count": 2}', json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM"}))
    token.add_recipient(key)
    policy = POLICY.replace('location: "query:payload"', "location: body").replace("[base64, json]", "[jwe, json]")
    cat = Catalogue([parse_policy_text(policy, "jwe.yaml")])
    pipe = Pipeline(cat)
    event = pipe.process(Observation("POST", "https://t.demo.example/send",
                                     body=token.serialize(compact=True).encode())).to_dict()
    assert event["verdict"] == "encrypted"
    app = InspectorApp(cat)
    async with app.run_test(size=(80, 24)) as pilot:
        app.feed.add([event])
        app._refresh_list()
        await pilot.pause()
        await pilot.press("k")
        await pilot.pause()
        await pilot.press(*str(tmp_path / "key.json"))
        await pilot.press("enter")
        await pilot.pause()
        assert app.feed.all[0]["verdict"] == "clean"
        assert app.feed.all[0]["decoded"] == {"version": "3", "count": 2}
        assert "jwe(RSA-OAEP-256, A256GCM)" in " ".join(app.feed.all[0]["decoding"])


@pytest.mark.slow
async def test_corrupt_store_is_a_notice_not_a_crash(catalogue, tmp_path: Path):
    from inspector.store import Store, StoreError
    path = tmp_path / "store.json"
    with Store(path) as store:
        store.add_events([{"url": "https://t.demo.example/telemetry", "time": 1.0}] * 3)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join([lines[0], b"{not json at all\n", *lines[1:]]))
    with pytest.raises(StoreError) as problem:
        Store(path)
    # what `telemetry-inspector tui --store PATH` does with it
    app = InspectorApp(catalogue, store=None, poll_store=True, notice=str(problem.value))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        messages = [n.message for n in app._notifications]
        assert any("corrupt" in m and "store repair" in m for m in messages), messages
        await pilot.press("v")  # still usable
        await pilot.pause()
        assert type(app.screen).__name__ == "VendorsScreen"

    # a store that goes bad under a running TUI: a notice, and the rows already shown stay
    good = tmp_path / "good.json"
    with Store(good) as writer:
        writer.add_events([{"url": "https://t.demo.example/telemetry", "time": 1.0, "verdict": "clean"}])
    reader = Store(good, readonly=True)
    app = InspectorApp(catalogue, store=reader, poll_store=True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert len(app.feed.all) == 1
            with good.open("ab") as handle:
                handle.write(b"{garbage that is not a record\n" * 2)
            for _ in range(30):
                await pilot.pause(0.1)
                if app._notifications:
                    break
            assert any("store" in n.message for n in app._notifications)
            assert len(app.feed.all) == 1 and app.is_running
    finally:
        reader.close()


async def settle(pilot, app, timeout: float = 20.0) -> None:
    """Until the feed has counted and filtered every event (it does so between frames)."""
    import time
    deadline = time.monotonic() + timeout
    while app.feed.behind() and time.monotonic() < deadline:
        await pilot.pause(0.02)
    assert not app.feed.behind()


@pytest.mark.slow
async def test_big_store_is_read_lazily_counted_between_frames_and_follows_retention(catalogue, tmp_path):
    from inspector.store import Store
    pipe = Pipeline(catalogue)
    path = tmp_path / "store.json"
    clean = pixel_event(pipe, {"version": "1", "count": 1})
    dirty = pixel_event(pipe, {"version": "1", "count": 1, "owner": "dev@example.com"})
    assert clean["verdict"] == "clean" and dirty["verdict"] == "violation"
    with Store(path, keep_events=False) as writer:
        for i in range(6):
            writer.add_events([dict(dirty if j % 10 == 0 else clean, path=f"/telemetry/{i}/{j}") for j in range(1000)])
    reader = Store(path, lazy_events=True)
    app = InspectorApp(catalogue, store=reader, poll_store=True)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            listing = app.query_one(EventList)
            assert len(app.feed.all) == 6000 and listing.cursor == 5999
            # No event documents held: the ids, and what the list draws is read from the file.
            assert not app.feed._mem and all(type(v) is int for v in reader.storage.table_data("events").values())
            await settle(pilot, app)
            counts = app.feed.counts()
            assert counts["events"] == 6000 and counts["violations"] == 600 and counts["complete"]
            assert "600 with violations" in str(app.query_one("#status").render())
            # A filter over the stored payloads, filled in between frames.
            await pilot.press("slash", *"dev@example", "enter")
            await settle(pilot, app)
            assert len(app.feed.view) == 600 and all(e["verdict"] == "violation" for e in app.feed.view[:50])
            await pilot.press("escape")
            # Another process writes with retention (keep 6,500): the oldest leave the list too.
            with Store(path, keep_events=False, max_events=6500) as writer:
                writer.add_events([dict(clean, path=f"/late/{j}") for j in range(1000)])
            for _ in range(50):
                await pilot.pause(0.1)
                if len(app.feed.all) == 6500:
                    break
            await settle(pilot, app)
            assert len(app.feed.all) == 6500 and app.feed.all[0]["path"] == "/telemetry/0/500"
            assert app.feed.all[-1]["path"] == "/late/999"
            assert app.feed.counts()["violations"] == 550  # 50 of the deleted ones were violations
            await pilot.press("v")
            await pilot.pause()
            row = app.screen.query_one("#vendors-table").get_row_at(0)
            assert row[0] == "demo-pixel" and row[1] == "7000"  # seen since the TUI started
            # Events keep arriving under the vendors view: the list behind it follows them.
            with Store(path, keep_events=False) as writer:
                writer.add_events([dict(dirty, path="/under-the-view")])
            for _ in range(30):
                await pilot.pause(0.1)
                if app.feed.all[-1]["path"] == "/under-the-view":
                    break
            assert app.is_running and app.feed.all[-1]["path"] == "/under-the-view"
            await pilot.press("escape")
            await pilot.pause()
            assert app.query_one(EventList).selected()["path"] == "/under-the-view"  # it followed
    finally:
        reader.close()
