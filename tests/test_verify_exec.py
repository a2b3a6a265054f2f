"""`exec` proving claims, with real programs and a real embedded proxy (the CLI as a subprocess).

The proxy runs in upstream mode in front of the local HTTPS "internet" (`upstream`), which
plays every telemetry vendor, so a request that reaches it was really sent. Clients:
Node 20's built-in fetch() (ignores HTTP(S)_PROXY), Python urllib with an empty ProxyHandler
(as requests with trust_env=False), and urllib honouring the proxy. In a namespace their
names resolve to the inspector; without one (`--isolate off`) they reach a slow local server
directly and must be seen doing so.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import stat
import sys
import threading
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

from inspector.verify.netns import probe

# Every test here starts a real proxy or runs the CLI in a subprocess: seconds each.
pytestmark = pytest.mark.slow

APPS = ROOT / "tests" / "data" / "verify"
VENDOR = "https://telemetry.hasura.io/v1/http"
NO_NAMESPACE = probe()
needs_namespace = pytest.mark.skipif(NO_NAMESPACE is not None, reason=f"no network namespace here: {NO_NAMESPACE}")
needs_node = pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")

CLIENTS = {
    "node-fetch": ["node", str(APPS / "fetch.mjs")],
    "urllib-direct": [sys.executable, str(APPS / "send.py"), "--direct"],
    "urllib-proxy": [sys.executable, str(APPS / "send.py")],
}
try:  # requests with trust_env=False, when the SDK pins bring requests in
    import requests  # noqa: F401
    CLIENTS["requests-trust-env-false"] = [sys.executable, str(APPS / "send_requests.py")]
except ImportError:
    pass


def run_exec(tmp_path: Path, upstream, *args: str, timeout: float = 60, **env: str):
    import subprocess
    command = [sys.executable, "-m", "inspector", "exec", "--store", str(tmp_path / "store.json"),
               "--confdir", str(tmp_path / "mitmproxy"), "--mode", f"upstream:http://127.0.0.1:{upstream.port}",
               "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=cli_env(**env), cwd=ROOT)


class SlowServer:
    """A local TCP server that holds each connection for `hold` seconds: the bypassing client's
    socket lives long enough to be seen by the watcher's polling."""

    def __init__(self, hold: float = 0.6) -> None:
        self.hold = hold
        self.accepted = 0
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            threading.Timer(self.hold, conn.close).start()

    def close(self) -> None:
        self.stop_flag.set()
        self.thread.join(5)
        self.sock.close()


@pytest.fixture
def slow_server():
    server = SlowServer()
    yield server
    server.close()


# ---------------------------------------------------------------------- namespace

@needs_namespace
@pytest.mark.parametrize("client", list(CLIENTS))
def test_in_a_namespace_every_client_is_intercepted_and_expect_none_fails(tmp_path, upstream, client):
    if client == "node-fetch" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    done = run_exec(tmp_path, upstream, "--expect-none", "--", *CLIENTS[client], VENDOR)
    assert done.returncode == 1, done.stderr
    assert "isolation: namespace" in done.stderr
    assert "1 telemetry event(s)" in done.stderr and "hasura-cli" in done.stderr
    assert "none was expected" in done.stderr and "Traceback" not in done.stderr
    assert upstream.count(host="telemetry.hasura.io") == 1  # it really went out, through the proxy
    if client == "node-fetch":
        assert "fetch() ignores HTTP(S)_PROXY" in done.stderr  # warned up front


@needs_namespace
@pytest.mark.parametrize("client", ["node-fetch", "urllib-direct"])
def test_a_connection_to_a_host_no_policy_names_fails_expect_none(tmp_path, upstream, client):
    """Not telemetry the inspector knows, so it passes through unopened — but it left."""
    if client == "node-fetch" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    done = run_exec(tmp_path, upstream, "--expect-none", "--", *CLIENTS[client],
                    "https://phone-home.unknown-vendor.test/collect")
    assert done.returncode == 1, done.stderr
    assert "passed through: phone-home.unknown-vendor.test:443" in done.stderr
    assert "passed through to hosts no policy names" in done.stderr


@needs_namespace
def test_a_quiet_command_passes_expect_none_in_a_namespace(tmp_path, upstream):
    done = run_exec(tmp_path, upstream, "--expect-none", "--isolate", "namespace", "--",
                    sys.executable, "-c", "print('no telemetry here')")
    assert done.returncode == 0, done.stderr
    assert "0 telemetry event(s)" in done.stderr and "isolation: namespace" in done.stderr


@needs_namespace
def test_a_namespace_refuses_and_reports_other_traffic(tmp_path, upstream, slow_server):
    done = run_exec(tmp_path, upstream, "--expect-none", "--report", str(tmp_path / "report.json"), "--",
                    sys.executable, str(APPS / "elsewhere.py"), f"127.0.0.1:{slow_server.port}")
    assert done.returncode == 1, done.stderr
    assert f"refused: tcp 127.0.0.1:{slow_server.port}" in done.stderr  # the host's loopback is not reachable
    assert "refused: udp quic.telemetry.example:443 (QUIC)" in done.stderr
    assert slow_server.accepted == 0 and upstream.count() == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert {f["code"] for f in report["findings"]} == {"refused"}
    assert report["verdict"]["passed"] is False and report["isolation"]["mode"] == "namespace"


# ---------------------------------------------------------------------- detection

@pytest.mark.parametrize("client", ["node-fetch", "urllib-direct"])
def test_without_isolation_a_bypassing_client_is_detected(tmp_path, upstream, slow_server, client):
    if client == "node-fetch" and shutil.which("node") is None:
        pytest.skip("node is not installed")
    target = f"https://127.0.0.1:{slow_server.port}/v1/http"
    done = run_exec(tmp_path, upstream, "--expect-none", "--isolate", "off", "--", *CLIENTS[client], target,
                    "--insecure")
    assert done.returncode == 1, done.stderr
    assert "isolation: detection" in done.stderr
    assert f"bypass: tcp 127.0.0.1:{slow_server.port} from" in done.stderr, done.stderr
    assert "connection(s) around the proxy" in done.stderr
    assert slow_server.accepted >= 1


def test_without_isolation_a_proxy_aware_client_is_seen_and_a_quiet_one_passes(tmp_path, upstream):
    done = run_exec(tmp_path, upstream, "--expect-none", "--isolate", "off", "--", *CLIENTS["urllib-proxy"], VENDOR)
    assert done.returncode == 1 and "1 telemetry event(s)" in done.stderr, done.stderr
    assert "bypass" not in done.stderr  # it went through the proxy
    quiet = run_exec(tmp_path, upstream, "--expect-none", "--isolate", "off", "--", sys.executable, "-c", "pass")
    assert quiet.returncode == 0 and "0 telemetry event(s)" in quiet.stderr, quiet.stderr


# ---------------------------------------------------------------------- compare and opt-out

@pytest.mark.parametrize("honour, status, code", [(True, "stopped", 0), (False, "ignored", 1)])
def test_compare_tells_a_working_opt_out_from_an_ignored_one(tmp_path, upstream, honour, status, code):
    app = [*CLIENTS["urllib-proxy"], VENDOR] + (["--honour-dnt"] if honour else [])
    report = tmp_path / "verification.json"
    done = run_exec(tmp_path, upstream, "--compare", "--report", str(report), "--", *app)
    assert done.returncode == code, done.stderr
    assert f"hasura-cli (Hasura): {status}" in done.stderr
    assert upstream.count() == (1 if honour else 2)
    assert stat.S_IMODE(os.stat(report).st_mode) == 0o600
    data = json.loads(report.read_text())
    (channel,) = data["channels"]
    assert channel["channel"] == "hasura-cli" and channel["status"] == status and channel["owner"] == "Hasura"
    assert "no-pii" in channel["claims"]
    assert {"DO_NOT_TRACK", "HASURA_GRAPHQL_ENABLE_TELEMETRY"} <= {o["variable"] for o in channel["opt_outs"]}
    assert [r["label"] for r in data["runs"]] == ["without opt-outs", "with opt-outs"]
    assert data["verdict"]["exit_status"] == code


def test_opt_out_reports_what_is_still_sent_and_markdown_report(tmp_path, upstream):
    report = tmp_path / "still-sent.md"
    done = run_exec(tmp_path, upstream, "--opt-out", "--report", str(report), "--", *CLIENTS["urllib-proxy"], VENDOR)
    assert done.returncode == 0, done.stderr  # reported, not gated without --expect-none
    assert "hasura-cli (Hasura): ignored" in done.stderr
    text = report.read_text()
    assert "| `hasura-cli` | ignored | policy | Hasura |" in text and "HASURA_GRAPHQL_ENABLE_TELEMETRY=false" in text


# ---------------------------------------------------------------------- canaries

def test_canary_finds_planted_values_hashed_base64_and_percent_encoded(tmp_path, upstream):
    report = tmp_path / "canary.txt"
    isolate = "auto" if NO_NAMESPACE is None else "off"
    done = run_exec(tmp_path, upstream, "--canary", "--canary-cwd", "--isolate", isolate, "--report", str(report),
                    "--", *CLIENTS["urllib-proxy"], VENDOR, "--leak")
    assert done.returncode == 1, done.stderr
    found = [line for line in done.stderr.splitlines() if line.startswith("telemetry-inspector: canary (")]
    text = "\n".join(found)
    assert "violation) in hasura-cli: planted sha256(user name) at data.user: the vendor claims no-pii" in text
    assert "percent-encoded(working directory) at data.cwd" in text
    assert "percent-encoded(home directory) at data.home" in text
    if NO_NAMESPACE is None:  # the UTS host name is planted too
        assert "base64(host name) at data.machine" in text
    assert "planted value(s) found in the traffic" in done.stderr
    assert "verdict: failed" in report.read_text()


def test_canary_passes_a_command_that_leaks_nothing(tmp_path, upstream):
    done = run_exec(tmp_path, upstream, "--canary", "--", *CLIENTS["urllib-proxy"], VENDOR)
    assert done.returncode == 0, done.stderr
    assert "canary (" not in done.stderr and "1 telemetry event(s)" in done.stderr


def test_a_bad_isolate_choice_and_a_missing_command_are_one_line_errors(tmp_path, upstream):
    bad = run_exec(tmp_path, upstream, "--isolate", "sometimes", "--", "true")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    missing = run_exec(tmp_path, upstream, "--", "no-such-command-ti")
    assert missing.returncode == 2 and "command not found: no-such-command-ti" in missing.stderr
    assert "Traceback" not in missing.stderr
