"""Traffic the namespace refused: read from a packet socket on its loopback.

Inside the namespace every address is local, so nothing can leave: a TCP connection to a port
the inspector does not serve is answered with a reset, a UDP datagram to a port nobody holds
with ICMP "port unreachable". Those answers are what this module looks for (a SYN answered by
a SYN-ACK reached a listener of the command's own, inside the namespace, and is not listed).
A classic BPF filter in the kernel passes only SYN/RST segments, UDP and ICMP, so the bytes
of intercepted connections never reach Python. Packets are hostile input: short or odd ones
are skipped.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import threading
from dataclasses import dataclass
from typing import cast

PACKET_OUTGOING = 4
SYN, RST, ACK = 0x02, 0x04, 0x10
SNAPLEN = 256
MAX_PENDING = 4096
MAX_RECORDS = 1024


def _bpf_program() -> list[list[int]]:
    """The filter: IPv4/IPv6 TCP with SYN or RST set, UDP, ICMP and ICMPv6; nothing else.

    Offsets are from the network header (a SOCK_DGRAM packet socket). A tiny assembler:
    each row is (label, opcode, k, label if true, label if false)."""
    ldb, ldb_ind, ldx_msh, rsh, jeq, jset, ret = 0x30, 0x50, 0xB1, 0x74, 0x15, 0x45, 0x06
    rows = [
        ("start", ldb, 0, None, None),          # A = first byte
        (None, rsh, 4, None, None),             # A = IP version
        (None, jeq, 4, "v4", "v6?"),
        ("v4", ldb, 9, None, None),             # A = protocol
        (None, jeq, 6, "tcp4", "udp4?"),
        ("udp4?", jeq, 17, "accept", "icmp4?"),
        ("icmp4?", jeq, 1, "accept", "drop"),
        ("tcp4", ldx_msh, 0, None, None),       # X = IPv4 header length
        (None, ldb_ind, 13, None, None),        # A = TCP flags
        (None, jset, SYN | RST, "accept", "drop"),
        ("v6?", jeq, 6, "v6", "drop"),
        ("v6", ldb, 6, None, None),             # A = next header (no extension headers)
        (None, jeq, 6, "tcp6", "udp6?"),
        ("udp6?", jeq, 17, "accept", "icmp6?"),
        ("icmp6?", jeq, 58, "accept", "drop"),
        ("tcp6", ldb, 40 + 13, None, None),     # A = TCP flags
        (None, jset, SYN | RST, "accept", "drop"),
        ("drop", ret, 0, None, None),
        ("accept", ret, SNAPLEN, None, None),
    ]
    where = {label: index for index, (label, *_rest) in enumerate(rows) if label}
    program = []
    for index, (_label, code, k, true, false) in enumerate(rows):
        if true is None:
            program.append([code, 0, 0, k])
        else:
            program.append([code, where[true] - index - 1, where[cast(str, false)] - index - 1, k])
    return program


BPF_FILTER = _bpf_program()


@dataclass(frozen=True)
class Refused:
    """Traffic that tried to leave and was refused: protocol, destination address and port."""

    protocol: str  # "tcp" or "udp"
    address: str
    port: int

    def label(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        extra = " (QUIC)" if self.protocol == "udp" and self.port == 443 else ""
        return f"{self.protocol} {host}:{self.port}{extra}"


def parse(packet: bytes) -> tuple[str, tuple, int] | None:
    """One network-layer packet: ("syn"|"rst"|"synack"|"udp"|"unreach", key, flags)."""
    if len(packet) < 20:
        return None
    version = packet[0] >> 4
    if version == 4:
        header = (packet[0] & 0x0F) * 4
        proto, src, dst, body = packet[9], packet[12:16], packet[16:20], packet[header:]
        icmp_unreach = proto == 1 and len(body) >= 8 and body[0] == 3 and body[1] == 3
    elif version == 6 and len(packet) >= 40:
        proto, src, dst, body = packet[6], packet[8:24], packet[24:40], packet[40:]
        icmp_unreach = proto == 58 and len(body) >= 8 and body[0] == 1 and body[1] == 4
    else:
        return None
    s, d = str(ipaddress.ip_address(src)), str(ipaddress.ip_address(dst))
    if proto == 6 and len(body) >= 14:
        sport, dport = struct.unpack("!HH", body[:4])
        flags = body[13]
        if flags & SYN and not flags & ACK:
            return "syn", (s, sport, d, dport), flags
        if flags & SYN and flags & ACK:
            return "synack", (d, dport, s, sport), flags
        if flags & RST:
            return "rst", (d, dport, s, sport), flags
        return None
    if proto == 17 and len(body) >= 8:
        sport, dport = struct.unpack("!HH", body[:4])
        return "udp", (s, sport, d, dport), 0
    if icmp_unreach:  # the quoted datagram: its header, then 8 bytes of UDP
        inner = parse_inner(body[8:])
        if inner is not None:
            return "unreach", inner, 0
    return None


def parse_inner(quoted: bytes) -> tuple | None:
    if len(quoted) < 20:
        return None
    version = quoted[0] >> 4
    if version == 4:
        header = (quoted[0] & 0x0F) * 4
        proto, src, dst, body = quoted[9], quoted[12:16], quoted[16:20], quoted[header:]
    elif version == 6 and len(quoted) >= 40:
        proto, src, dst, body = quoted[6], quoted[8:24], quoted[24:40], quoted[40:]
    else:
        return None
    if proto != 17 or len(body) < 4:
        return None
    sport, dport = struct.unpack("!HH", body[:4])
    return (str(ipaddress.ip_address(src)), sport, str(ipaddress.ip_address(dst)), dport)


class RefusedMonitor:
    """Reads the namespace's packet socket on a thread; `refused()` lists what was turned away."""

    def __init__(self, sock: socket.socket, served_udp: frozenset[int] = frozenset({53})) -> None:
        self.sock = sock
        self.served_udp = served_udp
        self._pending: dict[tuple, int] = {}
        self._records: dict[Refused, int] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ti-refused-monitor", daemon=True)

    def start(self) -> RefusedMonitor:
        self.sock.settimeout(0.2)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.sock.close()

    def refused(self) -> dict[Refused, int]:
        """Each refused destination and how often (SYNs still unanswered at the end count too)."""
        with self._lock:
            found = dict(self._records)
            for key in self._pending:
                item = Refused("tcp", key[2], key[3])
                found[item] = found.get(item, 0) + 1
            return found

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet, address = self.sock.recvfrom(SNAPLEN)
            except TimeoutError:
                continue
            except OSError:
                return
            if len(address) >= 3 and address[2] != PACKET_OUTGOING:
                continue  # loopback shows each packet twice: outgoing and incoming
            try:
                self.feed(packet)
            except (ValueError, struct.error):
                continue

    def feed(self, packet: bytes) -> None:
        parsed = parse(packet)
        if parsed is None:
            return
        kind, key, _flags = parsed
        with self._lock:
            if kind == "syn":
                if len(self._pending) < MAX_PENDING:
                    self._pending[key] = 1
            elif kind == "synack":
                self._pending.pop(key, None)  # a listener inside the namespace took it
            elif kind == "rst":
                if self._pending.pop(key, None) is not None:
                    self._add(Refused("tcp", key[2], key[3]))
            elif kind == "unreach" and key[3] not in self.served_udp:
                self._add(Refused("udp", key[2], key[3]))

    def _add(self, item: Refused) -> None:
        if item in self._records or len(self._records) < MAX_RECORDS:
            self._records[item] = self._records.get(item, 0) + 1
