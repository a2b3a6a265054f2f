"""Secondary screens: vendors view and its drill-down into one policy, help, and a one-line prompt."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Footer, Input, Label, Static

from inspector.core.policy import Catalogue, Policy
from inspector.core.quotes import readable_quote
from inspector.core.rules import Rule
from inspector.core.textsafe import safe_line
from inspector.report.model import declared_path as _declared_path
from inspector.report.model import declared_type
from inspector.tui.feed import PolicyTally, VendorTally

RULE_ROW = "\x00rule\x00"  # the key of a row that is a rule on no single policy (kind, target)


@dataclass(frozen=True, slots=True)
class VendorRow:
    """One row of the vendors view: a policy, or a rule on something else (a host, a vendor…)."""

    key: str
    cells: dict[str, str]
    target: str = ""
    kind: str = "policy"


VENDOR_COLUMNS = (  # (key, header, shown from this width on)
    ("policy", "policy", 0), ("vendor", "vendor", 100), ("seen", "seen", 0), ("declared", "decl. seen", 0),
    ("undeclared", "undecl.", 0), ("last", "last", 100), ("rule", "rule", 0),
)


def vendor_rows(tally: VendorTally, catalogue: Catalogue, rule_for: Callable[[str, str], str],
                rules: Iterable[Rule] = ()) -> list[VendorRow]:
    """One row per policy — events seen, declared fields seen of those declared, undeclared
    fields seen, last seen, its rule — then one per rule that is on no single policy (`B`, …)."""
    rows = []
    for policy in sorted(catalogue.policies, key=lambda p: p.id):
        entry = tally.seen.get(policy.id) or PolicyTally()
        declared = set(policy.declared_paths())
        observed = declared & entry.paths
        last = datetime.fromtimestamp(entry.last).strftime("%H:%M:%S") if entry.last else "-"
        rows.append(VendorRow(policy.id, {
            "policy": policy.id, "vendor": policy.vendor, "seen": str(entry.count),
            "declared": f"{len(observed)}/{len(declared)}", "undeclared": str(len(entry.undeclared)),
            "last": last, "rule": rule_for(policy.id, policy.vendor)}, policy.id))
    for rule in rules:
        if rule.kind == "policy" and catalogue.get(rule.target) is not None:
            continue  # shown on its policy's row
        rows.append(VendorRow(f"{RULE_ROW}{rule.kind}\x00{rule.target}", {
            "policy": f"{rule.kind} {rule.target}", "vendor": "", "seen": "", "declared": "", "undeclared": "",
            "last": "", "rule": f"{rule.action} ({rule.kind} rule)"}, rule.target, rule.kind))
    return rows


def policy_details(policy: Policy, entry: PolicyTally | None, rule: str) -> Content:
    """The drill-down of one policy: its rule and source, declared fields never seen, observed
    fields it does not declare (with counts and an example), its claims and which broke."""
    entry = entry or PolicyTally()
    declared = policy.declared_paths()
    containers = policy.container_paths()
    lines: list[Content] = [
        Content.assemble((_v(policy.id), "bold"), f" — {_v(policy.vendor)}: {_v(policy.product)}"),
        Content.assemble(("rule ", "dim"), (_v(rule), "bold"), ("   seen ", "dim"), f"{entry.count} event(s)",
                         ("   last ", "dim"), datetime.fromtimestamp(entry.last).strftime("%H:%M:%S")
                         if entry.last else "-"),
        Content.assemble(("source ", "dim"), _v(policy.source.title or policy.source.document)
                         + (f" ({_v(policy.source.url)})" if policy.source.url else "")),
        Content.assemble(("match ", "dim"), _v(f"{'/'.join(policy.methods) or policy.transport} "
                                              f"{', '.join(policy.hosts)} {' '.join(policy.paths)}".strip()),
                         ("   payload ", "dim"), _v(" → ".join([policy.location, *policy.encoding]))),
        Content(""),
    ]
    never = sorted(p for p in declared if p not in entry.fields)
    lines.append(Content.styled(f"Declared fields never seen ({len(never)} of {len(declared)})", "bold"))
    if not entry.count:
        lines.append(Content.styled("  (no event of this policy yet)", "dim"))
    for path in never[:200]:
        spec = declared[path]
        lines.append(Content.assemble("  ", (_v(path), "bold"), ("  " + _v(declared_type(spec)), "dim")))
    if len(never) > 200:
        lines.append(Content.styled(f"  … and {len(never) - 200} more", "dim"))
    lines.append(Content(""))
    extra = {path: slot for path, slot in entry.fields.items()
             if _declared_path(path, declared) not in declared and path not in containers}
    lines.append(Content.styled(f"Observed fields it does not declare ({len(extra)})", "bold"))
    for path in sorted(extra)[:200]:
        seen, example = extra[path]
        flagged = entry.undeclared.get(path)
        mark: tuple[str, str] = (("  ✗ undeclared-field", "bold red") if flagged else
                                 ("  (allowed: additional fields)", "dim") if policy.additional else ("", ""))
        lines.append(Content.assemble("  ", (_v(path), "bold"), f"  {seen} event(s)  e.g. ",
                                      (_v(_shown(example)), "italic"), mark))
    if len(extra) > 200:
        lines.append(Content.styled(f"  … and {len(extra) - 200} more", "dim"))
    for path, kind in sorted(containers.items()):
        if path in entry.fields:
            lines.append(Content.assemble("  ", (_v(path), "bold"), ("  ▣ container of the items" if kind == "items"
                                                                   else "  ▣ container of the declared fields", "cyan"),
                                          ("  (not a field: it holds them)", "dim")))
    lines.append(Content(""))
    checks = [("declared-fields", policy.source, "the payload carries the declared fields only")]
    checks += [(c.check, c.citation, "") for c in policy.claims]
    broken = sum(1 for check, _, _ in checks if entry.broken.get(check))
    lines.append(Content.styled(f"Claims ({len(checks)}), broken: {broken}", "bold"))
    for check, citation, what in checks:
        count = entry.broken.get(check, 0)
        state = (f"✗ broken by {count} finding(s)", "bold red") if count else (
            ("✓ kept", "green") if entry.count else ("· not tested yet", "dim"))
        lines.append(Content.assemble("  ", (f"{_v(check):<20}", "bold"), " ", state, f"  {what}" if what else ""))
        if citation.quote:
            lines.append(Content.assemble("      ", (f"“{_v(readable_quote(citation.quote))}”", "italic")))
        where = citation.short()
        if where:
            lines.append(Content.assemble("      ", (f"— {_v(where)}", "dim")))
    if policy.opt_out:
        lines.append(Content(""))
        lines.append(Content.styled("Opt-out", "bold"))
        for way in policy.opt_out:
            how = way.get("how") or f"{way.get('kind', '')} {way.get('name', '')}={way.get('value', '')}"
            lines.append(Content(f"  {_v(how)}"))
    return Content("\n").join(lines)


def _v(value: object) -> str:
    """Policy text or a captured value, as one visible line."""
    return safe_line(value if isinstance(value, str) else str(value))


def _shown(value: object, limit: int = 40) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


class VendorsScreen(Screen[None]):
    """Declared vs. observed per policy, with the current rule; toggle rules here too, Enter
    shows one policy in full."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,v", "app.pop_screen", "Back"),
        Binding("enter", "details", "Details"),
        Binding("b", "rule('block')", "Block"),
        Binding("a", "rule('allow')", "Allow"),
        Binding("s", "rule('sinkhole')", "Sinkhole"),
        Binding("question_mark", "app.help", "Help"),
    ]

    def __init__(self, rows: Callable[[], list[VendorRow]], set_rule: Callable[[str, str, str], None],
                 details: Callable[[str], Content | None] | None = None) -> None:
        super().__init__()
        self._rows = rows
        self._set_rule = set_rule
        self._details = details

    def compose(self) -> ComposeResult:
        yield Label("Vendors — declared vs. observed per policy. Enter: details; b/a/s: rule", id="vendors-title")
        yield DataTable(id="vendors-table", cursor_type="row", zebra_stripes=True)
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        width = self.app.size.width
        for key, header, from_width in VENDOR_COLUMNS:
            if width >= from_width:
                table.add_column(header, key=key)
        self.reload()
        table.focus()

    def reload(self) -> None:
        table = self.query_one(DataTable)
        row = table.cursor_row
        table.clear()
        keys = [str(c.key.value) for c in table.ordered_columns]
        self._targets = {}
        for values in self._rows():
            # DataTable reads a str cell as Rich markup: policy fields and rule targets (a host
            # taken from the traffic) are escaped for it, and made visible.
            table.add_row(*(escape(safe_line(values.cells.get(k, ""))) for k in keys), key=values.key)
            self._targets[values.key] = (values.target, values.kind)
        if table.row_count:
            table.move_cursor(row=min(row, table.row_count - 1))

    _targets: dict[str, tuple[str, str]]

    def _current(self) -> tuple[str, str, str] | None:
        """(row key, target, kind) under the cursor."""
        table = self.query_one(DataTable)
        if not table.row_count:
            return None
        row_key, _ = table.coordinate_to_cell_key(table.cursor_coordinate)
        key = str(row_key.value)  # the id itself: the cell holds it escaped for display
        target, kind = self._targets.get(key, (key, "policy"))
        return key, target, kind

    def action_rule(self, action: str) -> None:
        current = self._current()
        if current is None:
            return
        _key, target, kind = current
        self._set_rule(target, kind, action)
        self.reload()

    def action_details(self) -> None:
        current = self._current()
        if current is None or current[2] != "policy" or self._details is None:
            return
        policy_id = current[1]
        content = self._details(policy_id)
        if content is not None:
            def rule(action: str) -> Content | None:
                self._set_rule(policy_id, "policy", action)
                self.reload()
                return self._details(policy_id) if self._details else None
            self.app.push_screen(PolicyScreen(content, rule))

    def on_data_table_row_selected(self, message: DataTable.RowSelected) -> None:
        self.action_details()


class PolicyScreen(Screen[None]):
    """One policy in full, from the vendors view (b/a/s change its rule here too)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q", "app.pop_screen", "Back"),
        Binding("b", "rule('block')", "Block"),
        Binding("a", "rule('allow')", "Allow"),
        Binding("s", "rule('sinkhole')", "Sinkhole"),
    ]

    def __init__(self, content: Content, set_rule: Callable[[str], Content | None]) -> None:
        super().__init__()
        self._content = content
        self._set_rule = set_rule

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="policy-box"):
            yield Static(self._content, id="policy-text")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        self.query_one("#policy-box").focus()

    def action_rule(self, action: str) -> None:
        content = self._set_rule(action)
        if content is not None:
            self.query_one("#policy-text", Static).update(content)


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
