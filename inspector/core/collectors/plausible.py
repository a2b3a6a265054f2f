"""Plausible Analytics: the trackers' `POST /api/event` (plausible.io, or self-hosted / proxied).

Confirmed against the npm trackers' source:

* `@plausible-analytics/tracker` 0.4.6 (the official one), `plausible.js`: `init({domain})`,
  endpoint `https://plausible.io/api/event` unless `endpoint` is given; `track(name, {props, …})`
  sends `fetch(endpoint, {method: "POST", headers: {"Content-Type": "text/plain"}, keepalive: true,
  body: JSON.stringify({n, v: 36, u, d, r, p?, i?, $?, h?})})` — `p` the props as an object, `$`
  revenue, `i: false` a non-interactive event — and an `engagement` event `{n, sd, d, u, p, e, v, h?}`
  when a page is left. The answer's status goes to the callback; nothing is retried.
* `plausible-tracker` 0.3.9 (the older package), `build/main/lib/request.js`: an XMLHttpRequest
  `POST ${apiHost}/api/event` (apiHost `https://plausible.io`), `Content-Type: text/plain`, body
  `{n, u, d, r, w, h: 0|1, p?}` with `p` the props as a JSON *string*; the callback runs on
  readyState 4 whatever the status.

There are no identifiers (Plausible counts visitors by a daily salted hash made on its server)
and no credential: the site is named by its domain `d`.
"""

from __future__ import annotations

from typing import Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import SINKHOLE_HEADERS, Collector, Endpoint, Item, text
from inspector.core.collectors.registry import register
from inspector.core.observation import Observation

# Every field either tracker (or Plausible's hosted script) sends.
_KEYS = {"n", "u", "d", "r", "w", "h", "p", "m", "v", "i", "$", "sd", "e"}
_CONTEXT = ("u", "d", "r", "w", "h", "m", "v", "i", "$", "sd", "e")


@register
class Plausible(Collector):
    name = "plausible"
    title = "Plausible"
    owner = "Plausible Insights"
    category = "analytics"
    hosts = ("plausible.io",)
    endpoints = (Endpoint(("/api/event",)),)
    credential_headers = ()  # the trackers send none
    envelope_fields = ("n", "u", "d", "r", "w", "h", "v", "i", "sd", "e")

    def recognises(self, value: Any) -> bool:
        return (isinstance(value, dict) and isinstance(value.get("n"), str) and isinstance(value.get("u"), str)
                and isinstance(value.get("d"), str) and set(value) <= _KEYS)

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, dict):
            return []
        name = text(value.get("n"))
        kind = "page" if name == "pageview" else "event"
        properties = value.get("p")  # an object (a props string that is not JSON stays text)
        context = {k: value[k] for k in _CONTEXT if k in value} or None
        return [Item(kind, name, "", {}, properties, context)]

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """202 `ok`, as Plausible's API answers an event."""
        return LocalAnswer(202, (("Content-Type", "text/plain; charset=utf-8"), *SINKHOLE_HEADERS), b"ok")
