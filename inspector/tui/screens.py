"""Secondary screens: vendors view, help, and a one-line prompt."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_line
from inspector.tui.feed import VendorTally


def vendor_rows(tally: VendorTally, catalogue: Catalogue,
                rule_for: Callable[[str, str], str]) -> list[tuple[str, ...]]:
    """One row per policy: seen, declared observed/never, undeclared seen, last seen, rule."""
    seen = tally.seen
    rows = []
    for policy in sorted(catalogue.policies, key=lambda p: p.id):
        entry = seen.get(policy.id, {"count": 0, "paths": set(), "undeclared": set(), "last": 0.0})
        declared = set(policy.declared_paths())
        observed = {p for p in declared if p in entry["paths"]}
        last = datetime.fromtimestamp(entry["last"]).strftime("%H:%M:%S") if entry["last"] else "-"
        rows.append((policy.id, policy.vendor, str(entry["count"]), f"{len(observed)}/{len(declared)}",
                     str(len(declared - observed)), str(len(entry["undeclared"])), last,
                     rule_for(policy.id, policy.vendor)))
    return rows


class VendorsScreen(Screen[None]):
    """Declared vs. observed per policy, with the current rule; toggle rules here too."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v", "app.pop_screen", "Back"),
        Binding("b", "rule('block')", "Block"),
        Binding("a", "rule('allow')", "Allow"),
        Binding("s", "rule('sinkhole')", "Sinkhole"),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self, rows: Callable[[], list[tuple[str, ...]]], set_rule: Callable[[str, str], None]) -> None:
        super().__init__()
        self._rows = rows
        self._set_rule = set_rule

    def compose(self) -> ComposeResult:
        yield Label("Vendors — declared vs. observed fields per policy (b/a/s change the rule)", id="vendors-title")
        yield DataTable(id="vendors-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("policy", "vendor", "seen", "declared seen", "never seen", "undeclared", "last", "rule")
        self.reload()
        table.focus()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        for values in self._rows():
            # DataTable reads a str cell as Rich markup: policy fields and rule targets (a host
            # taken from the traffic) are escaped for it, and made visible.
            table.add_row(*(escape(safe_line(v)) for v in values), key=values[0])
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    def action_rule(self, action: str) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        policy_id = str(row_key.value)  # the id itself: the cell holds it escaped for display
        self._set_rule(policy_id, action)
        self.reload()


# At most 74 columns and 21 lines: the whole help fits an 80×24 terminal, without scrolling.
HELP = """\
[b]telemetry-inspector[/b] — keys                    (Esc, q or ? closes this)

  [b]↑ ↓ PgUp PgDn Home End[/b]  move in the list (mouse: click, wheel)
  [b]1 2 3 4 5[/b]  tabs: Payload, Findings, Decoding, Request, Items
  [b][ ][/b]        previous / next item of a collector request
  [b]b a s[/b]      block / allow / sinkhole the selected event's [i]policy[/i]
  [b]B A S[/b]      the same for its [i]host[/i] only
  [b]/[/b]          filter: words in policy, vendor, host, path, verdict,
             action or payload; vendor: host: verdict: action: narrow
  [b]Esc[/b]        clear the filter
  [b]v[/b]          vendors: declared vs. observed per policy (Enter: details)
  [b]k[/b]          load a key (JWK, JWK Set, PEM): decode encrypted events
  [b]e[/b]          export a report of the events shown (asks where)
  [b]c[/b]          copy the selected event's decoded payload
  [b]ctrl+p[/b]     every action, by name              [b]q[/b]  quit

Verdicts  ✓ OK clean · ✗ violation · ! warning · # encrypted (no key)
          ? unknown endpoint · ! ERR decoding failed
Actions   allowed: forwarded, recorded · BLOCKED: answered locally ·
          sinkholed: answered locally with a success the app accepts
          (it keeps working, nothing leaves the machine)
"""


class HelpScreen(ModalScreen[None]):
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark", "app.pop_screen", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help-box"):
            yield Static(HELP.rstrip("\n"), id="help-text")


class PromptScreen(ModalScreen[str | None]):
    """Ask for one line (a filter, a key file path)."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, value: str = "", placeholder: str = "") -> None:
        super().__init__()
        self._title = title
        self._value = value
        self._placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="prompt-box"):
            yield Label(self._title)
            yield Input(value=self._value, placeholder=self._placeholder, id="prompt-input")

    def on_mount(self) -> None:
        self.query_one(Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
