"""The audit process as `exec` and `run` use it: the events come back to the proxy's process.

A real child process (`python -m inspector.proxy.auditproc`), fed as the addon's hooks feed it;
the proxy's process gets each event through the addon's callbacks, whole or as exec's summary,
with its store id, and keys loaded after the start (the TUI's "load key") reach the child.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from inspector.core.keys import Keyring
from inspector.core.policy import Catalogue
from inspector.core.rules import Decision
from inspector.emit.channels import observation_of, wire_requests
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.assemble import audit_in_process
from inspector.proxy.config import ProxyConfig
from inspector.store import Store

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "fixtures" / "keys"


class Seen:
    """An addon callback: the events it was given, and on which thread."""

    def __init__(self) -> None:
        self.events: list = []
        self.threads: set[str] = set()

    def __call__(self, event) -> None:
        self.events.append(event)
        self.threads.add(threading.current_thread().name)


def _addon(tmp_path: Path, events: str, keyring: Keyring) -> tuple[TelemetryInspector, Seen, Store]:
    store = Store(tmp_path / "store.json", keep_events=False)
    seen = Seen()
    addon = TelemetryInspector(Catalogue.load(), keyring, store=store, callbacks=[seen])
    audit_in_process(addon, ProxyConfig(), store, output=None, events=events)
    addon.start()
    return addon, seen, store


def _submit(addon: TelemetryInspector, channel: str, name: str = "") -> int:
    requests = [r for r in wire_requests(KEYS) if r.channel == channel and name in ("", r.name) and not r.ws_messages]
    count = 0
    for request in requests:
        for obs in observation_of(request):
            addon.worker_submit(obs, Decision("sinkhole", None, "test"), None)
            count += 1
    return count


def test_exec_gets_summaries_with_their_line_rendered_in_the_child(tmp_path):
    from inspector.core.event import EventSummary

    addon, seen, store = _addon(tmp_path, "summary", Keyring.from_paths([KEYS]))
    try:
        sent = _submit(addon, "hasura-server") + _submit(addon, "refine-v4-browser")
        assert addon.wait_idle(20)
        assert len(seen.events) == sent >= 2
        for summary in seen.events:
            assert isinstance(summary, EventSummary)  # no event rebuilt in the proxy's process
            assert summary.policy in ("hasura-server", "refine-v4-browser") and summary.action == "sinkhole"
            assert summary.verdict in ("clean", "warning", "violation")
            assert summary.policy in summary.line and summary.host in summary.line  # exec prints it as is
    finally:
        addon.stop()
        store.close()
    with Store(tmp_path / "store.json") as reader:  # and every event whole in the store
        recorded = reader.events()
    assert len(recorded) == sent and all(isinstance(e["decoded"], (dict, list)) for e in recorded)


def test_events_audited_in_the_child_come_back_to_the_callbacks(tmp_path):
    addon, seen, store = _addon(tmp_path, "full", Keyring.from_paths([KEYS]))
    try:
        sent = _submit(addon, "hasura-server") + _submit(addon, "refine-v4-browser")
        assert addon.wait_idle(20)
        assert addon.worker.child is not None and addon.worker.child.poll() is None  # audited there
        assert len(seen.events) == sent >= 2
        assert seen.threads == {"telemetry-inspector-audit-acks"}  # not the feeder, not the event loop
        for event in seen.events:
            assert event.policy in ("hasura-server", "refine-v4-browser")
            assert event.action == "sinkhole" and event.action_reason == "default: test"
            assert event.verdict in ("clean", "warning", "violation")
            assert event.store_id is not None  # recorded by the child first
            assert isinstance(event.decoded, dict) and event.request["headers"]
        assert addon.stats["events"] == sent and addon.stats["sinkholed"] == sent
    finally:
        addon.stop()
        store.close()
    with Store(tmp_path / "store.json", readonly=True) as stored:
        assert [e["doc_id"] for e in stored.events()] == [e.store_id for e in seen.events]
        assert all(isinstance(e["decoded"], dict) for e in stored.events())  # the store keeps it all


def test_keys_loaded_after_the_start_reach_the_child(tmp_path):
    addon, seen, store = _addon(tmp_path, "full", Keyring())
    try:
        first = _submit(addon, "refine-v3-browser", "jwe")
        assert first and addon.wait_idle(20)
        assert {e.verdict for e in seen.events} == {"encrypted"}
        added = addon.keyring.add_path(KEYS)  # as the TUI's "load key" does
        assert added
        time.sleep(0.1)
        second = _submit(addon, "refine-v3-browser", "jwe")
        assert addon.wait_idle(20)
        later = seen.events[first:]
        assert len(later) == second
        assert all(e.verdict != "encrypted" and "json" in e.decoding for e in later), [e.decoding for e in later]
    finally:
        addon.stop()
        store.close()


CHILDREN = """
import os, pathlib, time
parent = os.getppid()
time.sleep(1.0)  # the proxy started its audit process as it started listening
kids = []
for task in pathlib.Path(f"/proc/{parent}/task").iterdir():
    kids += (task / "children").read_text().split()
cmdlines = [pathlib.Path(f"/proc/{k}/cmdline").read_bytes() for k in kids if k != str(os.getpid())]
print("audit child:", any(b"inspector.proxy.auditproc" in c for c in cmdlines))
"""


@pytest.mark.slow
@pytest.mark.parametrize("audit_in", ["process", "thread"])
def test_exec_audits_in_a_helper_process_unless_told_otherwise(tmp_path, audit_in):
    import subprocess
    import sys

    from conftest import cli_env

    args = [sys.executable, "-m", "inspector", "exec", "--isolate", "off", "--store", str(tmp_path / "s.json"),
            "--confdir", str(tmp_path / "mitmproxy")] + (["--audit", audit_in] if audit_in == "thread" else []) + \
        ["--", sys.executable, "-c", CHILDREN]
    result = subprocess.run(args, capture_output=True, text=True, timeout=60, env=cli_env(), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert f"audit child: {audit_in == 'process'}" in result.stdout
    assert "0 telemetry event(s)" in result.stderr


def _audit_children(pid: int) -> list[int]:
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return [k for k in kids if b"inspector.proxy.auditproc" in Path(f"/proc/{k}/cmdline").read_bytes()]


@pytest.mark.slow
@pytest.mark.parametrize("audit_in", ["process", "thread"])
def test_run_audits_in_a_helper_process_unless_told_otherwise(tmp_path, audit_in):
    import signal
    import subprocess
    import sys

    from conftest import cli_env

    store = tmp_path / "store.json"
    env = cli_env(TEXTUAL_DRIVER="textual.drivers.headless_driver:HeadlessDriver", XDG_DATA_HOME=str(tmp_path))
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "run", "--demo", "--store", str(store),
                             "--audit", audit_in], env=env, cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        count = 0
        while time.monotonic() < deadline and count < 20:
            time.sleep(0.5)
            if store.exists():
                with Store(store, readonly=True) as opened:
                    count = len(opened.events())
        assert count >= 20  # the demo's requests, audited and recorded
        assert bool(_audit_children(proc.pid)) == (audit_in == "process")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
