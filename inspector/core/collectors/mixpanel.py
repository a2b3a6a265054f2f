"""Mixpanel: the ingestion API of its SDKs (`/track`, `/engage`, `/groups`, `/import`), session
replays (`/record`) and remote feature flags (`/flags`).

Confirmed against the SDKs' source:

* `mixpanel` (PyPI 5.4.1), `mixpanel/__init__.py`: `Consumer` POSTs a form
  `data=<JSON>&verbose=1&ip=0` to `https://api.mixpanel.com/track` (`/engage`, `/groups`,
  `/import`); the event is `{event, properties{token, distinct_id, time, $insert_id, mp_lib,
  $lib_version, …}}`, a `BufferedConsumer` sends a JSON list. The answer must be JSON with
  `status == 1` (a bare `1` raises TypeError in `_write_request`, any other status a
  MixpanelException); urllib3 retries 5xx four times. `mixpanel/flags/remote_feature_flags.py`:
  `GET /flags?context=<JSON>&token=…&mp_lib=python`, answer `{code, flags{}}`.
* npm `mixpanel` 0.24.0, `lib/mixpanel-node.js`: `api.mixpanel.com`, the payload Base64 JSON in
  `?data=` (GET, the default) or in a form body `data=` (POST, unescaped); `?verbose=0|1&ip=0`;
  not verbose it wants the body `1` exactly, verbose a JSON `status` of 1.
* `mixpanel-browser` 2.83.0, `src/mixpanel-core.js`, `src/request-batcher.js`,
  `src/recorder/session-recording.js`: `https://api-js.mixpanel.com/track/` (routes `track/`,
  `engage/`, `groups/`, `record/`, `flags/`); form body `data=` (JSON on mixpanel.com hosts,
  else Base64), `?verbose=1&ip=1&_=<ms>` in the URL; a 200 is success whatever its body.
  Replays: `POST /record/?format=gzip|body&distinct_id=…&replay_id=…`, a gzipped JSON list of
  rrweb events, `Authorization: Basic base64(token:)`.
* `api-eu.mixpanel.com` is Mixpanel's EU-residency host (its documentation; not named in these SDKs).
"""

from __future__ import annotations

from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, json_answer, records, text
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer, raw_query_params
from inspector.core.destination import normalize_path
from inspector.core.observation import Observation

if TYPE_CHECKING:  # (the pipeline imports the collectors: no cycle at run time)
    from inspector.core.pipeline import Pipeline

MAX_ITEMS = 10_000  # items kept per request
_OPS = ("$set", "$set_once", "$add", "$append", "$union", "$remove", "$unset", "$delete")
_IDS = {"distinct": "distinct_id", "device": "$device_id", "user": "$user_id"}
_PEOPLE_IDS = {"distinct": "$distinct_id", "device": "$device_id", "user": "$user_id"}
_KINDS = {"$identify": "identify", "$create_alias": "alias", "$merge": "alias", "$mp_web_page_view": "page"}


@register
class Mixpanel(Collector):
    name = "mixpanel"
    title = "Mixpanel"
    owner = "Mixpanel"
    category = "analytics"
    hosts = ("api.mixpanel.com", "api-js.mixpanel.com", "api-eu.mixpanel.com")
    endpoints = (Endpoint(("/track", "/engage", "/groups", "/import", "/record", "/flags"), ("POST", "GET")),)
    credential_paths = ("properties.token", "[].properties.token", "$token", "[].$token", "token", "api_key")
    credential_params = ("token", "api_key")
    envelope_fields = ("properties.token", "properties.time", "properties.$insert_id", "properties.mp_lib",
                       "properties.$lib_version", "properties.mp_sent_by_lib_version", "$token", "$time",
                       "$ignore_time", "$ip")

    # ------------------------------------------------------------------ decoding
    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """The `data=` payload (form body or query; Base64 or plain JSON), the `context` of a
        flags request, or a replay's body (gzip sniffed)."""
        stem = _stem(obs)
        if stem == "/record":
            return pipeline.decode_at(obs, "body")
        if stem == "/flags":
            return pipeline.decode_at(obs, "query:context")
        body = obs.body
        if body.strip() and not obs.header("content-encoding") and len(body) <= pipeline.limits.max_body:
            fields = _fields(body)
            if "data" in fields:
                return _bound(pipeline.decoder.decode(_field_bytes(fields["data"]), "form:data"))
        if not body.strip():
            raw = dict(reversed(raw_query_params(obs.raw_query))).get("data")
            if raw is not None:
                return _bound(pipeline.decoder.decode(raw.encode("utf-8", "surrogateescape"), "query:data"))
        decoded = pipeline.decode_at(obs, "body")
        value = decoded.value
        if decoded.structured and isinstance(value, dict) and isinstance(value.get("data"), (dict, list)):
            decoded = Decoded(value["data"], decoded.layers, list(decoded.issues), decoded.jwe, True)
        return _bound(decoded)

    def recognises(self, value: Any) -> bool:
        found = records(value)
        return bool(found) and all(_looks_like_mixpanel(r) for _, r in found[:100])

    def items(self, value: Any, obs: Observation) -> list[Item]:
        stem = _stem(obs)
        if stem == "/flags":
            if not isinstance(value, dict):
                return []
            ids = ids_of(value, {"distinct": "distinct_id", "device": "device_id", "user": "user_id"})
            return [Item("flags", None, "", ids, value.get("custom_properties"), value)]
        if stem == "/record":
            params = dict(reversed(raw_query_params(obs.raw_query)))
            ids = ids_of(params, {"distinct": "distinct_id", "device": "$device_id", "user": "$user_id",
                                  "session": "replay_id"})
            return [Item("session", "replay", "", ids, None, dict(islice(params.items(), 32)))]
        out = []
        for where, record in records(value)[:MAX_ITEMS]:
            out.append(_item(where, record, stem))
        return out

    # ------------------------------------------------------------------ answers
    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """`1` to a client that asked for the terse answer (`verbose=0`), else the verbose JSON
        (`verbose` sits in the form body for the Python SDK, which the head does not show)."""
        stem = _stem(obs)
        if stem == "/flags":
            return json_answer(b'{"code":200,"flags":{}}')
        if stem == "/record":
            return json_answer(b'{"code":200,"status":"OK"}')
        verbose = dict(reversed(raw_query_params(obs.raw_query))).get("verbose")
        if verbose is None and obs.body.strip() and len(obs.body) <= 1024 * 1024:
            verbose = _fields(obs.body).get("verbose")
        if verbose is not None and verbose.strip() in ("0", ""):
            return json_answer(b"1")
        return json_answer(b'{"status":1,"error":null}')


def _stem(obs: Observation) -> str:
    return normalize_path(obs.path).rstrip("/") or "/"


def _looks_like_mixpanel(record: dict[str, Any]) -> bool:
    """An event with a token and Mixpanel's own marks (`mp_lib`, `time`, `$insert_id`) and none of
    PostHog's (`$lib`, a top-level uuid or distinct_id); or a people/group update (`$token` + an op)."""
    if isinstance(record.get("event"), str):
        props = record.get("properties")
        if not isinstance(props, dict) or "token" not in props or "$lib" in props:
            return False
        if "uuid" in record or "distinct_id" in record:
            return False
        return "mp_lib" in props or "time" in props or "$insert_id" in props
    return "$token" in record and any(op in record for op in _OPS)


def _item(where: str, record: dict[str, Any], stem: str) -> Item:
    name = text(record.get("event"))
    if name is not None:
        props = record.get("properties")
        ids = ids_of(props, _IDS) if isinstance(props, dict) else {}
        context = {k: v for k, v in islice(record.items(), 64) if k not in ("event", "properties")} or None
        return Item(_KINDS.get(name, "track"), name, where, ids, props, context)
    op = next((k for k in _OPS if k in record), None)
    kind = "group" if stem == "/groups" or "$group_key" in record else "identify"
    context = {k: v for k, v in islice(record.items(), 64) if k != op} or None
    return Item(kind, op, where, ids_of(record, _PEOPLE_IDS), record.get(op) if op else None, context)


def _fields(body: bytes) -> dict[str, str]:
    """A form body's raw fields (still percent-encoded), the first of each name."""
    out: dict[str, str] = {}
    for part in body.decode("utf-8", "surrogateescape").split("&"):
        name, sep, value = part.partition("=")
        if sep:
            out.setdefault(unquote(name.strip()), value)
    return out


def _field_bytes(raw: str) -> bytes:
    """A JSON field decoded as a form encoder wrote it (`+` a space: PyPI requests); Base64,
    whose alphabet has `+`, as sent (the Node SDK puts it in the body unescaped)."""
    head = raw.lstrip()[:3].lower()
    if head[:1] in ("{", "[") or head in ("%7b", "%5b"):
        raw = raw.replace("+", " ")
    return unquote(raw, errors="surrogateescape").encode("utf-8", "surrogateescape")


def _bound(decoded: Decoded) -> Decoded:
    if isinstance(decoded.value, list) and len(decoded.value) > MAX_ITEMS:
        decoded.issues.append(Issue("decode-error", f"{len(decoded.value)} records in one request; only the "
                                                    f"first {MAX_ITEMS} are itemised"))
    if not decoded.layers:
        decoded.layers.append(Layer("body"))
    return decoded
