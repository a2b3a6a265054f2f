"""Where a command cannot be isolated: watch its sockets for connections around the proxy.

A thread polls the command's process tree (/proc/PID/task/*/children, recursively): each
process's socket inodes (/proc/PID/fd → ``socket:[N]``) are looked up in its network
namespace's tables (/proc/PID/net/tcp, tcp6, udp, udp6). A connection to anything but the
proxy's listener, or to a listener of the tree's own, went around the proxy: a *bypass*. A
UDP socket with no fixed peer may send anywhere: listed as "destination unknown". The limit
is the polling: a connection that opens and closes between two looks (POLL_INTERVAL) is not
seen, which is why the namespace is preferred wherever it can be had.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path

POLL_INTERVAL = 0.01
MAX_PROCESSES = 2048
MAX_RECORDS = 1024
TABLES = (("tcp", "tcp"), ("tcp6", "tcp"), ("udp", "udp"), ("udp6", "udp"))
TCP_LISTEN = "0A"


@dataclass(frozen=True)
class Bypass:
    """A connection from the command's tree that did not go through the proxy."""

    protocol: str    # "tcp" or "udp"
    address: str     # "" for a UDP socket with no fixed peer
    port: int
    process: str     # the process's name (comm), as the kernel reports it

    def label(self) -> str:
        if not self.address:
            return f"{self.protocol} socket of {self.process} (destination unknown)"
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.protocol} {host}:{self.port} from {self.process}"


def _address(hex_address: str) -> tuple[str, int]:
    """/proc/net/tcp's "0100007F:1F90" (or the 32-digit IPv6 form) → ("127.0.0.1", 8080)."""
    host, _, port = hex_address.partition(":")
    raw = bytes.fromhex(host)
    # each 32-bit word is in the host's byte order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4)) if socket.htonl(1) != 1 else raw
    address = ipaddress.ip_address(words)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    return str(address), int(port, 16)


def parse_table(text: str, protocol: str) -> dict[int, tuple[str, tuple[str, int], tuple[str, int], str]]:
    """inode → (protocol, local, remote, state) for one /proc/net table."""
    found = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) < 10:
            continue
        try:
            local, remote, state, inode = _address(parts[1]), _address(parts[2]), parts[3], int(parts[9])
        except ValueError:
            continue
        if inode:
            found[inode] = (protocol, local, remote, state)
    return found


def descendants(root: int) -> list[int]:
    """`root` and every process below it (bounded)."""
    seen = [root]
    index = 0
    while index < len(seen) and len(seen) < MAX_PROCESSES:
        pid = seen[index]
        index += 1
        try:
            tasks = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                children = Path(f"/proc/{pid}/task/{task}/children").read_text().split()
            except OSError:
                continue
            seen.extend(int(c) for c in children if c.isdigit() and int(c) not in seen)
    return seen


def socket_inodes(pid: int) -> set[int]:
    found: set[int] = set()
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except OSError:
        return found
    for name in names:
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:
            continue
        if target.startswith("socket:["):
            found.add(int(target[8:-1]))
    return found


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()[:32] or str(pid)
    except OSError:
        return str(pid)


def _is_unspecified(address: str) -> bool:
    return ipaddress.ip_address(address).is_unspecified


class BypassWatch:
    """Polls a process tree on a thread (see the module doc); `bypasses()` when done."""

    def __init__(self, root: int, proxy_ports: set[int]) -> None:
        self.root = root
        self.proxy_ports = proxy_ports
        self._records: dict[Bypass, int] = {}
        self._known: set[tuple[int, int]] = set()  # (inode, pid) already judged
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ti-bypass-watch", daemon=True)
        self.polls = 0

    def start(self) -> BypassWatch:
        self._thread.start()
        return self

    def stop(self) -> dict[Bypass, int]:
        self._stop.set()
        self._thread.join(5)
        return dict(self._records)

    def bypasses(self) -> dict[Bypass, int]:
        return dict(self._records)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll()
            except (OSError, ValueError):
                pass
            self.polls += 1
            self._stop.wait(POLL_INTERVAL)

    def poll(self) -> None:
        owners: dict[int, int] = {}
        for pid in descendants(self.root):
            for inode in socket_inodes(pid):
                owners.setdefault(inode, pid)
        fresh = {inode for inode, pid in owners.items() if (inode, pid) not in self._known}
        if not fresh:
            return
        table: dict[int, tuple[str, tuple[str, int], tuple[str, int], str]] = {}
        for pid in dict.fromkeys(owners.values()):  # the root may have exited, its children not
            try:
                for name, protocol in TABLES:
                    table.update(parse_table(Path(f"/proc/{pid}/net/{name}").read_text(), protocol))
                break
            except OSError:
                continue
        listening = {local[1] for inode, (protocol, local, _r, state) in table.items()
                     if inode in owners and protocol == "tcp" and state == TCP_LISTEN}
        for inode in fresh:
            entry = table.get(inode)
            if entry is None:
                continue  # a unix or netlink socket, or one that closed in between
            self._known.add((inode, owners[inode]))
            protocol, local, remote, state = entry
            if protocol == "tcp" and (state == TCP_LISTEN or _is_unspecified(remote[0])):
                continue
            if ipaddress.ip_address(remote[0]).is_loopback and (remote[1] in self.proxy_ports
                                                                or remote[1] in listening):
                continue  # the proxy, or the tree talking to itself
            if protocol == "tcp" and local[1] in listening:
                continue  # a connection the tree accepted
            if protocol == "udp" and _is_unspecified(remote[0]):
                if ipaddress.ip_address(local[0]).is_loopback:
                    continue
                item = Bypass("udp", "", 0, _comm(owners[inode]))
            else:
                item = Bypass(protocol, remote[0], remote[1], _comm(owners[inode]))
            if item in self._records or len(self._records) < MAX_RECORDS:
                self._records[item] = self._records.get(item, 0) + 1
