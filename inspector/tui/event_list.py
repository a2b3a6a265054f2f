"""The event list: renders only the visible rows (a ScrollView with render_line).

A DataTable measures every cell (16.8 s for 100k rows here); this list costs the same at
100 rows as at 100,000: rows are formatted when they scroll into view.

Line 0 is the column headers (they stay put); the rows start below it. The list never scrolls
sideways: the columns are fitted to the width (the path keeps its end, where `/send` and
`/telemetry` differ), so every row shown is a whole row of the visible region.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.events import Click, MouseScrollDown, MouseScrollUp, Resize
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from inspector.core.event import item_summary
from inspector.core.textsafe import safe_line

# Badges carry a symbol and a word: no colour-only meaning.
VERDICT_BADGE = {
    "violation": "✗ VIOL", "warning": "! WARN", "encrypted": "# ENCR",
    "unknown": "? UNKN", "error": "! ERR ", "clean": "✓ OK  ",
}
ACTION_LABEL = {"allow": "allowed", "block": "BLOCKED", "sinkhole": "sinkholed", None: ""}
VERDICT_STYLE = {
    "violation": Style(color="red", bold=True), "warning": Style(color="yellow"),
    "encrypted": Style(color="magenta"), "unknown": Style(color="cyan"), "error": Style(color="yellow"),
    "clean": Style(color="green"),
}
HEADER_LINES = 1
WHO_MAX = 32      # the policy column grows to the longest name shown, up to this
OWNER_MAX = 22
OWNER_FROM = 100  # the owner column from this width on (below it, the path has the room)
TARGET_MIN = 24   # host and path: at least this (the path is what tells endpoints apart)


def verdict_label(event: dict[str, Any]) -> str:
    verdict = event.get("verdict") or "unknown"
    if verdict == "violation":
        n = sum(1 for f in event.get("findings", []) if f.get("severity") == "violation")
        return f"✗ {n} viol" if n < 10 else f"✗{min(n, 999)} viol"[:8]  # eight columns, whatever the count
    return VERDICT_BADGE.get(verdict, verdict)


def who_text(event: dict[str, Any]) -> str:
    """The policy of an event; a collector's request without one: its events' names."""
    collector = event.get("collector")
    if event.get("policy"):
        return safe_line(event["policy"])
    if collector:
        return safe_line(f"{collector}: {item_summary(event.get('items') or [], limit=1)}")
    return safe_line(event.get("host") or "-")


def owner_text(event: dict[str, Any]) -> str:
    """Who receives it: the company the host belongs to, and the collector it is sent through."""
    owner = event.get("owner") or event.get("vendor") or ""
    collector = event.get("collector") or ""
    if collector and owner and collector.lower() != owner.lower():
        return safe_line(f"{owner} ({collector})")
    return safe_line(owner or collector or "-")


def fit_target(host: str, path: str, width: int) -> str:
    """`host` + `path` in `width` columns: the host is cut first (from its left: the domain
    stays), then the path at its end — two endpoints of one host stay told apart."""
    full = host + path
    if len(full) <= width:
        return full
    if len(path) + 3 <= width:
        return "…" + host[len(host) - (width - len(path) - 1):] + path
    return (path[: width - 1] + "…") if width > 1 else path[:width]


@dataclass(frozen=True, slots=True)
class Columns:
    """Column widths for one width of the list (0: the column is not shown)."""

    who: int
    owner: int
    target: int

    @classmethod
    def fit(cls, width: int, who_seen: int = 10, owner_seen: int = 6) -> Columns:
        fixed = 8 + 1 + 8 + 1 + 4 + 1 + 9 + 1  # time, verdict, method, action and their gaps
        owner = min(OWNER_MAX, max(6, owner_seen)) if width >= OWNER_FROM else 0
        room = width - fixed - 1 - (owner + 1 if owner else 0)
        who = max(8, min(WHO_MAX, who_seen, room - TARGET_MIN))
        return cls(who=who, owner=owner, target=max(8, room - who))


def _cell(text: str, width: int) -> str:
    return (text if len(text) <= width else text[: width - 1] + "…").ljust(width)


def header_row(columns: Columns) -> str:
    parts = [f"{'time':<8}", f"{'verdict':<8}", _cell("policy", columns.who)]
    if columns.owner:
        parts.append(_cell("owner", columns.owner))
    parts += ["meth", _cell("host and path", columns.target), "action"]
    return " ".join(parts)


def format_row(event: dict[str, Any], width: int, columns: Columns | None = None) -> list[tuple[str, Style | None]]:
    """One event as (text, style) segments for a list `width` columns wide."""
    ts = event.get("time") or 0
    clock = datetime.fromtimestamp(ts).strftime("%H:%M:%S") if isinstance(ts, (int, float)) and ts else "--:--:--"
    # Segments go to the terminal as they are: every captured string through safe_line first
    # (before cutting to width, so a cut can shorten an escape but never reveal a raw character).
    who = who_text(event)
    columns = columns or Columns.fit(width, len(who), len(owner_text(event)))
    method = safe_line(event.get("method") or "")[:4]
    target = fit_target(safe_line(str(event.get("host") or "")), safe_line(str(event.get("path") or "")),
                        columns.target)
    action = safe_line(ACTION_LABEL.get(event.get("action"), event.get("action") or ""))
    badge = safe_line(verdict_label(event))
    segments: list[tuple[str, Style | None]] = [
        (f"{clock} ", None),
        (f"{badge[:8]:<8} ", VERDICT_STYLE.get(event.get("verdict") or "unknown")),
        (f"{_cell(who, columns.who)} ", Style(bold=True)),
    ]
    if columns.owner:
        segments.append((f"{_cell(owner_text(event), columns.owner)} ", None))
    segments += [
        (f"{method:<4} ", None),
        (f"{target:<{columns.target}} ", None),
        (action, Style(bold=True, reverse=event.get("action") == "block") if action != "allowed" else Style(dim=True)),
    ]
    return segments


class EventList(ScrollView, can_focus=True):
    """A virtual list over a sequence of event dicts, under a line of column headers."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {"event-list--header", "event-list--empty"}
    DEFAULT_CSS = """
    EventList { height: 1fr; overflow-x: hidden; scrollbar-size-vertical: 1; }
    EventList > .event-list--header { text-style: bold; background: $boost; }
    EventList > .event-list--empty { color: $text-muted; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "jump(0)", "First", show=False),
        Binding("end", "jump(-1)", "Last", show=False),
    ]

    class Selected(Message):
        """The cursor moved to another event."""

        def __init__(self, index: int, event: dict[str, Any] | None) -> None:
            super().__init__()
            self.index = index
            self.event = event

    def __init__(self, rows: Callable[[], Sequence[dict[str, Any]]],
                 empty: Callable[[], list[str]] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._rows = rows
        self._empty = empty or (lambda: ["no events"])
        self.cursor = 0
        self.follow = True  # stick to the newest event until the user moves the cursor
        # The widest policy and owner texts drawn so far: columns grow to fit them, never
        # shrink (a column that changes width while scrolling is hard to read).
        self._who_seen = 10
        self._owner_seen = 6
        self._had_rows = False

    @property
    def rows(self) -> Sequence[dict[str, Any]]:
        return self._rows()

    @property
    def page_height(self) -> int:
        """How many rows the list shows at once (the region under the headers)."""
        return max(1, self.container_size.height - self.scrollbar_size_horizontal - HEADER_LINES)

    @property
    def line_width(self) -> int:
        """The width of a row (the vertical scrollbar takes the rest)."""
        return max(1, self.container_size.width - self.scrollbar_size_vertical)

    def columns(self) -> Columns:
        return Columns.fit(self.line_width, self._who_seen, self._owner_seen)

    def refresh_rows(self) -> None:
        """The underlying list changed (new events, or a new filter)."""
        count = len(self.rows)
        self.virtual_size = Size(0, count + HEADER_LINES)
        had, self._had_rows = self._had_rows, count > 0
        if count == 0:
            if had:  # (a filter that matches nothing): the detail pane empties too
                self.post_message(self.Selected(0, None))
            self.cursor = 0
        elif self.follow or self.cursor >= count:
            self._move_to(count - 1, announce=True)
        else:
            self._scroll_into_view()
        self.refresh()

    def selected(self) -> dict[str, Any] | None:
        rows = self.rows
        return rows[self.cursor] if 0 <= self.cursor < len(rows) else None

    def visible_range(self) -> range:
        """The indexes of the rows on screen now."""
        top = self.scroll_offset.y
        return range(top, min(len(self.rows), top + self.page_height))

    def _measure(self, rows: Sequence[dict[str, Any]]) -> None:
        """Widen the policy and owner columns for the rows about to be drawn."""
        for index in self.visible_range():
            event = rows[index]
            self._who_seen = max(self._who_seen, len(who_text(event)))
            self._owner_seen = max(self._owner_seen, len(owner_text(event)))

    def render_line(self, y: int) -> Strip:
        rows = self.rows
        width = self.line_width
        if y < HEADER_LINES:
            if rows:
                self._measure(rows)
            header = header_row(self.columns()) if rows else ""
            return Strip([Segment(header)]).crop_extend(0, width, self.get_component_rich_style("event-list--header"))
        if not rows:
            lines = self._empty()
            k = y - HEADER_LINES
            text = safe_line(lines[k]) if k < len(lines) else ""
            return Strip([Segment(text, self.get_component_rich_style("event-list--empty"))]).crop_extend(0, width, None)
        index = self.scroll_offset.y + y - HEADER_LINES
        if index >= len(rows):
            return Strip.blank(width)
        segments = [Segment(text, style) for text, style in format_row(rows[index], width, self.columns())]
        strip = Strip(segments).crop_extend(0, width, None)
        if index == self.cursor:
            highlight = Style(reverse=True) if self.has_focus else Style(underline=True)
            strip = strip.apply_style(highlight)
        return strip

    def _scroll_into_view(self) -> None:
        """Scroll so that the row under the cursor is one of the rows shown."""
        height = self.page_height
        top = self.scroll_offset.y
        if self.cursor < top:
            self.scroll_to(y=self.cursor, animate=False)
        elif self.cursor >= top + height:
            self.scroll_to(y=self.cursor - height + 1, animate=False)

    def _move_to(self, index: int, announce: bool = True) -> None:
        count = len(self.rows)
        if count == 0:
            return
        index = max(0, min(index, count - 1))
        self.cursor = index
        self._scroll_into_view()
        self.refresh()
        if announce:
            self.post_message(self.Selected(index, self.selected()))

    def on_resize(self, event: Resize) -> None:
        # A new height (the terminal, a pane) moves the bottom of the list: the cursor stays in view.
        self.call_after_refresh(self._scroll_into_view)

    def action_cursor(self, delta: int) -> None:
        self._move_to(self.cursor + delta)
        self.follow = self.cursor == len(self.rows) - 1

    def action_page(self, direction: int) -> None:
        self.action_cursor(direction * max(1, self.page_height - 1))

    def action_jump(self, where: int) -> None:
        self._move_to(where if where >= 0 else len(self.rows) - 1)
        self.follow = where < 0

    def on_click(self, event: Click) -> None:
        self.focus()
        if event.y < HEADER_LINES or not self.rows:
            return
        self._move_to(self.scroll_offset.y + event.y - HEADER_LINES)
        self.follow = self.cursor == len(self.rows) - 1

    def on_mouse_scroll_down(self, event: MouseScrollDown) -> None:
        self.follow = False

    def on_mouse_scroll_up(self, event: MouseScrollUp) -> None:
        self.follow = False

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()
