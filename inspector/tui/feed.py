"""The events behind the TUI: ids in memory, documents read from the store when shown.

A store of 100,000 events is ~400 MB as Python dicts. The feed keeps 9 bytes per event (its id
and a flags byte); the event list fetches the few rows it draws (the store keeps a small cache).
What needs every event — the header counts, the vendors view, a filter — is computed by
`step()`, a few hundred events at a time, which the app calls between frames until the feed
has caught up: the first screen does not wait for it and the UI never stalls on it.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

from inspector.core.fields import observed_paths

FILTER_KEYS = {"vendor", "policy", "host", "verdict", "action", "path", "method"}
VIOLATION, BLOCKED = 1, 2
TALLIED = 4
PATHS_PER_POLICY = 5000  # observed paths remembered per policy (hostile payloads invent keys)


_INDEX = re.compile(r"\[\d+\]")
EXAMPLE_CHARS = 200  # an example value is kept this long at most


def _example(value: Any) -> Any:
    """An example value as kept per field: a scalar, or its JSON cut short."""
    if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > EXAMPLE_CHARS):
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
        return text[:EXAMPLE_CHARS] + ("…" if len(text) > EXAMPLE_CHARS else "")
    return value


@dataclass
class PolicyTally:
    """What the events of one policy showed: counts, fields seen, findings, claims broken."""

    count: int = 0
    last: float = 0.0
    fields: dict[str, list[Any]] = field(default_factory=dict)      # observed path → [events, example]
    undeclared: dict[str, list[Any]] = field(default_factory=dict)  # undeclared-field path → [findings, evidence]
    broken: dict[str, int] = field(default_factory=dict)            # claim check → findings against it
    severities: dict[str, int] = field(default_factory=dict)        # finding severity → count

    @property
    def paths(self) -> set[str]:
        return set(self.fields)


class VendorTally:
    """Per policy: events seen, the fields observed (with counts and an example), the
    undeclared ones, the claims their findings break, last seen. Bounded per policy: a hostile
    payload invents keys."""

    def __init__(self) -> None:
        self.seen: dict[str, PolicyTally] = {}

    def add(self, event: dict[str, Any]) -> None:
        pid = event.get("policy")
        if not pid or not isinstance(pid, str):
            return
        entry = self.seen.get(pid)
        if entry is None:
            entry = self.seen[pid] = PolicyTally()
        entry.count += 1
        when = event.get("time")
        entry.last = max(entry.last, when if isinstance(when, (int, float)) else 0.0)
        if isinstance(event.get("decoded"), (dict, list)):
            fields = entry.fields
            for path, example in observed_paths(event["decoded"]).items():
                slot = fields.get(path)
                if slot is not None:
                    slot[0] += 1
                elif len(fields) < PATHS_PER_POLICY:
                    fields[path] = [1, _example(example)]
        for finding in event.get("findings") or []:
            if not isinstance(finding, dict):
                continue
            severity = str(finding.get("severity") or "info")
            entry.severities[severity] = entry.severities.get(severity, 0) + 1
            claim = finding.get("claim")
            if severity != "info" and isinstance(claim, dict) and claim.get("check"):
                check = str(claim["check"])
                entry.broken[check] = entry.broken.get(check, 0) + 1
            if finding.get("code") == "undeclared-field":
                path = _INDEX.sub("[]", str(finding.get("path") or ""))
                slot = entry.undeclared.get(path)
                if slot is not None:
                    slot[0] += 1
                elif len(entry.undeclared) < PATHS_PER_POLICY:
                    entry.undeclared[path] = [1, _example(finding.get("evidence"))]


class Rows(Sequence[dict[str, Any]]):
    """A sequence of event documents over a sequence of ids (fetched on access)."""

    def __init__(self, ids: Sequence[int], get: Callable[[int], dict[str, Any]]) -> None:
        self._ids = ids
        self._get = get

    def __len__(self) -> int:
        return len(self._ids)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self._get(i) for i in self._ids[index]]
        return self._get(self._ids[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for i in list(self._ids):
            yield self._get(i)


class EventFeed:
    """Every event (by id), the filtered view, and the tallies over them.

    With a store, ids are the store's document ids and documents are read from it; events that
    are not in a store (no store, or a failed write) are kept in memory under negative ids.
    """

    def __init__(self, store: Any = None) -> None:
        self.store = store
        self._ids = array("q")
        self._flags = bytearray()        # VIOLATION | BLOCKED | TALLIED, per event
        self._mem: dict[int, dict[str, Any]] = {}
        self._next_mem = -1
        self._view: array | None = None  # None: no filter, the view is every event
        self._filtered = 0               # events examined for the current filter
        self._tallied = 0                # events counted (a prefix of the ids)
        self.filter_text = ""
        self._terms: list[tuple[str | None, str]] = []
        self._counts = {"violations": 0, "blocked": 0}
        self.vendors = VendorTally()

    # ------------------------------------------------------------------ documents
    def get(self, doc_id: int) -> dict[str, Any]:
        doc = self._mem.get(doc_id)
        if doc is not None:
            return doc
        try:
            doc = self.store.get_event(doc_id) if self.store is not None else None
        except Exception as exc:  # noqa: BLE001 - one unreadable event must not take the list down
            return {"doc_id": doc_id, "verdict": "error", "host": f"(unreadable: {exc})", "findings": []}
        if doc is None:
            return {"doc_id": doc_id, "verdict": "error", "host": "(no longer in the store)", "findings": []}
        return doc

    def replace(self, doc_id: int, event: dict[str, Any]) -> None:
        """A new version of an event (decoded again): in memory, or written to the store."""
        if doc_id in self._mem or self.store is None:
            self._mem[doc_id] = event
        else:
            self.store.update_event(doc_id, {k: v for k, v in event.items() if k != "doc_id"})

    def _scan(self, ids: Sequence[int]) -> Iterator[dict[str, Any]]:
        """The documents of `ids` in order, read sequentially (a scan, not the cache)."""
        if self.store is None or any(i < 0 for i in ids):
            yield from map(self.get, ids)
            return
        try:
            for doc_id, doc in zip(ids, self.store.iter_events(ids), strict=True):
                yield doc if doc is not None else self.get(doc_id)
        except Exception:  # noqa: BLE001 - a damaged record: read one by one, each says what it is
            yield from map(self.get, ids)

    @property
    def all(self) -> Rows:
        return Rows(self._ids, self.get)

    @property
    def view(self) -> Rows:
        return Rows(self._ids if self._view is None else self._view, self.get)

    @property
    def ids(self) -> Sequence[int]:
        return self._ids

    def last_store_id(self) -> int:
        for i in reversed(self._ids):
            if i > 0:
                return i
        return 0

    # ------------------------------------------------------------------ adding
    def add(self, events: Iterable[dict[str, Any]]) -> int:
        """Events in hand (from the proxy, or built in memory): stored ones (with a
        ``doc_id``) by id, the others kept in memory."""
        added = 0
        for event in events:
            doc_id = event.get("doc_id")
            if doc_id is None or self.store is None:
                doc_id = self._next_mem
                self._next_mem -= 1
                self._mem[doc_id] = event
            self._append(int(doc_id), event)
            added += 1
        return added

    def add_ids(self, ids: Iterable[int]) -> int:
        """Events known by id only (read from the store): tallied and filtered by `step()`."""
        n = len(self._ids)
        self._ids.extend(ids)
        self._flags.extend(bytes(len(self._ids) - n))
        return len(self._ids) - n

    def _append(self, doc_id: int, event: dict[str, Any]) -> None:
        caught_up = self._tallied == len(self._ids)
        filtered = self._view is not None and self._filtered == len(self._ids)
        self._ids.append(doc_id)
        self._flags.append(0)
        if caught_up:
            self._tally(len(self._ids) - 1, event)
        if filtered:
            self._filtered += 1
            if self.matches(event):
                assert self._view is not None  # (filtered)
                self._view.append(doc_id)

    def forget_missing(self) -> int:
        """Drop the oldest events the store no longer has (its retention deleted them)."""
        if self.store is None:
            return 0
        if self.store.event_count() >= len(self._ids) - len(self._mem):
            return 0
        has_event = self.store.has_event
        k = 0
        while k < len(self._ids) and (self._ids[k] < 0 or not has_event(self._ids[k])):
            k += 1
        dead = {i for i in self._ids[:k] if i > 0}
        for j in range(k - 1, -1, -1):
            if self._ids[j] not in dead:
                continue
            flags = self._flags[j]
            if flags & TALLIED:
                self._counts["violations"] -= bool(flags & VIOLATION)
                self._counts["blocked"] -= bool(flags & BLOCKED)
                self._tallied -= 1
            if j < self._filtered:
                self._filtered -= 1
            del self._ids[j]
            del self._flags[j]
        if self._view is not None and dead:
            self._view = array("q", (i for i in self._view if i not in dead))
        return len(dead)

    # ------------------------------------------------------------------ tallies and filter
    def _tally(self, k: int, event: dict[str, Any]) -> None:
        flags = TALLIED
        if event.get("verdict") == "violation":
            flags |= VIOLATION
            self._counts["violations"] += 1
        if event.get("action") in ("block", "sinkhole"):
            flags |= BLOCKED
            self._counts["blocked"] += 1
        self._flags[k] = flags
        self.vendors.add(event)
        self._tallied = k + 1

    def behind(self) -> bool:
        n = len(self._ids)
        return self._tallied < n or (self._view is not None and self._filtered < n)

    def step(self, budget: int = 400) -> bool:
        """Tally and filter up to `budget` events; True when caught up."""
        n = len(self._ids)
        start = self._tallied if self._view is None else min(self._tallied, self._filtered)
        stop = min(n, start + budget)
        for k, event in zip(range(start, stop), self._scan(self._ids[start:stop]), strict=False):
            doc_id = self._ids[k]
            if k >= self._tallied:
                self._tally(k, event)
            if self._view is not None and k >= self._filtered:
                self._filtered = k + 1
                if self.matches(event):
                    self._view.append(doc_id)
        return not self.behind()

    def progress(self) -> float:
        n = len(self._ids)
        done = self._tallied if self._view is None else min(self._tallied, self._filtered)
        return 1.0 if not n else done / n

    def set_filter(self, text: str) -> None:
        """A new filter: the view starts empty and `step()` fills it."""
        self.filter_text = text.strip()
        self._terms = []
        for word in self.filter_text.lower().split():
            key, sep, value = word.partition(":")
            self._terms.append((key, value) if sep and key in FILTER_KEYS else (None, word))
        self._view = array("q") if self._terms else None
        self._filtered = 0

    def matches(self, event: dict[str, Any]) -> bool:
        hay = None
        for key, value in self._terms:
            if key is not None:
                if value not in str(event.get(key) or "").lower():
                    return False
                continue
            if hay is None:
                hay = " ".join(str(event.get(k) or "") for k in
                               ("policy", "vendor", "host", "path", "method", "verdict", "action")).lower()
                hay += " " + json.dumps(event.get("decoded"), ensure_ascii=False, default=str).lower()
            if value not in hay:
                return False
        return True

    def retally(self) -> None:
        """After events changed (a key decoded them): count and filter everything again."""
        self._flags = bytearray(len(self._ids))
        self._tallied = 0
        self._counts = {"violations": 0, "blocked": 0}
        self.vendors = VendorTally()
        self.set_filter(self.filter_text)

    def counts(self) -> dict[str, Any]:
        """Kept up to date incrementally: the status line must not scan 100k events."""
        return {"events": len(self._ids), **self._counts, "complete": self._tallied == len(self._ids)}
