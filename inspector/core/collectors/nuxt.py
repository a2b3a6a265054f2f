"""Nuxt: @nuxt/telemetry's anonymous usage events, `POST https://telemetry.nuxt.com/`.

Confirmed against npm `@nuxt/telemetry` 2.9.1, `dist/module.mjs`: the endpoint is
`process.env.NUXT_TELEMETRY_ENDPOINT || "https://telemetry.nuxt.com"` (older releases used
`telemetry.nuxtjs.com`); `postEvent` is one `fetch(endpoint, {method: "POST", body, headers:
{"content-type": "application/json", "user-agent": "Nuxt Telemetry <version>"}})` with a 5 s
timeout, and a non-2xx answer is thrown and swallowed — never retried. The body is
`{timestamp, context: {nuxtVersion, nuxtMajorVersion, isEdge, nodeVersion, cli, os, environment,
projectHash, projectSession, isAgent, agentName, nitroPreset}, events: [{name, …}]}` with events
`project`, `session`, `files`, `command`, `module` (one per installed module) and `build` /
`generate`; `projectHash` is a hash of the git remote (or folder and seed), `projectSession` a
hash of it and the user's seed. Opt-out: `NUXT_TELEMETRY_DISABLED`, `DO_NOT_TRACK`,
`telemetry: false`.
"""

from __future__ import annotations

from typing import Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.observation import Observation

MAX_ITEMS = 10_000


@register
class Nuxt(Collector):
    name = "nuxt"
    title = "Nuxt"
    owner = "NuxtLabs"
    category = "product-telemetry"
    hosts = ("telemetry.nuxt.com", "telemetry.nuxtjs.com")
    endpoints = (Endpoint(("/",)),)
    credential_headers = ()  # none: the module sends no key
    envelope_fields = ("timestamp", "context")

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, dict) or not isinstance(value.get("events"), list) or "timestamp" not in value:
            return False
        context = value.get("context")
        return (isinstance(context, dict) and "nuxtVersion" in context
                and ("projectHash" in context or "projectSession" in context)
                and all(isinstance(e, dict) and isinstance(e.get("name"), str) for e in value["events"][:100]))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, dict) or not isinstance(value.get("events"), list):
            return []
        context = value.get("context") if isinstance(value.get("context"), dict) else None
        ids = ids_of(context, {"session": "projectSession"}) if context else {}
        out = []
        for index, event in enumerate(value["events"][:MAX_ITEMS]):
            if isinstance(event, dict):
                properties = {k: v for k, v in event.items() if k != "name"} or None
                out.append(Item("event", text(event.get("name")), f"events[{index}]", dict(ids), properties, context))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """200 (any 2xx; the module does not read the body)."""
        return json_answer(b"{}")
