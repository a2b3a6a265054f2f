"""Google Analytics 4: gtag.js's `/g/collect` hits and the Measurement Protocol (`/mp/collect`).

Confirmed against `ga4mp` (PyPI 2.0.4, Adswerve's Measurement Protocol client), `ga4mp/ga4mp.py`:
`BaseGa4mp` posts to `https://www.google-analytics.com/mp/collect` (`/debug/mp/collect` for a
validation hit) with `?measurement_id=…&api_secret=…` (`GtagMP`) or `?firebase_app_id=…&api_secret=…`
(`FirebaseMP`); the body is JSON `{client_id | app_instance_id, events: [{name, params}], user_id?,
user_properties: {k: {value}}?, timestamp_micros?}`, at most 25 events a request, each event's
`params` given `session_id` and `engagement_time_msec`. It sends with `urllib.request.urlopen`,
which raises for an HTTP error and is never retried; any 2xx is success (GA answers 204).

gtag.js is not on PyPI or npm (it is only served by Google's tag host): its format here is the
documented one. A hit is `/g/collect?v=2&tid=G-…&cid=…&sid=…&en=…&ep.<k>=…&epn.<k>=…&up.<k>=…`
(GET, or a POST with an empty body); a batched POST keeps the shared parameters in the query
and puts one event per body line, each line a query string of its own. npm `ga-gtag` 1.2.0
(`lib/index.js`) only loads gtag.js and pushes to `window.dataLayer`: it builds no request.

A gtag hit decodes to `{"query": {…}, "events": [{…}, …]}` (`events` empty when the query is
the hit); `ep.`, `epn.`, `up.`, `upn.` parameters are grouped (`{"ep": {"k": …}}`), a repeated
parameter becomes a list.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import SINKHOLE_HEADERS, Collector, Endpoint, Item, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer, raw_query_params
from inspector.core.destination import normalize_path
from inspector.core.observation import Observation

if TYPE_CHECKING:
    from inspector.core.pipeline import Pipeline

MAX_EVENTS = 1_000   # body lines (events) read per hit; gtag batches far fewer
MAX_PARAMS = 1_000   # parameters read per query string; a hit carries about sixty
_GROUPS = ("ep", "epn", "up", "upn")  # event and user parameters (text, number)
_MP_KEYS = {"client_id", "app_instance_id", "user_id", "timestamp_micros", "user_properties",
            "non_personalized_ads", "consent", "events", "user_data", "user_location", "device",
            "ip_override", "validation_behavior"}
_KINDS = {"page_view": "page", "screen_view": "screen", "exception": "exception", "login": "identify"}
_NOT_CONTEXT = ("en", "ep", "epn")


@register
class GoogleAnalytics4(Collector):
    name = "ga4"
    title = "Google Analytics 4"
    owner = "Google"
    category = "analytics"
    hosts = ("www.google-analytics.com", "region1.google-analytics.com", "analytics.google.com")
    endpoints = (Endpoint(("/g/collect", "/mp/collect", "/debug/mp/collect"), ("POST", "GET")),)
    # the property (tid) of a gtag hit; the Measurement Protocol's ids and secret are in its URL
    credential_paths = ("query.tid", "events[].tid")
    credential_params = ("api_secret", "measurement_id", "firebase_app_id")
    envelope_fields = ("query.v", "query.tid", "query.gtm", "query._p", "query._s", "query.gcs", "query.gcd",
                       "query.npa", "query.dma", "query.frm", "query.pscdl", "query.tfd", "query.ul",
                       "query.sr", "query._et", "query._ss", "query._fv", "query._nsi", "query.sct",
                       "query.seg", "events[]._et", "client_id", "app_instance_id", "timestamp_micros",
                       "non_personalized_ads", "consent", "events[].params.engagement_time_msec",
                       "events[].params.session_id")

    # ------------------------------------------------------------------ decoding
    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """The Measurement Protocol's JSON by the generic decoder; a gtag hit parsed from its query
        string and body lines."""
        if normalize_path(obs.path).endswith("/mp/collect"):
            return pipeline.decode_at(obs, "body")
        issues: list[Issue] = []
        query = _params(obs.raw_query, "query", issues)
        decoded = Decoded(layers=[Layer("query")], issues=issues, structured=True)
        events: list[dict[str, Any]] = []
        if obs.body.strip():
            coding = None if obs.content_decoded else obs.header("content-encoding")
            body = pipeline.decoder.decode(obs.body, "body", content_encoding=coding)
            decoded.layers.extend(body.layers)
            decoded.issues.extend(body.issues)
            if isinstance(body.value, str):
                lines = [line for line in body.value.splitlines() if line.strip()]
                if len(lines) > MAX_EVENTS:
                    issues.append(Issue("decode-error", f"{len(lines)} events in one hit; the first "
                                                        f"{MAX_EVENTS} were read"))
                for index, line in enumerate(lines[:MAX_EVENTS]):
                    events.append(_params(line.strip(), f"events[{index}]", issues))
                decoded.layers.append(Layer("gtag-lines", {"events": len(events)}))
            elif body.value is not None:
                issues.append(Issue("decode-error", "a gtag hit's body is query-string lines; "
                                                    "this one is not", "body"))
                decoded.value = {"query": query, "events": events, "body": body.value}
                return decoded
        decoded.value = {"query": query, "events": events}
        return decoded

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        query = value.get("query")
        if isinstance(query, dict) and isinstance(value.get("events"), list):  # a gtag hit
            tid = query.get("tid")
            return (query.get("v") == "2" and isinstance(tid, str) and tid.startswith("G-")
                    and ("en" in query or any(isinstance(e, dict) and "en" in e for e in value["events"][:100])))
        events = value.get("events")
        return (isinstance(events, list) and bool(events) and set(value) <= _MP_KEYS
                and ("client_id" in value or "app_instance_id" in value)
                and all(isinstance(e, dict) and isinstance(e.get("name"), str) and set(e) <= {"name", "params"}
                        for e in events[:100]))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, dict):
            return []
        query = value.get("query")
        if isinstance(query, dict):
            return _gtag_items(query, value.get("events"))
        return _mp_items(value)

    # ------------------------------------------------------------------ answers
    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """204 No Content, as GA answers a hit and a Measurement Protocol request; the validation
        server's empty verdict for `/debug/mp/collect`."""
        if normalize_path(obs.path).rstrip("/") == "/debug/mp/collect":
            return json_answer(b'{"validationMessages":[]}')
        return LocalAnswer(204, SINKHOLE_HEADERS, b"")


# --------------------------------------------------------------------------- gtag

def _params(query: str, where: str, issues: list[Issue]) -> dict[str, Any]:
    """A query string as a dict: `ep.k` / `epn.k` / `up.k` / `upn.k` grouped, repeats as lists."""
    out: dict[str, Any] = {}
    groups: dict[str, dict[str, Any]] = {}
    params = raw_query_params(query)
    if len(params) > MAX_PARAMS:
        issues.append(Issue("decode-error", f"{len(params)} parameters; the first {MAX_PARAMS} were read", where))
    for raw_key, raw in params[:MAX_PARAMS]:
        value = _text(raw, where, issues)
        key = _text(raw_key, where, issues)
        prefix, dot, rest = key.partition(".")
        if dot and prefix in _GROUPS:
            _put(groups.setdefault(prefix, {}), rest, value)
        elif key in _GROUPS:
            _put(groups.setdefault(key, {}), "", value)  # a bare `ep=` kept inside its group
        else:
            _put(out, key, value)
    out.update(groups)
    return out


def _put(into: dict[str, Any], key: str, value: str) -> None:
    if key not in into:
        into[key] = value
    elif isinstance(into[key], list):
        into[key].append(value)
    else:
        into[key] = [into[key], value]


def _text(raw: str, where: str, issues: list[Issue]) -> str:
    """raw_query_params keeps undecodable bytes as surrogate escapes: a value is text."""
    if raw.isascii():
        return raw
    fixed = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if fixed != raw:
        issues.append(Issue("decode-error", "invalid UTF-8 in a parameter; replaced with U+FFFD", where))
    return fixed


def _kind(name: str | None) -> str:
    return _KINDS.get(name or "", "track")


def _group(record: dict[str, Any], *names: str) -> dict[str, Any] | None:
    merged: dict[str, Any] = {}
    for name in names:
        part = record.get(name)
        if isinstance(part, dict):
            merged.update(part)
    return merged or None


def _gtag_items(query: dict[str, Any], events: Any) -> list[Item]:
    hits = [(f"events[{i}]", e) for i, e in enumerate(events) if isinstance(e, dict)] if isinstance(events, list) else []
    if not hits:
        hits = [("query", query)]
    shared = {k: v for k, v in list(query.items())[:64] if k not in _NOT_CONTEXT}
    out = []
    for path, event in hits:
        name = text(event.get("en")) or text(query.get("en"))
        ids: dict[str, str] = {}
        for role, key in (("anonymous", "cid"), ("session", "sid"), ("user", "uid")):
            found = text(event.get(key)) or text(query.get(key))
            if found:
                ids[role] = found
        context = dict(shared)
        if event is not query:
            context.update({k: v for k, v in list(event.items())[:64] if k not in _NOT_CONTEXT})
        properties = _group(event, "ep", "epn")
        if event is not query and (common := _group(query, "ep", "epn")):
            properties = {**common, **(properties or {})}  # the query's event parameters are shared
        out.append(Item(_kind(name), name, path, ids, properties, context or None))
    return out


# --------------------------------------------------------------------------- Measurement Protocol

def _mp_items(value: dict[str, Any]) -> list[Item]:
    events = value.get("events")
    if not isinstance(events, list):
        return []
    ids: dict[str, str] = {}
    for role, key in (("anonymous", "client_id"), ("device", "app_instance_id"), ("user", "user_id")):
        found = value.get(key)
        if isinstance(found, (str, int)) and not isinstance(found, bool) and str(found):
            ids[role] = str(found)
    context = {k: v for k, v in list(value.items())[:64] if k != "events"} or None
    out = []
    for index, event in enumerate(events[:MAX_EVENTS * 10]):
        if not isinstance(event, dict):
            continue
        name = text(event.get("name"))
        params = event.get("params") if isinstance(event.get("params"), dict) else None
        item_ids = dict(ids)
        session = params.get("session_id") if params else None
        if isinstance(session, (str, int)) and not isinstance(session, bool) and str(session):
            item_ids["session"] = str(session)
        out.append(Item(_kind(name), name, f"events[{index}]", item_ids, params, context))
    return out
