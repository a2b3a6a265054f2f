"""Recognise a capture file and read its Observations."""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from inspector.capture.errors import CaptureError  # (importable from here too)
from inspector.core.files import FileTooLarge, kind_of, open_regular, read_regular
from inspector.core.observation import Observation
from inspector.core.textsafe import safe_line

MAX_RAW = 64 * 1024 * 1024

# Told about an entry of a capture that cannot be audited (the rest of the capture still is).
ProblemSink = Callable[[str], None]


def warn_on_stderr(problem: str) -> None:
    """The default ProblemSink: one escaped line on stderr (the capture wrote the text in it)."""
    sys.stderr.write(f"warning: {safe_line(problem)}\n")
    sys.stderr.flush()


def sniff_kind(path: Path) -> str:
    """har, mitm, store or raw."""
    suffix = path.suffix.lower()
    if suffix == ".har":
        return "har"
    if suffix in (".mitm", ".flows", ".flow", ".dump"):
        return "mitm"
    with open_regular(path) as handle:  # a FIFO named capture.bin must not block the sniff
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


def _check_regular(path: Path) -> None:
    """A capture is a regular file: a FIFO blocks its reader forever, a device never ends."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(mode):
        raise CaptureError(f"{path} is a directory, not a capture file")
    if not stat.S_ISREG(mode):
        raise CaptureError(f"{path}: {kind_of(mode)}, not a regular file; not read")


def load_capture(path: Path, session: str | None = None,
                 on_problem: ProblemSink | None = None) -> Iterator[Observation]:
    """Observations in capture order. Raises CaptureError for unreadable input.

    An entry that cannot be audited (a HAR entry whose URL does not parse, say) is skipped and
    reported to `on_problem` as one line naming the file and the entry (default: stderr)."""
    if not path.exists():
        raise CaptureError(f"no such file: {path}")
    _check_regular(path)
    session = session or path.name
    problems = on_problem or warn_on_stderr
    try:
        kind = sniff_kind(path)
    except OSError as exc:
        raise CaptureError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        if kind == "har":
            from inspector.capture.har import read_har
            yield from read_har(path, session, problems)
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
    except (ValueError, KeyError, TypeError, OverflowError) as exc:
        raise CaptureError(str(exc).splitlines()[0][:300] or f"{path}: unreadable capture") from None
    except RecursionError:
        raise CaptureError(f"{path}: nested too deeply to read") from None
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
    try:
        data = read_regular(path, MAX_RAW)
    except FileTooLarge as exc:
        raise CaptureError(f"{path}: {exc.size} bytes is larger than the {MAX_RAW} byte limit for raw payloads") from None
    yield raw_observation(data, path.name, session)

