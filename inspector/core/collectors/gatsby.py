"""Gatsby: gatsby-telemetry's buffered CLI events, `POST https://analytics.gatsbyjs.com/events`.

Confirmed against npm `gatsby-telemetry` 4.13.1 (the last release that sends: 4.14.0's
`lib/event-storage.js` is a no-op), `lib/event-storage.js`: `analyticsApi =
process.env.GATSBY_TELEMETRY_API || "https://analytics.gatsbyjs.com/events"`, one
`fetch(analyticsApi, {method: "POST", headers: {"content-type": "application/json", "user-agent":
"gatsby-telemetry:<version>"}, body: JSON.stringify(events)})` (node-fetch via `@turist/fetch`) of
every event buffered in `<config>/gatsby/events.json`; when `res.ok` is false the events are
written back and sent again with the next flush, so the sinkhole answers 200. `lib/telemetry.js`
builds each event: `{installedGatsbyVersion, gatsbyCliVersion, …tags, eventType, sessionId, time,
machineId, componentId, osInformation, componentVersion, dbEngine, features, repositoryId?,
repositoryData?}`, eventType `CLI_COMMAND_<X>`, `CLI_RAW_COMMAND_<X>`, `CLI_ERROR_<X>` or
`BUILD_ERROR_<X>`. Opt-out: `GATSBY_TELEMETRY_DISABLED=1`, `gatsby telemetry --disable`.
"""

from __future__ import annotations

from typing import Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.observation import Observation

MAX_ITEMS = 10_000
_IDS = {"device": "machineId", "session": "sessionId"}
_CONTEXT = ("installedGatsbyVersion", "gatsbyCliVersion", "componentId", "componentVersion", "osInformation",
            "dbEngine", "time", "repositoryId", "repositoryData", "siteHash")
_NOT_PROPERTIES = {"eventType", "sessionId", "machineId", *_CONTEXT}


@register
class Gatsby(Collector):
    name = "gatsby"
    title = "Gatsby"
    owner = "Netlify"
    category = "product-telemetry"
    hosts = ("analytics.gatsbyjs.com",)
    endpoints = (Endpoint(("/events",)),)
    credential_headers = ()  # none: the CLI sends no key
    envelope_fields = tuple(f"[].{k}" for k in ("eventType", "sessionId", "machineId", "time", "componentId",
                                                "componentVersion", "installedGatsbyVersion", "gatsbyCliVersion",
                                                "osInformation", "dbEngine", "features"))

    def recognises(self, value: Any) -> bool:
        return (isinstance(value, list) and bool(value)
                and all(isinstance(e, dict) and isinstance(e.get("eventType"), str) and "sessionId" in e
                        and "machineId" in e and "componentId" in e for e in value[:100]))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, list):
            return []
        out = []
        for index, event in enumerate(value[:MAX_ITEMS]):
            if not isinstance(event, dict):
                continue
            name = text(event.get("eventType"))
            kind = "exception" if name and (name.startswith(("CLI_ERROR_", "BUILD_ERROR_"))) else "event"
            properties = {k: v for k, v in list(event.items())[:256] if k not in _NOT_PROPERTIES} or None
            context = {k: event[k] for k in _CONTEXT if k in event} or None
            out.append(Item(kind, name, f"[{index}]", ids_of(event, _IDS), properties, context))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """200 (`res.ok`; anything else keeps the events for the next flush)."""
        return json_answer(b"{}")
