"""Placeholder reader for store files given to `audit`; the store has its own reader."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from inspector.capture.load import CaptureError
from inspector.core.observation import Observation


def read_store_events(path: Path, session: str) -> Iterator[Observation]:
    raise CaptureError(f"{path} is a telemetry-inspector store: use `telemetry-inspector report --store {path}`")
    yield  # pragma: no cover
