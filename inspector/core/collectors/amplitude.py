"""Amplitude: the HTTP V2 and Batch APIs of its SDKs, and the legacy form upload of amplitude-js.

Confirmed against the SDKs' source:

* `amplitude-analytics` (PyPI 1.3.0), `amplitude/constants.py` (SERVER_URL:
  `https://api2.amplitude.com/2/httpapi`, `/batch` with `use_batch`, EU `api.eu.amplitude.com`),
  `amplitude/worker.py` (`{api_key, events: […], options}` as JSON), `amplitude/http_client.py`:
  the answer body is parsed as JSON and its `code` decides (2xx success; 408, 5xx and a body
  that is no JSON object are retried or fail), `amplitude/event.py` (EVENT_KEY_MAPPING: event
  fields `event_type`, `user_id`, `device_id`, `session_id`, `insert_id`, `time`, …).
* npm `@amplitude/analytics-node` 1.5.73 with `@amplitude/analytics-core`:
  `lib/esm/transports/http.js` and `transports/base.js` (`buildResponse`: the body's `code`,
  `events_ingested`, `payload_size_bytes`, `server_upload_time`); same hosts and paths.
* npm `amplitude-js` 8.21.10, `amplitude.esm.js`: POST to `https://api.amplitude.com` (EU
  `api.eu.amplitude.com`), path `/`, a form `client=<api key>&e=<JSON events>&v=2&upload_time=…
  &checksum=<md5>`; a 200 is success (the server answers `success`).
"""

from __future__ import annotations

import time
from itertools import islice
from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import (
    SINKHOLE_HEADERS,
    Collector,
    Endpoint,
    Item,
    ids_of,
    json_answer,
    records,
    text,
)
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue
from inspector.core.destination import normalize_path
from inspector.core.observation import Observation

if TYPE_CHECKING:  # (the pipeline imports the collectors: no cycle at run time)
    from inspector.core.pipeline import Pipeline

MAX_ITEMS = 10_000  # items kept per request
_KINDS = {"$identify": "identify", "$groupidentify": "group", "[Amplitude] Page Viewed": "page",
          "[Amplitude] Screen Viewed": "screen"}
_IDS = {"user": "user_id", "device": "device_id", "session": "session_id"}
_PROPERTIES = {"identify": "user_properties", "group": "group_properties"}
_OWN = ("event_type", "event_properties", "user_properties", "group_properties")


@register
class Amplitude(Collector):
    name = "amplitude"
    title = "Amplitude"
    owner = "Amplitude"
    category = "analytics"
    hosts = ("api2.amplitude.com", "api.eu.amplitude.com", "api.amplitude.com")
    endpoints = (Endpoint(("/2/httpapi", "/batch", "/")),)
    credential_paths = ("api_key", "client")
    credential_params = ("api_key",)
    envelope_fields = ("api_key", "events", "options", "client", "e", "v", "upload_time", "checksum",
                       "events[].insert_id", "events[].time", "events[].library", "events[].event_id",
                       "e[].uuid", "e[].sequence_number", "e[].library", "e[].event_id")

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """JSON (gzip by Content-Encoding or sniffed) or the legacy form, whose `e` holds the events."""
        decoded = pipeline.decode_at(obs, "body")
        events = _events(decoded.value)
        if isinstance(events, list) and len(events) > MAX_ITEMS:
            decoded.issues.append(Issue("decode-error", f"{len(events)} events in one request; only the "
                                                        f"first {MAX_ITEMS} are itemised"))
        return decoded

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, dict):
            return False
        if "api_key" in value and isinstance(value.get("events"), list):
            key = "events"
        elif "client" in value and isinstance(value.get("e"), list) and ("checksum" in value or "upload_time" in value):
            key = "e"
        else:
            return False
        found = records(value, key)
        return bool(found) and all(isinstance(r.get("event_type"), str) for _, r in found[:100])

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, dict):
            return []
        key = "events" if isinstance(value.get("events"), list) else "e" if isinstance(value.get("e"), list) else None
        if key is None:
            return []
        out = []
        for where, record in records(value, key)[:MAX_ITEMS]:
            name = text(record.get("event_type"))
            kind = _KINDS.get(name or "", "track")
            ids = ids_of(record, _IDS)
            if ids.get("session") == "-1":  # amplitude-js: no session
                del ids["session"]
            properties = record.get(_PROPERTIES.get(kind, "event_properties"))
            context = {k: v for k, v in islice(record.items(), 64) if k not in _OWN} or None
            out.append(Item(kind, name, where, ids, properties, context))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """The JSON APIs: `code` 200 (what the SDKs parse); the legacy form upload: `success`."""
        if normalize_path(obs.path) == "/":
            return LocalAnswer(200, (("Content-Type", "text/plain"), *SINKHOLE_HEADERS), b"success")
        now = int(time.time() * 1000)
        return json_answer(b'{"code":200,"events_ingested":0,"payload_size_bytes":0,"server_upload_time":%d}' % now)


def _events(value: Any) -> Any:
    if isinstance(value, dict):
        return value.get("events") if "events" in value else value.get("e")
    return None
