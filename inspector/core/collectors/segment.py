"""Segment (Twilio): the server SDKs' and analytics.js's HTTP tracking API.

Confirmed against `segment-analytics-python` (posts `{batch: […], sentAt}` to `/v1/batch`,
Basic auth with the write key as user name, `writeKey` in the body too) and analytics.js's
short endpoints (`/v1/t`, `/v1/p`, …, batched `/v1/b`, sent as text/plain).
"""

from __future__ import annotations

from typing import Any

from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, records, text
from inspector.core.collectors.registry import register
from inspector.core.observation import Observation

# endpoint → the message type it implies when a message does not say
_BY_PATH = {"track": "track", "t": "track", "identify": "identify", "i": "identify", "page": "page",
            "p": "page", "screen": "screen", "s": "screen", "group": "group", "g": "group",
            "alias": "alias", "a": "alias"}
_TYPES = {"track", "identify", "page", "screen", "group", "alias"}
_IDS = {"user": "userId", "anonymous": "anonymousId", "group": "groupId"}


@register
class Segment(Collector):
    name = "segment"
    title = "Segment"
    owner = "Twilio"
    category = "analytics"
    hosts = ("api.segment.io", "events.eu1.segmentapis.com")
    endpoints = (Endpoint(tuple(f"/v1/{p}" for p in (*_BY_PATH, "batch", "import", "b"))),)
    credential_paths = ("writeKey", "batch[].writeKey")
    envelope_fields = ("writeKey", "sentAt", "sequence", "context.library", "messageId", "timestamp", "type",
                       "integrations", "_metadata", "originalTimestamp", "receivedAt", "version", "channel")

    def recognises(self, value: Any) -> bool:
        found = records(value, "batch")
        return bool(found) and all(isinstance(r.get("type"), str) and r["type"] in _TYPES
                                   and ("userId" in r or "anonymousId" in r) for _, r in found)

    def items(self, value: Any, obs: Observation) -> list[Item]:
        implied = _BY_PATH.get(obs.path.rstrip("/").rsplit("/", 1)[-1])
        out = []
        for path, record in records(value, "batch"):
            kind = text(record.get("type")) or implied or "other"
            if kind not in _TYPES:
                kind = "other"
            name = text(record.get("event")) if kind == "track" else text(record.get("name"))
            if kind == "alias":
                name = name or text(record.get("previousId"))
            ids = ids_of(record, _IDS)
            if isinstance(record.get("context"), dict):
                ids.update({k: v for k, v in ids_of(record["context"], {"device": "device.id",
                            "session": "sessionId"}).items() if k not in ids})
            properties = record.get("properties") if kind in ("track", "page", "screen") else record.get("traits")
            out.append(Item(kind, name, path, ids, properties, record.get("context")))
        return out
