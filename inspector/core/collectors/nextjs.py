"""Next.js: the `next` CLI's anonymous telemetry, `POST https://telemetry.nextjs.org/api/v1/record`.

The `next` npm package (~100 MB) is not installed here, and no small package carries its
telemetry code (`next/dist/telemetry/storage.js`, `post-payload.js`, `anonymous-meta.js`), so
the format is the documented one: JSON `{context: {anonymousId, projectId, sessionId}, meta:
{systemPlatform, systemRelease, systemArchitecture, cpuCount, cpuModel, cpuSpeed, memoryInMb,
isDocker, isNowDev, isWsl, isCI, ciName, nextVersion}, events: [{eventName, fields}]}`.
`projectId` is a salted hash of the project's git remote or folder (the project, not a person:
kept in context). `NEXT_TELEMETRY_DISABLED=1` turns it off, `NEXT_TELEMETRY_DEBUG=1` prints the
events instead of sending them. A non-2xx answer is retried once, so the sinkhole is a 200.
"""

from __future__ import annotations

from typing import Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import Collector, Endpoint, Item, ids_of, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.observation import Observation

MAX_ITEMS = 10_000


@register
class NextJs(Collector):
    name = "nextjs"
    title = "Next.js"
    owner = "Vercel"
    category = "product-telemetry"
    hosts = ("telemetry.nextjs.org",)
    endpoints = (Endpoint(("/api/v1/record",)),)
    credential_headers = ()  # none: the CLI sends no key
    envelope_fields = ("context.anonymousId", "context.projectId", "context.sessionId", "meta")

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, dict) or not isinstance(value.get("events"), list):
            return False
        context = value.get("context")
        return (isinstance(context, dict) and "anonymousId" in context and "sessionId" in context
                and all(isinstance(e, dict) and isinstance(e.get("eventName"), str) for e in value["events"][:100]))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, dict) or not isinstance(value.get("events"), list):
            return []
        found = value.get("context")
        context: dict[str, Any] = found if isinstance(found, dict) else {}
        ids = ids_of(context, {"anonymous": "anonymousId", "session": "sessionId"})
        given = {"projectId": context.get("projectId"), "meta": value.get("meta")}
        shared = {k: v for k, v in given.items() if v is not None} or None
        out = []
        for index, event in enumerate(value["events"][:MAX_ITEMS]):
            if isinstance(event, dict):
                out.append(Item("event", text(event.get("eventName")), f"events[{index}]", dict(ids),
                                event.get("fields"), shared))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """200 `{}` (a non-2xx answer is retried once)."""
        return json_answer(b"{}")
