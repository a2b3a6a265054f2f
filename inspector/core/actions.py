"""Local answers for blocked and sinkholed requests (plain data; the addon turns them into responses)."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from inspector.core.observation import Observation

# The smallest transparent GIF: what a tracking pixel (`new Image().src = …`) expects.
PIXEL_GIF = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
SEGMENT_HOSTS = ("api.segment.io", "events.eu1.segmentapis.com", "cdn.segment.com")


@dataclass(frozen=True, slots=True)
class LocalAnswer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


def sinkhole_answer(obs: Observation, policy_sinkhole: dict[str, Any] | None = None) -> LocalAnswer:
    """A success response the client accepts, so the app keeps working and nothing leaves."""
    common = (("X-Telemetry-Inspector", "sinkhole"), ("Cache-Control", "no-store"))
    if policy_sinkhole:
        body = policy_sinkhole.get("body", "")
        if not isinstance(body, str):
            body = json.dumps(body)
        content_type = str(policy_sinkhole.get("content_type", "application/json"))
        return LocalAnswer(int(policy_sinkhole.get("status", 200)),
                           (("Content-Type", content_type), *common), body.encode("utf-8"))
    if obs.method == "GET" and ("payload=" in obs.raw_query or obs.path.endswith((".gif", "/telemetry", "/pixel"))):
        return LocalAnswer(200, (("Content-Type", "image/gif"), *common), PIXEL_GIF)
    if obs.host in SEGMENT_HOSTS or obs.host.endswith(".segment.io"):
        return LocalAnswer(200, (("Content-Type", "application/json"), *common), b'{"success":true}')
    if obs.method in ("GET", "HEAD"):
        return LocalAnswer(204, common, b"")
    return LocalAnswer(200, (("Content-Type", "application/json"), *common), b'{"success":true}')


def block_answer(status: int = 403) -> LocalAnswer:
    return LocalAnswer(status, (("Content-Type", "text/plain"), ("X-Telemetry-Inspector", "blocked")),
                       b"blocked by telemetry-inspector\n")
