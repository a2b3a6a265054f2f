"""A store path that is a symbolic link, a FIFO or a device is refused with one line (exit 2 from
the CLI), before anything is opened: the link stays a link, its target's mode and content stay."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, cli_env

from inspector.store import Store, StorePathError, check_store, repair_store

TIMEOUT = 40.0  # the commands that would start (proxy, tui) if the link were followed


@pytest.fixture
def linked(tmp_path: Path) -> tuple[Path, Path, bytes]:
    """A real store (mode 0644, as a user may have left it) and a symbolic link to it."""
    real = tmp_path / "real" / "store.json"
    real.parent.mkdir()
    with Store(real) as store:
        store.set_rule("telemetry.example", "host", "block")
        store.add_event({"url": "https://telemetry.example/v1", "method": "POST"})
    os.chmod(real, 0o644)
    link = tmp_path / "store.json"
    link.symlink_to(real)
    return link, real, real.read_bytes()


def assert_untouched(link: Path, real: Path, content: bytes) -> None:
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert stat.S_IMODE(os.lstat(real).st_mode) == 0o644
    assert real.read_bytes() == content
    assert sorted(p.name for p in real.parent.iterdir()) == ["store.json"]  # no backup, no temp file


def run(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI, bounded: a command that follows the link and starts (proxy, tui) is stopped."""
    try:
        return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True,
                              stdin=subprocess.DEVNULL, timeout=TIMEOUT, env=cli_env(TERM="dumb"), cwd=ROOT)
    except subprocess.TimeoutExpired as exc:  # subprocess.run has killed it
        pytest.fail(f"`{' '.join(args)}` did not refuse the store path and ran on: {exc.stderr!r}")


def assert_refused(done: subprocess.CompletedProcess[str], needle: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in done.stderr, done.stderr


COMMANDS = [
    ["store", "check"],
    ["store", "repair"],
    ["report"],
    ["report", "--format", "json"],
    ["rules", "list"],
    ["rules", "block", "other.example", "--host"],
    ["tui"],
    ["proxy", "--listen", "127.0.0.1:0"],
    ["exec", "--listen", "127.0.0.1:0"],
]


@pytest.mark.slow
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: "-".join(c[:2]).strip("-"))
def test_cli_refuses_a_symlinked_store(tmp_path, linked, command):
    link, real, content = linked
    args = list(command)
    extra = ["--confdir", str(tmp_path / "mitmproxy")] if command[0] in ("proxy", "exec") else []
    tail = ["--", sys.executable, "-c", "pass"] if command[0] == "exec" else []
    done = run(*args, "--store", str(link), *extra, *tail)
    assert_refused(done, f"store {link} is a symbolic link")
    assert "give the real path" in done.stderr
    assert_untouched(link, real, content)


def test_the_default_store_path_is_checked_too(tmp_path, linked):
    _link, real, content = linked
    data = tmp_path / "xdg"
    (data / "telemetry-inspector").mkdir(parents=True)
    default = data / "telemetry-inspector" / "store.json"
    default.symlink_to(real)
    done = subprocess.run([sys.executable, "-m", "inspector", "store", "check"], capture_output=True, text=True,
                          timeout=TIMEOUT, env=cli_env(XDG_DATA_HOME=str(data)), cwd=ROOT)
    assert_refused(done, "is a symbolic link")
    assert_untouched(default, real, content)


@pytest.mark.slow
def test_a_dangling_link_is_refused_and_its_target_not_created(tmp_path):
    link = tmp_path / "store.json"
    target = tmp_path / "elsewhere.json"
    link.symlink_to(target)
    for command in (["rules", "block", "x.example", "--host"], ["store", "check"]):
        assert_refused(run(*command, "--store", str(link)), "is a symbolic link")
    with pytest.raises(StorePathError, match="is a symbolic link"):
        Store(link)
    assert link.is_symlink() and not target.exists()


@pytest.mark.slow
def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "store.json"
    os.mkfifo(fifo)
    for command in (["store", "check"], ["report"], ["rules", "list"]):
        assert_refused(run(*command, "--store", str(fifo)), f"store {fifo} is a FIFO, not a regular file")
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)


def test_a_device_is_refused(tmp_path):
    # only commands that read: a repair of the old code would rename a file over the device
    assert_refused(run("store", "check", "--store", os.devnull),
                   f"store {os.devnull} is a character device, not a regular file")


def test_the_store_api_refuses_a_link_whatever_the_call(linked):
    link, real, content = linked
    for call in (lambda: Store(link), lambda: Store(link, readonly=True), lambda: check_store(link),
                 lambda: repair_store(link)):
        with pytest.raises(StorePathError, match=r"is a symbolic link.*give the real path"):
            call()
    assert_untouched(link, real, content)


def test_a_link_put_in_place_of_an_open_store_is_never_replaced(tmp_path):
    """Compaction renames a new file over the path: with a link there now, it refuses instead."""
    path = tmp_path / "store.json"
    moved = tmp_path / "moved.json"
    store = Store(path)
    try:
        store.add_event({"url": "https://telemetry.example/1"})
        os.rename(path, moved)
        path.symlink_to(moved)
        content = moved.read_bytes()
        with pytest.raises(StorePathError, match="is a symbolic link"):
            store.compact()
        assert path.is_symlink() and moved.read_bytes() == content
    finally:
        store.close()
