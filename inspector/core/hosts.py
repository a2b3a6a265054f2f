"""The host catalogue: known telemetry hosts, their owner company and category, with sources.

It drives three things: which hosts the proxy intercepts by default, the owner shown for an
event, and rules that name a company or a category (`rules block Google`, `rules block
analytics`). Built in: `inspector/data/hosts.json`; a user's own entries come from
`$XDG_CONFIG_HOME/telemetry-inspector/hosts.json` (same format; the same host replaces).
Every entry carries the source of its fact.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from inspector.core.destination import normalize_host

CATEGORIES = ("analytics", "error-reporting", "observability", "product-telemetry", "advertising",
              "crash-reporting", "feature-flags", "other")
MAX_FILE = 4 * 1024 * 1024


class HostCatalogueError(ValueError):
    """A host catalogue file that cannot be used (one line, naming the file)."""


@dataclass(frozen=True, slots=True)
class HostEntry:
    host: str           # exact or wildcard (`*.ingest.sentry.io`), lower case
    owner: str          # the company
    category: str
    source: str         # where the fact comes from (an SDK's source file, the vendor's document)
    collector: str | None = None

    def matches(self, host: str) -> bool:
        return fnmatch.fnmatchcase(host, self.host)


class HostCatalogue:
    """Entries by host; exact ones first, then the longest wildcard."""

    def __init__(self, entries: list[HostEntry]) -> None:
        by_host: dict[str, HostEntry] = {}
        for entry in entries:
            by_host[entry.host] = entry  # a later entry (the user's) replaces an earlier one
        self.entries = list(by_host.values())
        self._exact = {e.host: e for e in self.entries if "*" not in e.host}
        self._wild = sorted((e for e in self.entries if "*" in e.host), key=lambda e: -len(e.host))
        self._memo: dict[str, HostEntry | None] = {}

    def lookup(self, host: str) -> HostEntry | None:
        """The entry for `host` (any spelling of it), or None."""
        if host in self._memo:
            return self._memo[host]
        name = normalize_host(host)
        found = None
        if name:
            found = self._exact.get(name) or next((e for e in self._wild if e.matches(name)), None)
        if len(self._memo) < 4096:
            self._memo[host] = found
        return found

    def owners(self) -> list[str]:
        return sorted({e.owner for e in self.entries})

    def categories(self) -> list[str]:
        return sorted({e.category for e in self.entries})


def parse_entries(data: Any, origin: str) -> list[HostEntry]:
    """The entries of one catalogue document; HostCatalogueError naming `origin` if malformed."""
    if not isinstance(data, dict) or not isinstance(data.get("hosts"), list):
        raise HostCatalogueError(f"{origin}: a host catalogue is an object with a \"hosts\" list")
    out = []
    for i, raw in enumerate(data["hosts"]):
        where = f"{origin}: hosts[{i}]"
        if not isinstance(raw, dict):
            raise HostCatalogueError(f"{where} is not an object")
        missing = [k for k in ("host", "owner", "category", "source") if not isinstance(raw.get(k), str) or not raw[k]]
        if missing:
            raise HostCatalogueError(f"{where} lacks {', '.join(missing)} (every entry says where its fact comes from)")
        if raw["category"] not in CATEGORIES:
            raise HostCatalogueError(f"{where}: unknown category {raw['category']!r} (use {', '.join(CATEGORIES)})")
        pattern = raw["host"].strip().lower().rstrip(".")
        if "*" not in pattern and normalize_host(pattern) != pattern:
            raise HostCatalogueError(f"{where}: {raw['host']!r} is not a host name")
        collector = raw.get("collector") if isinstance(raw.get("collector"), str) else None
        out.append(HostEntry(pattern, raw["owner"], raw["category"], raw["source"], collector))
    return out


def user_catalogue_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "telemetry-inspector" / "hosts.json"


def load(user_path: Path | None = None) -> HostCatalogue:
    """The built-in catalogue plus the user's file (if any). Raises HostCatalogueError."""
    text = resources.files("inspector.data").joinpath("hosts.json").read_text(encoding="utf-8")
    entries = parse_entries(json.loads(text), "builtin hosts.json")
    path = user_path or user_catalogue_path()
    if path.exists():
        if not path.is_file():
            raise HostCatalogueError(f"{path}: not a regular file")
        if path.stat().st_size > MAX_FILE:
            raise HostCatalogueError(f"{path}: larger than {MAX_FILE // (1024 * 1024)} MiB")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise HostCatalogueError(f"{path}: not a readable JSON host catalogue ({type(exc).__name__})") from None
        entries += parse_entries(data, str(path))
    return HostCatalogue(entries)


@lru_cache(maxsize=1)
def default() -> HostCatalogue:
    """The catalogue every part uses unless given another (a broken user file: built-ins only)."""
    try:
        return load()
    except HostCatalogueError as exc:
        logging.getLogger("telemetry_inspector").warning("telemetry-inspector: %s; using the built-in hosts only", exc)
        text = resources.files("inspector.data").joinpath("hosts.json").read_text(encoding="utf-8")
        return HostCatalogue(parse_entries(json.loads(text), "builtin hosts.json"))
