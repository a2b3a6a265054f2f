"""The built-in policies (inspector/policies/*.yaml) against the vendors' own documents.

- every built-in policy loads and validates;
- every declared field, claim, encoding and opt-out citation quotes its seed document verbatim
  (whitespace normalised) — checked against the verbatim copies of the documents in fixtures/seeds/;
- every seed document's own sample (fixtures/payloads/seed/<policy-id>/*.json), sent as the real
  request (method, URL, encoding as the vendor's client sends it: docs/doc-vs-wire.md), is matched to exactly its policy and
  produces no violation and no warning — except where the document's sample breaks the
  document's own claim, asserted exactly (SELF_VIOLATIONS);
- the wire bodies the clients really send give the doc-vs-wire findings of docs/doc-vs-wire.md;
- for each policy, a planted violation gives the expected finding, citing the claim.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from jwcrypto import jwe, jwk

from inspector.core.keys import Keyring, LoadedKey
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, Policy, load_policy_file

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "inspector" / "policies"
SEED_COPY = ROOT / "fixtures" / "seeds"
SAMPLES = ROOT / "fixtures" / "payloads" / "seed"

EXPECTED_IDS = {
    "refine-v3-browser", "refine-v4-browser", "refine-cli", "refine-project-registration", "refine-superplate",
    "hasura-server", "hasura-server-metrics", "hasura-enterprise-server", "hasura-console", "hasura-cli",
    "appsmith-installation", "appsmith-server-ping", "appsmith-server-usage", "appsmith-client",
}
REFINE = "https://telemetry.refine.dev"
HASURA = "https://telemetry.hasura.io/v1/http"
HASURA_WS = "wss://telemetry.hasura.io/v1/ws"
SEGMENT = "https://api.segment.io"
JSON_CT = (("Content-Type", "application/json"),)
SEGMENT_AUTH = (("Authorization", "Basic " + base64.b64encode(b"WRITEKEY:").decode()),)

# ---------------------------------------------------------------- helpers


def norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def builtin_files() -> list[Path]:
    return sorted(POLICY_DIR.glob("*.yaml"))


CATALOGUE = Catalogue.load()
POLICIES = {p.id: p for p in CATALOGUE.policies if p.builtin}


def policy(pid: str) -> Policy:
    return POLICIES[pid]


def _make_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048, kid="test-key")


_KEY = _make_key()


def pipeline() -> Pipeline:
    """A fresh pipeline (fresh rate counters) over the whole built-in catalogue, with the test key."""
    return Pipeline(CATALOGUE, keyring=Keyring([LoadedKey(_KEY, "test key")]))


def as_jwe(payload: Any) -> bytes:
    """What @pankod/refine-core v3 posts: compact JWE, RSA-OAEP-256 + A256GCM (to the test key)."""
    token = jwe.JWE(json.dumps(payload, separators=(",", ":")).encode(),
                    protected='{"alg":"RSA-OAEP-256","enc":"A256GCM"}')
    token.add_recipient(_KEY)
    return token.serialize(compact=True).encode()


def b64(payload: Any) -> str:
    """Standard Base64 (btoa), not URL-encoded: `+`, `/`, `=` stay raw in the query."""
    return base64.b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def wire(pid: str, payload: Any, headers: tuple[tuple[str, str], ...] = ()) -> Observation:
    """`payload` sent as the real request of channel `pid` (docs/doc-vs-wire.md)."""
    body = json.dumps(payload, separators=(",", ":")).encode()
    if pid == "refine-v3-browser":
        return Observation("POST", f"{REFINE}/send", (("Accept", "application/text"),
                           ("Content-Type", "application/text"), *headers), as_jwe(payload))
    if pid == "refine-v4-browser":
        return Observation("GET", f"{REFINE}/telemetry?payload={b64(payload)}", headers)
    if pid in ("refine-cli", "refine-project-registration", "refine-superplate"):
        path = {"refine-cli": "/cli", "refine-project-registration": "/projects", "refine-superplate": "/superplate"}[pid]
        return Observation("POST", f"{REFINE}{path}", (*JSON_CT, *headers), body)
    if pid.startswith("hasura-") and pid != "hasura-console":
        return Observation("POST", HASURA, (*JSON_CT, ("User-Agent", "hasura-graphql-engine/v2.40.0"), *headers), body)
    if pid == "hasura-console":
        return Observation("WS", HASURA_WS, headers, body, transport="websocket", ws_index=0)
    path = {"appsmith-installation": "/v1/track", "appsmith-server-ping": "/v1/track",
            "appsmith-server-usage": "/v1/import/", "appsmith-client": "/v1/b"}[pid]
    content_type = (("Content-Type", "text/plain"),) if pid == "appsmith-client" else JSON_CT
    return Observation("POST", f"{SEGMENT}{path}", (*SEGMENT_AUTH, *content_type, *headers), body)


def as_sent(pid: str, sample: dict[str, Any]) -> list[Any]:
    """The document's sample as the client puts it on the wire (the clients' wrappers, docs/doc-vs-wire.md)."""
    if pid == "hasura-server":
        return [{"topic": "server", "data": sample}]
    if pid == "hasura-console":
        return [{"data": sample, "topic": "console"}]
    if pid == "hasura-cli":  # both body shapes
        return [{"topic": "cli", "data": sample}, {**sample, "topic": "cli"}]
    if pid in ("appsmith-server-usage", "appsmith-client"):
        return [{"batch": [sample]}]
    return [sample]


def problems(event) -> set[tuple[str, str]]:
    """(code, path) of the findings a reviewer must act on: violations and warnings."""
    return {(f.code, f.path) for f in event.findings if f.severity in ("violation", "warning")}


def found(event) -> set[tuple[str, str, str]]:
    return {(f.code, f.severity, f.path) for f in event.findings}


# ---------------------------------------------------------------- loading and validation


def test_every_builtin_policy_loads_and_validates():
    assert CATALOGUE.problems == [], [line for p in CATALOGUE.problems for line in p.lines()]
    assert set(POLICIES) == EXPECTED_IDS
    assert {path.stem for path in builtin_files()} == EXPECTED_IDS  # file name == id
    for path in builtin_files():
        loaded = load_policy_file(path)
        assert loaded.id == path.stem
        Draft202012Validator.check_schema(loaded.schema)  # the compiled declared tree is valid JSON Schema
        assert (SEED_COPY / Path(loaded.source.document).name).is_file(), loaded.source.document


def test_policies_check_cli_accepts_every_file():
    from click.testing import CliRunner

    from inspector.cli.main import cli
    for path in builtin_files():
        result = CliRunner().invoke(cli, ["policies", "check", str(path)])
        assert result.exit_code == 0, result.output
        assert "ok" in result.output


def test_each_request_shape_has_one_policy():
    """Channels sharing a host are told apart by method, path and shape."""
    pipe = pipeline()
    for pid, body in [("hasura-cli", {"topic": "cli", "data": {}}), ("hasura-server", {"topic": "server", "data": {}}),
                      ("hasura-server-metrics", {"topic": "server_metrics_v2", "data": {}}),
                      ("hasura-server-metrics", {"server_metrics": {}}),
                      ("hasura-enterprise-server", {"license_jti": "x", "metrics": {}})]:
        assert pipe.process(wire(pid, body)).policy == pid, body
    assert pipe.process(wire("hasura-console", {"topic": "console", "data": {}})).policy == "hasura-console"
    # the same console message over HTTP is not the console channel
    http = Observation("POST", "https://telemetry.hasura.io/v1/ws", JSON_CT, b'{"topic":"console","data":{}}')
    assert pipe.process(http).policy is None


# ---------------------------------------------------------------- citations


def _field_cites(tree: dict[str, Any], where: str) -> list[tuple[str, dict[str, Any] | None]]:
    out = []
    for name, given in (tree or {}).items():
        path = f"{where}.{name}" if where else name
        spec = given or {}
        out.append((path, spec.get("cite")))
        out.extend(_field_cites(spec.get("fields") or {}, path))
        for sub in ("items", "values"):
            if isinstance(spec.get(sub), dict):
                out.extend(_field_cites(spec[sub].get("fields") or {}, f"{path}[]"))
    return out


def _citations(p: Policy) -> list[tuple[str, dict[str, Any] | None]]:
    raw = p.raw
    cites = _field_cites(raw.get("declared") or {}, "declared") + _field_cites(raw.get("envelope") or {}, "envelope")
    cites += [(f"claims[{i}] {c['check']}", c.get("cite")) for i, c in enumerate(raw.get("claims", []))]
    if raw["payload"].get("encoding_cite"):
        cites.append(("payload.encoding_cite", raw["payload"]["encoding_cite"]))
    cites += [(f"opt_out[{i}]", o["cite"]) for i, o in enumerate(raw.get("opt_out", [])) if "cite" in o]
    return cites


def _check_quotes(seed_dir: Path, pid: str) -> None:
    p = policy(pid)
    texts: dict[str, str] = {}
    missing = []
    for where, cite in _citations(p):
        if not cite or not cite.get("quote") or not cite.get("section"):
            missing.append(f"{where}: no cite/section/quote")
            continue
        document = Path(cite.get("document") or p.source.document).name
        if document not in texts:
            texts[document] = norm((seed_dir / document).read_text(encoding="utf-8"))
        if norm(cite["quote"]) not in texts[document]:
            missing.append(f"{where}: quote not in {document}: {cite['quote']!r}")
    assert not missing, "\n".join(missing)


@pytest.mark.parametrize("pid", sorted(EXPECTED_IDS))
def test_every_declared_field_and_claim_quotes_its_seed(pid):
    _check_quotes(SEED_COPY, pid)
    assert policy(pid).claims, "every built-in policy carries at least one claim"


def test_a_wrong_quote_would_be_caught(tmp_path):
    """The quote check itself can fail."""
    text = (POLICY_DIR / "refine-v4-browser.yaml").read_text()
    assert "The telemetry system does not use cookies." in text
    broken = text.replace("The telemetry system does not use cookies.", "The telemetry system never uses cookies.")
    (tmp_path / "refine-v4-browser.yaml").write_text(broken)
    p = load_policy_file(tmp_path / "refine-v4-browser.yaml")
    seed = norm((SEED_COPY / Path(p.source.document).name).read_text())
    assert any(cite and norm(cite["quote"]) not in seed for _, cite in _citations(p))


# ---------------------------------------------------------------- the documents' own samples

SAMPLE_FILES = sorted(SAMPLES.glob("*/*.json"))

# Samples that break their own document's claims. The test asserts exactly these, no more, no less.
SELF_VIOLATIONS: dict[str, set[tuple[str, str]]] = {
    # "cannot be used to uniquely identify a user", yet the sample's userId is the machine's IP.
    "appsmith-installation/installation-started.json": {("pii", "userId")},
    # same: the ping's sample userId is the server's public IP address.
    "appsmith-server-ping/instance-active.json": {("pii", "userId")},
    # the sample's userId (56 hex digits) and username (59) are not SHA-256 digests (64).
    "appsmith-server-usage/execute-action-triggered.json": {
        ("not-hashed", "batch[0].userId"), ("not-hashed", "batch[0].properties.username")},
}


def test_every_policy_with_a_document_sample_has_a_fixture():
    dirs = {path.parent.name for path in SAMPLE_FILES}
    assert dirs <= EXPECTED_IDS
    # refine-cli and refine-superplate: the documents describe neither request
    assert dirs == EXPECTED_IDS - {"refine-cli", "refine-superplate", "hasura-server-metrics"}
    readme = (SAMPLES / "README.md").read_text()
    for path in SAMPLE_FILES:
        assert f"{path.parent.name}/{path.name}" in readme, f"{path} is not listed in the README"


@pytest.mark.parametrize("path", SAMPLE_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_document_sample_matches_exactly_its_policy_and_is_clean(path):
    pid = path.parent.name
    sample = json.loads(path.read_text())
    for payload in as_sent(pid, sample):
        obs = wire(pid, payload)
        candidates = [p.id for p in CATALOGUE.candidates(obs) if p.matches_shape(payload)]
        assert candidates[:1] == [pid], candidates  # the winning policy is this one
        assert sum(1 for c in candidates if policy(c).priority >= 0) == 1, candidates  # no other at equal rank
        event = pipeline().process(obs)
        assert event.policy == pid
        assert event.structured and isinstance(event.decoded, dict)
        assert problems(event) == SELF_VIOLATIONS.get(f"{pid}/{path.name}", set()), event.findings


def test_refine_v3_sample_without_the_key_is_unverifiable_not_a_false_alarm():
    sample = json.loads((SAMPLES / "refine-v3-browser" / "table.json").read_text())
    event = Pipeline(Catalogue.load()).process(wire("refine-v3-browser", sample))  # no key
    assert event.policy == "refine-v3-browser" and event.verdict == "encrypted"
    assert found(event) == {("unverifiable-encrypted", "info", "")}


def test_optional_email_is_reported_as_info_only():
    event = pipeline().process(wire("refine-project-registration", {"email": "dev@example.com"}))
    assert found(event) == {("optional-field", "info", "email"), ("pii", "info", "email")}
    optional = next(f for f in event.findings if f.code == "optional-field")
    assert "non-mandatory step" in optional.claim.citation.quote
    assert pipeline().process(wire("refine-project-registration", {})).findings == []


# ---------------------------------------------------------------- the wire vs the documents

PROVIDERS = {"auth": False, "auditLog": False, "live": False, "router": True, "data": True, "i18n": False,
             "notification": False, "accessControl": False}
CLI_DATA = {"uuid": "e462ce20-42dd-40fd-9549-edfb92f80455", "server_uuid": "a4d66fb2-f88d-457b-8db1-ea7a0b57921d",
            "execution_id": "ddfa9c33-0693-457d-9026-c7f456c43322", "os_platform": "linux", "os_arch": "amd64",
            "version": "v2.40.0", "server_version": "v2.40.0", "command": "hasura version", "is_error": False,
            "payload": None}
UID = "6799360d-a431-40c5-9f68-24592a9f07df"
METRICS_V2 = {"topic": "server_metrics_v2", "data": {
    "metadata_db_uid": UID, "instance_uid": UID, "hasura_version": "v2.40.0", "ci": None,
    "source_metadata": {"db_uid": UID, "backend_type": "postgres", "db_kind": "postgres", "db_version": "160002"},
    "metrics": {"tables": 2, "views": 1, "enum_tables": 0, "relationships": {"manual": 0, "auto": 2},
                "permissions": {"select": 2, "insert": 1, "update": 2, "delete": 2, "roles": 1},
                "event_triggers": 0, "functions": 1, "remote_schemas": 1, "service_timings": None,
                "actions": {}, "native_queries": {"with_parameters": 0, "without_parameters": 0},
                "stored_procedures": {}, "logical_models": {"count": 0}},
    "experimental_features": []}}
USAGE_EVENT = {"type": "track", "event": "execute_ACTION_TRIGGERED", "userId": "a" * 64,
               "messageId": "0f6b07ee-0717-4130-808c-c25b09c04681", "timestamp": "2024-05-02T10:15:35.610Z",
               "context": {"library": {"name": "analytics-java", "version": "3.4.0"}}, "integrations": {},
               "properties": {"pluginName": "PostgreSQL", "instanceId": "612460418944011a10fa5b", "username": "a" * 64}}
CLIENT_EVENT = {"type": "track", "event": "WIDGET_DROP", "anonymousId": "0b62ab60-02ad-4f69-a181-d9c5eb2f97fa",
                "properties": {"widgetType": "TABLE_WIDGET"}, "messageId": "ajs-next-1",
                "context": {"library": {"name": "analytics.js", "version": "npm:next-1.53.0"}, "locale": "en-US",
                            "userAgent": "Mozilla/5.0", "page": {"path": "/applications", "referrer": "", "search": "",
                                                                 "title": "Editor | Appsmith", "url": "http://localhost/applications"}},
                "timestamp": "2024-05-02T10:16:00.000Z", "integrations": {}}

# (channel, wire payload, the violations/warnings docs/doc-vs-wire.md lists for it)
WIRE_CASES = [
    ("refine-v4-browser", {"providers": PROVIDERS, "version": "4.58.0", "resourceCount": 2, "projectId": "abc-123"},
     {("type-mismatch", "providers"), ("undeclared-field", "projectId")}),
    ("refine-v3-browser", {"providers": PROVIDERS, "version": "3.65.0", "resourceCount": 2},
     {("type-mismatch", "providers")}),
    ("refine-cli", {"nodeEnv": "development", "nodeVersion": "v20.11.1", "os": "Linux", "osVersion": "6.5.0",
                    "command": "dev", "packages": [], "projectFramework": "vite", "projectId": "abc-123"},
     {("undeclared-field", k) for k in ("nodeEnv", "nodeVersion", "os", "osVersion", "command", "packages",
                                         "projectFramework", "projectId")}),
    ("refine-project-registration", {"answers": {"projectName": "x"}, "source": "CREATE_REFINE_APP"},
     {("undeclared-field", "answers"), ("undeclared-field", "source")}),
    ("refine-superplate", {"event": "generate", "properties": {}, "anonymousId": UID,
                           "originalTimestamp": "2024-05-02T10:00:00.000Z"},
     {("undeclared-field", k) for k in ("event", "properties", "anonymousId", "originalTimestamp")}),
    ("hasura-server", {"topic": "server", "data": {"db_uid": UID, "instance_uid": UID, "version": "v1.3.3", "ci": None,
                                                   "metrics": {"views": 1, "tables": 2, "functions": 1,
                                                               "permissions": {"roles": 1, "delete": 2, "insert": 1, "select": 2, "update": 2},
                                                               "relationships": {"auto": 2, "manual": 0},
                                                               "event_triggers": 0, "remote_schemas": 1}}},
     set()),
    ("hasura-server-metrics", METRICS_V2,
     {("undeclared-field", p) for p in ("data.source_metadata", "data.experimental_features",
                                         "data.metrics.enum_tables", "data.metrics.service_timings",
                                         "data.metrics.actions", "data.metrics.native_queries",
                                         "data.metrics.stored_procedures", "data.metrics.logical_models")}),
    ("hasura-server-metrics", {"server_metrics": {"resource_cpu": 2048, "resource_memory": 0,
                                                  "resource_checker_error_code": "CPU_MEMORY_INCONCLUSIVE"}},
     {("undeclared-field", "server_metrics")}),
    ("hasura-cli", {"topic": "cli", "data": CLI_DATA}, set()),
    ("hasura-cli", {**CLI_DATA, "command": "hasura console", "topic": "cli"}, set()),
    ("hasura-cli", {**CLI_DATA, "error": "", "topic": "cli"}, {("undeclared-field", "error")}),
    ("hasura-console", {"data": {"server_version": "v2.40.0", "url": "/data/schema/SCHEMA_NAME/tables/TABLE_NAME/browse",
                                 "console_mode": "cli", "console_type": "oss", "cli_uuid": UID, "server_uuid": UID,
                                 "event_type": "CLICK_EVENT", "event_data": {"id": "browse-rows"}}, "topic": "console"},
     {("undeclared-field", "data.console_type"), ("undeclared-field", "data.event_data")}),
    ("appsmith-server-ping", {"userId": "612460418944011a10fa5b", "context": {"ip": "203.0.113.7"},
                              "properties": {"instanceId": "612460418944011a10fa5b"}, "event": "Instance Active"},
     set()),
    ("appsmith-server-ping", {"userId": "i", "context": {"ip": "203.0.113.7"}, "event": "instance_stats",
                              "properties": {"instanceId": "i", "numApps": 3, "hostname": "appsmith-host",
                                             "emailDomainHash": "b" * 64}},
     {("type-mismatch", "event"), ("undeclared-field", "properties.numApps"),
      ("undeclared-field", "properties.hostname"), ("undeclared-field", "properties.emailDomainHash")}),
    ("appsmith-server-usage", {"batch": [USAGE_EVENT], "sentAt": "2024-05-02T10:15:36.001Z",
                               "context": {"library": {"name": "analytics-java", "version": "3.4.0"},
                                           "instanceId": "612460418944011a10fa5b"},
                               "sequence": 1, "writeKey": "WRITEKEY"},
     # writeKey and sequence are Segment's envelope (the policy says `collector: segment`):
     # known, not Appsmith's undeclared fields; context.instanceId is Appsmith's own
     {("undeclared-field", "context.instanceId")}),
    ("appsmith-client", {"writeKey": "WRITEKEY", "batch": [CLIENT_EVENT], "sentAt": "2024-05-02T10:16:01.000Z"},
     set()),
    ("appsmith-installation", {"anonymousId": UID, "event": "Installation Started", "properties": {"os": "ubuntu"}},
     set()),
]


@pytest.mark.parametrize("pid,payload,expected", WIRE_CASES, ids=[f"{c[0]}-{i}" for i, c in enumerate(WIRE_CASES)])
def test_wire_traffic_shows_the_documented_differences(pid, payload, expected):
    event = pipeline().process(wire(pid, payload))
    assert event.policy == pid
    assert problems(event) == expected, event.findings


def test_stored_row_fields_show_as_missing_info_on_the_wire():
    """The Hasura and Segment samples are stored rows: id/timestamp/receivedAt never come over the wire."""
    cli = pipeline().process(wire("hasura-cli", {"topic": "cli", "data": CLI_DATA}))
    assert {("missing-declared-field", "info", "data.id"), ("missing-declared-field", "info", "data.timestamp")} <= found(cli)
    ping = pipeline().process(wire("appsmith-server-ping", WIRE_CASES[12][1]))
    assert ("missing-declared-field", "info", "receivedAt") in found(ping)
    assert ("pii", "info", "context.ip") in found(ping)  # the public IP: shown by the document, reported as info


def test_refine_v4_payload_with_plus_and_slash_is_read_raw():
    payload = {"providers": PROVIDERS, "version": "4.58.0", "resourceCount": 2, "projectId": "shop>v2?"}
    assert any(c in b64(payload) for c in "+/")
    event = pipeline().process(wire("refine-v4-browser", payload))
    assert event.decoded["projectId"] == "shop>v2?"
    assert event.decoding == ["query:payload", "base64", "json"]


def test_segment_python_client_is_not_appsmith():
    """api.segment.io serves many vendors: /v1/batch (analytics-python) is no Appsmith channel."""
    obs = Observation("POST", f"{SEGMENT}/v1/batch", JSON_CT, json.dumps({"batch": [USAGE_EVENT]}).encode())
    event = pipeline().process(obs)
    assert event.policy is None and ("unknown-endpoint", "") not in problems(event)
    # it is Segment's batch endpoint: the collector's request, itemised
    assert event.collector == "segment"
    assert [(i["kind"], i["name"]) for i in event.items] == [("track", USAGE_EVENT["event"])]


def test_an_unlisted_event_on_segment_is_the_collectors_not_appsmiths():
    """An event name Appsmith's document does not list is no Appsmith installation event; on
    api.segment.io it is still Segment's, itemised, and not an unknown endpoint."""
    event = pipeline().process(wire("appsmith-installation", _with(
        _sample("appsmith-installation", "installation-started.json"), "event", "Installation Telemetry")))
    assert event.policy is None and event.collector == "segment"
    assert [(i["kind"], i["name"]) for i in event.items] == [("track", "Installation Telemetry")]
    assert "unknown-endpoint" not in {f.code for f in event.findings}


# ---------------------------------------------------------------- planted violations, one (or more) per policy

def _sample(pid: str, name: str) -> dict[str, Any]:
    return json.loads((SAMPLES / pid / name).read_text())


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(base))
    node = out
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[parts[-1]] = value
    return out


V4 = _sample("refine-v4-browser", "table.json")
COOKIE = (("Cookie", "_ga=GA1.1.1; sid=abc"),)

# (policy, payload builder, extra headers, code, path, the claim check it cites ('declared-fields' for the
#  field tree), a piece of the cited quote — None when the finding cites the policy's source document)
PLANTED: list[tuple[str, Callable[[], Any], tuple, str, str, str, str | None]] = [
    ("refine-v3-browser", lambda: _with(_sample("refine-v3-browser", "table.json"), "resourceCount", "2"), (),
     "type-mismatch", "resourceCount", "declared-fields", "resourceCount | number"),
    ("refine-v3-browser", lambda: _sample("refine-v3-browser", "table.json"), COOKIE,
     "cookie", "headers.Cookie", "no-cookies", "does not use cookies"),
    ("refine-v4-browser", lambda: {**V4, "screenResolution": "2560x1440"}, (),
     "undeclared-field", "screenResolution", "declared-fields", None),
    ("refine-v4-browser", lambda: {**V4, "version": "4.58.0 (jane.doe@example.com)"}, (),
     "pii", "version", "no-pii", "remain anonymous"),
    ("refine-cli", lambda: {"command": "dev /home/alice/secret-project"}, (),
     "pii", "command", "no-pii", "remain anonymous"),
    ("refine-superplate", lambda: {"event": "generate"}, COOKIE,
     "cookie", "headers.Cookie", "no-cookies", "does not use cookies"),
    ("refine-project-registration", lambda: {"email": "not an address"}, (),
     "type-mismatch", "email", "declared-fields", "[OPTIONAL]"),
    ("hasura-server", lambda: {"topic": "server", "data": _with(_sample("hasura-server", "server.json"), "metrics.tables", -3)}, (),
     "type-mismatch", "data.metrics.tables", "declared-fields", "the number of tables"),
    ("hasura-server", lambda: {"topic": "server", "data": _with(_sample("hasura-server", "server.json"), "ci", "build at ci.example-corp.com")}, (),
     "pii", "data.ci", "no-pii", "uniquely identify a user"),
    ("hasura-server-metrics", lambda: _with(METRICS_V2, "data.instance_uid", "my-laptop"), (),
     "type-mismatch", "data.instance_uid", "declared-fields", "randomly generated UUIDs"),
    ("hasura-enterprise-server", lambda: {**_sample("hasura-enterprise-server", "ee-source-metrics.json"), "admin_secret": "s3cr3t-value"}, (),
     "undeclared-field", "admin_secret", "declared-fields", None),
    ("hasura-enterprise-server", lambda: _with(_sample("hasura-enterprise-server", "ee-server-metrics.json"), "metrics.otel_enabled", "yes"), (),
     "type-mismatch", "metrics.otel_enabled", "declared-fields", '"otel_enabled" :'),
    ("hasura-console", lambda: {"topic": "console", "data": _with(_sample("hasura-console", "console.json"), "url", "/data/default/schema/public/tables/customers/modify")}, (),
     "not-anonymised", "data.url", "anonymised-values", "names of the tables, schemas"),
    ("hasura-console", lambda: {"topic": "console", "data": _with(_sample("hasura-console", "console.json"), "data.message", "cannot reach db.internal")}, (),
     "pii", "data.data.message", "no-pii", "uniquely identify a user"),
    ("hasura-cli", lambda: {"topic": "cli", "data": _with(_sample("hasura-cli", "cli.json"), "command", "hasura metadata apply --endpoint http://10.0.0.5:8080")}, (),
     "free-text", "data.command", "no-free-text", "arguments and flags are not recorded"),
    ("hasura-cli", lambda: {**_with(_sample("hasura-cli", "cli.json"), "command", "hasura migrate apply --admin-secret x"), "topic": "cli"}, (),
     "free-text", "command", "no-free-text", "arguments and flags are not recorded"),
    ("hasura-cli", lambda: {**CLI_DATA, "is_error": True, "error": "open /srv/metadata.yaml: no such file", "topic": "cli"}, (),
     "free-text", "error", "no-free-text", "Error messages"),
    ("appsmith-installation", lambda: _with(_sample("appsmith-installation", "installation-started.json"), "properties.os", "ubuntu on dev@example.com"), (),
     "pii", "properties.os", "no-pii", "strictly **anonymous**"),
    ("appsmith-server-ping", lambda: _with(_sample("appsmith-server-ping", "instance-active.json"), "properties.hostname", "appsmith-prod"), (),
     "undeclared-field", "properties.hostname", "declared-fields", None),
    ("appsmith-server-usage", lambda: {"batch": [_with(_with(_sample("appsmith-server-usage", "execute-action-triggered.json"),
                                                               "userId", "a" * 64), "properties.username", "jane.doe@example.com")]}, (),
     "not-hashed", "batch[0].properties.username", "hashed", "anonymous usage data"),
    ("appsmith-client", lambda: {"batch": [_with(_sample("appsmith-client", "applications-page-load.json"), "userId", "jane.doe@example.com")]}, (),
     "not-hashed", "batch[0].userId", "hashed", "anonymous behavioural data"),
    ("appsmith-client", lambda: {"batch": [_with(_sample("appsmith-client", "applications-page-load.json"), "properties", {"search": "jane.doe@example.com"})]}, (),
     "pii", "batch[0].properties.search", "no-pii", "strictly **anonymous**"),
]


@pytest.mark.parametrize("pid,build,headers,code,path,check,quote", PLANTED,
                         ids=[f"{p[0]}-{p[3]}-{i}" for i, p in enumerate(PLANTED)])
def test_planted_violation(pid, build, headers, code, path, check, quote):
    event = pipeline().process(wire(pid, build(), headers))
    hits = [f for f in event.findings if f.code == code and f.path == path]
    assert hits, event.findings
    finding = hits[0]
    if code == "unknown-endpoint":  # an event name the document does not list is no Appsmith installation event
        assert event.policy is None and finding.severity == "warning"
        return
    assert event.policy == pid
    assert finding.severity == "violation"
    assert finding.claim is not None and finding.claim.check == check
    citation = finding.claim.citation
    assert Path(citation.document).name == Path(policy(pid).source.document).name
    if quote is None:
        assert citation.title == policy(pid).source.title
    else:
        assert quote in citation.quote and citation.section


def test_refine_second_request_in_a_session_is_rate_exceeded():
    pipe = pipeline()
    first = pipe.process(wire("refine-v4-browser", V4))
    second = pipe.process(wire("refine-v4-browser", V4))
    assert not problems(first)
    rate = [f for f in second.findings if f.code == "rate-exceeded"]
    assert rate and "no consequent requests" in rate[0].claim.citation.quote


def test_appsmith_ping_more_often_than_every_six_hours_is_rate_exceeded():
    pipe = pipeline()
    ping = _sample("appsmith-server-ping", "instance-active.json")
    ping["userId"] = ping["properties"]["instanceId"] = "612460418944011a10fa5b"

    def make(t: float) -> Any:
        return pipe.process(Observation("POST", f"{SEGMENT}/v1/track", JSON_CT, json.dumps(ping).encode(), timestamp=t))

    assert not problems(make(1000.0))
    assert ("rate-exceeded", "") in problems(make(1000.0 + 3600))
    assert not problems(make(1000.0 + 3600 + 6 * 3600 + 1))


def test_opt_outs_come_from_the_documents():
    assert {o["name"] for o in policy("hasura-cli").opt_out} == {"HASURA_GRAPHQL_ENABLE_TELEMETRY", "enable_telemetry"}
    assert {o["name"] for o in policy("hasura-server").opt_out} == {"HASURA_GRAPHQL_ENABLE_TELEMETRY", "--enable-telemetry"}
    assert policy("refine-v4-browser").opt_out[0]["name"] == "disableTelemetry"
    assert policy("appsmith-server-usage").opt_out[0]["name"] == "APPSMITH_DISABLE_TELEMETRY"
    for pid in EXPECTED_IDS:
        assert policy(pid).opt_out, pid


def test_sinkhole_answers():
    from inspector.core.actions import sinkhole_answer
    registration = sinkhole_answer(wire("refine-project-registration", {}), policy("refine-project-registration").sinkhole)
    assert json.loads(registration.body) == {"projectId": None}
    pixel = sinkhole_answer(wire("refine-v4-browser", V4), policy("refine-v4-browser").sinkhole)
    assert pixel.body.startswith(b"GIF89a")
