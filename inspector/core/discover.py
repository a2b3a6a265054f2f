"""--discover: which requests to unknown hosts look like telemetry."""

from __future__ import annotations

import re

from inspector.core.observation import Observation

TRACKER_HOSTS = (
    "api.segment.io", "cdn.segment.com", "api.mixpanel.com", "api-js.mixpanel.com", "api.amplitude.com",
    "api2.amplitude.com", "app.posthog.com", "us.i.posthog.com", "eu.i.posthog.com", "www.google-analytics.com",
    "region1.google-analytics.com", "stats.g.doubleclick.net", "o*.ingest.sentry.io", "*.ingest.sentry.io",
    "api.rudderstack.com", "*.dataplane.rudderstack.com", "telemetry.*", "*.telemetry.*", "events.*",
    "analytics.*", "stats.*",
)
_PATH = re.compile(r"(^|/)(track|batch|collect|telemetry|events?|analytics|metrics|ping|beacon|pixel|log|v1/[tipb])(/|$|\.)",
                   re.IGNORECASE)


def looks_like_telemetry(obs: Observation, host: str | None = None) -> bool:
    """Path or host typical of telemetry and analytics endpoints (`host`: another name of obs's)."""
    from fnmatch import fnmatchcase
    host = obs.host if host is None else host
    if any(fnmatchcase(host, pattern) for pattern in TRACKER_HOSTS):
        return True
    return bool(_PATH.search(obs.path))
