"""Scarf: scarf-js's install report, `POST https://scarf.sh/package-event/install`.

Confirmed against npm `@scarf/scarf` 1.4.0, `report.js` (run by its `postinstall`): host
`scarf.sh` (`localhost:$SCARF_LOCAL_PORT` over plain HTTP for its own development), path
`/package-event/install`, `https.request` with Node's default agent, JSON
`{libraryType: "npm", rawPlatform, rawArch, nodeVersion, dependencyInfo}`. `dependencyInfo`
comes from `npm ls @scarf/scarf --json --long` in `$INIT_CWD`: `scarf {name, version}`, the
`parent` (the package that depends on Scarf) in clear `{name, version, scarfSettings, gitSha?}`,
the `grandparent` and the `rootPackage` (the app being installed) only as SHA-256 hashes
(`nameHash`, `versionHash`), paths removed. `SCARF_API_TOKEN` adds `Authorization: Basic
base64("n/a:" + token)`. Opt-out: `SCARF_ANALYTICS=false`, `SCARF_NO_ANALYTICS=true`,
`DO_NOT_TRACK=1`, or `scarfSettings.enabled: false`. The answer is not read (any status resolves)
and nothing is retried.
"""

from __future__ import annotations

from typing import Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import Collector, Endpoint, Item, json_answer
from inspector.core.collectors.registry import register
from inspector.core.destination import normalize_path
from inspector.core.observation import Observation

_CONTEXT = ("libraryType", "rawPlatform", "rawArch", "nodeVersion", "platform", "arch")


@register
class Scarf(Collector):
    name = "scarf"
    title = "Scarf"
    owner = "Scarf Systems"
    category = "product-telemetry"
    hosts = ("scarf.sh",)
    endpoints = (Endpoint(("/package-event/install", "/package-event/*")),)
    envelope_fields = ("libraryType", "rawPlatform", "rawArch", "nodeVersion", "dependencyInfo.scarf",
                       "dependencyInfo.anyInChainDisabled", "dependencyInfo.skippedTraversal")

    def recognises(self, value: Any) -> bool:
        return (isinstance(value, dict) and isinstance(value.get("libraryType"), str)
                and isinstance(value.get("dependencyInfo"), dict)
                and ("rawPlatform" in value or "rawArch" in value))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        """One item: the install of the parent package, named by the endpoint (`install`)."""
        if not isinstance(value, dict):
            return []
        name = normalize_path(obs.path).rstrip("/").rsplit("/", 1)[-1] or None
        # no identifier: the hashed root package names the app being installed, not a person
        context = {k: value[k] for k in _CONTEXT if k in value} or None
        return [Item("event", name, "", {}, value.get("dependencyInfo"), context)]

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """200 (report.js resolves on any answer and never reads it)."""
        return json_answer(b"{}")
