"""AppendLogStorage: a TinyDB storage over an append-only JSON Lines operation log.

TinyDB's storage interface only knows ``read()`` (all tables) and ``write(all tables)``.
``read()`` here returns the in-memory tables, kept up to date by applying log records; the
writing side is a `Transaction` used by `AppendLogTable`, which appends one record per changed
document, so an insert costs the same whatever the store's size. (A plain TinyDB ``Table`` on
this storage still works: its ``write(data)`` rewrites the file atomically, O(N).)

Concurrency: every append happens under an exclusive ``fcntl.flock`` on the store file, after
catching up with records other processes appended; readers tail the file without the lock and
only ever consume complete lines. A file is only ever appended to; compaction and repair
replace it (``os.replace``), which the others notice as an inode change.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import stat
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tinydb.storages import Storage

from inspector.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreLockedError,
    StoreReadOnlyError,
    repair_hint,
)
from inspector.store.log import (
    HEADER,
    TORN,
    VERSION,
    State,
    delete_line,
    fsync_dir,
    is_header,
    legacy_tables,
    parse_chunk,
    put_line,
    read_all,
    scan_chunk,
    truncate_line,
    try_json,
    write_compacted,
)
from inspector.store.paths import open_store_file

log = logging.getLogger("inspector.store")

FSYNC_MODES = ("batch", "never", "always")
COMPACT_MIN_DEAD = 1000
BLOCK = 1 << 20
DOC_CACHE = 512
_sync = getattr(os, "fdatasync", os.fsync)


def _why(exc: OSError) -> str:
    return exc.strerror or str(exc)


class Transaction:
    """Records to append in one write; built under the lock, applied to the cache on success."""

    def __init__(self, storage: AppendLogStorage) -> None:
        self._storage = storage
        self.lines: list[str] = []
        self.recs: list[dict] = []
        self._next: dict[str, int] = {}
        self._new: dict[str, set[int]] = {}

    def table(self, name: str) -> dict[str, dict]:
        """The committed documents of `name` (do not modify)."""
        return self._storage._state.data.get(name, {})

    def next_id(self, name: str) -> int:
        n = self._next.get(name) or self._storage._state.maxid.get(name, 0) + 1
        self._next[name] = n + 1
        return n

    def exists(self, name: str, doc_id: int) -> bool:
        return str(doc_id) in self.table(name) or doc_id in self._new.get(name, ())

    def put(self, name: str, doc_id: int, encoded: str, doc: dict | None = None) -> None:
        """Insert or replace document `doc_id`; `encoded` from `encode_doc`.

        The cache keeps `doc` (a fresh dict whose values may be shared with the caller, as in
        TinyDB) or, without it, the decoded `encoded`."""
        doc_id = int(doc_id)
        self.lines.append(put_line(name, doc_id, encoded))
        self.recs.append({"t": name, "i": doc_id, "d": self._storage._loads(encoded) if doc is None else doc})
        self._new.setdefault(name, set()).add(doc_id)
        if doc_id >= self._next.get(name, 0):
            self._next[name] = max(doc_id + 1, self._storage._state.maxid.get(name, 0) + 1)

    def delete(self, name: str, doc_id: int) -> None:
        self.lines.append(delete_line(name, doc_id))
        self.recs.append({"t": name, "i": int(doc_id), "x": 1})
        self._new.get(name, set()).discard(int(doc_id))

    def truncate(self, name: str) -> None:
        self.lines.append(truncate_line(name))
        self.recs.append({"t": name, "x": "all"})
        self._new.pop(name, None)
        self._next.pop(name, None)


class AppendLogStorage(Storage):
    """TinyDB storage appending operation records to a JSON Lines file.

    :param path: the store file (created with mode 0600, parent directories 0700); a symbolic
        link, a FIFO or a device there is refused (`StorePathError`)
    :param fsync: ``"always"`` fsyncs after every append; ``"batch"`` (default) at most once
        per `fsync_interval` seconds, on compaction and on close; ``"never"`` leaves it to the
        OS. Every mode survives kill -9 of the writer; they differ on power loss.
    :param readonly: never create, lock or write the file
    :param lock_timeout: seconds to wait for another writer before `StoreLockedError`
    :param auto_compact: rewrite the file when it holds more superseded records than live ones
    :param ignore: tables of which nothing is kept but the highest id (write-only, no retention;
        such a handle cannot compact the file)
    :param lazy: tables whose documents stay in the file: the table maps each id to the offset
        of its record, and `document()` reads it (memory per document: its id and offset)
    """

    def __init__(self, path: str | os.PathLike[str], *, fsync: str = "batch", readonly: bool = False,
                 fsync_interval: float = 1.0, lock_timeout: float = 10.0, auto_compact: bool = True,
                 lazy: tuple[str, ...] = (), ignore: tuple[str, ...] = (), **_ignored: Any) -> None:
        super().__init__()
        if fsync not in FSYNC_MODES:
            raise ValueError(f"fsync must be one of {', '.join(FSYNC_MODES)}, not {fsync!r}")
        self.path = Path(path)
        self.fsync = fsync
        self.readonly = readonly
        self.fsync_interval = fsync_interval
        self.lock_timeout = lock_timeout
        self.auto_compact = auto_compact
        self._mutex = threading.RLock()
        self._ignore = frozenset(ignore)
        self._lazy = frozenset(lazy) - self._ignore
        self._state = State(self._lazy, self._ignore)
        self._fd = -1
        self._ident: tuple[int, int] = (0, 0)
        self._offset = 0          # bytes consumed: the start of the first unread line
        self._lineno = 0          # lines consumed
        self._format = "empty"    # "jsonl" | "legacy" | "empty" (no header yet)
        self._last_sync = 0.0
        self._dirty = False
        self._closed = False
        self._locked = False
        self._loads = json.loads
        self._docs: dict[tuple[tuple[int, int], int], dict] = {}  # lazy documents recently read
        self._open()

    # ------------------------------------------------------------------ TinyDB interface

    def read(self) -> dict[str, dict[str, dict]]:
        return self._state.data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace everything with `data` (the path of TinyDB's stock ``Table``): O(N) rewrite."""
        if self._ignore or self._lazy:
            raise StoreError(f"store {self.path} keeps some documents out of memory here; cannot rewrite it")
        normalised = json.loads(json.dumps({t: {str(k): v for k, v in docs.items()} for t, docs in data.items()}))
        with self._mutex:
            self._acquire()
            try:
                fresh = State()
                fresh.load_tables(normalised)
                fresh.gens = {t: self._state.gens.get(t, 0) + 1 for t in {*self._state.gens, *normalised}}
                self._state = fresh
                self._compact_locked()
            finally:
                self._release()

    def close(self) -> None:
        with self._mutex:
            if self._closed:
                return
            self._closed = True
            try:
                if self._dirty and self.fsync != "never":
                    _sync(self._fd)
            except OSError as exc:
                log.warning("store %s: fsync on close failed: %s", self.path, _why(exc))
            finally:
                if self._fd >= 0:  # -1 after a reopen that failed (the path became a link, …)
                    os.close(self._fd)
                self._fd = -1

    # ------------------------------------------------------------------ state

    def table_data(self, name: str) -> dict[str, dict]:
        return self._state.data.get(name, {})

    def document(self, name: str, key: str) -> dict | None:
        """Document `key` of table `name`, read from the file if the table is lazy."""
        value = self._state.data.get(name, {}).get(key)
        if type(value) is not int:
            return value
        with self._mutex:
            cache_key = (self._ident, value)
            doc = self._docs.get(cache_key)
            if doc is None:
                doc = self._docs[cache_key] = self._read_doc(value)
                if len(self._docs) > DOC_CACHE:
                    del self._docs[next(iter(self._docs))]
            return doc

    def documents(self, name: str, keys: Iterable[str]) -> Iterator[dict | None]:
        """The documents `keys` of table `name` in order (None for a missing one). A lazy
        table's are read in large sequential blocks and not cached: for scans."""
        table = self._state.data.get(name, {})
        window, lo = b"", 0
        for key in keys:
            value = table.get(key)
            if type(value) is not int:
                yield value
                continue
            with self._mutex:
                nl = window.find(b"\n", value - lo) if lo <= value < lo + len(window) else -1
                if nl < 0:
                    try:
                        window, lo = os.pread(self._fd, BLOCK, value), value
                    except OSError as exc:
                        raise StoreError(f"cannot read store {self.path}: {_why(exc)}") from None
                    nl = window.find(b"\n")
                    if nl < 0:  # a record longer than a block
                        window, lo = self._raw_line(value), value
                        nl = len(window) - 1
                line = window[value - lo:nl]
            yield self._doc_of(line, value)

    def _read_doc(self, offset: int) -> dict:
        return self._doc_of(self._raw_line(offset), offset)

    def _doc_of(self, line: bytes, offset: int) -> dict:
        """The document of the insert record `line` (read at `offset`)."""
        rec = try_json(line)
        if type(rec) is not dict or type(rec.get("d")) is not dict:
            raise StoreCorruptError(f"store {self.path} is corrupt at byte {offset}; {repair_hint(self.path)}")
        return rec["d"]

    def _raw_line(self, offset: int) -> bytes:
        """The record starting at `offset`, with its newline."""
        try:
            chunks, pos, size = [], offset, 1 << 14
            while True:
                block = os.pread(self._fd, size, pos)
                if not block:
                    raise StoreCorruptError(f"store {self.path} ends inside the record at byte {offset}; "
                                            f"{repair_hint(self.path)}")
                nl = block.find(b"\n")
                if nl >= 0:
                    chunks.append(block[:nl + 1])
                    return b"".join(chunks)
                chunks.append(block)
                pos += len(block)
                size = min(size * 4, BLOCK)
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {_why(exc)}") from None

    def generation(self, name: str) -> int:
        return self._state.gens.get(name, 0)

    def oldest_ids(self, name: str, k: int) -> list[int]:
        return self._state.oldest_ids(name, k)

    @property
    def format(self) -> str:
        return self._format

    # ------------------------------------------------------------------ opening and reading

    def _open(self) -> None:
        path = self.path
        if self.readonly:
            try:
                fd = open_store_file(path, os.O_RDONLY)
            except FileNotFoundError:
                raise StoreError(f"store {path} does not exist") from None
            except OSError as exc:
                raise StoreError(f"cannot open store {path}: {_why(exc)}") from None
        else:
            parent = path.parent
            if not parent.is_dir():
                try:
                    os.makedirs(parent, mode=0o700, exist_ok=True)
                except OSError as exc:
                    raise StoreError(f"cannot create directory {parent} for store {path}: {_why(exc)}") from None
            try:
                fd = open_store_file(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            except OSError as exc:
                kind = StoreReadOnlyError if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else StoreError
                raise kind(f"cannot write store {path}: {_why(exc)}") from None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise StoreError(f"store {path} is not a regular file")
            if st.st_mode & 0o077:
                if self.readonly:
                    log.warning("store %s is readable by other users (mode %o)", path, st.st_mode & 0o777)
                else:
                    try:
                        os.fchmod(fd, 0o600)
                        log.warning("store %s was readable by other users (mode %o): changed to 0600",
                                    path, st.st_mode & 0o777)
                    except OSError as exc:
                        log.warning("store %s is readable by other users (mode %o) and chmod failed: %s",
                                    path, st.st_mode & 0o777, _why(exc))
            self._fd = fd
            self._ident = (st.st_dev, st.st_ino)
            self._load_all()
        except BaseException:
            os.close(fd)
            self._fd = -1
            raise

    def _load_all(self) -> None:
        """(Re)build the state from the whole file."""
        gens = self._state.gens
        self._state = State(self._lazy, self._ignore)
        self._state.gens = {t: g + 1 for t, g in gens.items()}  # invalidate every query cache
        self._offset = self._lineno = 0
        self._format = "empty"
        try:
            head = os.pread(self._fd, 1 << 16, 0)
            if not head:
                return
            nl = head.find(b"\n")
            obj = try_json(head[:nl]) if nl >= 0 else None
            if is_header(obj):
                if obj.get("version") != VERSION:
                    raise StoreError(f"store {self.path} has format version {obj.get('version')!r}; "
                                     f"this telemetry-inspector reads version {VERSION}")
                self._format = "jsonl"
                self._offset, self._lineno = nl + 1, 1
                self._consume_fd()
                return
            data = read_all(self._fd)
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {_why(exc)}") from None
        nl = data.find(b"\n")
        if nl < 0 and HEADER.startswith(data):
            return  # a header cut short on creation
        tables = legacy_tables(try_json(data) if data.lstrip()[:1] == b"{" else None)
        if tables is not None:
            self._format = "legacy"
            self._state.load_tables(tables)
            self._offset = len(data)
            return
        if try_json(data[:nl] if nl >= 0 else data) is not None:
            raise StoreError(f"{self.path} is not a telemetry-inspector store")
        raise StoreCorruptError(f"store {self.path} is corrupt at line 1; {repair_hint(self.path)}")

    def _consume_fd(self) -> int:
        """Apply the complete lines from `self._offset` to the end of the file, block by block
        (bounded memory on top of the documents themselves)."""
        size = os.fstat(self._fd).st_size
        pos, carry, n = self._offset, b"", 0
        while pos < size:
            block = os.pread(self._fd, min(BLOCK, size - pos), pos)
            if not block:
                break
            pos += len(block)
            buf = carry + block if carry else block
            end = buf.rfind(b"\n")
            if end < 0:
                carry = buf
                continue
            carry = buf[end + 1:]
            n += self._consume(buf[:end + 1] if carry else buf)
        return n

    def _consume(self, buf: bytes) -> int:
        """Apply the complete lines of `buf` (bytes from `self._offset`, ending with a newline)."""
        if self._lazy or self._ignore:  # their documents are not parsed here
            recs, bad, nlines = scan_chunk(buf, self._lineno + 1, self._offset, self._lazy | self._ignore)
        else:
            recs, bad, _torn, nlines = parse_chunk(buf, self._lineno + 1, strict=True)
        if bad:
            raise StoreCorruptError(f"store {self.path} is corrupt at line {bad[0]}; {repair_hint(self.path)}")
        n = self._state.apply(recs)
        self._offset += len(buf)
        self._lineno += nlines
        return n

    def _tail(self) -> int:
        try:
            size = os.fstat(self._fd).st_size
            if self._format == "legacy":
                if size != self._offset:
                    self._load_all()
                    return max(1, self._state.records)
                return 0
            if size < self._offset:  # shrunk: not the file we read
                self._load_all()
                return max(1, self._state.records)
            if size == self._offset:
                return 0
            if self._format == "empty":
                before = self._state.records
                self._load_all()
                return self._state.records - before
            return self._consume_fd()
        except OSError as exc:
            raise StoreError(f"cannot read store {self.path}: {_why(exc)}") from None

    def _reopen(self) -> int:
        old = self._fd
        self._fd = -1
        try:
            self._open()
        finally:
            if old >= 0:
                os.close(old)
        return max(1, self._state.records)

    def _replaced(self) -> bool:
        try:
            st = os.lstat(self.path)  # a link put in its place is another file (and refused)
        except FileNotFoundError:
            return not self.readonly  # a writer recreates it; a reader keeps what it has
        return (st.st_dev, st.st_ino) != self._ident

    def refresh(self) -> int:
        """Apply records appended by other processes; reload if the file was replaced.

        Returns the number of records applied (at least 1 after a reload)."""
        with self._mutex:
            self._check_open()
            if self._replaced():
                return self._reopen()
            return self._tail()

    # ------------------------------------------------------------------ writing

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"store {self.path} is closed")

    def _acquire(self) -> None:
        """Take the write lock on the current file and catch up with it."""
        self._check_open()
        if self.readonly:
            raise StoreError(f"store {self.path} is open read-only")
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.0002
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise StoreLockedError(f"store {self.path} is locked by another process "
                                           f"(waited {self.lock_timeout:g} s)") from None
                time.sleep(delay)
                delay = min(delay * 2, 0.005)
                continue
            except OSError as exc:
                raise StoreError(f"cannot lock store {self.path}: {_why(exc)}") from None
            self._locked = True
            try:
                if self._replaced():
                    self._release()
                    self._reopen()
                    continue
                self._tail()
                if self._format == "legacy":
                    log.info("store %s: converting a TinyDB JSON file to the append log", self.path)
                    self._compact_locked()  # releases the lock of the old file
                    self._locked = False
                    continue
                if self._format == "empty":
                    self._write_header()
                return
            except BaseException:
                self._release()
                raise

    def _release(self) -> None:
        if self._locked:
            self._locked = False
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            except OSError:
                pass

    def _write_header(self) -> None:
        try:
            if os.fstat(self._fd).st_size:  # a header cut short: nobody can have read past it
                os.ftruncate(self._fd, 0)
            os.write(self._fd, HEADER)
            if self.fsync != "never":
                os.fsync(self._fd)
                fsync_dir(self.path.parent)
        except OSError as exc:
            raise StoreError(f"cannot write store {self.path}: {_why(exc)}") from None
        self._format = "jsonl"
        self._offset, self._lineno = len(HEADER), 1

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Lock, catch up, collect records, append them in one write, apply them, unlock."""
        with self._mutex:
            self._acquire()
            try:
                tx = Transaction(self)
                yield tx
                if tx.lines:
                    self._commit(tx)
            finally:
                self._release()
            self._maybe_compact()

    def _commit(self, tx: Transaction) -> None:
        payload = "".join(tx.lines).encode("ascii")
        try:
            size = os.fstat(self._fd).st_size
        except OSError as exc:
            raise StoreError(f"cannot write store {self.path}: {_why(exc)}") from None
        if size > self._offset:  # a fragment of an interrupted write: close it off
            payload = TORN + b"\n" + payload
        view = memoryview(payload)
        done = 0
        try:
            while done < len(payload):
                done += os.write(self._fd, view[done:])
        except OSError as exc:
            # Whatever part got written stays (the file is append-only; readers may have seen
            # it); the next writer closes the fragment. The caller gets no acknowledgement.
            raise StoreError(f"cannot write store {self.path}: {_why(exc)}") from None
        if self._lazy:
            where = size + len(payload) - sum(map(len, tx.lines))
            for line, rec in zip(tx.lines, tx.recs, strict=True):
                if rec["t"] in self._lazy and "d" in rec:
                    rec["o"] = where
                where += len(line)
        self._state.apply(tx.recs)
        self._offset = size + len(payload)
        self._lineno += payload.count(b"\n")
        self._sync_after_write()

    def _sync_after_write(self) -> None:
        if self.fsync == "never":
            return
        now = time.monotonic()
        if self.fsync == "always" or now - self._last_sync >= self.fsync_interval:
            try:
                _sync(self._fd)
            except OSError as exc:
                raise StoreError(f"cannot write store {self.path}: {_why(exc)}") from None
            self._last_sync = now
            self._dirty = False
        else:
            self._dirty = True

    def sync(self) -> None:
        """fsync now (whatever the mode)."""
        with self._mutex:
            self._check_open()
            if not self.readonly:
                try:
                    _sync(self._fd)
                except OSError as exc:
                    raise StoreError(f"cannot write store {self.path}: {_why(exc)}") from None
                self._dirty = False
                self._last_sync = time.monotonic()

    # ------------------------------------------------------------------ compaction

    def needs_compaction(self) -> bool:
        dead = self._state.records - self._state.live()
        return dead > max(self._state.live(), COMPACT_MIN_DEAD)

    def _maybe_compact(self) -> None:
        # A handle that ignores a table has nothing to rewrite it from (a write-only proxy
        # without retention): a process that reads the store (the TUI, `report`) compacts it.
        if self.auto_compact and not self._ignore and self.needs_compaction():
            self.compact()

    def compact(self) -> None:
        """Rewrite the file atomically with one insert record per live document."""
        if self._ignore:
            raise StoreError(f"store {self.path} is open write-only here; compact it from another process")
        with self._mutex:
            self._acquire()
            try:
                self._compact_locked()
            finally:
                self._release()

    def _compact_locked(self) -> None:
        """Under the lock: replace the file, then switch to the new one (releasing the lock)."""
        write_compacted(self.path, self._state.data, self._raw_line if self._lazy else None)
        self._state.compacted()
        old = self._fd
        try:
            fd = open_store_file(self.path, os.O_RDWR | os.O_APPEND)
            st = os.fstat(fd)
        except OSError as exc:
            raise StoreError(f"cannot open store {self.path}: {_why(exc)}") from None
        self._fd = fd
        self._ident = (st.st_dev, st.st_ino)
        self._offset = st.st_size
        self._lineno = 1 + self._state.records
        self._format = "jsonl"
        self._dirty = False
        self._last_sync = time.monotonic()
        self._locked = False
        os.close(old)  # releases the lock held on the replaced file

