"""Each finding code from a planted violation, on a synthetic policy (built-ins: test_builtin_policies)."""

from __future__ import annotations

import gzip
import json
import textwrap

import pytest

from inspector.core.observation import Observation
from inspector.core.pii import scan_text
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, parse_policy_text

POLICY = textwrap.dedent("""\
    id: demo-cli
    vendor: Demo
    product: Demo CLI
    source: {document: "demo.md", title: "Demo docs"}
    match:
      hosts: ["t.demo.example"]
      methods: [POST]
      paths: ["/v1/http"]
      shape:
        - {path: topic, in: [cli]}
    payload:
      location: body
      encoding: [json]
      encoding_cite: {section: How, quote: "plain JSON"}
      root: data
    envelope:
      topic: {type: string}
    declared:
      uuid: {type: string, format: uuid}
      command: {type: string}
      url: {type: string, optional: true}
      userId: {type: string, optional: true}
      email: {type: string, format: email, optional: true, pii: email}
      error: {type: string, optional: true, nullable: true}
      count: {type: integer, minimum: 0, optional: true}
    claims:
      - check: no-cookies
        cite: {section: Summary, quote: "does not use cookies"}
      - check: no-pii
        cite: {section: Summary, quote: "cannot be used to uniquely identify a user"}
      - check: max-requests
        count: 1
        per: session
        cite: {section: How, quote: "a single request"}
      - check: anonymised-values
        path: data.url
        pattern: "/schema/(?P<SCHEMA_NAME>[^/]+)(/tables/(?P<TABLE_NAME>[^/]+))?"
        cite: {section: Console, quote: "TABLE_NAME and SCHEMA_NAME"}
      - check: no-free-text
        path: data.command
        pattern: "^demo( [a-z][a-z0-9-]*)*$"
        cite: {section: CLI, quote: "arguments and flags are not recorded"}
      - check: no-free-text
        path: data.error
        pattern: "^$"
        cite: {section: CLI, quote: "Error messages are not recorded"}
      - check: hashed
        path: data.userId
        cite: {section: Usage, quote: "hashed"}
      - check: optional
        path: data.email
        cite: {section: Signup, quote: "[OPTIONAL]"}
    """)
UUID = "e462ce20-42dd-40fd-9549-edfb92f80455"
CLEAN = {"topic": "cli", "data": {"uuid": UUID, "command": "demo migrate apply"}}


def pipeline() -> Pipeline:
    return Pipeline(Catalogue([parse_policy_text(POLICY, "demo-cli.yaml")]))


def run(payload, headers=(), session="s", pipe=None, url="https://t.demo.example/v1/http", body=None):
    pipe = pipe or pipeline()
    raw = body if body is not None else json.dumps(payload).encode()
    return pipe.process(Observation("POST", url, headers=tuple(headers), body=raw, session=session))


def codes(event) -> set[tuple[str, str, str]]:
    return {(f.code, f.severity, f.path) for f in event.findings}


def with_data(**fields):
    return {"topic": "cli", "data": {**CLEAN["data"], **fields}}


def test_clean_payload_has_no_findings():
    event = run(CLEAN)
    assert event.policy == "demo-cli"
    assert event.findings == [] and event.verdict == "clean"


@pytest.mark.parametrize("payload,expected", [
    (with_data(extra=1), ("undeclared-field", "violation", "data.extra")),
    ({**CLEAN, "more": True}, ("undeclared-field", "violation", "more")),
    (with_data(uuid="not-a-uuid"), ("type-mismatch", "violation", "data.uuid")),
    (with_data(count=-1), ("type-mismatch", "violation", "data.count")),
    (with_data(command=7), ("type-mismatch", "violation", "data.command")),
    ({"topic": "cli", "data": {"command": "demo version"}}, ("missing-declared-field", "info", "data.uuid")),
    (with_data(command="demo deploy --endpoint x"), ("free-text", "violation", "data.command")),
    (with_data(error="ENOENT: /srv/app/config.yaml"), ("free-text", "violation", "data.error")),
    (with_data(url="/data/schema/public/tables/users/modify"), ("not-anonymised", "violation", "data.url")),
    (with_data(userId="dev@example.com"), ("not-hashed", "violation", "data.userId")),
    (with_data(email="dev@example.com"), ("optional-field", "info", "data.email")),
    (with_data(email="dev@example.com"), ("pii", "info", "data.email")),
    (with_data(command="demo run /home/alice/project"), ("pii", "violation", "data.command")),
])
def test_each_planted_violation(payload, expected):
    assert expected in codes(run(payload))


def test_placeholders_are_anonymised():
    event = run(with_data(url="/data/schema/SCHEMA_NAME/tables/TABLE_NAME/modify"))
    assert event.findings == []


def test_error_null_and_hash_ok():
    digest = "a" * 64
    assert run(with_data(error=None, userId=digest)).findings == []


def test_cookie_claim():
    event = run(CLEAN, headers=[("Cookie", "sid=abc; theme=dark")])
    cookie = [f for f in event.findings if f.code == "cookie"]
    assert cookie and cookie[0].severity == "violation" and cookie[0].evidence == "sid, theme"
    assert cookie[0].claim.citation.quote == "does not use cookies"


def test_rate_exceeded_per_session():
    pipe = pipeline()
    assert run(CLEAN, pipe=pipe, session="a").findings == []
    second = run(CLEAN, pipe=pipe, session="a")
    assert ("rate-exceeded", "violation", "") in codes(second)
    assert run(CLEAN, pipe=pipe, session="b").findings == []


def test_rate_exceeded_per_interval():
    policy = POLICY.replace("per: session", "per: 1h")
    pipe = Pipeline(Catalogue([parse_policy_text(policy, "x")]))
    def make(t):
        return pipe.process(Observation("POST", "https://t.demo.example/v1/http",
                                        body=json.dumps(CLEAN).encode(), timestamp=t))
    assert make(1000.0).findings == []
    assert "rate-exceeded" in {f.code for f in make(1000.0 + 1800).findings}
    assert make(1000.0 + 1800 + 3700).findings == []


def test_encoding_mismatch_is_reported_with_the_claim():
    event = run(None, body=__import__("base64").b64encode(json.dumps(CLEAN).encode()))
    mismatch = [f for f in event.findings if f.code == "encoding-mismatch"]
    assert mismatch and mismatch[0].claim.citation.quote == "plain JSON"


def test_content_encoding_is_not_an_encoding_mismatch():
    event = run(None, body=gzip.compress(json.dumps(CLEAN).encode()), headers=[("Content-Encoding", "gzip")])
    assert event.decoding == ["body", "gzip", "json"]
    assert event.findings == []


def test_unknown_endpoint_on_a_known_host():
    event = run(CLEAN, url="https://t.demo.example/v2/other")
    assert ("unknown-endpoint", "warning", "") in codes(event)
    assert event.policy is None and event.verdict == "unknown"
    # a shape that no policy describes on a known endpoint is unknown too
    assert "unknown-endpoint" in {f.code for f in run({"topic": "console", "data": {}}).findings}


def test_unmatched_hosts_get_pii_warnings_only():
    event = run({"email": "a@b.example.com"}, url="https://elsewhere.example/api/save")
    assert {(f.code, f.severity) for f in event.findings} == {("pii", "warning")}
    # a path typical of telemetry on a host no policy names: likely telemetry nobody described
    event = run({"email": "a@b.example.com"}, url="https://elsewhere.example/collect")
    assert {(f.code, f.severity) for f in event.findings} == {("pii", "warning"), ("unknown-endpoint", "warning")}


@pytest.mark.parametrize("text,kind", [
    ("mail me: jane.doe+x@example.co.uk", "email"),
    ("client 203.0.113.7 connected", "ipv4"),
    ("addr 2001:db8::8a2e:370:7334", "ipv6"),
    ("nic 00:1A:2B:3C:4D:5E", "mac"),
    ("/Users/jane/code/app", "home-path"),
    ("C:\\Users\\jane\\app", "home-path"),
    ("build on janes-macbook.local", "hostname"),
    ("fetch from db.internal.example.com failed", "hostname"),
    ("Authorization: Bearer abcdefghijklmnop1234", "token"),
    ("eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U", "jwt"),
    ("key AKIAIOSFODNN7EXAMPLE", "api-key"),
    ("card 4111 1111 1111 1111", "card-number"),
])
def test_pii_detectors(text, kind):
    assert kind in {hit.kind for hit in scan_text(text)}


@pytest.mark.parametrize("text", [
    "4.58.0", "v1.0.0-alpha36", "e462ce20-42dd-40fd-9549-edfb92f80455", "a" * 64, "hasura version",
    "main.js:1:3", "2019-01-21T19:43:33.63838+00:00", "1234567890123", "/data/schema/SCHEMA_NAME/tables",
    "Uncaught TypeError: something is not a function", "70280e5dd9e61e5e91526ac8704bbd68d3f75ebad67ba439f4c354d7",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
])
def test_no_false_alarms(text):
    assert scan_text(text) == []


def test_secret_named_fields():
    assert {h.kind for h in scan_text("hunter2hunter2", key="admin_secret")} == {"token"}
    assert scan_text("hunter2hunter2", key="command") == []


PII_SAMPLES = [
    "dev@example.com", "10.1.2.3", "Chrome/124.0.0.0", "fe80::1ff:fe23:4567:890a", "00:1A:2B:3C:4D:5E",
    "00-1A-2B-3C-4D-5E", "/home/alice/app", "C:\\Users\\bob\\x", "build.corp", "api.example.com",
    "Bearer abcdefghijklmnop", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlX2hlcmU",
    "sk_live_abcdefghijklmnop", "AKIAABCDEFGHIJKLMNOP", "4111 1111 1111 1111", "4.47.1", "auth", "",
]


@pytest.mark.parametrize("text", PII_SAMPLES)
def test_pii_prefilter_changes_nothing(text):
    assert scan_text(text) == scan_text(text, prefilter=False)
    assert scan_text(f"x {text} y", key="token") == scan_text(f"x {text} y", key="token", prefilter=False)
