"""Faults, load and secrets: a full disk, a flood, three processes on one store, key material."""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import KEYS, ROOT, cli_env, free_port, run_cli, wait_for
from test_proxy_cli import Proc, ca, inspector_proxy

from inspector.emit.channels import wire_requests
from inspector.emit.send import send
from inspector.store import Store

# Every test here starts a real proxy or runs the CLI in a subprocess: seconds each.
pytestmark = pytest.mark.slow


def pick(channel: str):
    return next(r for r in wire_requests(KEYS) if r.channel == channel)


def start(args: list[str], port: int, limit_bytes: int | None = None) -> Proc:
    def small_files() -> None:  # a disk that fills up: writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    proc = Proc.__new__(Proc)
    proc.port, proc.lines = port, []
    proc.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env(),
                                 cwd=ROOT, preexec_fn=small_files if limit_bytes else None)  # noqa: PLW1509 - setrlimit only
    proc._reader = threading.Thread(target=proc._read, daemon=True)
    proc._reader.start()
    proc.wait_listening()
    return proc


def test_full_disk_is_reported_once_and_blocking_goes_on(tmp_path, upstream):
    store_path = tmp_path / "store.json"
    assert run_cli("rules", "block", "hasura-cli", "--store", str(store_path)).returncode == 0
    port = free_port()
    proc = start(inspector_proxy(tmp_path, upstream, port), port, limit_bytes=48_000)
    try:
        pixel, cli = pick("refine-v4-browser"), pick("hasura-cli")
        for _ in range(40):  # ~2 KB per stored event: the "disk" fills up on the way
            assert send(pixel, ("127.0.0.1", port), ca(tmp_path)).status == 200
        assert send(cli, ("127.0.0.1", port), ca(tmp_path)).status == 403
        assert send(pixel, ("127.0.0.1", port), ca(tmp_path)).status == 200  # still proxying
        assert upstream.count(host="telemetry.hasura.io") == 0
        assert upstream.count(host="telemetry.refine.dev") == 41
    finally:
        _rc, stderr = proc.stop()
    errors = [line for line in stderr.splitlines() if "cannot write the store" in line]
    assert len(errors) == 1, stderr  # one clear line, not one per event
    assert "Traceback" not in stderr
    with Store(store_path, readonly=True) as store:  # what was written before the disk filled is intact
        assert 5 < store.event_count() < 41


def test_websocket_message_flood_and_a_50_mb_body(live_proxy, upstream):
    proxy = live_proxy()
    console = next(r for r in wire_requests(KEYS) if r.ws_messages)
    flood = replace(console, ws_messages=tuple(console.ws_messages[0] for _ in range(2000)))
    started = time.monotonic()
    proxy.send(flood, timeout=60)
    assert wait_for(lambda: len(upstream.ws_messages) == 2000, 60)
    events = proxy.events()
    assert len(events) == 2000 and {e["transport"] for e in events} == {"websocket"}
    assert time.monotonic() - started < 90

    big = replace(pick("hasura-cli"), body=b'{"topic":"cli","data":{"command":"' + b"x" * 50_000_000 + b'"}}')
    assert proxy.send(big, timeout=120).status == 200
    assert upstream.requests[-1].body == big.body  # forwarded intact
    event = proxy.events()[-1]
    assert event["host"] == "telemetry.hasura.io"
    assert "decode-error" in {f["code"] for f in event["findings"]}  # too large to decode, said so
    assert len(json.dumps(event)) < 2_000_000  # the store keeps a bounded excerpt, not 50 MB
    # fail closed: with the CLI channel blocked, a body too large to tell which channel it is stays local
    proxy.store.set_rule("hasura-cli", "policy", "block")
    proxy.addon.reload_rules()
    before = upstream.count()
    assert proxy.send(big, timeout=120).status == 403
    assert upstream.count() == before


def test_three_processes_on_one_store(tmp_path, upstream):
    """The proxy writing at load, a reader process, a rule changer: no lost event, no bad read,
    and the last rule applies within a second."""
    store_path = tmp_path / "store.json"
    port = free_port()
    proc = start(inspector_proxy(tmp_path, upstream, port), port)
    reader_script = (
        "import sys, time\n"
        "from inspector.store import Store\n"
        "s = Store(sys.argv[1], readonly=True); last = 0; reads = 0\n"
        "end = time.time() + float(sys.argv[2])\n"
        "while time.time() < end:\n"
        "    s.refresh(); n = s.event_count(); assert n >= last, (n, last); last = n; reads += 1\n"
        "    assert all('url' in e for e in s.events(start=-20))\n"
        "print(reads, last)\n")
    reader = subprocess.Popen([sys.executable, "-c", reader_script, str(store_path), "8"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=cli_env())
    pixel = pick("refine-v4-browser")
    answered: list[int] = []
    stop = threading.Event()

    def client() -> None:
        while not stop.is_set():
            answered.append(send(pixel, ("127.0.0.1", port), ca(tmp_path)).status)

    clients = [threading.Thread(target=client) for _ in range(3)]
    try:
        for thread in clients:
            thread.start()
        for action in ("block", "allow", "sinkhole", "allow"):
            assert run_cli("rules", action, "refine-v4-browser", "--store", str(store_path)).returncode == 0
            time.sleep(0.7)
        assert run_cli("rules", "block", "refine-v4-browser", "--store", str(store_path)).returncode == 0
        changed = time.monotonic()  # the last rule, under load: applied within a second

        def blocked() -> bool:
            answered.append(send(pixel, ("127.0.0.1", port), ca(tmp_path)).status)
            return answered[-1] == 403

        assert wait_for(blocked, 1.0)
        assert time.monotonic() - changed < 1.5
        stop.set()
        for thread in clients:
            thread.join(30)
        out, err = reader.communicate(timeout=60)
        assert reader.returncode == 0, err
        assert int(out.split()[0]) > 10
    finally:
        rc, stderr = proc.stop()
    assert rc == 0, stderr
    with Store(store_path, readonly=True) as store:
        events = store.events()
    assert len(events) == len(answered)  # every answered request was stored, none twice
    assert {e["action"] for e in events} == {"allow", "block", "sinkhole"}
    assert upstream.count() == sum(1 for e in events if e["action"] == "allow")


def test_private_key_material_never_reaches_store_output_or_logs(tmp_path, upstream):
    key = json.loads((KEYS / "refine-test-rsa.jwk").read_text())
    secrets = [key[name] for name in ("d", "p", "q", "dp", "dq", "qi")]
    pem_lines = [line for line in (KEYS / "refine-test-rsa.pem").read_text().splitlines()
                 if line and not line.startswith("-----")]
    port = free_port()
    proc = start(inspector_proxy(tmp_path, upstream, port, "--json", "--key", str(KEYS)), port)
    try:
        token = next(r for r in wire_requests(KEYS) if r.channel == "refine-v3-browser"
                     and "unverifiable-encrypted" not in r.expect)
        assert send(token, ("127.0.0.1", port), ca(tmp_path)).status == 200
        assert wait_for(lambda: proc.lines, 10)
    finally:
        _rc, stderr = proc.stop()
    event = json.loads(proc.lines[0])
    assert isinstance(event["decoded"], dict) and "jwe" in " ".join(event["decoding"])  # it was decrypted
    report = run_cli("report", "--store", str(tmp_path / "store.json"), "--format", "json")
    keys_listing = run_cli("keys", "--key", str(KEYS))
    everything = "\n".join([(tmp_path / "store.json").read_text(), "\n".join(proc.lines), stderr,
                            report.stdout, report.stderr, keys_listing.stdout, keys_listing.stderr])
    for secret in [*secrets, *pem_lines[1:-1]]:
        assert secret not in everything
    assert key["kid"] in keys_listing.stdout  # the key is named, never shown


class ReadOnlyDir:
    """`path` bind-mounted on itself, switchable to read-only: writes fail with EROFS, even for
    root (whom file modes do not stop). Needs CAP_SYS_ADMIN; the tests skip without it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        done = subprocess.run(["mount", "--bind", str(path), str(path)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot bind-mount here: {done.stderr.decode(errors='replace').strip()}")

    def readonly(self, on: bool = True) -> None:
        flag = "ro" if on else "rw"
        subprocess.run(["mount", "-o", f"remount,{flag},bind", str(self.path)], check=True)

    def close(self) -> None:
        subprocess.run(["umount", str(self.path)], check=False)


@pytest.fixture()
def ro_dir(tmp_path):
    mount = ReadOnlyDir(tmp_path / "ro")
    try:
        yield mount
    finally:
        mount.close()


def test_read_only_store_at_start_rules_still_apply(ro_dir, tmp_path, upstream):
    store_path = ro_dir.path / "store.json"
    assert run_cli("rules", "block", "hasura-cli", "--store", str(store_path)).returncode == 0
    before = store_path.read_bytes()
    ro_dir.readonly()
    port = free_port()
    args = inspector_proxy(tmp_path, upstream, port)
    args[args.index("--store") + 1] = str(store_path)
    proc = start(args, port)
    try:
        assert send(pick("hasura-cli"), ("127.0.0.1", port), ca(tmp_path)).status == 403
        assert send(pick("refine-v4-browser"), ("127.0.0.1", port), ca(tmp_path)).status == 200
        assert upstream.count(host="telemetry.hasura.io") == 0
        assert upstream.count(host="telemetry.refine.dev") == 1
    finally:
        _rc, stderr = proc.stop()
    assert "Read-only file system" in stderr and "no event will be recorded" in stderr, stderr
    assert "Traceback" not in stderr and "cannot write the store" not in stderr
    assert store_path.read_bytes() == before  # untouched


def immutable(path: Path, on: bool = True) -> None:
    """chattr +i: every write fails (EPERM), even through a descriptor opened before, even for root."""
    done = subprocess.run(["chattr", "+i" if on else "-i", str(path)], capture_output=True)
    if done.returncode != 0 and on:
        pytest.skip(f"chattr +i does not work here: {done.stderr.decode(errors='replace').strip()}")


def test_store_turning_unwritable_mid_run_blocking_goes_on(tmp_path, upstream):
    # A file system does not remount read-only while a file on it is open for writing; the
    # immutable flag makes the proxy's own descriptor fail the same way, mid-run.
    store_path = tmp_path / "store.json"
    assert run_cli("rules", "block", "hasura-cli", "--store", str(store_path)).returncode == 0
    port = free_port()
    proc = start(inspector_proxy(tmp_path, upstream, port), port)
    pixel, cli = pick("refine-v4-browser"), pick("hasura-cli")

    def stored() -> int:
        with Store(store_path, readonly=True) as store:
            return store.event_count()

    try:
        for _ in range(3):
            assert send(pixel, ("127.0.0.1", port), ca(tmp_path)).status == 200
        assert wait_for(lambda: stored() == 3, timeout=10)
        immutable(store_path)
        for _ in range(5):
            assert send(cli, ("127.0.0.1", port), ca(tmp_path)).status == 403
            assert send(pixel, ("127.0.0.1", port), ca(tmp_path)).status == 200
        assert upstream.count(host="telemetry.hasura.io") == 0
        assert upstream.count(host="telemetry.refine.dev") == 8
        time.sleep(0.3)  # the worker tries its writes
    finally:
        _rc, stderr = proc.stop()
        immutable(store_path, False)
    errors = [line for line in stderr.splitlines() if "cannot write the store" in line]
    assert len(errors) == 1 and "not permitted" in errors[0], stderr
    assert "Traceback" not in stderr
    assert stored() == 3  # what was written before is intact
