"""Audit a telemetry-inspector store again: each stored event's request, with today's policies and keys."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from inspector.capture.errors import CaptureError
from inspector.core.event import observation_from_event
from inspector.core.observation import Observation


def read_store_events(path: Path, session: str) -> Iterator[Observation]:
    """The stored requests in store order. Events whose body the store did not keep whole
    (longer than the preview, or stored with --redact) cannot be audited again: if none can,
    that is an error; otherwise they are left out (`telemetry-inspector report` shows them)."""
    from inspector.store import Store, StoreError

    try:
        # Lazily: an id and a file offset per event in memory, each event read as it is audited.
        store = Store(path, readonly=True, lazy_events=True)
    except StoreError as exc:
        raise CaptureError(str(exc)) from None
    total = usable = 0
    try:
        for event in store.scan_events():
            total += 1
            obs = observation_from_event(event)
            if obs is None:
                continue
            usable += 1
            yield obs
    except StoreError as exc:
        raise CaptureError(str(exc)) from None
    finally:
        store.close()
    if total and not usable:
        raise CaptureError(f"{path}: no stored event kept its request body whole (redacted or truncated); "
                           f"use `telemetry-inspector report --store {path}`")
