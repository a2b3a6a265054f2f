"""The namespace's DNS: every name gets an address of its own in 127.77.0.0/16 ("fake IP").

A connection to that address reaches the inspector's listener inside the namespace, which
looks the address up here to know the name it was meant for; the TLS SNI and the Host header
carry the name too. No query is forwarded anywhere: the names asked are recorded (they are
traffic too — a name can carry data) and answered locally. IPv6 (AAAA) and every other type
get an empty answer, so clients use the IPv4 address. Queries are hostile input: anything
malformed is dropped or answered FORMERR, never trusted.
"""

from __future__ import annotations

import ipaddress
import re
import struct
import threading
from dataclasses import dataclass

FAKE_NET = ipaddress.ip_network("127.77.0.0/16")
MAX_NAMES = 65_000  # addresses in the fake range, less the network and broadcast ends
TYPE_A, CLASS_IN = 1, 1
TTL = 30
MAX_NAME = 253
# A name becomes part of a CONNECT line to the proxy: letters, digits, '-' and '_' only.
_LABEL = re.compile(rb"^[A-Za-z0-9_-]{1,63}$")


class FakeIps:
    """name ⇄ address, thread-safe; the same name keeps its address."""

    def __init__(self) -> None:
        self._by_name: dict[str, str] = {}
        self._by_address: dict[str, str] = {}
        self._lock = threading.Lock()

    def address(self, name: str) -> str:
        name = name.lower().rstrip(".")
        with self._lock:
            found = self._by_name.get(name)
            if found is None:
                number = len(self._by_name) % MAX_NAMES + 1  # wraps: the oldest names are forgotten
                found = str(FAKE_NET.network_address + number)
                old = self._by_address.get(found)
                if old is not None:
                    self._by_name.pop(old, None)
                self._by_name[name] = found
                self._by_address[found] = name
            return found

    def name(self, address: str) -> str | None:
        """The name a fake address stands for (None: not one of ours)."""
        if address.startswith("::ffff:"):
            address = address[7:]
        with self._lock:
            return self._by_address.get(address)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._by_name)


@dataclass(frozen=True)
class Question:
    ident: int
    flags: int
    name: str
    qtype: int
    qclass: int
    raw: bytes  # the question section as sent, echoed in the answer


def parse_query(data: bytes) -> Question | None:
    """The first question of a DNS query, or None when it is not a well-formed query."""
    if len(data) < 12:
        return None
    ident, flags, qdcount = struct.unpack("!HHH", data[:6])
    if flags & 0x8000 or (flags >> 11) & 0xF != 0 or qdcount < 1:  # a response, not QUERY, or empty
        return None
    labels: list[str] = []
    offset = 12
    while True:
        if offset >= len(data):
            return None
        length = data[offset]
        offset += 1
        if length == 0:
            break
        if length & 0xC0:  # compression pointers have no place in a query's first name
            return None
        label = data[offset:offset + length]
        if len(label) != length or not _LABEL.match(label):
            return None
        labels.append(label.decode("ascii", "replace").lower())
        offset += length
        if sum(len(x) + 1 for x in labels) > MAX_NAME + 1:
            return None
    if offset + 4 > len(data):
        return None
    qtype, qclass = struct.unpack("!HH", data[offset:offset + 4])
    return Question(ident, flags, ".".join(labels), qtype, qclass, data[12:offset + 4])


def answer(question: Question, fake: FakeIps) -> bytes:
    """The response: an A record from `fake` for IN/A, an empty NOERROR answer otherwise."""
    rd = question.flags & 0x0100
    flags = 0x8000 | 0x0400 | rd | 0x0080  # QR, AA, RD as asked, RA
    records = b""
    if question.qtype == TYPE_A and question.qclass == CLASS_IN and question.name:
        address = ipaddress.IPv4Address(fake.address(question.name)).packed
        records = struct.pack("!HHHIH", 0xC00C, TYPE_A, CLASS_IN, TTL, 4) + address
    count = 1 if records else 0
    return struct.pack("!HHHHHH", question.ident, flags, 1, count, 0, 0) + question.raw + records


def formerr(data: bytes) -> bytes | None:
    """FORMERR for a query too broken to answer (None when not even the header is there)."""
    if len(data) < 12 or data[2] & 0x80:
        return None
    ident = struct.unpack("!H", data[:2])[0]
    return struct.pack("!HHHHHH", ident, 0x8001, 0, 0, 0, 0)
