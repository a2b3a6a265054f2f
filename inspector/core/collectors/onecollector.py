"""Microsoft 1DS / OneCollector: the Common Schema event stream of Office, VS Code, Edge, Windows apps.

Confirmed in npm `@microsoft/1ds-post-js` 4.4.4 and `@microsoft/1ds-core-js` 4.4.4 (with
`@microsoft/applicationinsights-core-js` 3.4.4):
- applicationinsights-core-js/dist-es5/constants/InternalConstants.js: the default endpoint
  `https://browser.events.data.microsoft.com/OneCollector/1.0/`; apps set their own on the same
  domain (VS Code: `mobile.events.data.microsoft.com`), hence `*.events.data.microsoft.com`.
- 1ds-post-js/dist-es5/HttpManager.js, InternalConstants.js: `apikey` (the tenant tokens,
  comma-separated), `client-id` (`NO_AUTH`), `client-version`, `upload-time`, and when set
  `time-delta-to-apply-millis`, `AuthMsaDeviceTicket`, `AuthXToken` — as headers, or in the
  query when headers cannot be sent (sendBeacon, `avoidOptions`); Content-Type
  `application/x-json-stream`.
- 1ds-post-js/dist-es5/Serializer.js: one event per line (`\\n`-joined), each
  `{name, time, ver: "4.0", iKey: "o:<tenant>", ext: {…}, data: {…}}`.
- 1ds-post-js/dist-es5/HttpManager.js `_retryRequestIfNeeded` and RetryPolicy.js: only 200 and
  204 are success; every other status below 300 (202 included), 408, 429 and 5xx but 501/505
  are retried. The body is not read: the collector's `{"acc":N}` is for the record.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors import _ndjson
from inspector.core.collectors.base import Collector, Endpoint, Item, json_answer, text
from inspector.core.collectors.registry import register
from inspector.core.decode import DEFAULT_LIMITS, Decoded, Issue, Layer
from inspector.core.observation import Observation

if TYPE_CHECKING:
    from inspector.core.pipeline import Pipeline

# Identifiers by role: the Common Schema's own (ext), then the ones VS Code sends as properties.
_EXT_IDS = (("user", "user", "localId"), ("user", "user", "id"), ("device", "device", "localId"),
            ("device", "device", "id"), ("session", "app", "sesId"), ("install", "app", "id"))
_DATA_IDS = (("device", "common.machineId"), ("device", "common.devDeviceId"), ("session", "sessionID"),
             ("session", "common.sessionID"))


@register
class OneCollector(Collector):
    name = "onecollector"
    title = "Microsoft 1DS"
    owner = "Microsoft"
    category = "product-telemetry"
    hosts = ("*.events.data.microsoft.com",)
    endpoints = (Endpoint(("/OneCollector/1.0", "/OneCollector/1.0/")),
                 Endpoint(("/ping",), ("GET", "POST", "HEAD")))
    credential_paths = ("[].iKey",)
    credential_params = ("apikey", "AuthMsaDeviceTicket", "AuthXToken")
    credential_headers = ("authorization", "apikey", "authmsadeviceticket", "authxtoken")
    envelope_fields = ("name", "time", "ver", "iKey", "ext.metadata", "ext.sdk", "data.baseType", "flags", "popSample",
                       "cV", "epoch", "seqNum")

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        layers: list[Layer] = [Layer("body")]
        issues: list[Issue] = []
        if not obs.body:
            return Decoded(value=None, layers=layers)
        data = _ndjson.body_bytes(obs, pipeline, layers, issues)
        if data is None:
            return Decoded(value=None, layers=layers, issues=issues)
        return _ndjson.decode_lines(data, pipeline, layers, issues)

    def recognises(self, value: Any) -> bool:
        if not isinstance(value, list) or not value:
            return False
        return all(isinstance(r, dict) and isinstance(r.get("name"), str) and isinstance(r.get("iKey"), str)
                   and isinstance(r.get("ver"), str) and isinstance(r.get("ext", {}), dict) for r in value)

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, list):
            return []
        out = []
        for index, record in enumerate(value):
            if not isinstance(record, dict):
                continue
            data = record.get("data")
            data = data if isinstance(data, dict) else {}
            base = data.get("baseData")
            base = base if isinstance(base, dict) else {}
            name = text(record.get("name")) or text(base.get("name"))
            ext = record.get("ext")
            ext = ext if isinstance(ext, dict) else {}
            ids: dict[str, str] = {}
            for role, part, key in _EXT_IDS:
                section = ext.get(part)
                found = section.get(key) if isinstance(section, dict) else None
                if isinstance(found, (str, int)) and not isinstance(found, bool) and str(found):
                    ids.setdefault(role, str(found))
            for role, key in _DATA_IDS:
                found = data.get(key)
                if isinstance(found, str) and found:
                    ids.setdefault(role, found)
            out.append(Item("event", name, f"[{index}]", ids, data or None, ext or None))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """200 (only 200/204 are not retried) with the count of accepted events, as the collector says."""
        if obs.path.rstrip("/") == "/ping":
            return json_answer(b"{}")
        return json_answer(b'{"acc":%d}' % _ndjson.count_lines(obs, DEFAULT_LIMITS))
