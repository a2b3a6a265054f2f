"""Workflows through the real click commands: a draft from `policies infer` read back by every
command that reads policies; one-line errors for what a user mistypes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from conftest import FIXTURES, cli_env, run_cli

from inspector.cli.main import cli


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.fixture()
def capture(tmp_path: Path) -> Path:
    """A HAR of the recorded Refine and Segment requests (from fixtures/captures/)."""
    har = json.loads((FIXTURES / "captures" / "all-channels.har").read_text())
    entries = [e for e in har["log"]["entries"]
               if "refine.dev" in e["request"]["url"] or "segment.io" in e["request"]["url"]]
    assert len(entries) >= 5
    har["log"]["entries"] = entries
    path = tmp_path / "capture.har"
    path.write_text(json.dumps(har))
    return path


def infer_to_file(capture: Path, tmp_path: Path) -> Path:
    """`policies infer CAPTURE > draft.yaml`, as a shell would."""
    result = run("policies", "infer", str(capture))
    assert result.exit_code == 0, result.output
    draft = tmp_path / "draft.yaml"
    draft.write_text(result.stdout)
    return draft


def test_inferred_drafts_are_read_by_every_command_that_reads_policies(capture, tmp_path):
    draft = infer_to_file(capture, tmp_path)
    ids = [d["id"] for d in yaml.safe_load_all(draft.read_text()) if d]
    assert len(ids) >= 3  # several documents in one file

    checked = run("policies", "check", str(draft))
    assert checked.exit_code == 0, checked.output
    assert [line.split("ok (")[1].split(":")[0] for line in checked.output.splitlines()] == ids

    # audit --policies FILE: every request matches one of the drafts, which declare what was seen
    audited = run("audit", str(capture), "--policies", str(draft), "--no-builtin", "--format", "json",
                  "--fail-on", "never")
    assert audited.exit_code == 0, audited.output
    events = json.loads(audited.stdout)["events"]
    assert {e["policy"] for e in events} == set(ids)
    assert not [f for e in events for f in e["findings"] if f["code"] == "undeclared-field"]

    # audit --policy FILE selects every policy of the file; policies list / show read it too
    selected = run("audit", str(capture), "--policy", str(draft), "--format", "json", "--fail-on", "never")
    assert selected.exit_code == 0, selected.output
    assert {e["policy"] for e in json.loads(selected.stdout)["events"]} == set(ids)
    listed = run("policies", "list", "--policies", str(draft), "--json")
    assert set(ids) <= {p["id"] for p in json.loads(listed.stdout)}
    shown = run("policies", "show", ids[1], "--policies", str(draft))
    assert shown.exit_code == 0 and f"id: {ids[1]}" in shown.stdout

    # the same drafts written with -o
    written = tmp_path / "drafts-o.yaml"
    assert run("policies", "infer", str(capture), "-o", str(written)).exit_code == 0
    assert run("policies", "check", str(written)).exit_code == 0


def test_a_broken_document_is_named_with_its_line_and_the_others_still_load(capture, tmp_path):
    draft = infer_to_file(capture, tmp_path)
    text = draft.read_text()
    docs = text.split("\n---\n")
    second = docs[1]
    assert "type: " in second
    docs[1] = second.replace("type: ", "type: strnig # ", 1)
    draft.write_text("\n---\n".join(docs))
    broken_line = 1 + "\n---\n".join(docs).splitlines().index(
        next(line for line in docs[1].splitlines() if "strnig" in line))
    second_id = yaml.safe_load(second)["id"]

    checked = run("policies", "check", str(draft))
    assert checked.exit_code == 1
    errors = [line for line in checked.output.splitlines() if ": ok (" not in line]
    assert errors == [f"{draft}:{broken_line}: document 2 ({second_id}): "
                      + errors[0].split(f"document 2 ({second_id}): ", 1)[1]]
    assert "unknown type 'strnig'" in errors[0] and "string" in errors[0] and "integer" in errors[0]
    assert "valid under any of the given schemas" not in errors[0]
    assert checked.output.count(": ok (") == len(docs) - 1

    # named on its own, a file with a broken document is a one-line error (exit 2) ...
    alone = run("audit", str(capture), "--policies", str(draft))
    assert alone.exit_code == 2 and f"{draft}:{broken_line}: document 2" in alone.stderr
    assert len(alone.stderr.strip().splitlines()) == 1
    # ... in a directory, a warning, and the good documents are used
    folder = tmp_path / "policies"
    folder.mkdir()
    draft.rename(folder / "draft.yaml")
    audited = run("audit", str(capture), "--policies", str(folder), "--no-builtin", "--format", "json",
                  "--fail-on", "never")
    assert audited.exit_code == 0
    assert "warning: policy not loaded" in audited.stderr and "document 2" in audited.stderr
    assert second_id not in {e["policy"] for e in json.loads(audited.stdout)["events"]}
    assert len({e["policy"] for e in json.loads(audited.stdout)["events"]} - {None}) >= 2


def test_a_file_that_is_no_policy_says_so_once(tmp_path):
    compose = tmp_path / "compose.yaml"
    compose.write_text("services:\n  web:\n    image: nginx\n")
    checked = run("policies", "check", str(compose))
    assert checked.exit_code == 1
    lines = checked.output.splitlines()
    missing = [line for line in lines if "missing required key(s)" in line]
    assert missing == [f"{compose}:1: (top level): missing required key(s): id, vendor, product, source, "
                       "match, payload, declared"]
    assert lines == [missing[0], f"{compose}:1: (top level): unknown key(s): services"]
    # several documents: each named, each once
    many = tmp_path / "many.yaml"
    many.write_text("a: 1\n---\nb: 2\n---\n")
    lines = run("policies", "check", str(many)).output.splitlines()
    assert [line.split(": (top level)")[0] for line in lines if "missing" in line] == [
        f"{many}:1: document 1", f"{many}:3: document 2"]


def test_a_misspelled_type_in_a_list_of_types(tmp_path):
    policy = tmp_path / "p.yaml"
    policy.write_text((FIXTURES.parent / "inspector" / "policies" / "hasura-cli.yaml").read_text()
                      .replace("type: string", "type: [string, nul]", 1))
    checked = run("policies", "check", str(policy))
    assert checked.exit_code == 1
    assert "unknown type 'nul'; the types are array, boolean, integer, null, number, object, string" \
        in checked.output
    assert len(checked.output.splitlines()) == 1


# ---------------------------------------------------------------- stores that are not there, ports in use


@pytest.mark.slow
def test_a_store_path_that_does_not_exist_is_an_error_not_a_new_store(tmp_path):
    typo = tmp_path / "stroe.json"
    for command in (["tui"], ["report"], ["store", "check"]):
        done = run_cli(*command, "--store", str(typo), timeout=60, stdin=subprocess.DEVNULL)
        assert done.returncode == 2, (command, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and str(typo) in lines[0] and lines[0].startswith("error:"), (command, lines)
        assert done.stdout == ""  # (no UI was drawn)
        assert not typo.exists()


@pytest.mark.slow
def test_run_on_a_port_in_use_fails_before_the_ui(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = run_cli("run", "--listen", f"127.0.0.1:{port}", "--store", str(tmp_path / "s.json"),
                       "--confdir", str(tmp_path / "mitmproxy"), timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: cannot listen on 127.0.0.1:{port}: the port is already in use"]
    assert done.stdout == ""  # no UI was drawn (it would have waited for q)


def in_terminal(args: list[str], keys: list[tuple[str, bytes]], env: dict[str, str], timeout: float = 90,
                size: tuple[int, int] = (80, 24)) -> tuple[int, str]:
    """Run the CLI in a pseudo-terminal of `size`; each (text, key): once `text` is on screen, type `key`.
    The exit status and everything written to the terminal."""
    import fcntl
    import os
    import pty
    import select
    import struct
    import termios
    import time

    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", size[1], size[0], 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "inspector", *args], stdin=follower, stdout=follower,
                            stderr=follower, env=env, close_fds=True)
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + timeout
    pending = list(keys)
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 65536)
                except OSError:  # the terminal closed: the program ended
                    break
                if not chunk:
                    break
                seen += chunk
            if pending and pending[0][0].encode() in seen:
                time.sleep(0.5)
                os.write(leader, pending.pop(0)[1])
            if proc.poll() is not None and not ready:
                break
        return proc.wait(timeout=30), seen.decode("utf-8", "replace")
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)


@pytest.mark.slow
def test_quitting_the_demo_prints_the_summary_proxy_prints(tmp_path):
    env = cli_env(XDG_DATA_HOME=str(tmp_path / "data"), TERM="xterm-256color", COLUMNS="80", LINES="24")
    code, screen = in_terminal(["run", "--demo"], [("sinkholed", b"q")], env)
    assert code == 0, screen[-2000:]
    tail = screen[screen.rfind("stopped:"):]
    assert tail.startswith("stopped: ") and " events, " in tail and " with violations, " in tail
    events = int(tail.split("stopped: ")[1].split(" events")[0])
    assert events > 0 and " blocked, " in tail and " sinkholed" in tail
    assert not (tmp_path / "data").exists()  # the demo leaves nothing behind
