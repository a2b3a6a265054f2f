"""Recognise a capture file and read its Observations."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from inspector.core.observation import Observation

MAX_RAW = 64 * 1024 * 1024


class CaptureError(Exception):
    """An unreadable capture: one line for the user."""


def sniff_kind(path: Path) -> str:
    """har, mitm, store or raw."""
    suffix = path.suffix.lower()
    if suffix == ".har":
        return "har"
    if suffix in (".mitm", ".flows", ".flow", ".dump"):
        return "mitm"
    with path.open("rb") as handle:
        head = handle.read(4096)
    stripped = head.lstrip()
    if stripped.startswith(b'{"format": "telemetry-inspector-store"'):
        return "store"
    if stripped.startswith(b"{"):
        if b'"log"' in head and b'"entries"' in head:
            return "har"
        if b'"events"' in head[:200] or b'"_default"' in head[:200]:
            return "store"
    if head[:1].isdigit() and b":" in head[:12]:
        return "mitm"  # tnetstring: "<length>:"
    return "raw"


def load_capture(path: Path, session: str | None = None) -> Iterator[Observation]:
    """Observations in capture order. Raises CaptureError for unreadable input."""
    if not path.exists():
        raise CaptureError(f"no such file: {path}")
    if path.is_dir():
        raise CaptureError(f"{path} is a directory, not a capture file")
    session = session or path.name
    try:
        kind = sniff_kind(path)
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if kind == "har":
            from inspector.capture.har import read_har
            yield from read_har(path, session)
        elif kind == "mitm":
            from inspector.capture.mitm import read_mitm
            yield from read_mitm(path, session)
        elif kind == "store":
            from inspector.capture.store_file import read_store_events
            yield from read_store_events(path, session)
        else:
            yield from read_raw(path, session)
    except CaptureError:
        raise
    except (ValueError, KeyError, TypeError) as exc:
        raise CaptureError(str(exc).splitlines()[0][:300] or f"{path}: unreadable capture") from None
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None


def raw_observation(data: bytes, name: str, session: str = "default") -> Observation:
    """A bare payload (body, Base64, JWE, or a URL with the payload in its query)."""
    text = data.strip()
    if text[:8].lower().startswith((b"http://", b"https://")) and b"\n" not in text:
        url = text.decode("utf-8", "surrogateescape")
        return Observation(method="GET", url=url, session=session, source=name)
    return Observation(method="POST", url=f"file:///{name}", body=data, session=session, source=name)


def read_raw(path: Path, session: str) -> Iterator[Observation]:
    size = path.stat().st_size
    if size > MAX_RAW:
        raise CaptureError(f"{path}: {size} bytes is larger than the {MAX_RAW} byte limit for raw payloads")
    yield raw_observation(path.read_bytes(), path.name, session)


def is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:
        return False
    return True
