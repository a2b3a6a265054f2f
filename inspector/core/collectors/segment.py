"""Segment (Twilio): the server SDKs' and analytics.js's HTTP tracking API.

Confirmed against `segment-analytics-python` 2.4.0 (segment/analytics/request.py: posts
`{batch: […], sentAt, writeKey}` to `https://api.segment.io/v1/batch`, Basic auth with the write
key as user name, gzip only when `gzip=True` — then `Content-Encoding: gzip`; any 2xx is a
success, 408/429/5xx are retried) and npm `@segment/analytics-node` 3.1.0
(dist/cjs/plugins/segmentio/publisher.js: `https://api.segment.io` + `/v1/batch`, the same
envelope `{batch, writeKey, sentAt}`, uncompressed JSON, Basic auth; 2xx and 3xx are success),
and analytics.js's short endpoints (`/v1/t`, `/v1/p`, …, batched `/v1/b`, sent as text/plain).
A batch-level `context` is shared by its messages: an item without its own gets it.
"""

from __future__ import annotations

from typing import Any, ClassVar

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
    hosts: ClassVar[tuple[str, ...]] = ("api.segment.io", "events.eu1.segmentapis.com")
    endpoints: ClassVar[tuple[Endpoint, ...]] = (Endpoint(tuple(f"/v1/{p}" for p in (*_BY_PATH, "batch", "import", "b"))),)
    credential_paths = ("writeKey", "batch[].writeKey")
    envelope_fields = ("writeKey", "sentAt", "sequence", "context.library", "messageId", "timestamp", "type",
                       "integrations", "_metadata", "originalTimestamp", "receivedAt", "version", "channel")

    def recognises(self, value: Any) -> bool:
        found = records(value, "batch")
        return bool(found) and all(isinstance(r.get("type"), str) and r["type"] in _TYPES
                                   and ("userId" in r or "anonymousId" in r) for _, r in found)

    def items(self, value: Any, obs: Observation) -> list[Item]:
        implied = _BY_PATH.get(obs.path.rstrip("/").rsplit("/", 1)[-1])
        shared = value.get("context") if isinstance(value, dict) and isinstance(value.get("batch"), list) else None
        out = []
        for path, record in records(value, "batch"):
            kind = text(record.get("type")) or implied or "other"
            if kind not in _TYPES:
                kind = "other"
            name = text(record.get("event")) if kind == "track" else text(record.get("name"))
            if kind == "alias":
                name = name or text(record.get("previousId"))
            context = record.get("context")
            if context is None and isinstance(shared, dict):
                context = shared  # the batch's context is its messages' (analytics.js batches)
            ids = ids_of(record, _IDS)
            if isinstance(context, dict):
                ids.update({k: v for k, v in ids_of(context, {"device": "device.id",
                            "session": "sessionId"}).items() if k not in ids})
            out.append(Item(kind, name, path, ids, self.properties_of(kind, record), context))
        return out

    def properties_of(self, kind: str, record: dict[str, Any]) -> Any:
        """What a message says about its event or its subject."""
        return record.get("properties") if kind in ("track", "page", "screen") else record.get("traits")
