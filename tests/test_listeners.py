"""Every listener stays on loopback unless --allow-remote: each --mode …@HOST:PORT, listen_host
given through --set, and the options as mitmproxy finally sees them. Checked on the real CLI
(subprocesses) and on the sockets the proxy process actually opened (/proc); key files 0600."""

from __future__ import annotations

import ipaddress
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT, cli_env, free_port

from inspector.core.keys import Keyring
from inspector.core.policy import Catalogue
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.embed import (
    ProxySettings,
    ProxyStartError,
    ProxyThread,
    is_loopback_host,
    listeners,
    make_options,
)

START_TIMEOUT = 40.0
# a name that resolves (to this machine) but is not `localhost`
HOSTNAME = socket.gethostname() if socket.gethostname().lower() != "localhost" else "localhost.localdomain"


def proxy_args(tmp_path: Path, *extra: str, command: str = "proxy") -> list[str]:
    return [sys.executable, "-m", "inspector", command, "--listen", "127.0.0.1:0",
            "--store", str(tmp_path / "store.json"), "--confdir", str(tmp_path / "mitmproxy"), *extra]


def stop(proc: subprocess.Popen) -> None:
    """SIGTERM, then SIGKILL if it does not end in time."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def run_bounded(args: list[str], timeout: float = START_TIMEOUT) -> tuple[int | None, str]:
    """Run the CLI; its exit status (None if it was still running at `timeout`) and stderr."""
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True, env=cli_env(), cwd=ROOT)
    try:
        _, stderr = proc.communicate(timeout=timeout)
        return proc.returncode, stderr
    except subprocess.TimeoutExpired:
        stop(proc)
        return None, proc.stderr.read() if proc.stderr else ""
    finally:
        stop(proc)


class Started:
    """A proxy subprocess, up to its "… proxy listening on …" line; always stopped on exit."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, text=True, env=cli_env(), cwd=ROOT)
        self.stderr = ""

    def __enter__(self) -> Started:
        deadline = time.monotonic() + START_TIMEOUT
        while " proxy listening on " not in self.stderr:  # not a warning's "listening on"
            if time.monotonic() > deadline or self.proc.poll() is not None:
                rest = self.proc.stderr.read() if self.proc.poll() is not None else ""
                stop(self.proc)
                raise AssertionError(f"the proxy did not start (exit {self.proc.returncode}): {self.stderr}{rest}")
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.5)
            if ready:
                self.stderr += self.proc.stderr.readline()
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.proc)


# ---------------------------------------------------------------------- the sockets of a process

def _descendants(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            try:
                todo += [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                pass
    return pids


def _socket_inodes(pids: list[int]) -> set[int]:
    inodes = set()
    for pid in pids:
        for fd in Path(f"/proc/{pid}/fd").glob("*"):
            try:
                target = os.readlink(fd)
            except OSError:
                continue
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_addr: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_addr)
    if len(raw) == 4:
        return ipaddress.IPv4Address(raw[::-1])
    # /proc shows IPv6 as four 32-bit words in host (little-endian) byte order
    return ipaddress.IPv6Address(b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4)))


def sockets_of(pid: int) -> list[tuple[str, Any, int]]:
    """(protocol, local address, port) of every listening TCP socket and every bound,
    unconnected UDP socket of process `pid` and its children, from /proc/PID/net and fd/."""
    pids = _descendants(pid)
    inodes = _socket_inodes(pids)
    found = []
    for proto in ("tcp", "tcp6", "udp", "udp6"):
        lines = Path(f"/proc/{pid}/net/{proto}").read_text().splitlines()[1:]
        for line in lines:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            if inode not in inodes:
                continue
            addr, port = local.split(":")
            if proto.startswith("tcp") and state != "0A":  # 0A: LISTEN
                continue
            if proto.startswith("udp") and (int(port, 16) == 0 or int(remote.split(":")[1], 16) != 0):
                continue  # not bound, or a client's connected socket
            found.append((proto, _address(addr), int(port, 16)))
    return found


def is_loopback_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    mapped = getattr(address, "ipv4_mapped", None)
    return (mapped or address).is_loopback


def readable_ca_key(confdir: Path) -> list[Path]:
    """A confdir whose CA private key files were left readable by everyone (as another tool, or a
    copy, may leave them): mitmproxy keeps an existing file's mode."""
    from mitmproxy.certs import CertStore
    CertStore.from_store(str(confdir), "mitmproxy", 2048)
    keys = [confdir / "mitmproxy-ca.pem", confdir / "mitmproxy-ca.p12"]
    for key in keys:
        os.chmod(key, 0o644)
    return keys


def mode_of(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# ---------------------------------------------------------------------- refused without --allow-remote

def _refused_cases() -> list[Any]:
    p, q = free_port(), free_port()
    name = HOSTNAME
    cases = [
        ("regular-any", ["--mode", f"regular@0.0.0.0:{p}"], ["regular@0.0.0.0", f"0.0.0.0:{p}"]),
        ("set-listen-host", ["--set", "listen_host=0.0.0.0"], ["listen_host='0.0.0.0'", "0.0.0.0:0"]),
        ("set-listen-host-empty", ["--set", "listen_host="], ["listen_host=''", "every interface"]),
        ("socks5-empty-host", ["--mode", f"socks5@:{p}"], ["socks5@:", f"every interface (*:{p})"]),
        ("socks5-any", ["--mode", f"socks5@0.0.0.0:{p}"], ["socks5@0.0.0.0", f"0.0.0.0:{p}"]),
        ("socks5-any6", ["--mode", f"socks5@[::]:{p}"], ["socks5@[::]", f"[::]:{p}"]),
        ("socks5-hostname", ["--mode", f"socks5@{name}:{p}"], [f"socks5@{name}", f"{name}:{p}"]),
        ("socks5-inherits", ["--mode", f"socks5@{p}", "--set", "listen_host=0.0.0.0"],
         [f"socks5@{p}", "listen_host='0.0.0.0'"]),
        ("reverse", ["--mode", f"reverse:https://example.com@0.0.0.0:{p}"],
         ["reverse:https://example.com@0.0.0.0", f"0.0.0.0:{p}", "TCP and UDP"]),
        ("reverse-http3", ["--mode", f"reverse:http3://127.0.0.1:9@0.0.0.0:{p}"],
         ["reverse:http3://", f"0.0.0.0:{p}", "(UDP)"]),
        ("wireguard", ["--mode", f"wireguard@0.0.0.0:{p}"], ["wireguard@0.0.0.0", f"0.0.0.0:{p}", "(UDP)"]),
        ("dns", ["--mode", f"dns@0.0.0.0:{p}"], ["dns@0.0.0.0", f"0.0.0.0:{p}"]),
        ("transparent", ["--mode", f"transparent@0.0.0.0:{p}"], ["transparent@0.0.0.0", f"0.0.0.0:{p}"]),
        ("upstream", ["--mode", f"upstream:http://127.0.0.1:9@0.0.0.0:{p}"],
         ["upstream:http://127.0.0.1:9@0.0.0.0", f"0.0.0.0:{p}"]),
        ("second-mode", ["--mode", f"regular@127.0.0.1:{p}", "--mode", f"socks5@0.0.0.0:{q}"],
         ["socks5@0.0.0.0", f"0.0.0.0:{q}"]),
        ("set-mode", ["--set", f"mode=socks5@0.0.0.0:{p}"], ["socks5@0.0.0.0", f"0.0.0.0:{p}"]),
        ("unused-listen-host", ["--mode", f"socks5@127.0.0.1:{p}", "--set", "listen_host=0.0.0.0"],
         ["listen_host='0.0.0.0'"]),
    ]
    return [pytest.param(args, needles, id=case) for case, args, needles in cases]


@pytest.mark.slow
@pytest.mark.parametrize("args, needles", _refused_cases())
def test_listening_beyond_loopback_is_refused_with_one_line(tmp_path, args, needles):
    rc, stderr = run_bounded(proxy_args(tmp_path, *args))
    assert rc == 2, f"exit {rc}: {stderr}"
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert "not a loopback address" in lines[0] and "--allow-remote" in lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert not (tmp_path / "mitmproxy").exists()  # refused before mitmproxy was even set up


@pytest.mark.slow
def test_exec_refuses_too(tmp_path):
    port = free_port()
    rc, stderr = run_bounded(proxy_args(tmp_path, "--mode", f"socks5@0.0.0.0:{port}", "--", sys.executable,
                                        "-c", "pass", command="exec"))
    assert rc == 2
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and f"socks5@0.0.0.0:{port}" in lines[0] and "not a loopback address" in lines[0]


def test_the_final_options_are_checked_in_the_embedded_proxy(tmp_path):
    """An addon changes listen_host after the settings were checked: EmbeddedProxy.run still refuses."""

    class Widen:
        def load(self, loader: Any) -> None:
            loader.master.options.update(listen_host="0.0.0.0")

    addon = TelemetryInspector(Catalogue.load(), Keyring.from_paths([]), store=None)
    settings = ProxySettings(listen_port=0, confdir=tmp_path / "mitmproxy", addons=[Widen()])
    assert settings.check() == []  # nothing to see before the options are applied
    thread = ProxyThread(settings, addon)
    try:
        with pytest.raises(ProxyStartError, match=r"0\.0\.0\.0:0 for mode regular with listen_host='0\.0\.0\.0'"):
            thread.start()
    finally:
        thread.stop()
        addon.stop()


# ---------------------------------------------------------------------- what counts as loopback

@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("LOCALHOST", True), ("0.0.0.0", False), ("::", False), ("[::]", False), ("", False),
    ("10.0.0.1", False), ("localhost.", False), ("127.1", False), ("ip6-localhost", False),
    (HOSTNAME, False),
])
def test_only_localhost_and_loopback_ips_are_loopback(host, loopback):
    assert is_loopback_host(host) is loopback


def test_modes_that_open_no_socket_are_not_listeners_and_a_hostless_mode_inherits_listen_host():
    found = listeners(["local", "local:curl", "tun", "socks5", "wireguard@9", "dns@::1:53"], "127.0.0.1", None)
    assert [(f.spec, f.host, f.port, f.transport, f.inherited) for f in found] == [
        ("socks5", "127.0.0.1", 1080, "TCP", True),
        ("wireguard@9", "127.0.0.1", 9, "UDP", True),
        ("dns@::1:53", "::1", 53, "TCP and UDP", False),
    ]
    # mitmproxy binds "" (every interface) when listen_host is empty
    assert listeners(["socks5"], "", None)[0].host == ""


def test_the_embedded_masters_default_listen_host_is_loopback():
    opts = make_options(ProxySettings())
    assert opts.default("listen_host") == "127.0.0.1"
    opts.update(listen_host="0.0.0.0")
    opts.reset()  # anything that resets options to their defaults stays on loopback
    assert opts.listen_host == "127.0.0.1"


# ---------------------------------------------------------------------- allowed: the real sockets

def assert_only_loopback(pid: int, *, udp: bool = False) -> list[tuple[str, Any, int]]:
    found = sockets_of(pid)
    assert any(proto.startswith("tcp") for proto, _, _ in found) or udp, found
    if udp:
        assert any(proto.startswith("udp") for proto, _, _ in found), found
    assert all(is_loopback_ip(address) for _, address, _ in found), found
    return found


@pytest.mark.slow
@pytest.mark.parametrize("spec", ["socks5@127.0.0.1:0", "regular@127.0.0.1:PORT", "socks5@localhost:PORT",
                                  "dns@127.0.0.1:PORT"])
def test_loopback_modes_listen_on_loopback_only_and_the_ca_key_is_made_private(tmp_path, spec):
    port = free_port()
    spec = spec.replace("PORT", str(port))
    keys = readable_ca_key(tmp_path / "mitmproxy")
    with Started(proxy_args(tmp_path, "--mode", spec)) as proxy:
        found = assert_only_loopback(proxy.proc.pid, udp=spec.startswith("dns"))
        if not spec.endswith(":0"):
            assert {p for _, _, p in found} >= {port}
        assert [mode_of(key) for key in keys] == [0o600, 0o600]
        assert "holds a private key and was readable by other users" in proxy.stderr


@pytest.mark.slow
def test_wireguard_on_loopback_binds_udp_on_loopback_and_its_key_file_is_0600(tmp_path):
    port = free_port()
    with Started(proxy_args(tmp_path, "--mode", f"wireguard@127.0.0.1:{port}")) as proxy:
        found = assert_only_loopback(proxy.proc.pid, udp=True)
        assert ("udp", ipaddress.IPv4Address("127.0.0.1"), port) in found
        conf = tmp_path / "mitmproxy" / "wireguard.conf"
        assert mode_of(conf) == 0o600
        assert set(json.loads(conf.read_text())) == {"server_key", "client_key"}  # mitmproxy read it
        assert "wireguard.conf" not in proxy.stderr  # created private: nothing to warn about


@pytest.mark.slow
def test_a_wireguard_key_file_left_readable_is_made_private(tmp_path):
    confdir = tmp_path / "mitmproxy"
    with Started(proxy_args(tmp_path, "--mode", f"wireguard@127.0.0.1:{free_port()}")):
        pass
    conf = confdir / "wireguard.conf"
    before = conf.read_bytes()
    os.chmod(conf, 0o644)  # as mitmproxy itself writes it
    custom = tmp_path / "keys" / "wg.conf"  # wireguard:PATH, a file of the user's choice
    with Started(proxy_args(tmp_path, "--mode", f"wireguard@127.0.0.1:{free_port()}",
                            "--mode", f"wireguard:{custom}@127.0.0.1:{free_port()}")) as proxy:
        assert mode_of(conf) == 0o600 and conf.read_bytes() == before
        assert mode_of(custom) == 0o600
        assert f"{conf} holds a private key" in proxy.stderr


# ---------------------------------------------------------------------- allowed with --allow-remote

@pytest.mark.slow
def test_allow_remote_warns_once_per_listener_beyond_loopback(tmp_path):
    p, q = free_port(), free_port()
    args = proxy_args(tmp_path, "--allow-remote", "--mode", f"socks5@0.0.0.0:{p}",
                      "--mode", f"regular@127.0.0.1:{free_port()}", "--mode", f"regular@:{q}")
    with Started(args) as proxy:
        warnings = [line for line in proxy.stderr.splitlines() if line.startswith("warning:")]
        assert len(warnings) == 2, proxy.stderr
        assert f"warning: listening on 0.0.0.0:{p} for mode socks5@0.0.0.0:{p} (TCP), reachable from other " \
               "machines" in warnings[0]
        assert f"warning: listening on every interface (*:{q}) for mode regular@:{q} (TCP)" in warnings[1]
        exposed = [a for _, a, _ in sockets_of(proxy.proc.pid) if not is_loopback_ip(a)]
        assert exposed  # it did what it was allowed to

