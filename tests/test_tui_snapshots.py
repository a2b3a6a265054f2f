"""Snapshots of the TUI (pytest-textual-snapshot): main screen, detail tabs, vendors view, help,
at 80×24 and 120×40. Update after an intended change with `./dev test --snapshot-update`."""

from __future__ import annotations

import os
import time
from dataclasses import replace

import pytest
from conftest import KEYS

from inspector.core.actions import LocalAnswer, block_answer
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue
from inspector.emit.channels import observation_of, wire_requests
from inspector.tui.app import InspectorApp
from inspector.tui.detail import DetailPane

SIZES = [(80, 24), (120, 40)]
CHANNELS = ("refine-v4-browser", "hasura-cli", "hasura-console", "appsmith-server-usage")


@pytest.fixture(autouse=True)
def utc():
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ", None)
    else:
        os.environ["TZ"] = old
    time.tzset()


def events() -> list[dict]:
    """A fixed set: the same payloads, times and actions on every run."""
    pipeline = Pipeline(Catalogue.load())
    rows = []
    clock = 1_795_000_000.0
    for request in wire_requests(KEYS):
        if request.channel not in CHANNELS:
            continue
        for sent in observation_of(request):
            clock += 1.5
            action = "block" if request.channel == "hasura-cli" else "allow"
            # the answer the client got: the inspector's own when blocked, else the server's
            answer = block_answer() if action == "block" else LocalAnswer(
                200, (("Content-Type", "application/json"), ("Date", "Sat, 21 Nov 2026 08:00:00 GMT")),
                b'{"status":"ok"}')
            obs = replace(sent, timestamp=clock, response_status=answer.status, response_headers=answer.headers,
                          response_body=answer.body, response_local=action == "block")
            event = pipeline.process(obs, action=action).to_dict()
            rows.append(event)
    return rows


def make_app() -> InspectorApp:
    return InspectorApp(Catalogue.load())


async def fill(pilot) -> None:
    app = pilot.app
    app.feed.add(events())
    app._refresh_list()
    await pilot.pause()
    await pilot.press("home", "down", "down")  # a violating refine pixel, off the newest row
    await pilot.pause()


def tab(name: str):
    async def run_before(pilot) -> None:
        await fill(pilot)
        pilot.app.query_one(DetailPane).active = f"tab-{name}"
        await pilot.pause()
    return run_before


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("name", ["payload", "findings", "decoding", "request"])
def test_main_screen_and_detail_tabs(snap_compare, size, name):
    assert snap_compare(make_app(), terminal_size=size, run_before=tab(name))


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("screen, key", [("vendors", "v"), ("help", "question_mark")])
def test_vendors_view_and_help(snap_compare, size, screen, key):
    async def run_before(pilot) -> None:
        await fill(pilot)
        await pilot.press(key)
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_vendors_drill_down(snap_compare, size):
    """Enter on a policy of the vendors view: its fields never seen, the undeclared ones, its claims."""
    async def run_before(pilot) -> None:
        await fill(pilot)
        await pilot.press("v")
        await pilot.pause()
        table = pilot.app.screen.query_one("#vendors-table")
        table.move_cursor(row=table.get_row_index("hasura-console"))
        await pilot.press("enter")
        await pilot.pause()
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.slow
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_request_tab_of_a_blocked_request(snap_compare, size):
    """The Request tab of a blocked request: the request, then the answer the inspector gave."""
    async def run_before(pilot) -> None:
        await fill(pilot)
        await pilot.press("home", *["down"] * 6)  # a blocked hasura-cli request
        pilot.app.query_one(DetailPane).active = "tab-request"
        await pilot.pause()
        assert pilot.app.selected()["action"] == "block"
    assert snap_compare(make_app(), terminal_size=size, run_before=run_before)


@pytest.mark.slow
def test_light_theme(snap_compare):
    """Readable on a light terminal too (badges carry a symbol and a word, not only a colour)."""
    async def run_before(pilot) -> None:
        pilot.app.theme = "textual-light"
        await fill(pilot)
    assert snap_compare(make_app(), terminal_size=(80, 24), run_before=run_before)
