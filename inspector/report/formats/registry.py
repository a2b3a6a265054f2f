"""The report-format registry: every format module in this package registers itself here.

Adding a format is one module in `inspector/report/formats/` that calls `register` with a
`ReportFormat`; `render`, the format names the CLI offers and the file extensions come from here.

A format with a `writer` writes its report to a text stream from an iterable of events read
once (`audit` and `report` feed it a stream of any length, docs/performance.md); one with only
a `render` gets the events as a list.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import PurePath
from typing import TextIO

from inspector.core.event import Event
from inspector.core.plugins import PackageModules
from inspector.core.policy import Catalogue

# (events, catalogue, inputs) → the report's text
Renderer = Callable[[list[Event], Catalogue, list[str]], str]
# (events, read once; catalogue; inputs; where to write the report's text)
Writer = Callable[[Iterable[Event], Catalogue, list[str], TextIO], None]


@dataclass(frozen=True, slots=True)
class ReportFormat:
    """One report format: its name (`--format NAME`), file extensions, and renderer."""

    name: str
    extensions: tuple[str, ...]  # lower case, with the dot; the first is the one to write
    render: Renderer = field(repr=False)
    order: int = 100  # where it is listed (the CLI's choices, the docs)
    description: str = ""
    writer: Writer | None = field(default=None, repr=False)  # the report written as the events come

    def write(self, events: Iterable[Event], catalogue: Catalogue, inputs: list[str], out: TextIO) -> None:
        """Write the report of `events` to `out`: streamed by the writer, else rendered whole."""
        if self.writer is not None:
            self.writer(events, catalogue, inputs, out)
        else:
            out.write(self.render(list(events), catalogue, inputs))


def text_of(writer: Writer, events: Iterable[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    """What `writer` writes, as one string (a format's `render` from its `writer`)."""
    out = io.StringIO()
    writer(events, catalogue, inputs, out)
    return out.getvalue()


_REGISTRY: dict[str, ReportFormat] = {}


def register(fmt: ReportFormat) -> ReportFormat:
    """Add a format; two formats may share neither a name nor an extension."""
    old = _REGISTRY.get(fmt.name)
    if old is not None and old.render is not fmt.render:
        raise ValueError(f"two report formats are named {fmt.name!r}")
    for other in _REGISTRY.values():
        shared = set(other.extensions) & set(fmt.extensions)
        if other.name != fmt.name and shared:
            raise ValueError(f"report formats {other.name!r} and {fmt.name!r} both claim {sorted(shared)[0]}")
    _REGISTRY[fmt.name] = fmt
    return fmt


def unregister(name: str) -> None:
    """Remove a format (for tests that register one of their own)."""
    _REGISTRY.pop(name, None)


_MODULES = PackageModules("inspector.report.formats", skip=("registry",))
_load = _MODULES.load


def formats() -> tuple[ReportFormat, ...]:
    """Every registered format, in listing order."""
    _load()
    return tuple(sorted(_REGISTRY.values(), key=lambda f: (f.order, f.name)))


def names() -> tuple[str, ...]:
    """The format names, in listing order (`--format`'s choices)."""
    return tuple(f.name for f in formats())


def get(name: str) -> ReportFormat:
    """The format of that name; KeyError for an unknown one."""
    _load()
    return _REGISTRY[name]


def for_path(path: str | PurePath) -> ReportFormat | None:
    """The format a file name's extension names (`report.sarif.json` → sarif), or None."""
    name = PurePath(path).name.lower()
    best: ReportFormat | None = None
    best_len = 0
    for fmt in formats():
        for extension in fmt.extensions:
            if name.endswith(extension) and len(extension) > best_len and len(name) > len(extension):
                best, best_len = fmt, len(extension)
    return best
