"""Datadog browser intake: what the browser SDKs (RUM, logs, session replay, profiling) send.

Confirmed in npm `@datadog/browser-rum` / `@datadog/browser-logs` 7.16.2 and their
`@datadog/js-core` 0.0.19 / `@datadog/browser-core` 7.16.2:
- js-core/cjs/transport/intakeSites.js, endpointBuilder.js: the host is `browser-intake-` + the
  site with its dots but the last turned into dashes (`datadoghq.com` →
  `browser-intake-datadoghq.com`, `us5.datadoghq.com` → `browser-intake-us5-datadoghq.com`,
  `datadoghq.eu`, `ddog-gov.com`, `us2.ddog-gov.com`, …), some calls on a subdomain of it
  (`quota.` for profiling, `sdk-configuration.` for remote configuration); the path
  `/api/v2/<track>` (`rum`, `logs`, `replay`, `profile`); the query `ddsource=browser`,
  `dd-api-key=<client token>`, `dd-evp-origin-version`, `dd-evp-origin=browser`,
  `dd-request-id`, `dd-evp-encoding=deflate` when compressed, for RUM `batch_time`, `_dd.api`.
- browser-core/cjs/transport/batch.js: the body is one JSON event per line (NDJSON), posted by
  fetch (or sendBeacon on page exit) with no Content-Encoding; compressed bodies
  (`compressIntakeRequests`) come from browser-rum's deflate worker
  (cjs/domain/deflate/deflateWorker.js: pako with `windowBits: 15`, i.e. zlib-wrapped,
  sync-flushed, its trailer the final empty block and the Adler-32).
- browser-core/cjs/transport/sendWithRetryStrategy.js: retried only on status 0 while offline,
  408, 429 and 5xx; any other answer is final.
- replay and profiles are multipart/form-data: a JSON `event` part with the deflated recording
  (`segment`) or the profile beside it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors import _ndjson
from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer, raw_query_param
from inspector.core.observation import Observation

if TYPE_CHECKING:
    from inspector.core.pipeline import Pipeline

_HOST = re.compile(r"^(?:[a-z0-9-]+\.)?browser-intake-(?:[a-z0-9]+-)?(?:datadoghq\.com|datadoghq\.eu|ddog-gov\.com)$")
# RUM event type → item kind
_RUM_KINDS = {"view": "page", "action": "track", "error": "exception", "resource": "event",
              "long_task": "event", "vital": "metric", "telemetry": "event", "view_update": "page"}
_RUM_IDS = {"user": "usr.id", "anonymous": "usr.anonymous_id", "session": "session.id",
            "trace": "_dd.trace_id"}
_LOG_IDS = {"user": "usr.id", "anonymous": "usr.anonymous_id", "session": "session_id"}
# What every RUM event carries about where it came from (its item's context).
_RUM_CONTEXT = ("application", "view", "session", "service", "version", "source", "device", "os",
                "display", "connectivity", "tab", "privacy")
# A browser log's own fields: everything else at its top level is the app's attributes.
_LOG_ENVELOPE = {"message", "status", "origin", "date", "service", "version", "env", "ddtags", "view", "usr",
                 "session_id", "session", "tab", "_dd", "error", "logger", "http", "account", "application_id",
                 "view_id", "user_action", "source"}
MAX_PARTS = 16


@register
class DatadogBrowser(Collector):
    name = "datadog"
    title = "Datadog"
    owner = "Datadog"
    category = "observability"
    hosts = ("browser-intake-datadoghq.com", "browser-intake-*-datadoghq.com", "browser-intake-datadoghq.eu",
             "browser-intake-ddog-gov.com", "browser-intake-*-ddog-gov.com",
             "*.browser-intake-datadoghq.com", "*.browser-intake-*-datadoghq.com", "*.browser-intake-datadoghq.eu",
             "*.browser-intake-ddog-gov.com", "*.browser-intake-*-ddog-gov.com")
    endpoints = (Endpoint(("/api/v2/rum", "/api/v2/logs", "/api/v2/replay", "/api/v2/profile")),
                 Endpoint(("/api/v2/profiling/quota",), ("GET",)))
    credential_params = ("dd-api-key",)
    credential_headers = ("authorization", "dd-api-key", "dd-client-token")
    envelope_fields = ("_dd", "date", "type", "source", "service", "version", "ddtags", "application.id",
                       "session.type", "connectivity", "tab", "privacy", "origin", "status")

    def serves(self, host: str) -> bool:
        # exact: fnmatch's `*` also crosses dots, which would take in look-alike domains
        return _HOST.match(host) is not None

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        layers: list[Layer] = [Layer("body")]
        issues: list[Issue] = []
        content_type = (obs.header("content-type") or "").lower()
        if content_type.startswith("multipart/form-data"):
            return _multipart(obs, pipeline, content_type)
        if obs.method.upper() == "GET":
            return Decoded(value=None, layers=layers)
        extra = None
        if (raw_query_param(obs.raw_query, "dd-evp-encoding") or "").lower() == "deflate":
            extra = ("deflate", "dd-evp-encoding")
        elif not obs.header("content-encoding") and _ndjson.looks_zlib(obs.body):
            extra = ("deflate", "zlib header")  # compressed, the query lost (a capture)
        data = _ndjson.body_bytes(obs, pipeline, layers, issues, extra)
        if data is None:
            return Decoded(value=None, layers=layers, issues=issues)
        return _ndjson.decode_lines(data, pipeline, layers, issues)

    def recognises(self, value: Any) -> bool:
        found = [r for r in value if isinstance(r, dict)] if isinstance(value, list) else []
        return bool(found) and len(found) == len(value) and (all(_is_rum(r) for r in found)
                                                             or all(_is_log(r) for r in found))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        track = obs.path.rstrip("/").rsplit("/", 1)[-1]
        if track in ("replay", "profile"):
            return _upload_items(value, track)
        if not isinstance(value, list):
            return []
        out = []
        for index, record in enumerate(value):
            if not isinstance(record, dict):
                continue
            path = f"[{index}]"
            if track == "logs" or (track != "rum" and _is_log(record)):
                out.append(_log_item(record, path))
            else:
                out.append(_rum_item(record, path))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """The intake's answer, 202 with an empty object: not retried (only 408, 429, 5xx are)."""
        return json_answer(b"{}", 202)


def _is_rum(record: dict[str, Any]) -> bool:
    kind = record.get("type")
    return isinstance(kind, str) and kind in _RUM_KINDS and isinstance(record.get("_dd"), dict)


def _is_log(record: dict[str, Any]) -> bool:
    return isinstance(record.get("message"), str) and isinstance(record.get("status"), str) and (
        "ddtags" in record or "origin" in record)


def _rum_item(record: dict[str, Any], path: str) -> Item:
    rtype = record.get("type")
    kind = _RUM_KINDS.get(rtype, "other") if isinstance(rtype, str) else "other"
    found = record.get(rtype) if isinstance(rtype, str) else None
    inner: dict[str, Any] = found if isinstance(found, dict) else {}
    name = None
    if rtype in ("view", "view_update"):
        name = text(inner.get("name")) or text(inner.get("url"))
    elif rtype == "action":
        target = inner.get("target")
        name = (text(target.get("name")) if isinstance(target, dict) else None) or text(inner.get("type"))
    elif rtype == "error":
        name = text(inner.get("message"))
    elif rtype == "resource":
        name = text(inner.get("url"))
    elif rtype == "long_task":
        name = "long_task"
    elif rtype == "vital":
        name = text(inner.get("name")) or text(inner.get("type"))
    elif rtype == "telemetry":
        name = text(inner.get("message")) or (f"telemetry {inner['type']}" if text(inner.get("type")) else "telemetry")
    ids = ids_of(record, _RUM_IDS)
    if "anonymous" not in ids and text(record.get("anonymous_id")):
        ids["anonymous"] = record["anonymous_id"]  # the SDK's telemetry carries it at the top
    context = {k: record[k] for k in _RUM_CONTEXT if k in record}
    properties = record.get("context")  # the app's own attributes (addAction's, global context)
    if rtype == "error" or rtype == "telemetry":
        properties = {"context": properties, rtype: inner} if properties is not None else inner
    return Item(kind, name, path, ids, properties, context or None)


def _log_item(record: dict[str, Any], path: str) -> Item:
    ids = ids_of(record, _LOG_IDS)
    if "session" not in ids:
        ids.update(ids_of(record, {"session": "session.id"}))
    properties = {k: v for k, v in record.items() if k not in _LOG_ENVELOPE}
    context = {k: record[k] for k in ("view", "service", "version", "env", "origin", "status", "logger", "tab")
               if k in record}
    return Item("log", text(record.get("message")), path, ids, properties or None, context or None)


def _upload_items(value: Any, track: str) -> list[Item]:
    """One item per replay segment or profile upload: its `event` part."""
    event = value.get("event") if isinstance(value, dict) else None
    if not isinstance(event, dict):
        return []
    ids = ids_of(event, {"session": "session.id", "user": "usr.id", "anonymous": "usr.anonymous_id"})
    if "session" not in ids:
        ids.update(ids_of(event, {"session": "session_id"}))
    name = "session replay" if track == "replay" else "profile"
    context = {k: event[k] for k in ("application", "view", "source", "service", "version", "env") if k in event}
    return [Item("attachment" if track == "replay" else "report", name, "event", ids,
                 {k: v for k, v in event.items() if k not in context}, context or None)]


_BOUNDARY = re.compile(r'boundary=(?:"([^"]{1,200})"|([^;\s]{1,200}))', re.I)
_DISPOSITION = re.compile(r'\bname="([^"]{0,200})"(?:;\s*filename="([^"]{0,400})")?', re.I)


def _multipart(obs: Observation, pipeline: Pipeline, content_type: str) -> Decoded:
    """A replay or profile upload: {part name: its JSON, or what it inflates to, or its size}."""
    layers: list[Layer] = [Layer("body")]
    issues: list[Issue] = []
    match = _BOUNDARY.search(obs.header("content-type") or content_type)
    data = _ndjson.body_bytes(obs, pipeline, layers, issues)
    if data is None or match is None:
        if match is None:
            issues.append(Issue("decode-error", "multipart body without a boundary"))
        return Decoded(value=None, layers=layers, issues=issues)
    delimiter = b"--" + (match.group(1) or match.group(2)).encode("latin-1", "replace")
    value: dict[str, Any] = {}
    chunks = data.split(delimiter)
    if len(chunks) - 2 > MAX_PARTS:
        issues.append(Issue("decode-error", f"more than {MAX_PARTS} parts; the rest was not decoded"))
    for chunk in chunks[1:MAX_PARTS + 1]:
        if chunk.startswith(b"--"):
            break
        head, sep, body = chunk.partition(b"\r\n\r\n")
        if not sep:
            continue
        body = body[:-2] if body.endswith(b"\r\n") else body
        found = _DISPOSITION.search(head.decode("latin-1"))
        if found is None:
            continue
        name, filename = found.group(1), found.group(2)
        where = name or f"part{len(value)}"
        part = pipeline.decoder.decode(body, where)
        if not part.structured and _ndjson.looks_zlib(body):
            try:
                inflated, note = _ndjson.inflate(body, "deflate", pipeline.limits)
            except _ndjson.InflateError as exc:
                issues.append(Issue("decode-error", str(exc), where))
            else:
                if note:
                    issues.append(Issue("decode-error", note, where))
                part = pipeline.decoder.decode(inflated, where)
                layers.append(Layer("deflate", {"part": where}))
        issues.extend(Issue(i.code, i.message, f"{where}.{i.path}" if i.path else where) for i in part.issues
                      if i.code != "decode-error" or part.structured)
        if part.structured:
            value[where] = part.value
            layers.append(Layer(f"json@{where}"))
        else:
            value[where] = {"filename": filename, "size": len(body)}
    layers.insert(1, Layer("multipart", {"parts": len(value)}))
    return Decoded(value=value, layers=layers, issues=issues, structured=True)
