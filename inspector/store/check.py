"""check_store / repair_store: inspect a store file leniently, and rewrite it without bad lines."""

from __future__ import annotations

import fcntl
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from inspector.store.errors import StoreError, StoreLockedError
from inspector.store.log import (
    HEADER,
    VERSION,
    State,
    fsync_dir,
    is_header,
    legacy_tables,
    parse_chunk,
    read_all,
    try_json,
    write_compacted,
)
from inspector.store.paths import open_store_file


@dataclass
class StoreReport:
    path: Path
    format: str                      # "jsonl" | "legacy" (TinyDB JSON) | "empty"
    version: int | None
    counts: dict[str, int]           # live documents per table
    records: int                     # readable records in the file
    bad_lines: list[int]             # unreadable lines that are not the trailing partial line
    torn_lines: list[int]            # fragments of interrupted writes, closed off (harmless)
    partial_tail: bool               # a trailing line without newline (harmless, ignored)
    legacy: bool
    size: int
    backup: Path | None = None       # set by repair_store
    dropped_lines: list[int] = field(default_factory=list)  # set by repair_store

    @property
    def ok(self) -> bool:
        return not self.bad_lines


def _scan(path: Path, data: bytes) -> tuple[StoreReport, State]:
    state = State()
    report = StoreReport(path=path, format="empty", version=None, counts={}, records=0, bad_lines=[],
                         torn_lines=[], partial_tail=False, legacy=False, size=len(data))
    if not data:
        return report, state
    nl = data.find(b"\n")
    first = data[:nl] if nl >= 0 else data
    obj = try_json(first)
    start, lineno = 0, 0
    if is_header(obj):
        if obj.get("version") != VERSION:
            raise StoreError(f"store {path} has format version {obj.get('version')!r}; "
                             f"this telemetry-inspector reads version {VERSION}")
        report.format, report.version = "jsonl", VERSION
        if nl < 0:
            report.partial_tail = True
            return report, state
        start, lineno = nl + 1, 1
    elif nl < 0 and HEADER.startswith(data):
        report.partial_tail = True
        return report, state
    else:
        tables = legacy_tables(try_json(data) if data.lstrip()[:1] == b"{" else None)
        if tables is not None:
            state.load_tables(tables)
            report.format, report.legacy = "legacy", True
            report.records = state.records
            report.counts = {t: len(d) for t, d in state.data.items()}
            return report, state
        if obj is not None:
            raise StoreError(f"{path} is not a telemetry-inspector store")
        # the header line is unreadable: report it, and read on
        report.format, report.version = "jsonl", VERSION
        report.bad_lines.append(1)
        if nl < 0:
            return report, state
        start, lineno = nl + 1, 1
    body = data[start:]
    end = body.rfind(b"\n")
    report.partial_tail = end + 1 < len(body)
    if end >= 0:
        recs, bad, torn, _n = parse_chunk(body[:end + 1], lineno + 1, strict=False)
        state.apply(recs)
        report.bad_lines += bad
        report.torn_lines = torn
        report.records = len(recs)
    report.counts = {t: len(d) for t, d in state.data.items()}
    return report, state


def check_store(path: Path | str) -> StoreReport:
    """What a store file holds and what is wrong with it (reads only). A symbolic link, a FIFO
    or a device is refused (`StorePathError`) before anything is read."""
    path = Path(path)
    try:
        fd = open_store_file(path, os.O_RDONLY)
        try:
            data = read_all(fd)
        finally:
            os.close(fd)
    except FileNotFoundError:
        raise StoreError(f"store {path} does not exist") from None
    except OSError as exc:
        raise StoreError(f"cannot read store {path}: {exc.strerror}") from None
    return _scan(path, data)[0]


def _lock_current(path: Path, timeout: float) -> int:
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = open_store_file(path, os.O_RDWR)
        except FileNotFoundError:
            raise StoreError(f"store {path} does not exist") from None
        except OSError as exc:
            raise StoreError(f"cannot write store {path}: {exc.strerror}") from None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    os.close(fd)
                    raise StoreLockedError(f"store {path} is locked by another process "
                                           f"(waited {timeout:g} s)") from None
                time.sleep(0.005)
        st, cur = os.fstat(fd), None
        try:
            cur = os.lstat(path)
        except FileNotFoundError:
            pass
        if cur is not None and (cur.st_dev, cur.st_ino) == (st.st_dev, st.st_ino):
            return fd
        os.close(fd)  # replaced meanwhile: lock the new one


def _backup(path: Path, data: bytes) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    for n in range(1000):
        candidate = path.with_name(f"{path.name}.bak-{stamp}" + (f"-{n}" if n else ""))
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        except FileExistsError:
            continue
        except OSError as exc:
            raise StoreError(f"cannot write backup {candidate}: {exc.strerror}") from None
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot write backup {candidate}: {exc.strerror}") from None
        os.close(fd)
        fsync_dir(path.parent)
        return candidate
    raise StoreError(f"cannot write a backup of {path}: too many backups named {path.name}.bak-{stamp}")


def repair_store(path: Path | str, *, lock_timeout: float = 10.0) -> StoreReport:
    """Back the file up to ``PATH.bak-<timestamp>`` (never deleted), then atomically rewrite it
    with the readable records only (one per live document). Returns the repaired file's report
    with ``backup`` and ``dropped_lines`` set. A symbolic link is refused (`StorePathError`),
    never replaced by a regular file."""
    path = Path(path)
    fd = _lock_current(path, lock_timeout)
    try:
        try:
            data = read_all(fd)
        except OSError as exc:
            raise StoreError(f"cannot read store {path}: {exc.strerror}") from None
        before, state = _scan(path, data)
        backup = _backup(path, data)
        write_compacted(path, state.data)
    finally:
        os.close(fd)
    after = check_store(path)
    after.backup = backup
    after.dropped_lines = before.bad_lines
    return after
