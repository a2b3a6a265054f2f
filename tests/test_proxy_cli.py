"""The proxy as users run it: `telemetry-inspector proxy|exec` and `mitmdump -s addons/…` as subprocesses,
in mitmproxy's upstream mode in front of the local HTTPS upstream (which also speaks CONNECT)."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import KEYS, ROOT, cli_env, free_port, run_cli, wait_for

from inspector.emit.channels import wire_requests
from inspector.emit.send import send
from inspector.store import Store, check_store

# Every test here starts a real proxy or runs the CLI in a subprocess: seconds each.
pytestmark = pytest.mark.slow

MITMDUMP = Path(sys.executable).with_name("mitmdump")


class Proc:
    """A proxy subprocess; its stdout lines are collected on a thread."""

    def __init__(self, args: list[str], port: int) -> None:
        self.port = port
        self.lines: list[str] = []
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=cli_env(), cwd=ROOT)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def wait_listening(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"proxy exited {self.proc.returncode}: {self.proc.stderr.read()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError("proxy did not listen in time")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20.0) -> tuple[int, str]:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(5)
        self._reader.join(5)
        return rc, self.proc.stderr.read() if self.proc.stderr else ""


@pytest.fixture
def proxies():
    started: list[Proc] = []

    def start(args: list[str], port: int) -> Proc:
        proc = Proc(args, port)
        started.append(proc)
        proc.wait_listening()
        return proc

    yield start
    for proc in started:
        if proc.proc.poll() is None:
            proc.stop(signal.SIGKILL)


def stderr_until(proc: subprocess.Popen, needle: str, timeout: float = 30.0) -> str:
    """The process's stderr until a line holds `needle` (or it exits, or time runs out)."""
    deadline = time.monotonic() + timeout
    text = ""
    while needle not in text and time.monotonic() < deadline and proc.poll() is None:
        ready, _, _ = select.select([proc.stderr], [], [], 0.5)
        if ready:
            text += proc.stderr.readline()
    return text


def inspector_proxy(tmp_path: Path, upstream, port: int, *extra: str) -> list[str]:
    return [sys.executable, "-m", "inspector", "proxy", "--listen", f"127.0.0.1:{port}",
            "--store", str(tmp_path / "store.json"), "--confdir", str(tmp_path / "mitmproxy"),
            "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
            "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}", *extra]


def ca(tmp_path: Path) -> Path:
    return tmp_path / "mitmproxy" / "mitmproxy-ca-cert.pem"


def audit_children(pid: int) -> list[int]:
    """The proxy's audit process(es), from /proc."""
    kids = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            kids += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return [k for k in kids if b"inspector.proxy.auditproc" in Path(f"/proc/{k}/cmdline").read_bytes()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("audit_in", ["process", "thread"])
def test_proxy_command_json_lines_store_and_clean_shutdown(tmp_path, upstream, proxies, audit_in):
    port = free_port()
    proc = proxies(inspector_proxy(tmp_path, upstream, port, "--json", "--key", str(KEYS), "--audit", audit_in), port)
    if audit_in == "process":
        assert wait_for(lambda: len(audit_children(proc.proc.pid)) == 1, 10)
    else:
        time.sleep(0.5)
        assert not audit_children(proc.proc.pid)
    requests = [r for r in wire_requests(KEYS) if not r.ws_messages]
    for request in requests:
        assert send(request, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status < 300
    assert wait_for(lambda: len(proc.lines) >= len(requests), 15)
    rc, stderr = proc.stop()
    assert rc == 0
    assert stderr.strip().splitlines()[-1].startswith(f"stopped: {len(requests)} events")
    lines = [json.loads(line) for line in proc.lines]
    assert [e["url"] for e in lines] == [r.url for r in requests]
    for event in lines:
        assert {"url", "method", "policy", "decoding", "decoded", "findings"} <= set(event)
    assert upstream.count() == len(requests)
    with Store(tmp_path / "store.json", readonly=True) as store:
        stored = store.events()
        assert [e["url"] for e in stored] == [r.url for r in requests]
        assert store.sessions()[-1]["ended"] is not None
    assert (os.stat(tmp_path / "store.json").st_mode & 0o777) == 0o600
    # the store is a capture too: audited again with today's policies and keys
    again = run_cli("audit", str(tmp_path / "store.json"), "--key", str(KEYS), "--format", "json",
                    "--fail-on", "never")
    assert again.returncode == 0, again.stderr
    audited = json.loads(again.stdout)["events"]
    assert [(e["url"], e["policy"]) for e in audited] == [(e["url"], e["policy"]) for e in lines]
    assert [sorted(f["code"] for f in e["findings"]) for e in audited] == \
        [sorted(f["code"] for f in e["findings"]) for e in lines]


def test_kill_9_during_a_burst_keeps_every_written_event(tmp_path, upstream, proxies):
    port = free_port()
    proc = proxies(inspector_proxy(tmp_path, upstream, port, "--json"), port)
    pixel = next(r for r in wire_requests(KEYS) if r.channel == "refine-v4-browser")
    stop = threading.Event()
    sent = []

    def burst() -> None:
        while not stop.is_set():
            try:
                sent.append(send(pixel, proxy=("127.0.0.1", port), ca_file=ca(tmp_path), timeout=3).status)
            except Exception:  # noqa: BLE001 - the proxy dies under us
                return

    threads = [threading.Thread(target=burst) for _ in range(4)]
    for thread in threads:
        thread.start()
    assert wait_for(lambda: len(proc.lines) >= 60, 20)
    auditor = audit_children(proc.proc.pid)
    assert len(auditor) == 1
    proc.proc.send_signal(signal.SIGKILL)
    proc.proc.wait(10)
    assert wait_for(lambda: not alive(auditor[0]), 10)  # it finishes what it was sent, and exits
    stop.set()
    for thread in threads:
        thread.join(10)
    printed = len(proc.lines)  # printed after being written to the store
    report = check_store(tmp_path / "store.json")
    assert report.ok, report
    with Store(tmp_path / "store.json") as store:  # opens, and closes off any torn write
        assert store.event_count() >= printed >= 60


def test_audit_process_dying_falls_back_to_a_thread(tmp_path, upstream, proxies):
    port = free_port()
    proc = proxies(inspector_proxy(tmp_path, upstream, port), port)
    pixel = next(r for r in wire_requests(KEYS) if r.channel == "refine-v4-browser")
    for _ in range(2):
        assert send(pixel, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status == 200
    assert wait_for(lambda: len(proc.lines) == 2, 10)
    (auditor,) = audit_children(proc.proc.pid)
    os.kill(auditor, signal.SIGKILL)
    assert wait_for(lambda: not alive(auditor), 10)
    time.sleep(0.3)
    for _ in range(3):
        assert send(pixel, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status == 200
    assert wait_for(lambda: len(proc.lines) == 5, 10)
    rc, stderr = proc.stop()
    assert rc == 0 and "Traceback" not in stderr
    assert next(line for line in stderr.splitlines() if "audit process ended" in line).endswith(
        "auditing in the proxy's process from now on"), stderr
    assert stderr.strip().splitlines()[-1].startswith("stopped: 5 events")
    with Store(tmp_path / "store.json", readonly=True) as store:
        assert store.event_count() == 5


def test_mitmdump_with_the_addon_script_writes_the_same_store(tmp_path, upstream, proxies):
    port = free_port()
    store_path = tmp_path / "mitmdump-store.json"
    proc = proxies([str(MITMDUMP), "-q", "-p", str(port), "--listen-host", "127.0.0.1",
                    "-s", str(ROOT / "addons" / "telemetry_inspector.py"),
                    "--set", f"confdir={tmp_path / 'mitmproxy'}",
                    "--set", f"ti_store={store_path}", "--set", f"ti_keys={KEYS}",
                    "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                    "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}"], port)
    requests = [r for r in wire_requests(KEYS) if r.channel in ("refine-v4-browser", "hasura-cli")]
    for request in requests:
        assert send(request, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status < 300
    time.sleep(0.5)
    rc, stderr = proc.stop(signal.SIGINT)
    assert rc == 0, stderr
    with Store(store_path, readonly=True) as store:
        events = store.events()
    assert [e["policy"] for e in events] == [r.channel for r in requests]
    # the same event shape as the embedded proxy and `audit --format json`
    for event in events:
        assert {"url", "method", "policy", "decoding", "decoded", "findings", "action", "time"} <= set(event)


def test_exec_routes_a_command_and_expect_none_fails_when_telemetry_is_seen(tmp_path, upstream):
    common = ["exec", "--store", str(tmp_path / "store.json"), "--confdir", str(tmp_path / "mitmproxy"),
              "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
              "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}"]
    emit = ["--", sys.executable, "-m", "inspector.emit", "--channel", "refine-v4-browser"]
    done = run_cli(*common, *emit)
    assert done.returncode == 0, done.stderr
    assert "1 telemetry event(s)" in done.stderr and "refine-v4-browser" in done.stderr
    assert upstream.count() == 1
    done = run_cli(*common, "--expect-none", *emit)
    assert done.returncode == 1
    assert "none was expected" in done.stderr
    quiet = run_cli(*common, "--expect-none", "--", sys.executable, "-c", "print('no telemetry here')")
    assert quiet.returncode == 0 and "0 telemetry event(s)" in quiet.stderr


@pytest.mark.parametrize("args, needle", [
    (["--listen", "0.0.0.0:0"], "not a loopback address"),
    (["--key", "/nonexistent/key.jwk"], "key.jwk"),
    (["--policies", "BAD"], "BAD"),
])
def test_start_up_errors_are_one_line_and_exit_2(tmp_path, args, needle):
    if "BAD" in args:
        bad = tmp_path / "bad.yaml"
        bad.write_text("id: Not Valid\nvendor: [\n")
        args = [str(bad) if a == "BAD" else a for a in args]
        needle = "bad.yaml"
    done = run_cli("proxy", "--store", str(tmp_path / "s.json"), *args, timeout=60)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in done.stderr


def test_port_in_use_is_one_line_and_exit_2(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli("proxy", "--listen", f"127.0.0.1:{port}", "--store", str(tmp_path / "s.json"),
                       "--confdir", str(tmp_path / "mitmproxy"), timeout=60)
    assert done.returncode == 2
    lines = [line for line in done.stderr.strip().splitlines() if line]
    assert lines == [f"error: cannot listen on 127.0.0.1:{port}: the port is already in use"]


def test_non_loopback_with_the_flag_warns(tmp_path):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "proxy", "--listen", f"0.0.0.0:{port}",
                             "--allow-remote", "--store", str(tmp_path / "s.json"),
                             "--confdir", str(tmp_path / "mitmproxy")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        text = stderr_until(proc, "listening")
        assert "warning: listening on 0.0.0.0" in text and "listening on" in text
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)


@pytest.mark.parametrize("mode", ["socks5", "reverse:https://telemetry.refine.dev", "wireguard"])
def test_other_mitmproxy_modes_are_passed_through(tmp_path, mode):
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "inspector", "proxy", "--listen", f"127.0.0.1:{port}",
                             "--mode", mode, "--store", str(tmp_path / "s.json"),
                             "--confdir", str(tmp_path / "mitmproxy")],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    try:
        text = stderr_until(proc, "listening on")
        assert f"{mode.split(':')[0]}" in text and f"listening on 127.0.0.1:{port}" in text, text
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(20)
    assert rc == 0


def test_block_all_blocks_every_matched_channel_until_a_rule_allows_one(tmp_path, upstream, proxies):
    port = free_port()
    proc = proxies(inspector_proxy(tmp_path, upstream, port, "--block-all", "--json"), port)
    requests = [r for r in wire_requests(KEYS) if not r.ws_messages and r.channel in
                ("refine-v4-browser", "hasura-cli", "appsmith-server-usage")]
    statuses = {r.channel: send(r, ("127.0.0.1", port), ca(tmp_path)).status for r in requests}
    assert set(statuses.values()) == {403} and upstream.count() == 0
    assert run_cli("rules", "allow", "hasura-cli", "--store", str(tmp_path / "store.json")).returncode == 0
    cli = next(r for r in requests if r.channel == "hasura-cli")
    assert wait_for(lambda: send(cli, ("127.0.0.1", port), ca(tmp_path)).status == 200, 2.0)
    assert upstream.count(host="telemetry.hasura.io") == 1 and upstream.count() == 1
    rc, _ = proc.stop()
    assert rc == 0


def test_output_reader_going_away_stops_printing_not_recording(tmp_path, upstream):
    """`telemetry-inspector proxy | head -n 2`: after head exits, events are still recorded."""
    port = free_port()
    proc = subprocess.Popen(inspector_proxy(tmp_path, upstream, port), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=cli_env(), cwd=ROOT)
    try:
        assert wait_for(lambda: _listening(port), 30)
        pixel = next(r for r in wire_requests(KEYS) if r.channel == "refine-v4-browser")
        for _ in range(2):
            assert send(pixel, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status == 200
        assert proc.stdout.readline() and proc.stdout.readline()
        proc.stdout.close()  # the reader is gone
        for _ in range(3):
            assert send(pixel, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status == 200

        def stored() -> int:
            with Store(tmp_path / "store.json", readonly=True) as store:
                return store.event_count()
        assert wait_for(lambda: stored() == 5, 10)
        proc.send_signal(signal.SIGTERM)
        proc.wait(20)
        stderr = proc.stderr.read().decode()
        assert "Traceback" not in stderr and "audit process ended" not in stderr, stderr
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def test_max_events_keeps_the_newest(tmp_path, upstream, proxies):
    port = free_port()
    proc = proxies(inspector_proxy(tmp_path, upstream, port, "--max-events", "5", "--json"), port)
    pixel = next(r for r in wire_requests(KEYS) if r.channel == "refine-v4-browser")
    for _ in range(12):
        assert send(pixel, proxy=("127.0.0.1", port), ca_file=ca(tmp_path)).status == 200
    assert wait_for(lambda: len(proc.lines) == 12, 15)
    rc, _ = proc.stop()
    assert rc == 0
    printed = [json.loads(line)["id"] for line in proc.lines]
    with Store(tmp_path / "store.json", readonly=True) as store:
        assert [e["id"] for e in store.events()] == printed[-5:]
