"""Every built-in channel's wire format, as the vendors' clients really send it.

Each `WireRequest` reproduces one request as the vendor's client sends it (host, path,
method, headers, encoding, payload shape; docs/doc-vs-wire.md lists them per channel). Most are clean samples; a few carry a planted
violation and name the finding code they must produce in `expect`. Only the TEST keys in
fixtures/keys are used for the JWE samples, never a vendor's key.
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwcrypto import jwe, jwk

from inspector.core.observation import Observation
from inspector.emit.keys import OTHER_PUBLIC_JWK, PUBLIC_JWK, load_public_keys, write_test_keys

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_KEYS_DIR = ROOT / "fixtures" / "keys"

REFINE_HOST = "telemetry.refine.dev"
HASURA_HOST = "telemetry.hasura.io"
SEGMENT_HOST = "api.segment.io"
TELEMETRY_HOSTS = (REFINE_HOST, HASURA_HOST, SEGMENT_HOST, "cdn.segment.com")

BROWSER_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/124.0.0.0 Safari/537.36")
# refine v3's `jose` protected header, exactly as the client serialises it.
REFINE_V3_HEADER = '{"alg":"RSA-OAEP-256","enc":"A256GCM"}'
SEGMENT_WRITE_KEY = "TESTWRITEKEYappsmith0000000000"  # a made-up Segment write key
SEGMENT_AUTH = "Basic " + base64.b64encode(f"{SEGMENT_WRITE_KEY}:".encode()).decode("ascii")


@dataclass(frozen=True)
class WireRequest:
    """One request (or one WebSocket connection) a vendor's client makes."""

    channel: str            # the built-in policy id it should match
    name: str               # sample name, e.g. "clean", "with-email", "jwe"
    method: str             # "GET"/"POST"; "WS" for a WebSocket
    url: str                # the real vendor URL (https://… or wss://…)
    headers: tuple[tuple[str, str], ...]
    body: bytes = b""
    ws_messages: tuple[str, ...] = ()   # WebSocket: text messages the client sends
    expect: tuple[str, ...] = ()        # finding codes this sample must produce (planted violations)
    description: str = ""

    @property
    def host(self) -> str:
        return self.url.split("://", 1)[1].split("/", 1)[0].split(":", 1)[0].lower()

    @property
    def target(self) -> str:
        """Path and query, exactly as on the wire."""
        rest = self.url.split("://", 1)[1]
        return "/" + rest.split("/", 1)[1] if "/" in rest else "/"


def _json(value: Any) -> bytes:
    """Compact JSON, as JSON.stringify / Go's encoding/json write it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _jwe(plaintext: bytes, key: jwk.JWK) -> str:
    token = jwe.JWE(plaintext, protected=REFINE_V3_HEADER)
    token.add_recipient(key)
    return str(token.serialize(compact=True))


def _b64(data: bytes) -> str:
    """Standard Base64, as the browser's btoa: `+`, `/` and `=` kept raw."""
    return base64.b64encode(data).decode("ascii")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _keys(keys_dir: Path | None) -> tuple[jwk.JWK, jwk.JWK]:
    directory = keys_dir if keys_dir is not None else DEFAULT_KEYS_DIR
    if not (directory / PUBLIC_JWK).exists() or not (directory / OTHER_PUBLIC_JWK).exists():
        if keys_dir is not None:
            raise FileNotFoundError(f"{directory}: no {PUBLIC_JWK} / {OTHER_PUBLIC_JWK} (run fixtures/make_keys.py)")
        write_test_keys(directory)
    return load_public_keys(directory)


# ---------------------------------------------------------------- Refine

REFINE_PROVIDERS = {"auth": False, "auditLog": False, "live": False, "router": True, "data": True,
                    "i18n": False, "notification": False, "accessControl": False}
REFINE_PROJECT_ID = "abc-123"


def _refine(keys_dir: Path | None) -> list[WireRequest]:
    test_key, other_key = _keys(keys_dir)
    v3_plain = _json({"providers": REFINE_PROVIDERS, "version": "3.65.0", "resourceCount": 2})
    v3_headers = (("Accept", "application/text"), ("Content-Type", "application/text"),
                  ("User-Agent", BROWSER_UA), ("Origin", "http://localhost:3000"))
    v3_url = f"https://{REFINE_HOST}/send"

    def pixel(payload: dict[str, Any]) -> str:
        return f"https://{REFINE_HOST}/telemetry?payload={_b64(_json(payload))}"

    v4 = {"providers": REFINE_PROVIDERS, "version": "4.58.0", "resourceCount": 2, "projectId": REFINE_PROJECT_ID}
    # A browser's <img> request: no custom headers.
    pixel_headers = (("User-Agent", BROWSER_UA), ("Accept", "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"),
                     ("Referer", "http://localhost:5173/"))
    cli = {"nodeEnv": "development", "nodeVersion": "v20.11.1", "os": "Linux", "osVersion": "6.5.0-35-generic",
           "command": "dev", "packages": [{"name": "@refinedev/core", "version": "4.58.0"},
                                           {"name": "@refinedev/cli", "version": "2.16.36"}],
           "projectFramework": "vite", "projectId": REFINE_PROJECT_ID}
    node_headers = (("Content-Type", "application/json"), ("User-Agent", "node"), ("Accept", "*/*"))
    answers = {"projectName": "my-refine-app", "uiFramework": "antd", "dataProvider": "data-provider-simple-rest",
               "authProvider": "none", "routerProvider": "react-router"}
    return [
        WireRequest("refine-v3-browser", "jwe", "POST", v3_url, v3_headers, _jwe(v3_plain, test_key).encode("ascii"),
                    description="@pankod/refine-core 3.65: JWE (RSA-OAEP-256, A256GCM) to the bundled TEST key"),
        WireRequest("refine-v3-browser", "jwe-unknown-key", "POST", v3_url, v3_headers,
                    _jwe(v3_plain, other_key).encode("ascii"), expect=("unverifiable-encrypted",),
                    description="JWE encrypted to a key whose private half nobody has (as with Refine's real key)"),
        WireRequest("refine-v4-browser", "clean", "GET", pixel(v4), pixel_headers,
                    description="@refinedev/core 4.58 pixel: standard Base64 JSON, raw (not URL-encoded) in ?payload="),
        WireRequest("refine-v4-browser", "plus-slash", "GET", pixel(v4 | {"projectId": "shop>v2?"}), pixel_headers,
                    description="a projectId whose Base64 holds raw `+` and `/` (from `>`, `?`, `~` or non-ASCII): "
                                "read the raw query, parse_qs would turn `+` into a space"),
        WireRequest("refine-v4-browser", "no-project-id", "GET",
                    pixel({k: v for k, v in v4.items() if k != "projectId"} | {"version": "4.18.0"}),
                    pixel_headers, description="older 4.x (4.1–4.36): no projectId"),
        WireRequest("refine-v4-browser", "email-in-project-id", "GET",
                    pixel(v4 | {"projectId": "jane.doe@example.com"}), pixel_headers, expect=("pii",),
                    description="planted: an e-mail address in the free-text projectId field"),
        WireRequest("refine-v4-browser", "with-cookie", "GET", pixel(v4),
                    (*pixel_headers, ("Cookie", "_ga=GA1.1.123456789.1700000000; refine_session=s%3Aabc123")),
                    expect=("cookie",), description="planted: the pixel request carries the site's cookies"),
        WireRequest("refine-v4-browser", "undeclared-field", "GET",
                    pixel(v4 | {"screenResolution": "2560x1440"}), pixel_headers, expect=("undeclared-field",),
                    description="planted: a field neither the docs nor the real client have"),
        WireRequest("refine-cli", "clean", "POST", f"https://{REFINE_HOST}/cli", node_headers, _json(cli),
                    description="@refinedev/cli after `refine dev`"),
        WireRequest("refine-project-registration", "without-email", "POST", f"https://{REFINE_HOST}/projects",
                    node_headers, _json({"answers": answers, "source": "CREATE_REFINE_APP"}),
                    description="create-refine-app, e-mail step skipped (the key is absent)"),
        WireRequest("refine-project-registration", "with-email", "POST", f"https://{REFINE_HOST}/projects",
                    node_headers, _json({"email": "jane.doe@example.com", "answers": answers, "source": "CREATE_REFINE_APP"}),
                    description="create-refine-app, the developer typed an e-mail (declared optional)"),
        WireRequest("refine-superplate", "generate", "POST", f"https://{REFINE_HOST}/superplate", node_headers,
                    _json({"event": "generate", "properties": {"source": "CREATE_REFINE_APP", **answers},
                           "anonymousId": "7d1c2b3a-4e5f-4a6b-8c7d-9e0f1a2b3c4d",
                           "originalTimestamp": "2024-05-02T10:00:00.000Z"}),
                    description="create-refine-app's superplate generator event (opt-out: --disable-telemetry)"),
    ]


# ---------------------------------------------------------------- Hasura

INSTANCE_UID = "6799360d-a431-40c5-9f68-24592a9f07df"
DB_UID = "dddff371-dab2-450f-9969-235bca66dab1"
CLI_UUID = "e462ce20-42dd-40fd-9549-edfb92f80455"
SERVER_UUID = "a4d66fb2-f88d-457b-8db1-ea7a0b57921d"


def _hasura() -> list[WireRequest]:
    url = f"https://{HASURA_HOST}/v1/http"
    server_headers = (("Content-Type", "application/json"), ("User-Agent", "hasura-graphql-engine/v2.40.0"))
    metrics_v2 = {
        "topic": "server_metrics_v2",
        "data": {
            "metadata_db_uid": DB_UID, "instance_uid": INSTANCE_UID, "hasura_version": "v2.40.0", "ci": None,
            "source_metadata": {"db_uid": "1b2c3d4e-5f60-4718-9a0b-1c2d3e4f5a6b", "backend_type": "postgres",
                                "db_kind": "postgres", "db_version": "160002"},
            "metrics": {"tables": 2, "views": 1, "enum_tables": 0, "relationships": {"manual": 0, "auto": 2},
                        "permissions": {"select": 2, "insert": 1, "update": 2, "delete": 2, "roles": 1},
                        "event_triggers": 0, "functions": 1, "remote_schemas": 1, "service_timings": None,
                        "actions": {"synchronous": 0, "asynchronous": 0, "query_actions": 0,
                                    "type_relationships": 0, "custom_types": 0},
                        "native_queries": {"with_parameters": 0, "without_parameters": 0},
                        "stored_procedures": {"with_parameters": 0, "without_parameters": 0},
                        "logical_models": {"count": 0}},
            "experimental_features": [],
        },
    }
    server_row = {"server_metrics": {"resource_cpu": 2048, "resource_memory": 0,
                                     "resource_checker_error_code": "CPU_MEMORY_INCONCLUSIVE"}}
    v1_server = {"topic": "server", "data": {
        "db_uid": DB_UID, "instance_uid": INSTANCE_UID, "version": "v1.3.3", "ci": "TRAVIS",
        "metrics": {"views": 1, "tables": 2, "functions": 1,
                    "permissions": {"roles": 1, "delete": 2, "insert": 1, "select": 2, "update": 2},
                    "relationships": {"auto": 2, "manual": 0}, "event_triggers": 0, "remote_schemas": 1}}}
    enterprise = {
        "license_jti": "e86e5a54-ad3b-49e6-98ca-ab34b0a50f8f", "client_id": None,
        "metadata_db_uid": "4492082b-a2d6-4d4c-81e5-f481b2aea669", "instance_uid": "f6d67a85-4a4f-4897-a767-89a86253b59c",
        "sample_uid": "2a18421a-baff-466b-bf34-b7fd6a5c76c8", "hasura_version": "v2.23.0",
        "metrics": {"backend_type": "postgres", "read_replicas": 0, "health_check_enabled": False, "tables": 2,
                    "views": 0, "enum_tables": 0, "relationships_manual": 0, "relationships_auto": 1,
                    "permissions_select": 1, "permissions_insert": 0, "permissions_update": 0,
                    "permissions_delete": 0, "permissions_roles": 1, "event_triggers": 0, "functions": 0,
                    "native_queries": 0, "query_tags_enabled": False, "connection_templates_enabled": False},
    }
    cli_data = {"uuid": CLI_UUID, "server_uuid": SERVER_UUID, "execution_id": "ddfa9c33-0693-457d-9026-c7f456c43322",
                "os_platform": "linux", "os_arch": "amd64", "version": "v2.40.0", "server_version": "v2.40.0",
                "command": "hasura version", "is_error": False, "payload": None}
    go_ua = ("User-Agent", "Go-http-client/1.1")
    console_headers = (("Origin", "http://localhost:9695"), ("User-Agent", BROWSER_UA),
                       ("Cache-Control", "no-cache"), ("Pragma", "no-cache"))

    def console(event_type: str, url_path: str, event_data: Any) -> str:
        return json.dumps({"data": {"server_version": "v2.40.0", "url": url_path, "console_mode": "cli",
                                    "console_type": "oss", "cli_uuid": CLI_UUID, "server_uuid": SERVER_UUID,
                                    "event_type": event_type, "event_data": event_data},
                           "topic": "console"}, separators=(",", ":"))

    ws_url = f"wss://{HASURA_HOST}/v1/ws"
    return [
        WireRequest("hasura-server-metrics", "per-source", "POST", url, server_headers, _json(metrics_v2),
                    description="graphql-engine v2: one server_metrics_v2 POST per data source, every 24 h"),
        WireRequest("hasura-server-metrics", "server-row", "POST", url, server_headers, _json(server_row),
                    description="graphql-engine v2: the server row, no topic wrapper"),
        WireRequest("hasura-server", "v1-server", "POST", url,
                    (("Content-Type", "application/json"), ("User-Agent", "hasura-graphql-engine/v1.3.3")),
                    _json(v1_server), description="graphql-engine v1.x: topic `server`"),
        WireRequest("hasura-enterprise-server", "ee-metrics", "POST", url,
                    (("Content-Type", "application/json"), ("User-Agent", "hasura-graphql-engine/v2.23.0-ee")),
                    _json(enterprise),
                    description="[inferred] no EE capture was available: the documented EE sample, sent as the body"),
        WireRequest("hasura-cli", "clean-wrapped", "POST", url, (("Content-Type", "application/json"), go_ua),
                    _json({"topic": "cli", "data": cli_data}), description="older CLI: {topic, data} body"),
        WireRequest("hasura-cli", "clean-flat", "POST", url, (go_ua,),
                    _json({**cli_data, "command": "hasura console", "topic": "cli"}),
                    description="newer CLI: flattened body with topic, no Content-Type [inferred]"),
        WireRequest("hasura-cli", "flags-in-command", "POST", url, (("Content-Type", "application/json"), go_ua),
                    _json({"topic": "cli", "data": {
                        **cli_data, "command": "hasura metadata apply --endpoint http://localhost:8080 "
                                              "--skip-update-check --database-name default"}}),
                    expect=("free-text",), description="planted: flags and arguments in `command`"),
        WireRequest("hasura-console", "clean", "WS", ws_url, console_headers, ws_messages=(
            console("CLICK_EVENT", "/data/schema/SCHEMA_NAME/tables/TABLE_NAME/browse", {"id": "browse-rows"}),
            console("RUN_TIME_ERROR", "/data/schema/SCHEMA_NAME/tables/TABLE_NAME/modify",
                    {"message": "Uncaught TypeError: something is not a function", "stack": [" at main.js:1:3"]}),
        ), description="console WebSocket: two events, names replaced by placeholders"),
        WireRequest("hasura-console", "real-table-name", "WS", ws_url, console_headers, ws_messages=(
            console("CLICK_EVENT", "/data/default/schema/public/tables/customers/modify", {"id": "modify-table"}),
        ), expect=("not-anonymised",), description="planted: a real schema/table name in `url`"),
    ]


# ---------------------------------------------------------------- Appsmith (Segment)

APPSMITH_INSTANCE = "612460418944011a10fa5b"
APPSMITH_USER = "jane.doe@example.com"


def _appsmith() -> list[WireRequest]:
    track = f"https://{SEGMENT_HOST}/v1/track"
    server_headers = (("Authorization", SEGMENT_AUTH), ("Content-Type", "application/json"),
                      ("User-Agent", "Java/17.0.10"))
    install_headers = (("Authorization", SEGMENT_AUTH), ("Content-Type", "application/json"),
                       ("User-Agent", "curl/7.81.0"), ("Accept", "*/*"))
    install_id = "5b8c4d2e-0f3a-4e1b-9c7d-2a6f8e1b3c4d"
    ping = {"userId": APPSMITH_INSTANCE, "context": {"ip": "203.0.113.7"},
            "properties": {"instanceId": APPSMITH_INSTANCE}, "event": "Instance Active"}
    stats = {"userId": APPSMITH_INSTANCE, "context": {"ip": "203.0.113.7"}, "event": "instance_stats",
             "properties": {"instanceId": APPSMITH_INSTANCE, "numOrgs": 1, "numApps": 3, "numPages": 7,
                            "numActions": 12, "numDatasources": 2, "numUsers": 4, "numPublicApps": 0,
                            "version": "v1.9.48", "edition": "CE", "cloudProvider": "local", "efs": "Absent",
                            "tool": "docker", "hostname": "appsmith-host", "deployedAt": "2024-05-02T10:11:12Z",
                            "adminEmailDomainHash": _sha256("example.com"), "emailDomainHash": _sha256("example.com")}}

    def usage(user_id: str) -> bytes:
        event = {"type": "track", "event": "execute_ACTION_TRIGGERED", "userId": user_id,
                 "messageId": "0f6b07ee-0717-4130-808c-c25b09c04681",
                 "timestamp": "2024-05-02T10:15:35.610Z", "context": {"library": {"name": "analytics-java",
                                                                                  "version": "3.4.0"}},
                 "integrations": {},
                 "properties": {"appId": "612465f87b2230debedfc6", "appMode": "edit", "pageId": "612465802230debedfc8",
                                "pluginName": "PostgreSQL", "type": "DB", "isSuccessfulExecution": True,
                                "timeElapsed": 8, "instanceId": APPSMITH_INSTANCE, "originService": "appsmith-server",
                                "username": user_id}}
        return _json({"batch": [event], "sentAt": "2024-05-02T10:15:36.001Z",
                      "context": {"library": {"name": "analytics-java", "version": "3.4.0"},
                                  "instanceId": APPSMITH_INSTANCE},
                      "sequence": 1, "writeKey": SEGMENT_WRITE_KEY})

    usage_headers = (("Authorization", SEGMENT_AUTH), ("Content-Type", "application/json; charset=utf-8"),
                     ("User-Agent", "analytics-java/3.4.0"))
    client_event = {"type": "track", "event": "WIDGET_DROP", "anonymousId": "0b62ab60-02ad-4f69-a181-d9c5eb2f97fa",
                    "properties": {"widgetType": "TABLE_WIDGET"},
                    "context": {"library": {"name": "analytics.js", "version": "npm:next-1.53.0"},
                                "locale": "en-US", "userAgent": BROWSER_UA,
                                "page": {"path": "/applications", "referrer": "", "search": "",
                                         "title": "Editor | Appsmith", "url": "http://localhost/applications"}},
                    "messageId": "ajs-next-8f2c1b0e5d4a49c3a2b1c0d9e8f7a6b5",
                    "timestamp": "2024-05-02T10:16:00.000Z", "integrations": {}}
    return [
        WireRequest("appsmith-installation", "installation-started", "POST", track, install_headers,
                    _json({"anonymousId": install_id, "event": "Installation Started",
                           "properties": {"os": "ubuntu"}}),
                    description="[inferred] install script (curl): Segment track, anonymous id"),
        WireRequest("appsmith-server-ping", "instance-active", "POST", track, server_headers, _json(ping),
                    description="server ping every 6 h: no messageId/timestamp, the server's public IP in context.ip"),
        WireRequest("appsmith-server-ping", "instance-stats", "POST", track, server_headers, _json(stats),
                    description="daily instance_stats: counts, deployment facts, hashed domains (none in the docs)"),
        WireRequest("appsmith-server-usage", "hashed-user", "POST", f"https://{SEGMENT_HOST}/v1/import/",
                    usage_headers, usage(_sha256(APPSMITH_USER)),
                    description="analytics-java batch; userId = sha256hex(username)"),
        WireRequest("appsmith-server-usage", "unhashed-user", "POST", f"https://{SEGMENT_HOST}/v1/import/",
                    usage_headers, usage(APPSMITH_USER), expect=("not-hashed",),
                    description="planted: the e-mail address itself as userId"),
        WireRequest("appsmith-client", "batch", "POST", f"https://{SEGMENT_HOST}/v1/b",
                    (("Content-Type", "text/plain"), ("Authorization", SEGMENT_AUTH), ("User-Agent", BROWSER_UA),
                     ("Origin", "http://localhost")),
                    _json({"writeKey": SEGMENT_WRITE_KEY, "batch": [client_event],
                           "sentAt": "2024-05-02T10:16:01.000Z"}),
                    description="opt-in browser client (@segment/analytics-next), batched, text/plain"),
    ]


def wire_requests(keys_dir: Path | None = None) -> list[WireRequest]:
    """Every channel: clean samples first per channel, then planted violations.

    `keys_dir` holds refine-test-public.jwk and other-rsa.jwk (default fixtures/keys,
    generated there when missing). The JWE samples are freshly encrypted on each call.
    """
    return [*_refine(keys_dir), *_hasura(), *_appsmith()]


def channels() -> list[str]:
    """The policy ids the samples cover, in order."""
    seen: dict[str, None] = {}
    for request in wire_requests():
        seen.setdefault(request.channel, None)
    return list(seen)


def observation_of(req: WireRequest) -> list[Observation]:
    """The Observations a capture of `req` holds: one per HTTP request, one per WebSocket message."""
    if not req.ws_messages:
        return [Observation(method=req.method, url=req.url, headers=req.headers, body=req.body,
                            source=f"{req.channel}/{req.name}")]
    return [Observation(method="WS", url=req.url, headers=req.headers, body=message.encode("utf-8"),
                        transport="websocket", ws_index=index, source=f"{req.channel}/{req.name}.{index}")
            for index, message in enumerate(req.ws_messages)]
