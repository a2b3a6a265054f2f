"""Collector requests as users see them: itemised in the TUI, grouped by collector and event
name in reports, carried in JSON."""

from __future__ import annotations

import json

import pytest

from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue
from inspector.report.render import event_line, render
from inspector.tui.app import InspectorApp
from inspector.tui.event_list import format_row

BATCH = {"writeKey": "wk_live_123", "sentAt": "2026-12-01T10:00:00Z", "batch": [
    {"type": "track", "event": "Signed Up", "userId": "u-1", "messageId": "m1",
     "properties": {"plan": "pro", "email": "jane@example.com"}},
    {"type": "page", "name": "Pricing", "anonymousId": "a-9", "messageId": "m2", "properties": {"path": "/pricing"}},
    {"type": "track", "event": "Signed Up", "userId": "u-2", "messageId": "m3", "properties": {"plan": "free"}},
]}


def segment_event() -> dict:
    obs = Observation("POST", "https://api.segment.io/v1/batch", (("Content-Type", "application/json"),),
                      json.dumps(BATCH).encode())
    return Pipeline(Catalogue.load()).process(obs).to_dict()


def test_json_carries_the_items_and_their_identifiers():
    event = segment_event()
    assert event["collector"] == "segment" and event["owner"] == "Twilio"
    assert [(i["kind"], i["name"], i["path"]) for i in event["items"]] == [
        ("track", "Signed Up", "batch[0]"), ("page", "Pricing", "batch[1]"), ("track", "Signed Up", "batch[2]")]
    assert event["items"][0]["ids"] == {"user": "u-1"} and event["items"][1]["ids"] == {"anonymous": "a-9"}
    codes = {(f["code"], f["path"]) for f in event["findings"]}
    assert ("pii", "batch[0].properties.email") in codes          # PII found inside the item
    assert ("credential", "writeKey") in codes                    # the write key is a credential …
    assert not any(c == "pii" and p == "writeKey" for c, p in codes)  # … not personal data
    assert event["verdict"] == "warning"  # a known collector is not "unknown"


def test_reports_group_by_collector_and_event_name():
    from inspector.core.event import event_from_dict

    events = [event_from_dict(segment_event()) for _ in range(2)]
    catalogue = Catalogue.load()
    text = render(events, catalogue, "text")
    assert "collector segment: 2 request(s) — track: Signed Up ×4, page: Pricing ×2" in text
    markdown = render(events, catalogue, "markdown")
    assert "## Segment \\(Twilio\\)\\: collector requests no vendor policy describes" in markdown
    assert "| track | `Signed Up` | 4 |" in markdown and "| page | `Pricing` | 2 |" in markdown
    html = render(events, catalogue, "html")
    assert "<td>track</td><td><code>Signed Up</code></td><td>4</td>" in html
    summary = json.loads(render(events, catalogue, "json"))["summary"]["collectors"]
    assert summary == {"segment": {"events": 2, "items": {"page: Pricing": 2, "track: Signed Up": 4}}}
    assert "segment: Signed Up, Pricing +1" in event_line(events[0])


@pytest.mark.slow
async def test_the_tui_lists_event_names_and_shows_one_item_at_a_time(tmp_path):
    catalogue = Catalogue.load()
    event = segment_event()
    row = "".join(text for text, _ in format_row(event, 120))
    assert "segment: Signed Up +2" in row
    app = InspectorApp(catalogue, export_dir=tmp_path)
    async with app.run_test(size=(120, 40)) as pilot:
        app.feed.add([event])
        app._refresh_list()
        await pilot.pause()
        await pilot.press("5")
        shown = str(app.query_one("#items-text").render())
        assert "item 1 of 3" in shown and "Signed Up" in shown and "user: u-1" in shown
        assert "jane@example.com" in shown and "PII" in shown  # the item's field, marked
        await pilot.press("right_square_bracket")
        shown = str(app.query_one("#items-text").render())
        assert "item 2 of 3" in shown and "Pricing" in shown and "anonymous: a-9" in shown
        await pilot.press("right_square_bracket", "right_square_bracket")  # stays on the last
        assert "item 3 of 3" in str(app.query_one("#items-text").render())
        await pilot.press("left_square_bracket")
        assert "item 2 of 3" in str(app.query_one("#items-text").render())


def test_evidence_of_an_object_is_json_not_a_python_repr():
    from inspector.core.audit import _evidence

    assert _evidence({"auth": False, "ids": [1, None]}) == '{"auth": false, "ids": [1, null]}'
    assert _evidence(["x" * 400])[-1] == "…"


def test_a_vendors_event_is_recognised_on_every_endpoint_of_its_collector():
    """Appsmith's "Instance Active" ping sent through Segment's /v1/batch (not the /v1/track its
    policy lists) is Appsmith's, audited against its policy at the item's path; Segment's
    envelope is not reported as Appsmith's undeclared fields."""
    from pathlib import Path

    sample = json.loads((Path(__file__).parent.parent / "fixtures/payloads/seed/appsmith-server-ping"
                         / "instance-active.json").read_text())
    planted = dict(sample, properties={**sample["properties"], "adminEmail": "ops@example.com"})
    body = {"writeKey": "wk", "sentAt": "2026-12-01T10:00:00Z", "sequence": 3,
            "batch": [{"type": "track", "event": "Other App Event", "anonymousId": "x", "messageId": "m0"}, planted]}
    obs = Observation("POST", "https://api.segment.io/v1/batch", (("Content-Type", "application/json"),),
                      json.dumps(body).encode())
    event = Pipeline(Catalogue.load()).process(obs).to_dict()
    assert event["policy"] == "appsmith-server-ping" and event["collector"] == "segment"
    codes = {(f["code"], f["path"]) for f in event["findings"]}
    assert ("undeclared-field", "batch[1].properties.adminEmail") in codes   # Appsmith's audit, at the item
    pii = [f for f in event["findings"] if f["code"] == "pii" and f["path"] == "batch[1].properties.adminEmail"]
    assert len(pii) == 1 and pii[0]["claim"]  # once, held against Appsmith's no-pii claim
    assert not any(c == "undeclared-field" and p in ("writeKey", "sentAt", "sequence") for c, p in codes)
    assert not any(p.startswith("batch[0]") and c == "undeclared-field" for c, p in codes)  # not Appsmith's
