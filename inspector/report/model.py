"""What a report says, independent of its format: per policy, declared vs observed fields."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from inspector.core import collectors
from inspector.core.event import Event, summarize
from inspector.core.fields import observed_paths  # (importable from here too)
from inspector.core.findings import SEVERITY_RANK
from inspector.core.policy import Catalogue, Policy


@dataclass
class FieldRow:
    path: str
    declared: dict[str, Any] | None
    seen: int = 0
    example: Any = None

    @property
    def status(self) -> str:
        if self.declared is not None and self.seen:
            return "declared, observed"
        if self.declared is not None:
            return "declared, never observed"
        return "undeclared, observed"


@dataclass
class PolicySection:
    policy: Policy | None
    key: str
    events: list[Event] = field(default_factory=list)
    rows: list[FieldRow] = field(default_factory=list)
    collector: str | None = None  # requests no policy claims, sent through this collector

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

    def item_counts(self) -> list[tuple[str, str, int]]:
        """(kind, event name, count) of the section's items, most frequent first."""
        counts: dict[tuple[str, str], int] = {}
        for event in self.events:
            for item in event.items:
                key = (str(item.get("kind") or "other"), str(item.get("name") or "(unnamed)"))
                counts[key] = counts.get(key, 0) + 1
        return sorted(((k, n, c) for (k, n), c in counts.items()), key=lambda row: (-row[2], row[0], row[1]))

    def findings(self) -> list[tuple[Event, Any]]:
        items = [(e, f) for e in self.events for f in e.findings]
        items.sort(key=lambda pair: -SEVERITY_RANK[pair[1].severity])
        return items


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


def build_sections(events: list[Event], catalogue: Catalogue) -> list[PolicySection]:
    sections: dict[str, PolicySection] = {}
    for event in events:
        key = event.policy or (f"~collector:{event.collector}" if event.collector else "")
        if key not in sections:
            sections[key] = PolicySection(catalogue.get(event.policy) if event.policy else None, key,
                                          collector=event.collector if not event.policy else None)
        sections[key].events.append(event)
    for section in sections.values():
        if section.policy is None:
            continue
        declared = section.policy.declared_paths()
        rows = {path: FieldRow(path, spec) for path, spec in declared.items()}
        for event in section.events:
            if not event.structured:
                continue
            for path, example in observed_paths(event.decoded).items():
                norm = _match_declared(path, declared)
                row = rows.get(norm)
                if row is None:
                    row = rows[norm] = FieldRow(norm, None)
                row.seen += 1
                if row.example is None:
                    row.example = example
        section.rows = sorted(rows.values(), key=lambda r: r.path)
    return sorted(sections.values(), key=lambda s: (s.policy is None, s.key == "", s.key))


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


def report_summary(events: list[Event]) -> dict[str, Any]:
    return summarize(events)
