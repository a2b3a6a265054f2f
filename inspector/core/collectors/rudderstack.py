"""RudderStack: Segment's tracking API on a RudderStack data plane.

Confirmed in the SDKs' source:
- PyPI `rudder-sdk-python` 2.1.9 (rudderstack/analytics/request.py): posts `{batch: […],
  sentAt}` to `<dataPlaneUrl>/v1/batch` (the data plane URL is required configuration; without
  one it falls back to `https://api.rudderstack.com`), gzip by default (`Content-Encoding:
  gzip`), Basic auth with the write key as user name and no write key in the body; success is
  exactly 200, other 4xx are not retried, 429/5xx/network errors are (backoff, 10 tries).
  Messages are Segment's, plus `channel: "server"` and `integrations: {All: true}`; identify
  puts its traits in `context.traits`, not at the top.
- npm `@rudderstack/rudder-sdk-node` 3.0.13 (cjs/index.js): default data plane
  `https://hosted.rudderlabs.com`, path `/v1/batch`, `channel: "server"`, Basic auth.
- npm `@rudderstack/analytics-js` 3.34.1 (the browser SDK): `channel: "web"`,
  `context.library.name: "RudderLabs JavaScript SDK"`, `context.app.namespace:
  "com.rudderlabs.javascript"`. Its transports live in plugins fetched from its CDN (not in the
  npm package); their endpoints — `/v1/<type>` per event, `/beacon/v1/batch?writeKey=…` for
  sendBeacon, GET `/pixel/v1/track|page?writeKey=…&…` with the message in the query — are the
  data plane's documented routes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import SINKHOLE_HEADERS, Endpoint, records
from inspector.core.collectors.registry import register
from inspector.core.collectors.segment import Segment
from inspector.core.decode import Decoded, Issue, Layer
from inspector.core.observation import Observation

if TYPE_CHECKING:
    from inspector.core.pipeline import Pipeline

_TYPES = ("track", "identify", "page", "screen", "group", "alias")
_PIXEL_TYPES = {"track", "page"}
_CHANNELS = {"server", "web", "mobile", "sources", "android", "ios"}
MAX_PIXEL_PARAMS = 256
MAX_PIXEL_DEPTH = 8
# A 1×1 transparent GIF: what the data plane answers a pixel with.
PIXEL_GIF = (b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
             b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;")


def _rudder_like(record: dict[str, Any]) -> bool:
    """A message only a RudderStack SDK makes: its library or app names RudderStack, or it
    carries the `channel` every RudderStack SDK sets (Segment's SDKs send none)."""
    context = record.get("context")
    if isinstance(context, dict):
        library, app = context.get("library"), context.get("app")
        if isinstance(library, dict) and "rudder" in str(library.get("name", "")).lower():
            return True
        if isinstance(app, dict) and str(app.get("namespace", "")).startswith("com.rudderlabs"):
            return True
    return isinstance(record.get("channel"), str) and record["channel"] in _CHANNELS


@register
class RudderStack(Segment):
    name = "rudderstack"
    title = "RudderStack"
    owner = "RudderStack"
    category = "analytics"
    hosts = ("*.dataplane.rudderstack.com", "hosted.rudderlabs.com", "api.rudderstack.com")
    endpoints = (Endpoint(tuple(f"/v1/{p}" for p in (*_TYPES, "batch", "import"))),
                 Endpoint(("/beacon/v1/batch",)),
                 Endpoint(tuple(f"/pixel/v1/{p}" for p in sorted(_PIXEL_TYPES)), ("GET",)))
    credential_paths = ("writeKey", "batch[].writeKey")
    credential_params = ("writeKey",)

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        if obs.path.startswith("/pixel/"):
            return _pixel(obs)
        return super().decode(obs, pipeline)

    def recognises(self, value: Any) -> bool:
        return super().recognises(value) and any(_rudder_like(r) for _, r in records(value, "batch"))

    def properties_of(self, kind: str, record: dict[str, Any]) -> Any:
        found = super().properties_of(kind, record)
        if found is None and kind in ("identify", "group"):
            context = record.get("context")
            found = context.get("traits") if isinstance(context, dict) else None  # where its SDKs put them
        return found

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """The data plane's own answers: `OK` (rudder-sdk-python wants exactly 200), a GIF for a pixel."""
        if obs.path.startswith("/pixel/"):
            return LocalAnswer(200, (("Content-Type", "image/gif"), *SINKHOLE_HEADERS), PIXEL_GIF)
        return LocalAnswer(200, (("Content-Type", "text/plain; charset=utf-8"), *SINKHOLE_HEADERS), b"OK")


def _pixel(obs: Observation) -> Decoded:
    """A pixel's message from its query: each parameter a field, dotted names nested
    (`properties.plan=pro`); the type from the path."""
    message: dict[str, Any] = {}
    issues: list[Issue] = []
    query = obs.raw_query
    if query.count("&") >= MAX_PIXEL_PARAMS:
        issues.append(Issue("decode-error", f"more than {MAX_PIXEL_PARAMS} query parameters; the rest was not read"))
        query = "&".join(query.split("&", MAX_PIXEL_PARAMS)[:MAX_PIXEL_PARAMS])
    # form decoding (`+` is a space): pixels are made by URL builders, not carrying Base64
    for name, value in parse_qsl(query, keep_blank_values=True, errors="replace"):
        parts = [p for p in name.split(".") if p]
        if not parts or len(parts) > MAX_PIXEL_DEPTH:
            issues.append(Issue("decode-error", f"query parameter name not used: {name[:60]!r}"))
            continue
        node = message
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1]] = value
    message["type"] = obs.path.rstrip("/").rsplit("/", 1)[-1]  # the route decides, not a `type=` parameter
    return Decoded(value=message, layers=[Layer("query"), Layer("form")], issues=issues, structured=True)
