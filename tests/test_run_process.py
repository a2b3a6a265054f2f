"""`run`'s proxy in a process of its own (inspector.proxy.service): the TUI drives it over a socket
and reads its events from the store; the proxy process is the one `proxy` runs.

Real processes throughout: the runner's child (mitmproxy with the addon) and its audit helper,
real HTTPS through upstream mode to the local upstream, a real store, the real Textual app
under Pilot, and the CLI in a pseudo-terminal."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import KEYS, cli_env, wait_for
from test_cli_roundtrips import in_terminal

from inspector.core.keys import Keyring
from inspector.core.policy import Catalogue
from inspector.core.rules import Rule, RuleBook
from inspector.emit.channels import wire_requests
from inspector.emit.send import send
from inspector.proxy.assemble import build_addon, proxy_settings
from inspector.proxy.config import ProxyConfig
from inspector.proxy.service import ProcessRunner
from inspector.store import Store
from inspector.tui.app import InspectorApp

pytestmark = pytest.mark.slow


def pick(channel: str, name: str | None = None):
    return next(r for r in wire_requests(KEYS) if r.channel == channel and (name is None or r.name == name))


def config_for(tmp_path: Path, upstream, listen: str = "127.0.0.1:0", **extra) -> ProxyConfig:
    return ProxyConfig(listen=listen, confdir=tmp_path / "mitmproxy", store_path=tmp_path / "store.json",
                       modes=(f"upstream:http://127.0.0.1:{upstream.port}",),
                       set_options=(f"ssl_verify_upstream_trusted_ca={upstream.ca_file}",), **extra)


def make_runner(tmp_path: Path, upstream, keys=(), **extra) -> tuple[ProcessRunner, Store]:
    config = config_for(tmp_path, upstream, **extra)
    store = Store(config.store_path)
    addon = build_addon(config, Catalogue.load(), Keyring.from_paths(list(keys)), store=store)
    return ProcessRunner(proxy_settings(config), addon, config, store.path), store


def through(runner: ProcessRunner, request):
    return send(request, proxy=("127.0.0.1", runner.listen_addrs[0][1]), ca_file=runner.ca_cert(), timeout=15)


def stored(store: Store, count: int) -> list[dict]:
    def enough():
        store.refresh()
        return len(store.events()) >= count
    wait_for(enough, timeout=20)
    return store.events()


def listening_pids(port: int) -> set[int]:
    """The processes holding a socket listening on `port` (read from /proc)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
                inodes.add(fields[9])
    pids = set()
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            for fd in (proc / "fd").iterdir():
                target = os.readlink(fd)
                if target.startswith("socket:[") and target[8:-1] in inodes:
                    pids.add(int(proc.name))
        except OSError:
            continue
    return pids


def test_the_proxy_runs_in_its_own_process_and_records_what_it_allows(tmp_path, upstream):
    runner, store = make_runner(tmp_path, upstream)
    try:
        assert runner.start() is None
        port = runner.listen_addrs[0][1]
        assert runner.child is not None and listening_pids(port) == {runner.child.pid}  # not this process
        assert through(runner, pick("refine-v4-browser")).status == 200
        events = stored(store, 1)
        assert events[0]["policy"] == "refine-v4-browser" and events[0]["action"] == "allow"
        assert upstream.count() == 1
    finally:
        runner.stop()
        store.close()
    assert runner.child.poll() is not None
    assert runner.stats["events"] == 1 and runner.stats["allowed"] == 1


def test_a_rule_saved_in_the_store_applies_to_the_next_request(tmp_path, upstream):
    runner, store = make_runner(tmp_path, upstream)
    try:
        assert runner.start() is None
        assert through(runner, pick("refine-v4-browser")).status == 200
        store.set_rule("refine-v4-browser", "policy", "block")
        runner.reload_rules()  # (as the TUI does when a key saves a rule)
        time.sleep(0.3)  # (well within the rules poll: the message decides, not the poll)
        assert through(runner, pick("refine-v4-browser")).status == 403
        assert upstream.count() == 1  # the blocked one never left
        runner.use_rules(RuleBook([Rule("refine-v4-browser", "policy", "sinkhole")]))  # rules held in memory
        wait_for(lambda: through(runner, pick("refine-v4-browser")).status == 200, timeout=10)
        assert upstream.count() == 1
        actions = [e["action"] for e in stored(store, 3)]
        assert actions[:2] == ["allow", "block"] and actions[-1] == "sinkhole"
    finally:
        runner.stop()
        store.close()


def test_keys_loaded_later_in_the_ui_decrypt_the_next_events(tmp_path, upstream):
    runner, store = make_runner(tmp_path, upstream)
    jwe = pick("refine-v3-browser", "jwe")
    try:
        assert runner.start() is None
        assert through(runner, jwe).status < 300
        first = stored(store, 1)[0]
        assert not isinstance(first["decoded"], dict)  # no key yet: not decrypted
        runner.addon.keyring.add_path(KEYS / "refine-test-rsa.jwk")  # the TUI's "load key"
        time.sleep(1.5)  # the runner forwards the keys it finds within KEYS_POLL
        assert through(runner, jwe).status < 300
        second = stored(store, 2)[1]
        assert isinstance(second["decoded"], dict) and second["decoded"]
    finally:
        runner.stop()
        store.close()
    private = json.loads((KEYS / "refine-test-rsa.jwk").read_text())["d"]
    assert private not in (tmp_path / "store.json").read_text()  # (and no key material was stored)


def test_a_port_in_use_is_one_line(tmp_path, upstream):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runner, store = make_runner(tmp_path, upstream, listen=f"127.0.0.1:{port}")
        try:
            error = runner.start()
        finally:
            runner.stop()
            store.close()
    assert error == f"cannot listen on 127.0.0.1:{port}: the port is already in use"
    assert runner.child is not None and runner.child.poll() is not None


async def test_the_tui_shows_the_child_proxys_events_and_its_keys_block(tmp_path, upstream):
    runner, store = make_runner(tmp_path, upstream)
    app = InspectorApp(runner.addon.catalogue, runner.addon.keyring, store=store, runner=runner, poll_store=True)
    try:
        assert runner.start() is None
        async with app.run_test(size=(120, 40)) as pilot:
            assert await asyncio.to_thread(through, runner, pick("refine-v4-browser")) is not None
            for _ in range(200):
                if len(app.feed.all) == 1:
                    break
                await pilot.pause(0.05)
            assert len(app.feed.all) == 1 and app.selected()["policy"] == "refine-v4-browser"
            await pilot.press("b")  # block the selected event's policy
            await pilot.pause(0.3)
            response = await asyncio.to_thread(through, runner, pick("refine-v4-browser"))
            assert response.status == 403
            for _ in range(200):  # (read from the store at the next poll, counted between frames)
                counts = app.feed.counts()
                if len(app.feed.all) == 2 and counts["complete"]:
                    break
                await pilot.pause(0.05)
            assert len(app.feed.all) == 2 and counts["complete"] and counts["blocked"] == 1, counts
            await pilot.press("q")
    finally:
        runner.stop()
        store.close()
    assert upstream.count() == 1


def test_run_in_a_terminal_and_its_proxy_ends_with_it_even_when_killed(tmp_path, upstream):
    port = socket.socket()
    port.bind(("127.0.0.1", 0))
    number = port.getsockname()[1]
    port.close()
    args = ["run", "--listen", f"127.0.0.1:{number}", "--store", str(tmp_path / "s.json"),
            "--confdir", str(tmp_path / "mitmproxy"), "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
            "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}"]
    proc = subprocess.Popen([sys.executable, "-m", "inspector", *args], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env(),
                            start_new_session=True)
    try:
        wait_for(lambda: listening_pids(number), timeout=60)
        holders = listening_pids(number)
        assert proc.pid not in holders  # the UI's process does not hold the proxy's socket
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
        wait_for(lambda: not listening_pids(number), timeout=20)  # the proxy process ended with it

        def ended(pid: int) -> bool:
            try:
                return "\nState:\tZ" in Path(f"/proc/{pid}/status").read_text()
            except OSError:
                return True
        wait_for(lambda: all(ended(pid) for pid in holders), timeout=20)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    # and in a terminal, as a person runs it: the UI, q, then the summary `proxy` prints
    env = cli_env(TERM="xterm-256color", COLUMNS="80", LINES="24")
    code, screen = in_terminal(args, [("Waiting for telemetry", b"q")], env)
    assert code == 0, screen[-2000:]
    assert "stopped: 0 events, 0 with violations, 0 blocked, 0 sinkholed" in screen
    wait_for(lambda: not listening_pids(number), timeout=20)


async def test_the_proxy_processs_warnings_reach_the_tui(tmp_path, upstream):
    # an option that would let a blocked body out is set back, with a warning line from the child
    runner, store = make_runner(tmp_path, upstream)
    runner.service.config = replace(runner.service.config, set_options=(
        *runner.service.config.set_options, "stream_large_bodies=1k"))
    app = InspectorApp(runner.addon.catalogue, runner.addon.keyring, store=store, runner=runner, poll_store=True)
    try:
        assert runner.start() is None
        async with app.run_test(size=(120, 40)) as pilot:
            for _ in range(100):
                shown = [n.message for n in app._notifications]
                if any("stream_large_bodies" in m for m in shown):
                    break
                await pilot.pause(0.1)
            assert any("stream_large_bodies" in m and "ignored" in m for m in shown), shown
            assert runner.take_messages() == []  # taken once
            await pilot.press("q")
    finally:
        runner.stop()
        store.close()
