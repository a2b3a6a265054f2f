"""Store: the events, rules and sessions of telemetry-inspector, in one TinyDB file."""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, cast

from tinydb import Query, TinyDB

from inspector.store.errors import StoreError, StoreReadOnlyError
from inspector.store.storage import AppendLogStorage
from inspector.store.table import AppendLogTable, StoreDB

TABLES = ("events", "rules", "sessions")
RULE_KINDS = ("policy", "vendor", "host", "owner", "category")  # as inspector.core.rules.KINDS
RULE_ACTIONS = ("allow", "block", "sinkhole")


def default_store_path() -> Path:
    """``$XDG_DATA_HOME/telemetry-inspector/store.json`` (default ``~/.local/share/...``)."""
    base = os.environ.get("XDG_DATA_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".local" / "share"
    return root / "telemetry-inspector" / "store.json"


def open_recording(path: Path, **options: Any) -> tuple[Store | None, str | None]:
    """The store a proxy records into, and a warning if it can only be read.

    A store that cannot be written (a read-only file system, no permission) still holds the
    rules, and a proxy must keep applying them: it is opened read-only and events are not
    recorded. Other errors (corrupt, locked, not a store) are raised."""
    try:
        return Store(path, **options), None
    except StoreReadOnlyError as exc:
        options.pop("max_events", None)
        if not Path(path).expanduser().exists():
            return None, f"{exc}; no event will be recorded"
        store = Store(path, readonly=True, **options)
        return store, f"{exc}; its rules apply, but no event will be recorded"


class Store:
    """The store file, opened by one process among possibly several (proxy, TUI, CLI).

    Every write is one locked append; `refresh()` picks up what other processes appended.
    """

    def __init__(self, path: Path, *, max_events: int | None = None, fsync: str = "batch",
                 readonly: bool = False, keep_events: bool = True, lazy_events: bool = False,
                 **storage_options: Any) -> None:
        """`keep_events=False`: a write-only handle (the proxy's) that does not keep event
        documents in memory, so its memory stays flat however many events it writes (with
        `max_events`, it keeps the retained events' ids and offsets, ~100 bytes each).
        `lazy_events=True`: events stay in the file and are read when asked for (the TUI's
        handle): memory holds an id and an offset per event, not the event."""
        if max_events is not None and max_events < 1:
            raise ValueError(f"max_events must be at least 1, not {max_events}")
        self.path = Path(path).expanduser()
        self.max_events = max_events
        self.readonly = readonly
        self.keep_events = keep_events
        self.lazy_events = lazy_events and keep_events
        if not keep_events:
            # With retention: each event's id and file offset, to know the oldest and to compact
            # the file by copying records (the deletes would otherwise pile up in it). Without
            # retention: nothing per event.
            storage_options["lazy" if max_events else "ignore"] = ("events",)
        elif lazy_events:
            storage_options["lazy"] = ("events",)
        self._db = StoreDB(self.path, storage=AppendLogStorage, fsync=fsync, readonly=readonly,
                           **storage_options)
        self._storage: AppendLogStorage = self._db.storage  # type: ignore[assignment]
        self._events: AppendLogTable = self._db.table("events")  # type: ignore[assignment]
        self._rules: AppendLogTable = self._db.table("rules")  # type: ignore[assignment]
        self._sessions: AppendLogTable = self._db.table("sessions")  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"<Store {self.path} events={len(self._storage.table_data('events'))}>"

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def db(self) -> TinyDB:
        return self._db

    @property
    def storage(self) -> AppendLogStorage:
        return self._storage

    # ------------------------------------------------------------------ events

    def add_events(self, events: list[dict]) -> list[int]:
        """Append events in one write (with retention deletes, if any); their doc ids."""
        if not events:
            return []
        return self._events.insert_multiple(events, keep_newest=self.max_events)

    def add_event(self, event: dict) -> int:
        return self.add_events([event])[0]

    def events(self, start: int = 0, limit: int | None = None) -> list[dict]:
        """Events in insertion order from position `start` (negative: from the end), each a
        shallow copy with its ``doc_id``."""
        self._need_events()
        docs = self._storage.table_data("events")
        n = len(docs)
        if start < 0:
            start = max(0, n + start)
        stop = n if limit is None else min(n, start + max(0, limit))
        if start >= stop:
            return []
        keys = itertools.islice(docs, start, stop)
        return [{**cast(dict[str, Any], self._storage.document("events", key)), "doc_id": int(key)} for key in keys]

    def iter_events(self, ids: Iterable[int]) -> Iterator[dict | None]:
        """The events `ids` in order (None for an id not in the store), read sequentially
        without caching: for scans over many events."""
        self._need_events()
        ids = list(ids)
        for doc_id, doc in zip(ids, self._storage.documents("events", [str(i) for i in ids]), strict=True):
            yield None if doc is None else {**doc, "doc_id": int(doc_id)}

    def scan_events(self) -> Iterator[dict]:
        """Every event in insertion order, read sequentially without caching and without a list
        of the ids (a report of the whole store): on a handle that does not refresh meanwhile
        (read-only), memory holds the index the handle has anyway and one event."""
        self._need_events()
        keys = self._storage.table_data("events")
        for key, doc in zip(keys, self._storage.documents("events", keys), strict=True):
            if doc is not None:
                yield {**doc, "doc_id": int(key)}

    def event_ids(self, after: int = 0) -> list[int]:
        """The ids of the events, in insertion order; with `after`, only the ids above it
        (the events added since, as ids only grow)."""
        docs = self._storage.table_data("events")
        if not after:
            return list(map(int, docs))
        ids: list[int] = []
        for key in reversed(docs):
            i = int(key)
            if i <= after:
                break
            ids.append(i)
        ids.reverse()
        return ids

    def _need_events(self) -> None:
        if not self.keep_events:
            raise StoreError(f"store {self.path} is open write-only here (its events are not in memory)")

    def event_count(self) -> int:
        if not self.keep_events and not self.max_events:
            raise StoreError(f"store {self.path} is open write-only here (it does not count its events)")
        return len(self._storage.table_data("events"))

    def has_event(self, doc_id: int) -> bool:
        """Is event `doc_id` still in the store (not deleted by retention)?"""
        return str(doc_id) in self._storage.table_data("events")

    def get_event(self, doc_id: int) -> dict | None:
        self._need_events()
        doc = self._storage.document("events", str(doc_id))
        return None if doc is None else {**doc, "doc_id": int(doc_id)}

    def update_event(self, doc_id: int, fields: dict) -> None:
        self._need_events()
        if self.lazy_events:
            old = self._storage.document("events", str(doc_id))
            if old is not None and self._events.replace_docs({int(doc_id): {**old, **fields}}):
                return
        elif self._events.update(fields, doc_ids=[doc_id]):
            return
        raise StoreError(f"no event {doc_id} in store {self.path}")

    def refresh(self) -> int:
        """Apply what other processes appended; the number of records applied."""
        return self._storage.refresh()

    # ------------------------------------------------------------------ rules

    def rules(self) -> list[dict]:
        return [dict(doc) for doc in self._storage.table_data("rules").values()]

    def set_rule(self, target: str, kind: str, action: str) -> None:
        if kind not in RULE_KINDS:
            raise ValueError(f"rule kind must be one of {', '.join(RULE_KINDS)}, not {kind!r}")
        if action not in RULE_ACTIONS:
            raise ValueError(f"rule action must be one of {', '.join(RULE_ACTIONS)}, not {action!r}")
        rule = Query()
        self._rules.upsert({"target": target, "kind": kind, "action": action, "updated": time.time()},
                           (rule.kind == kind) & (rule.target == target))

    def remove_rule(self, target: str, kind: str | None = None) -> bool:
        rule = Query()
        cond = rule.target == target
        if kind is not None:
            cond = cond & (rule.kind == kind)
        return bool(self._rules.remove(cond))

    def reset_rules(self) -> None:
        self._rules.truncate()

    # ------------------------------------------------------------------ sessions

    def start_session(self, settings: dict) -> int:
        return self._sessions.insert({"started": time.time(), "ended": None, "settings": settings,
                                      "summary": None})

    def end_session(self, session_id: int, summary: dict) -> None:
        if not self._sessions.update({"ended": time.time(), "summary": summary}, doc_ids=[session_id]):
            raise StoreError(f"no session {session_id} in store {self.path}")

    def sessions(self) -> list[dict]:
        return [{**doc, "doc_id": int(key)} for key, doc in self._storage.table_data("sessions").items()]

    # ------------------------------------------------------------------ maintenance

    def compact(self) -> None:
        self._storage.compact()

    def sync(self) -> None:
        self._storage.sync()

    def close(self) -> None:
        if self._db._opened:
            self._db.close()
