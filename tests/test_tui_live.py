"""The TUI with its embedded proxy: Pilot drives the real app while the emitters send real HTTPS
requests through the real proxy to a local upstream that counts what reaches it."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import KEYS, cli_env

from inspector.core.keys import Keyring
from inspector.core.policy import Catalogue
from inspector.emit.channels import wire_requests
from inspector.emit.redirect import LoopbackRedirect
from inspector.emit.send import send
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.embed import ProxySettings
from inspector.proxy.runner import EmbeddedRunner
from inspector.store import Store
from inspector.tui.app import InspectorApp
from inspector.tui.event_list import EventList

# Every test here starts a real proxy or runs the CLI in a subprocess: seconds each.
pytestmark = pytest.mark.slow


def make_app(tmp_path: Path, upstream, keys=()) -> InspectorApp:
    store = Store(tmp_path / "store.json")
    addon = TelemetryInspector(Catalogue.load(), Keyring.from_paths(list(keys)), store=store)
    settings = ProxySettings(listen_port=0, confdir=tmp_path / "mitmproxy",
                             extra={"ssl_verify_upstream_trusted_ca": str(upstream.ca_file)},
                             addons=[LoopbackRedirect(upstream.address)])
    return InspectorApp(addon.catalogue, addon.keyring, store=store, runner=EmbeddedRunner(settings, addon),
                        export_dir=tmp_path)


async def until(pilot, predicate, timeout: float = 15.0) -> None:
    for _ in range(int(timeout / 0.05)):
        if predicate():
            return
        await pilot.pause(0.05)
    raise AssertionError("condition not reached in time")


async def sent(app: InspectorApp, request) -> int:
    """Send through the app's proxy from a thread (a client is another program)."""
    port = app.runner.listen_addrs[0][1]
    response = await asyncio.to_thread(send, request, ("127.0.0.1", port), app.runner.ca_cert())
    return response.status


def pick(channel: str, name: str | None = None):
    return next(r for r in wire_requests(KEYS)
                if r.channel == channel and (name is None or r.name == name))


async def test_rows_detail_block_allow_filter_vendors(tmp_path, upstream):
    app = make_app(tmp_path, upstream)
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.runner.listen_addrs)
            pixel = pick("refine-v4-browser")
            cli = pick("hasura-cli")
            assert await sent(app, pixel) == 200
            assert await sent(app, cli) < 300
            await until(pilot, lambda: len(app.feed.all) == 2)
            assert upstream.count() == 2
            status = str(app.query_one("#status").render())
            assert "2 events" in status and "127.0.0.1:" in status

            # the detail shows the decoded payload and the decoding path of the selected (newest) event
            listing = app.query_one(EventList)
            await pilot.press("up")
            await pilot.pause()
            selected = app.selected()
            assert selected["policy"] == "refine-v4-browser"
            assert "query:payload → base64" in str(app.query_one("#decoding-text").render())
            labels = [str(node.label) for node in app.query_one("#payload-tree").root.children]
            assert labels and any("declared" in label for label in labels)

            # b: the next request of that vendor's channel is blocked, nothing reaches the upstream
            await pilot.press("b")
            await pilot.pause()
            assert await sent(app, pixel) == 403
            assert upstream.count() == 2
            await until(pilot, lambda: len(app.feed.all) == 3)
            assert app.feed.all[-1]["action"] == "block"
            assert listing.cursor == 0  # the cursor stays where the user put it
            assert {"target": "refine-v4-browser", "kind": "policy", "action": "block"}.items() <= \
                app.store.rules()[0].items()
            # a: allowed again
            await pilot.press("a")
            await pilot.pause()
            assert await sent(app, pixel) == 200
            assert upstream.count() == 3

            # filter and vendors view
            await pilot.press("slash", *"hasura", "enter")
            await pilot.pause()
            assert [e["policy"] for e in app.feed.view] == ["hasura-cli"]
            await pilot.press("escape")
            await pilot.press("v")
            await pilot.pause()
            table = app.screen.query_one("#vendors-table")
            rows = {table.get_row_at(i)[0]: table.get_row_at(i) for i in range(table.row_count)}
            assert rows["refine-v4-browser"][2] == "3" and rows["hasura-cli"][2] == "1"
            await pilot.press("escape")
            await pilot.press("q")
    finally:
        app.store.close()


async def test_rule_from_another_process_shows_in_the_tui(tmp_path, upstream):
    app = make_app(tmp_path, upstream)
    try:
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: app.runner.listen_addrs)
            done = await asyncio.to_thread(
                subprocess.run, [sys.executable, "-m", "inspector", "rules", "sinkhole", "Appsmith",
                                 "--store", str(tmp_path / "store.json")],
                capture_output=True, text=True, timeout=60, env=cli_env())
            assert done.returncode == 0, done.stderr
            usage = pick("appsmith-server-usage")
            await pilot.pause(1.0)
            assert await sent(app, usage) == 200
            await until(pilot, lambda: len(app.feed.all) == 1)
            assert app.feed.all[0]["action"] == "sinkhole" and upstream.count() == 0
    finally:
        app.store.close()


async def test_loading_a_key_decodes_an_unverifiable_jwe(tmp_path, upstream):
    app = make_app(tmp_path, upstream)  # started without the key
    try:
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.runner.listen_addrs)
            token = next(r for r in wire_requests(KEYS) if r.channel == "refine-v3-browser"
                         and "unverifiable-encrypted" not in r.expect)
            await sent(app, token)
            await until(pilot, lambda: len(app.feed.all) == 1)
            assert app.feed.all[0]["verdict"] == "encrypted"
            await pilot.press("k", *str(KEYS), "enter")
            await until(pilot, lambda: app.feed.all[0]["verdict"] != "encrypted")
            assert isinstance(app.feed.all[0]["decoded"], dict)
            app.store.refresh()
            assert app.store.events()[0]["verdict"] != "encrypted"  # the store was updated too
    finally:
        app.store.close()


async def test_proxy_that_cannot_bind_is_shown_and_exits_2(tmp_path, upstream):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        app = make_app(tmp_path, upstream)
        app.runner.settings.listen_port = busy.getsockname()[1]
        try:
            async with app.run_test(size=(80, 24)) as pilot:
                await until(pilot, lambda: app.proxy_error is not None)
                assert "already in use" in str(app.query_one("#status").render())
                await pilot.press("q")
            assert app.return_code == 2 or app.exit_code == 2
        finally:
            app.store.close()
