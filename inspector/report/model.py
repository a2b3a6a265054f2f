"""What a report says, independent of its format: per policy, declared vs observed fields."""

from __future__ import annotations

import pickle
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import IO, Any, NamedTuple

from inspector.core import collectors
from inspector.core.event import Event, Tally
from inspector.core.fields import observed_paths  # (importable from here too)
from inspector.core.findings import SEVERITY_RANK, Finding
from inspector.core.policy import Catalogue, Policy


@dataclass
class FieldRow:
    path: str
    declared: dict[str, Any] | None
    seen: int = 0
    example: Any = None
    container: str = ""  # "items" or "root": it holds the declared fields, it is not one (Policy.container_paths)

    @property
    def status(self) -> str:
        if self.container:
            return "container of the items" if self.container == "items" else "container of the declared fields"
        if self.declared is not None and self.seen:
            return "declared, observed"
        if self.declared is not None:
            return "declared, never observed"
        return "undeclared, observed"


class EventRef(NamedTuple):
    """What a report shows of the request a finding was made on."""

    method: str
    url: str
    decoding: list[str]
    source: str
    id: str


class FindingSpool:
    """The findings of a report's sections, in their report order, held in memory up to a bound
    and past it in a private temporary file (unlinked from the start): a report of a million
    events keeps its counts in memory, not its findings.

    A section lists its findings most severe first, and those of one severity in event order (as
    a stable sort did): each (section, severity) is a bucket, appended to and read in order."""

    LIMIT = 2000  # findings held in memory before the buckets are written out

    def __init__(self) -> None:
        self._memory: dict[tuple[str, int], list[tuple[EventRef, Finding]]] = {}
        self._chunks: dict[tuple[str, int], list[int]] = {}  # file offsets of each bucket's written parts
        self._held = 0
        self._file: IO[bytes] | None = None

    def add(self, section: str, ref: EventRef, finding: Finding) -> None:
        self._memory.setdefault((section, SEVERITY_RANK[finding.severity]), []).append((ref, finding))
        self._held += 1
        if self._held >= self.LIMIT:
            self._spill()

    def _spill(self) -> None:
        if self._file is None:
            self._file = tempfile.TemporaryFile(prefix="ti-report-")  # noqa: SIM115 - closed by close()
        handle = self._file
        handle.seek(0, 2)
        for key, records in self._memory.items():
            if records:
                self._chunks.setdefault(key, []).append(handle.tell())
                pickle.dump(records, handle, protocol=pickle.HIGHEST_PROTOCOL)
                records.clear()
        self._held = 0

    def read(self, section: str) -> Iterator[tuple[EventRef, Finding]]:
        """The section's findings, most severe first."""
        for rank in sorted(set(SEVERITY_RANK.values()), reverse=True):
            key = (section, rank)
            for offset in self._chunks.get(key, ()):
                assert self._file is not None
                self._file.seek(offset)
                # (our own file, written by this process a moment ago: nothing else writes it)
                yield from pickle.load(self._file)  # noqa: S301
            yield from list(self._memory.get(key, ()))

    @property
    def held(self) -> int:
        """Findings in memory now (at most LIMIT)."""
        return self._held

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class PolicySection:
    """One section of a report: a policy's requests, a collector's unclaimed ones, or the rest;
    built from running counts (`add`) so that a report of any size holds no event."""

    def __init__(self, policy: Policy | None, key: str, collector: str | None = None,
                 spool: FindingSpool | None = None) -> None:
        self.policy = policy
        self.key = key
        self.collector = collector  # requests no policy claims, sent through this collector
        self.count = 0              # its events
        self.rows: list[FieldRow] = []
        self._rows: dict[str, FieldRow] = {}
        self._norm: dict[str, str] = {}  # an observed path → the declared path it counts for
        self._declared = policy.declared_paths() if policy is not None else {}
        self._containers = policy.container_paths() if policy is not None else {}
        self._items: dict[tuple[str, str], int] = {}
        self._spool = spool if spool is not None else FindingSpool()
        self.severities = dict.fromkeys(SEVERITY_RANK, 0)  # its findings by severity
        if policy is not None:
            self._rows = {path: FieldRow(path, spec) for path, spec in self._declared.items()}

    @property
    def title(self) -> str:
        if self.collector is not None:
            profile = collectors.get(self.collector)
            title = profile.title if profile else self.collector
            owner = f" ({profile.owner})" if profile and profile.owner and profile.owner != title else ""
            return f"{title}{owner}: collector requests no vendor policy describes"
        if self.policy is None:
            return "Requests no policy describes"
        return f"{self.policy.vendor}: {self.policy.product}"

    def add(self, event: Event) -> None:
        """Count `event` in: its fields (a policy's section), its items, its findings."""
        self.count += 1
        for item in event.items:
            key = (str(item.get("kind") or "other"), str(item.get("name") or "(unnamed)"))
            self._items[key] = self._items.get(key, 0) + 1
        if self.policy is not None and event.structured:
            rows, norms = self._rows, self._norm
            for path, example in observed_paths(event.decoded).items():
                norm = norms.get(path)
                if norm is None:
                    norm = norms[path] = _match_declared(path, self._declared)
                row = rows.get(norm)
                if row is None:
                    row = rows[norm] = FieldRow(norm, None, container=self._containers.get(norm, ""))
                row.seen += 1
                if row.example is None:
                    row.example = example
        if event.findings:
            ref = EventRef(event.method, event.url, event.decoding, event.source, event.id)
            for finding in event.findings:
                self._spool.add(self.key, ref, finding)
                self.severities[finding.severity] = self.severities.get(finding.severity, 0) + 1

    def field_counts(self) -> tuple[int, int, int]:
        """(declared fields seen, declared fields never seen, observed fields not declared —
        containers left out: they hold fields), after `finish`."""
        seen = sum(1 for row in self.rows if row.declared is not None and row.seen)
        never = sum(1 for row in self.rows if row.declared is not None and not row.seen)
        undeclared = sum(1 for row in self.rows if row.declared is None and not row.container)
        return seen, never, undeclared

    def finish(self) -> None:
        """The field table in path order (after the last `add`)."""
        self.rows = sorted(self._rows.values(), key=lambda r: r.path)

    def item_counts(self) -> list[tuple[str, str, int]]:
        """(kind, event name, count) of the section's items, most frequent first."""
        return sorted(((k, n, c) for (k, n), c in self._items.items()), key=lambda row: (-row[2], row[0], row[1]))

    def findings(self) -> Iterator[tuple[EventRef, Finding]]:
        """(the request, a finding) of every finding of the section, most severe first (within a
        severity, in event order)."""
        return self._spool.read(self.key)


class ReportModel:
    """What every aggregate report shows — the summary, then a section per policy or collector —
    counted in one pass over the events, which may be a stream: memory holds the counts and the
    field tables, and at most `FindingSpool.LIMIT` findings (the rest wait in a temporary file).
    Close it (or use it as a context manager) to remove that file."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.tally = Tally()
        self._spool = FindingSpool()
        self._sections: dict[str, PolicySection] = {}
        self.sections: list[PolicySection] = []

    def add(self, event: Event) -> None:
        self.tally.add(event)
        key = event.policy or (f"~collector:{event.collector}" if event.collector else "")
        section = self._sections.get(key)
        if section is None:
            section = self._sections[key] = PolicySection(
                self.catalogue.get(event.policy) if event.policy else None, key,
                collector=event.collector if not event.policy else None, spool=self._spool)
        section.add(event)

    def finish(self) -> ReportModel:
        """The sections in report order (policies by id, then collectors, then the rest)."""
        for section in self._sections.values():
            section.finish()
        self.sections = sorted(self._sections.values(), key=lambda s: (s.policy is None, s.key == "", s.key))
        return self

    @property
    def summary(self) -> dict[str, Any]:
        return self.tally.summary()

    def close(self) -> None:
        self._spool.close()

    def __enter__(self) -> ReportModel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def report_model(events: Iterable[Event], catalogue: Catalogue) -> ReportModel:
    """The model of `events` (any iterable: read once), finished."""
    model = ReportModel(catalogue)
    for event in events:
        model.add(event)
    return model.finish()


def _declared_type(spec: dict[str, Any]) -> str:
    if not isinstance(spec, dict):
        return ""
    parts = []
    t = spec.get("type")
    if t:
        parts.append(t if isinstance(t, str) else "|".join(t))
    if spec.get("items", {}).get("type") if isinstance(spec.get("items"), dict) else False:
        parts[-1:] = [f"{parts[-1] if parts else 'array'} of {spec['items']['type']}"]
    if spec.get("format"):
        parts.append(spec["format"])
    if spec.get("optional"):
        parts.append("optional")
    if spec.get("pii"):
        parts.append(f"personal data: {spec['pii']}")
    return ", ".join(parts)


def declared_type(spec: dict[str, Any] | None) -> str:
    return _declared_type(spec or {})


def build_sections(events: Iterable[Event], catalogue: Catalogue) -> list[PolicySection]:
    """The report's sections of `events`, in report order."""
    return report_model(events, catalogue).sections


def _match_declared(path: str, declared: dict[str, Any]) -> str:
    if path in declared:
        return path
    # map-valued fields are declared as `metrics.*`
    for candidate in declared:
        if "*" in candidate:
            pattern = "^" + re.escape(candidate).replace(r"\*", r"[^.\[]+") + r"(\..*|\[\].*)?$"
            if re.match(pattern, path):
                return candidate if re.match("^" + re.escape(candidate).replace(r"\*", r"[^.\[]+") + "$", path) else path
    return path


def declared_path(path: str, declared: dict[str, Any]) -> str:
    """The declared path an observed one counts for (`metrics.cpu` for `metrics.*`), or itself."""
    return _match_declared(path, declared)
