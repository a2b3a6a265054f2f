"""The decision itself, without a proxy: names normalised, rules cover hosts, strictest wins."""

from __future__ import annotations

import pytest

from inspector.core.destination import normalize_host, normalize_path
from inspector.core.enforce import Enforcer, mismatch
from inspector.core.observation import Observation
from inspector.core.policy import Catalogue, policy_from_data
from inspector.core.rules import Rule, RuleBook

HOST = "telemetry.refine.dev"


@pytest.mark.parametrize("raw, expected", [
    ("telemetry.refine.dev", HOST), ("Telemetry.Refine.DEV", HOST), ("telemetry.refine.dev.", HOST),
    ("telemetry.refine.dev..", HOST), ("telemetry.refine.dev:443", HOST), ("telemetry.refine.dev.:8443", HOST),
    ("telemetry\u3002refine\u3002dev", HOST),             # ideographic full stops, as IDNA reads them
    ("bücher.example", "xn--bcher-kva.example"), ("XN--BCHER-KVA.example", "xn--bcher-kva.example"),
    ("[::1]", "::1"), ("[0:0::1]:80", "::1"), ("::1", "::1"), ("0x7f.1", "127.0.0.1"), ("2130706433", "127.0.0.1"),
    ("[v]x", None), ("a b", None), ("", None), ("a/b", None), ("user@host", None), ("x" * 2000, None),
    ("host:99999999", None), ("[::1", None),
])
def test_host_names_are_normalised(raw, expected):
    assert normalize_host(raw) == expected


@pytest.mark.parametrize("raw, expected", [
    ("/send", "/send"), ("//send", "/send"), ("/%73end", "/send"), ("/send/.", "/send/"), ("/x/../send", "/send"),
    ("/%2e%2e/send", "/send"), ("/./send", "/send"), ("/send?x=/../", "/send"), ("/a%2fb", "/a%2Fb"),
    ("/../../send", "/send"), ("send", "/send"), ("/se%6ed/", "/send/"),
])
def test_paths_are_normalised(raw, expected):
    assert normalize_path(raw) == expected


def _obs(method: str, url: str, transport: str = "http") -> Observation:
    return Observation(method=method, url=url, transport=transport)


def _names(destination: str, sni: str = "", host: str = "") -> tuple[tuple[str, str], ...]:
    return tuple((role, name) for role, name in (("destination", destination), ("sni", sni), ("host", host)) if name)


def test_a_vendor_rule_covers_every_path_method_and_transport_of_its_hosts():
    enforcer = Enforcer(Catalogue.load(), RuleBook([Rule("Refine", "vendor", "block")]))
    for method, path, transport in [("POST", "/send", "http"), ("POST", "/v2/send", "http"),
                                    ("POST", "/telemetry", "http"), ("GET", "/", "http"), ("WS", "/ws", "websocket")]:
        outcome = enforcer.decide(_obs(method, f"https://{HOST}{path}", transport), _names(HOST))
        assert outcome.action == "block", (method, path)
    claimed = enforcer.decide(_obs("POST", f"https://{HOST}//send"), _names(HOST))
    assert claimed.policy is not None and claimed.policy.id == "refine-v3-browser"
    unclaimed = enforcer.decide(_obs("POST", f"https://{HOST}/v2/send"), _names(HOST))
    assert unclaimed.policy is None and "no policy claims POST /v2/send" in unclaimed.decision.why
    assert enforcer.decide(_obs("GET", "https://example.org/"), _names("example.org")).decision is None


def test_a_policy_rule_covers_its_host_but_leaves_other_policies_channels_alone():
    enforcer = Enforcer(Catalogue.load(), RuleBook([Rule("refine-v3-browser", "policy", "block")]))
    assert enforcer.decide(_obs("GET", f"https://{HOST}/telemetry"), _names(HOST)).action == "allow"
    assert enforcer.decide(_obs("POST", f"https://{HOST}/v9"), _names(HOST)).action == "block"


def test_the_strictest_of_all_names_applies():
    enforcer = Enforcer(Catalogue.load(), RuleBook([Rule("Refine", "vendor", "block")]))
    for names in (_names("example.org", sni=HOST), _names("example.org", host=HOST),
                  _names(HOST, sni="example.org", host="example.org"), _names(HOST + ".", host="[v]x")):
        outcome = enforcer.decide(_obs("POST", "https://example.org/send"), names)
        assert outcome.action == "block", names
    named = enforcer.decide(_obs("POST", "https://example.org/send"), _names("example.org", host=HOST))
    assert "the Host header names telemetry.refine.dev" in named.decision.why


def test_a_rule_for_a_shared_host_decides_its_unclaimed_traffic():
    other = policy_from_data({
        "id": "other-metrics", "vendor": "Other", "product": "Other", "source": {"document": "o.md"},
        "match": {"hosts": ["telemetry.hasura.io"], "methods": ["POST"], "paths": ["/v1/other"]},
        "payload": {"location": "body", "encoding": ["json"]}, "declared": {}}, "test")
    catalogue = Catalogue.load()
    catalogue.add(other)
    obs, names = _obs("POST", "https://telemetry.hasura.io/v2/x"), _names("telemetry.hasura.io")
    strict = Enforcer(catalogue, RuleBook([Rule("Other", "vendor", "sinkhole"), Rule("Hasura", "vendor", "block")]))
    outcome = strict.decide(obs, names)
    assert outcome.action == "block" and "Hasura, Other (a host they share)" in outcome.decision.why
    hosted = Enforcer(catalogue, RuleBook([Rule("Hasura", "vendor", "block"),
                                           Rule("telemetry.hasura.io.", "host", "allow")]))
    assert hosted.decide(obs, names).action == "allow"


def test_a_shape_decision_waits_for_the_body_and_fails_closed_without_it():
    enforcer = Enforcer(Catalogue.load(), RuleBook([Rule("appsmith-installation", "policy", "block")]))
    obs, names = _obs("POST", "https://api.segment.io/v1/track"), _names("api.segment.io")
    head = enforcer.decide(obs, names)
    assert head.pending and head.action == "block"  # the strictest, until the body is read
    unreadable = enforcer.decide(obs, names, select=lambda candidates: None)
    assert not unreadable.pending and unreadable.action == "block"
    ping = next(p for p in Catalogue.load().policies if p.id == "appsmith-server-ping")
    chosen = enforcer.decide(obs, names, select=lambda candidates: next(p for p in candidates if p.id == ping.id))
    assert chosen.action == "allow" and chosen.policy is not None and chosen.policy.id == ping.id


def test_mismatch_messages():
    assert mismatch(_names(HOST, sni=HOST + ".", host=HOST.upper() + ":443")) is None
    assert mismatch(_names("93.184.216.34", sni=HOST, host=HOST)) is None  # transparent: an address
    text = mismatch(_names(HOST, host="example.org"))
    assert text and "example.org" in text and HOST in text
    assert "not a valid host name" in (mismatch(_names(HOST, host="[v]x")) or "")


def test_shape_selection_on_the_event_loop_is_bounded_and_keyless():
    from inspector.core.keys import Keyring
    from inspector.proxy.addon import SHAPE_MAX_BODY, TelemetryInspector

    addon = TelemetryInspector(Catalogue.load(), Keyring.from_paths([]))
    candidates = Catalogue.load().candidates(_obs("POST", "https://api.segment.io/v1/track"))
    big = Observation(method="POST", url="https://api.segment.io/v1/track",
                      body=b'{"event":"Installation Setup Complete","x":"' + b"a" * SHAPE_MAX_BODY + b'"}')
    assert addon._select(big, candidates) is None  # too large to read on the event loop: strictest
    small = Observation(method="POST", url="https://api.segment.io/v1/track",
                        body=b'{"event":"Instance Active","properties":{"instanceId":"x"}}')
    chosen = addon._select(small, candidates)
    assert chosen is not None and chosen.id == "appsmith-server-ping"
    assert len(addon._shape_pipeline().keyring) == 0  # never decrypts on the event loop


def test_decisions_are_memoised_by_what_they_rest_on_and_agree_with_fresh_ones():
    catalogue = Catalogue.load()
    rules = RuleBook([Rule("refine-v3-browser", "policy", "block"), Rule("Hasura", "vendor", "sinkhole"),
                      Rule("example.org", "host", "block"), Rule("appsmith-installation", "policy", "block")])
    requests = [
        (_obs("POST", f"https://{HOST}/send?x=1"), _names(HOST)),
        (_obs("GET", f"https://{HOST}/send"), _names(HOST)),
        (_obs("POST", f"https://{HOST}/v2/send"), _names(HOST)),
        (_obs("WS", f"https://{HOST}/send", "websocket"), _names(HOST)),
        (_obs("POST", f"https://{HOST}/send"), _names(HOST, sni="example.org")),
        (_obs("POST", f"https://{HOST}/send"), _names(HOST, host="telemetry.hasura.io")),
        (_obs("POST", "https://telemetry.hasura.io/v1/http"), _names("telemetry.hasura.io")),
        (_obs("GET", "https://example.org/"), _names("example.org")),
        (_obs("GET", "https://example.net/"), _names("example.net")),
        (_obs("POST", "https://api.segment.io/v1/track"), _names("api.segment.io")),
    ]
    for discover in (False, True):
        shared = Enforcer(catalogue, rules, discover)
        for obs, names in requests * 3:  # warm, then from the memo
            assert shared.decide(obs, names) == Enforcer(catalogue, rules, discover).decide(obs, names), obs
    shared = Enforcer(catalogue, rules)
    first = shared.decide(*requests[0])
    assert shared.decide(_obs("POST", f"https://{HOST}/send?x=2"), _names(HOST)) is first  # the query is not part
    # a shape read from the body is never memoised: the next body may have the other shape
    obs, names = requests[-1]
    ping = next(p for p in catalogue.policies if p.id == "appsmith-server-ping")
    assert shared.decide(obs, names, select=lambda c: next(p for p in c if p.id == ping.id)).policy.id == ping.id
    assert shared.decide(obs, names, select=lambda c: None).policy is None
    assert shared.decide(obs, names).pending  # and the head's outcome is its own
    # a policy added to the catalogue is seen at once
    assert shared.decide(*requests[8]).decision is None
    catalogue.add(policy_from_data({
        "id": "net-ping", "vendor": "Net", "product": "Net", "source": {"document": "n.md"},
        "match": {"hosts": ["example.net"], "methods": ["GET"], "paths": ["/"]},
        "payload": {"location": "body", "encoding": ["json"]}, "declared": {}}, "test"))
    assert shared.decide(*requests[8]).policy.id == "net-ping"
