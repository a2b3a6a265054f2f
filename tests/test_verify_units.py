"""Unit tests of inspector.verify: DNS answers, packet parsing, /proc tables, canary forms,
the opt-out catalogue, compare statuses, runtime warnings and the report's escaping."""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import struct
from collections import Counter
from urllib.parse import quote, quote_plus

import pytest

from inspector.core.event import Event
from inspector.core.policy import Catalogue
from inspector.verify import canary, dns, optouts, packets
from inspector.verify.bypass import _address, parse_table
from inspector.verify.report import Verification, render_markdown, render_text
from inspector.verify.results import Run, channels, status_of
from inspector.verify.runtimes import node_honours_proxy

# ---------------------------------------------------------------------- DNS

def query(name: str, qtype: int = 1, ident: int = 0x1234) -> bytes:
    labels = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    return struct.pack("!HHHHHH", ident, 0x0100, 1, 0, 0, 0) + labels + struct.pack("!HH", qtype, 1)


def test_every_name_gets_its_own_loopback_address_and_keeps_it():
    fake = dns.FakeIps()
    first = dns.answer(dns.parse_query(query("Telemetry.Hasura.io")), fake)
    again = dns.answer(dns.parse_query(query("telemetry.hasura.io", ident=7)), fake)
    other = dns.answer(dns.parse_query(query("api.segment.io")), fake)
    address = socket.inet_ntoa(first[-4:])
    assert address.startswith("127.77.") and socket.inet_ntoa(again[-4:]) == address
    assert socket.inet_ntoa(other[-4:]) != address
    assert fake.name(address) == fake.name("::ffff:" + address) == "telemetry.hasura.io"
    assert struct.unpack("!H", again[:2])[0] == 7 and struct.unpack("!H", first[6:8])[0] == 1  # one answer


def test_aaaa_gets_an_empty_answer_and_malformed_queries_none():
    fake = dns.FakeIps()
    reply = dns.answer(dns.parse_query(query("example.org", qtype=28)), fake)
    assert struct.unpack("!HHHH", reply[:8])[3] == 0  # no answer: clients use IPv4
    assert dns.parse_query(b"\x00" * 5) is None
    assert dns.parse_query(query("a.b")[:-3]) is None  # truncated question
    pointer = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c" + struct.pack("!HH", 1, 1)
    assert dns.parse_query(pointer) is None
    response = bytearray(query("a.b"))
    response[2] |= 0x80
    assert dns.parse_query(bytes(response)) is None and dns.formerr(bytes(response)) is None
    assert dns.parse_query(query(".".join(["a" * 63] * 5))) is None  # longer than a name can be
    # a name ends up in a CONNECT line: nothing but letters, digits, '-' and '_'
    for hostile in ("evil\r\nx-injected: 1.example", "a b.example", "caf\u00e9.example", "x:443.example"):
        assert dns.parse_query(query(hostile)) is None, hostile


# ---------------------------------------------------------------------- packets

def ipv4(proto: int, src: str, dst: str, body: bytes) -> bytes:
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0,
                       socket.inet_aton(src), socket.inet_aton(dst)) + body


def tcp(sport: int, dport: int, flags: int) -> bytes:
    return struct.pack("!HHIIBBHHH", sport, dport, 0, 0, 0x50, flags, 0, 0, 0)


def udp(sport: int, dport: int) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8, 0)


def test_a_reset_syn_is_refused_an_accepted_one_is_not():
    monitor = packets.RefusedMonitor.__new__(packets.RefusedMonitor)
    packets.RefusedMonitor.__init__(monitor, socket.socket(socket.AF_INET, socket.SOCK_DGRAM))
    monitor.feed(ipv4(6, "127.0.0.1", "127.77.0.1", tcp(40000, 5432, packets.SYN)))
    monitor.feed(ipv4(6, "127.77.0.1", "127.0.0.1", tcp(5432, 40000, packets.RST | packets.ACK)))
    monitor.feed(ipv4(6, "127.0.0.1", "10.9.9.9", tcp(40001, 3000, packets.SYN)))
    monitor.feed(ipv4(6, "10.9.9.9", "127.0.0.1", tcp(3000, 40001, packets.SYN | packets.ACK)))
    quoted = ipv4(17, "127.0.0.1", "127.77.0.2", udp(50000, 443))
    monitor.feed(ipv4(1, "127.77.0.2", "127.0.0.1", bytes([3, 3, 0, 0, 0, 0, 0, 0]) + quoted))
    monitor.feed(ipv4(1, "127.0.0.1", "127.0.0.1", bytes([3, 3, 0, 0, 0, 0, 0, 0])
                      + ipv4(17, "127.0.0.1", "127.0.0.53", udp(50001, 53))))  # DNS is served
    for junk in (b"", b"\x45", b"\x60" + b"\0" * 20, bytes(range(64)), b"\x4f" + b"\xff" * 40):
        monitor.feed(junk)
    found = monitor.refused()
    monitor.sock.close()
    assert {item.label() for item in found} == {"tcp 127.77.0.1:5432", "udp 127.77.0.2:443 (QUIC)"}


def test_the_kernel_filter_is_well_formed():
    program = packets.BPF_FILTER
    assert program[-1] == [0x06, 0, 0, packets.SNAPLEN] and [0x06, 0, 0, 0] in program
    for index, (code, jt, jf, _k) in enumerate(program):
        if code & 0x07 == 0x05:  # a jump: both targets inside the program, forward only
            assert index + 1 + max(jt, jf) < len(program)


# ---------------------------------------------------------------------- /proc

def test_proc_net_tables_are_parsed():
    text = ("  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"
            "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n"
            "   1: 0100007F:C350 0100007F:01BB 01 00000000:00000000 00:00000000 00000000     0        0 222 1\n"
            "   2: garbage\n")
    table = parse_table(text, "tcp")
    assert table[111] == ("tcp", ("127.0.0.1", 8080), ("0.0.0.0", 0), "0A")
    assert table[222][2] == ("127.0.0.1", 443)
    assert _address("00000000000000000000000001000000:0050") == ("::1", 80)
    assert _address("0000000000000000FFFF00000100007F:0050") == ("127.0.0.1", 80)


# ---------------------------------------------------------------------- canaries

VALUE = "cu5f3a9c1e7d"


def in_base64(prefix: bytes, alphabet: str, padded: bool) -> str:
    text = base64.b64encode(prefix + VALUE.encode() + b"!").decode()
    if alphabet == "url":
        text = text.replace("+", "-").replace("/", "_")
    return text if padded else text.rstrip("=")


FORMS = [
    (VALUE, "user name"),
    (VALUE.upper(), "user name"),
    (quote(f"/home/{VALUE}/x", safe=""), "user name"),
    (quote_plus(f"{VALUE} and more"), "user name"),
    (VALUE.encode().hex().upper(), "hex(user name)"),
    (hashlib.sha256(VALUE.encode()).hexdigest(), "sha256(user name)"),
    (hashlib.sha1(VALUE.encode()).hexdigest().upper(), "sha1(user name)"),
    (hashlib.md5(VALUE.encode()).hexdigest(), "md5(user name)"),
    (hashlib.sha256(VALUE.upper().encode()).hexdigest(), "sha256(uppercase user name)"),
    (base64.b64encode(hashlib.sha256(VALUE.encode()).digest()).decode(), "base64 sha256(user name)"),
    (base64.urlsafe_b64encode(hashlib.md5(VALUE.encode()).digest()).decode().rstrip("="), "base64 md5(user name)"),
] + [(in_base64(b"x" * offset, alphabet, padded), "base64(user name)")
     for offset in range(3) for alphabet in ("std", "url") for padded in (True, False)]


@pytest.mark.parametrize("text, label", FORMS)
def test_a_planted_value_is_found_in_any_form(text, label):
    search = canary.CanarySearch([canary.Planted("user name", ("USER",), VALUE)])
    hits = search.search_text(f"prefix {text} suffix", "there")
    assert hits, text
    assert hits[0].label.endswith(f"{label} at there") or hits[0].label == f"{label} at there"


def test_nothing_is_found_where_nothing_was_planted():
    search = canary.CanarySearch([canary.Planted("user name", ("USER",), VALUE)])
    other = "cu5f3a9c1e7e"
    texts = [other, hashlib.sha256(other.encode()).hexdigest(), base64.b64encode(other.encode()).decode(),
             "x" * 10_000, "\x00\x1b[2J\u202e"]
    assert not any(search.search_text(t, "t") for t in texts)


def test_an_event_is_searched_in_every_part_and_reported_once_per_place():
    search = canary.CanarySearch([canary.Planted("user name", ("USER",), VALUE),
                                  canary.Planted("API key", ("K",), "tik_Zq8x2Lr5Vb7Nn3Mm")])
    digest = hashlib.sha256(VALUE.encode()).hexdigest()
    event = {"url": f"https://t.example/u/{VALUE}?id={base64.b64encode(VALUE.encode()).decode()}",
             "request": {"headers": [["Authorization", "Bearer tik_Zq8x2Lr5Vb7Nn3Mm"]],
                         "body_text": json.dumps({"userId": digest})},
             "decoded": {"userId": digest, "nested": [{"who": VALUE}]}}
    labels = sorted(hit.label for hit in search.search_event(event))
    assert labels == ["API key at header Authorization", "base64(user name) at query string",
                      "sha256(user name) at userId", "user name at URL path", "user name at nested[0].who"]


def test_a_hit_is_a_violation_against_an_anonymity_claim_and_a_warning_otherwise():
    catalogue = Catalogue.load()
    hit = canary.Hit(canary.Planted("user name", ("USER",), VALUE), "sha256(", "batch[0].userId", "ab")
    against = canary.finding(hit, catalogue.get("appsmith-server-usage"))  # claims hashed and no-pii
    assert (against.code, against.severity, against.claim.check) == ("canary", "violation", "no-pii")
    assert "sha256(user name) at batch[0].userId" in against.message and "identifier" in against.message
    unclaimed = canary.finding(hit, None)
    assert unclaimed.severity == "warning" and unclaimed.claim is None


def test_planted_values_are_fresh_and_cleaned_up():
    one, two = canary.plant(cwd=True), canary.plant()
    try:
        assert one.env["USER"] == one.env["LOGNAME"] != two.env["USER"]
        assert one.env["HOME"] != two.env["HOME"] and one.cwd and one.env["PWD"] == one.cwd
        assert {"HOSTNAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL", "GIT_AUTHOR_NAME", "EMAIL",
                "TI_CANARY_API_KEY"} <= set(one.env)
    finally:
        home = one.env["HOME"]
        one.cleanup()
        two.cleanup()
    import os
    assert not os.path.exists(home)


# ---------------------------------------------------------------------- opt-outs

def test_the_shipped_catalogue_states_its_origin_and_sets_no_excluded_variable():
    from importlib import resources
    text = resources.files("inspector.verify").joinpath("data/opt-outs.tsv").read_text()
    assert "toptout" in text.splitlines()[1] and "MIT" in text.splitlines()[1]
    rows = optouts.catalogue_rows()
    assert len(rows) > 100 and all(r.status.split(":")[0] in ("confirmed", "unconfirmed", "excluded") for r in rows)
    env = optouts.environment(optouts.all_opt_outs(Catalogue.load().policies))
    excluded = {r.variable for r in rows if r.excluded} - {r.variable for r in rows if not r.excluded}
    assert "CI" in excluded and not excluded & set(env)
    assert env["DO_NOT_TRACK"] == "1" and env["HASURA_GRAPHQL_ENABLE_TELEMETRY"] == "false"
    assert env["REFINE_NO_TELEMETRY"] == "true" and env["NEXT_TELEMETRY_DISABLED"] == "1"
    assert all(value and value != "ANY_VALUE" for value in env.values())


def test_a_channel_is_attributed_its_vendors_opt_outs():
    catalogue = Catalogue.load()
    every = optouts.all_opt_outs(catalogue.policies)
    names = [o.variable for o in optouts.for_channel(every, catalogue.get("hasura-cli"))]
    assert names == ["DO_NOT_TRACK", "HASURA_GRAPHQL_ENABLE_TELEMETRY"]
    assert [o.variable for o in optouts.for_channel(every, None)] == ["DO_NOT_TRACK"]


# ---------------------------------------------------------------------- compare and report

@pytest.mark.parametrize("without, with_, status", [
    (2, 0, "stopped"), (1, 3, "ignored"), (0, 1, "new"), (0, 0, None), (None, 2, "ignored"), (None, 0, None)])
def test_compare_statuses(without, with_, status):
    assert status_of(without, with_) == status


def hostile_event(host: str) -> Event:
    return Event(method="POST", url=f"https://{host}/x", host=host, path="/x", transport="http", time=0.0,
                 session="s", policy=None, vendor=None, product=None, decoding=[], layers=[], decoded=None,
                 structured=False, jwe=None, findings=[], request={})


def test_the_report_shows_hostile_names_and_never_lets_them_act():
    host = "evil.example\x1b]0;pwned\x07|`*[x](y)"
    without = Run("without opt-outs", events=[hostile_event(host)])
    with_ = Run("with opt-outs", events=[hostile_event(host)], refused=Counter({"tcp 1.2.3.4:9\u202e": 1}))
    rows = channels([without, with_], Catalogue.load(), "compare")
    assert [(r.name, r.status) for r in rows] == [(host, "ignored"), ("refused tcp 1.2.3.4:9\u202e", "new")]
    v = Verification(["app", "--x\r"], "compare", "namespace", "detail", [without, with_], rows)
    for text in (render_text(v), render_markdown(v)):
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text and "\r" not in text
    assert "evil.example\\x1b]0;pwned\\x07\\|" in render_markdown(v)  # a code span, | escaped
    data = json.loads(json.dumps(v.to_dict()))
    assert data["channels"][0]["status"] == "ignored"
    assert [f["code"] for f in data["findings"]] == ["refused"]


@pytest.mark.parametrize("version, honours", [((20, 20, 2), False), ((22, 20, 0), False), ((22, 21, 0), True),
                                              ((23, 9, 0), False), ((24, 0, 0), True), ((25, 1, 0), True)])
def test_node_versions_that_honour_proxy_variables(version, honours):
    assert node_honours_proxy(version) is honours
