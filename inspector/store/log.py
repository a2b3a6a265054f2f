"""The store's file format: a JSON Lines operation log, and the in-memory state it builds.

Line 1 is a header, every further line one operation record::

    {"format": "telemetry-inspector-store", "version": 1}
    {"t": "events", "i": 1, "d": {...}}      insert, or replace the whole document
    {"t": "events", "i": 1, "x": 1}          delete
    {"t": "events", "x": "all"}              truncate the table

A write cut short (kill -9, power loss, disk full) leaves a trailing line without its newline:
readers ignore it. The next writer closes such a fragment with ``TORN + "\\n"`` before its own
records, so the fragment stays a line of its own that readers skip (JSON written by this module
is pure ASCII without control characters, so no record ever ends with ``TORN``).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, TypeGuard

from inspector.store.errors import StoreError
from inspector.store.paths import refuse_link

FORMAT = "telemetry-inspector-store"
VERSION = 1
HEADER = b'{"format": "telemetry-inspector-store", "version": 1}\n'
TORN = b"\x1e"

_dumps = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=True).encode


def encode_doc(doc: Any) -> str:
    """A document as compact ASCII JSON (the form stored after ``"d":``)."""
    if not isinstance(doc, Mapping):
        raise ValueError("Document is not a Mapping")
    try:
        return _dumps(doc if type(doc) is dict else dict(doc))
    except (TypeError, ValueError) as exc:
        raise StoreError(f"cannot store document: {exc}") from None


def put_line(table: str, doc_id: int, encoded: str) -> str:
    return f'{{"t":{_dumps(table)},"i":{int(doc_id)},"d":{encoded}}}\n'


def delete_line(table: str, doc_id: int) -> str:
    return f'{{"t":{_dumps(table)},"i":{int(doc_id)},"x":1}}\n'


def truncate_line(table: str) -> str:
    return f'{{"t":{_dumps(table)},"x":"all"}}\n'


def valid_record(rec: Any) -> bool:
    if type(rec) is not dict or type(rec.get("t")) is not str:
        return False
    x = rec.get("x")
    if x == "all":
        return True
    if type(rec.get("i")) is not int or rec["i"] < 0:
        return False
    if x is None:
        return type(rec.get("d")) is dict
    return type(x) is int and x == 1


def is_header(obj: Any) -> TypeGuard[dict[str, Any]]:
    return type(obj) is dict and obj.get("format") == FORMAT


def try_json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def legacy_tables(obj: Any) -> dict[str, dict[str, dict]] | None:
    """The tables of a TinyDB JSONStorage document, or None if `obj` is not one."""
    if type(obj) is not dict or is_header(obj):
        return None
    tables: dict[str, dict[str, dict]] = {}
    for name, table in obj.items():
        if type(table) is not dict:
            return None
        docs = []
        for key, doc in table.items():
            if not key.isdigit() or type(doc) is not dict:
                return None
            docs.append((int(key), doc))
        docs.sort(key=lambda kv: kv[0])
        tables[name] = {str(k): d for k, d in docs}
    return tables


def parse_chunk(chunk: bytes, first_lineno: int, *, strict: bool) -> tuple[list[dict], list[int], list[int], int]:
    """Parse `chunk` (complete lines, ending with a newline).

    Returns (records, bad line numbers, torn line numbers, number of lines). With `strict`,
    parsing stops at the first bad line.
    """
    lines = chunk.split(b"\n")
    lines.pop()  # after the final newline
    torn: list[int] = []
    keep: list[bytes] = []
    skipped = False
    for n, line in enumerate(lines):
        if line.endswith(TORN):
            torn.append(first_lineno + n)
            skipped = True
        elif not line or line.isspace():
            skipped = True
        else:
            keep.append(line)
    # Fast path: the whole chunk in one json.loads call.
    try:
        recs = json.loads(b"[" + b",".join(keep) + b"]")
        if len(recs) == len(keep) and all(map(valid_record, recs)):
            return recs, [], torn, len(lines)
    except ValueError:
        pass
    del keep
    # Slow path: line by line, to name the bad lines.
    recs, bad = [], []
    torn_set = set(torn) if skipped else set()
    for n, line in enumerate(lines):
        lineno = first_lineno + n
        if lineno in torn_set or not line or line.isspace():
            continue
        rec = try_json(line)
        if valid_record(rec):
            recs.append(rec)
        else:
            bad.append(lineno)
            if strict:
                break
    return recs, bad, torn, len(lines)


# The start of every insert record this module writes (`put_line`): a lazy table's documents
# are located by it and parsed only when read.
PUT_PREFIX = re.compile(rb'\{"t":"([A-Za-z0-9_]+)","i":([0-9]+),"d":\{')


def scan_chunk(chunk: bytes, first_lineno: int, base: int, lazy: frozenset[str]) -> tuple[list[dict], list[int], int]:
    """Like `parse_chunk` (strict), for a store with lazy tables: an insert into a lazy table
    becomes ``{"t", "i", "o": offset}`` without parsing its document; other records are parsed.

    `base` is the file offset of `chunk`. Returns (records, bad line numbers, number of lines).
    """
    recs: list[dict] = []
    match = PUT_PREFIX.match
    pos, n, end = 0, 0, len(chunk)
    while pos < end:
        nl = chunk.find(b"\n", pos)
        if nl < 0:
            break
        n += 1
        if nl == pos or chunk.endswith(TORN, pos, nl):
            pos = nl + 1
            continue
        m = match(chunk, pos, nl)
        table = m.group(1).decode("ascii") if m is not None else None
        if m is not None and table in lazy and chunk[nl - 2:nl] == b"}}":
            recs.append({"t": table, "i": int(m.group(2)), "o": base + pos})
        elif not (line := chunk[pos:nl]).isspace():
            # Not in this module's own spelling (another JSON tool rewrote the line: key order,
            # spacing, escapes): parsed, and located like the others when its table is lazy.
            rec = try_json(line)
            if not valid_record(rec):
                return recs, [first_lineno + n - 1], n
            if rec["t"] in lazy and rec.get("x") is None:
                rec = {"t": rec["t"], "i": rec["i"], "o": base + pos}
            recs.append(rec)
        pos = nl + 1
    return recs, [], n


class State:
    """The tables built by applying records; what TinyDB's ``Storage.read()`` returns."""

    def __init__(self, lazy: frozenset[str] = frozenset(), ignored: frozenset[str] = frozenset()) -> None:
        # Tables whose documents are not kept in memory: each document's file offset, parsed
        # when read (lazy), or nothing but the highest id, for the next insert (ignored: a
        # write-only store without retention).
        self.lazy = lazy
        self.ignored = ignored
        self.data: dict[str, dict[str, dict]] = {}
        self.maxid: dict[str, int] = {}
        self.low: dict[str, int] = {}
        self.gens: dict[str, int] = {}
        self.records = 0  # record lines in the file (live + superseded)

    def load_tables(self, tables: dict[str, dict[str, dict]]) -> None:
        for name, docs in tables.items():
            self.data[name] = docs
            self.maxid[name] = max(map(int, docs), default=0)
            self.gens[name] = self.gens.get(name, 0) + 1
        self.records += sum(len(d) for d in tables.values())

    def apply(self, recs: Iterable[dict]) -> int:
        data, maxid, low = self.data, self.maxid, self.low
        touched = set()
        n = 0
        for r in recs:
            n += 1
            t = r["t"]
            x = r.get("x")
            if x == "all":
                data.pop(t, None)
                maxid.pop(t, None)
                low.pop(t, None)
                touched.add(t)
                continue
            i = r["i"]
            if i > maxid.get(t, 0):
                maxid[t] = i
            if t in self.ignored:
                continue
            table = data.get(t)
            if x is None:
                if table is None:
                    table = data[t] = {}
                table[str(i)] = r["o"] if t in self.lazy else r["d"]
                if t in low and i < low[t]:
                    low[t] = i
            elif table is not None:
                table.pop(str(i), None)
            touched.add(t)
        for t in touched:
            self.gens[t] = self.gens.get(t, 0) + 1
        self.records += n
        return n

    def live(self) -> int:
        return sum(len(t) for t in self.data.values())

    def oldest_ids(self, table: str, k: int) -> list[int]:
        """The `k` lowest live ids of `table` (amortised O(k))."""
        docs = self.data.get(table)
        if not docs or k <= 0:
            return []
        top = self.maxid.get(table, 0)
        i = self.low.get(table, 1)
        out: list[int] = []
        budget = 4 * len(docs) + k
        while len(out) < k and i <= top and budget:
            if str(i) in docs:
                out.append(i)
            i += 1
            budget -= 1
        if not budget and len(out) < k:  # sparse ids: sort instead
            out = sorted(map(int, docs))[:k]
        if out:
            self.low[table] = out[0]
        return out

    def compacted(self) -> None:
        """After the file was rewritten with one record per live document."""
        for name, docs in list(self.data.items()):
            items = sorted(docs.items(), key=lambda kv: int(kv[0]))
            docs.clear()
            docs.update(items)
            self.maxid[name] = int(items[-1][0]) if items else 0
        self.low.clear()
        self.records = self.live()


def read_all(fd: int, start: int = 0) -> bytes:
    size = os.fstat(fd).st_size
    chunks = []
    pos = start
    while pos < size:
        block = os.pread(fd, min(size - pos, 1 << 26), pos)
        if not block:
            break
        chunks.append(block)
        pos += len(block)
    return b"".join(chunks)


def fsync_dir(directory: Path) -> None:
    try:
        dfd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


def write_compacted(path: Path, data: dict[str, dict[str, Any]],
                    raw_line: Callable[[int], bytes] | None = None) -> int:
    """Atomically replace `path` with a header and one insert record per document.

    Temp file in the same directory (mode 0600), fsync, ``os.replace``, fsync of the directory.
    Refused (`StorePathError`) if `path` is a symbolic link: the rename would replace the link.
    A lazy table's documents are file offsets: `raw_line(offset)` gives the record to copy, and
    the table's values become the offsets in the new file. Returns the number of records written.
    """
    moved: dict[str, dict[str, int]] = {}
    path = Path(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise StoreError(f"cannot write store {path}: {exc.strerror}") from None
    count = 0
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(HEADER)
            buf: list[bytes] = []
            size, where = 0, len(HEADER)
            for name, docs in data.items():
                for key in sorted(docs, key=int):
                    doc = docs[key]
                    if type(doc) is int:
                        if raw_line is None:
                            raise StoreError(f"cannot compact store {path}: documents not in memory")
                        line = raw_line(doc)
                        moved.setdefault(name, {})[key] = where
                    else:
                        line = put_line(name, int(key), _dumps(doc)).encode("ascii")
                    buf.append(line)
                    size += len(line)
                    where += len(line)
                    count += 1
                    if size > 1 << 20:
                        out.write(b"".join(buf))
                        buf.clear()
                        size = 0
            out.write(b"".join(buf))
            out.flush()
            os.fsync(out.fileno())
        refuse_link(path)
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise StoreError(f"cannot write store {path}: {exc.strerror}") from None
        raise
    fsync_dir(path.parent)
    for name, offsets in moved.items():
        data[name].update(offsets)
    return count
