"""The detail pane: Payload (marked tree), Findings, Decoding, Request.

Captured text is never markup here: each pane is built as Content/Text from (text, style)
pieces, so `[bold]`, `[$accent]` or `[@click=app.quit]` in a payload shows as written (Textual's
markup `escape` leaves `[$…]` and `[B]` live). Every captured string goes through textsafe.
"""

from __future__ import annotations

import re
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.widgets import Static, TabbedContent, TabPane, Tree

from inspector.core.policy import Catalogue
from inspector.core.quotes import readable_quote
from inspector.core.textsafe import safe_block, safe_json, safe_line

MARKS = {
    "undeclared-field": ("✗ undeclared", "bold red"),
    "type-mismatch": ("✗ type", "bold red"),
    "pii": ("! PII", "bold yellow"),
    "not-anonymised": ("✗ not anonymised", "bold red"),
    "free-text": ("✗ free text", "bold red"),
    "not-hashed": ("✗ not hashed", "bold red"),
    "optional-field": ("i optional", "cyan"),
}
SEVERITY_STYLE = {"violation": "bold red", "warning": "yellow", "info": "cyan"}
SEVERITY_MARK = {"violation": "✗", "warning": "!", "info": "i"}


def _norm(path: str) -> str:
    return re.sub(r"\[\d+\]", "[]", path)


def _short(value: Any, limit: int = 60) -> str:
    text = safe_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _s(value: Any) -> str:
    """A captured value as one visible line."""
    return safe_line(value if isinstance(value, str) else ("" if value is None else str(value)))


def build_marks(event: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    marks: dict[str, list[tuple[str, str]]] = {}
    for finding in event.get("findings", []):
        mark = MARKS.get(finding.get("code", ""))
        path = finding.get("path") or ""
        if mark and path:
            if finding.get("code") == "pii" and finding.get("severity") == "info":
                mark = ("i declared PII", "cyan")
            marks.setdefault(path, []).append(mark)
    return marks


def fill_tree(tree: Tree[Any], event: dict[str, Any], catalogue: Catalogue) -> None:
    tree.clear()
    value = event.get("decoded")
    policy = catalogue.get(event.get("policy") or "")
    declared = set(policy.declared_paths()) if policy else set()
    containers = policy.container_paths() if policy else {}
    marks = build_marks(event)
    tree.root.set_label(Text("payload" if value is not None else "payload (not decoded)", style="bold"))

    def label(key: str, node_value: Any, path: str) -> Text:
        text = Text()
        text.append(safe_line(key), style="bold")
        if not isinstance(node_value, (dict, list)):
            text.append(": ")
            text.append(_short(node_value))
        elif isinstance(node_value, list):
            text.append(f" [{len(node_value)}]", style="dim")
        for word, style in marks.get(path, []):
            text.append(f"  {word}", style=style)
        if policy and not marks.get(path) and _norm(path) in declared:
            text.append("  ✓ declared", style="green")
        elif _norm(path) in containers:  # `items:` / `root:`: what holds the fields, not one of them
            text.append("  ▣ container of the items" if containers[_norm(path)] == "items"
                        else "  ▣ container of the declared fields", style="cyan")
        return text

    budget = [3000]  # bounded: a huge payload must not freeze the UI

    def add(parent: Any, node_value: Any, path: str) -> None:
        items = node_value.items() if isinstance(node_value, dict) else enumerate(node_value)
        for key, child in items:
            if budget[0] <= 0:
                parent.add_leaf(Text("… (truncated)", style="dim"))
                return
            budget[0] -= 1
            child_path = f"{path}.{key}" if isinstance(key, str) and path else (
                str(key) if isinstance(key, str) else f"{path}[{key}]")
            shown = str(key) if isinstance(key, str) else f"[{key}]"
            if isinstance(child, (dict, list)) and child:
                branch = parent.add(label(shown, child, child_path), expand=True)
                add(branch, child, child_path)
            else:
                parent.add_leaf(label(shown, child, child_path))

    if isinstance(value, (dict, list)):
        add(tree.root, value, "")
    elif value is not None:
        tree.root.add_leaf(Text(_short(value, 500)))
    elif event.get("jwe"):
        header = event["jwe"]
        tree.root.add_leaf(Text("encrypted — contents not verifiable without the key", style="magenta"))
        for key in ("alg", "enc", "kid", "zip"):
            if key in header:
                tree.root.add_leaf(Text(safe_line(f"{key}: {header[key]}")))
    tree.root.expand()


def findings_content(event: dict[str, Any]) -> Content:
    findings = event.get("findings", [])
    if not findings:
        return Content.styled("✓ no findings: the payload matches the vendor's declared fields and claims", "green")
    order = {"violation": 0, "warning": 1, "info": 2}
    lines: list[Content] = []
    for f in sorted(findings, key=lambda f: order.get(f.get("severity", "info"), 3)):
        sev = f.get("severity", "info")
        where: list[Any] = [" at ", (_s(f["path"]), "bold")] if f.get("path") else []
        lines.append(Content.assemble(
            (f"{SEVERITY_MARK.get(sev, '?')} {_s(sev)} {_s(f.get('code', ''))}", SEVERITY_STYLE.get(sev, "")),
            *where, f": {_s(f.get('message', ''))}"))
        if f.get("evidence") not in (None, ""):
            shown = f["evidence"] if isinstance(f["evidence"], str) else _short(f["evidence"], 200)
            lines.append(Content(f"    evidence: {safe_line(shown[:200])}"))  # text as written, JSON as JSON
        claim = f.get("claim") or {}
        if claim.get("quote"):
            # (a flattened table row of the document shown with its cells apart; the policy cites it verbatim)
            lines.append(Content.assemble("    ", (f"“{_s(readable_quote(str(claim['quote'])))}”", "italic")))
        where_cited = ", ".join(_s(claim[k]) for k in ("title", "document", "section") if claim.get(k))
        if where_cited:
            lines.append(Content.assemble("    ", (f"— {where_cited}", "dim")))
        lines.append(Content(""))
    return Content("\n").join(lines)


def items_content(event: dict[str, Any], index: int) -> Content:
    """One item of a collector request: kind, name, identifiers, then its fields with the
    findings at their paths marked (`[` and `]` move between items)."""
    items = event.get("items") or []
    if not items:
        return Content.styled("no items: this request is not a collector's, or carries none it knows", "dim")
    index = max(0, min(index, len(items) - 1))
    item = items[index]
    base = str(item.get("path") or "")
    lines: list[Content] = [
        Content.assemble((f"item {index + 1} of {len(items)}", "bold"), "  ",
                         (_s(event.get("collector") or ""), "dim"), "   [ ] previous / next"),
        Content.assemble((_s(item.get("kind") or "other"), "bold"), "  ", _s(item.get("name") or "(unnamed)")),
    ]
    for role, value in (item.get("ids") or {}).items():
        lines.append(Content.assemble(("  id ", "dim"), (_s(role), "bold"), f": {_s(value)}"))
    marks = build_marks(event)
    credentials = {f.get("path") for f in event.get("findings", []) if f.get("code") == "credential"}
    for part in ("properties", "context"):
        value = item.get(part)
        if value in (None, {}, []):
            continue
        lines.append(Content(""))
        lines.append(Content.styled(part, "bold"))
        for rel, leaf in _leaves(value):
            # the item's fields sit in the payload at <item path>.<properties|traits|…>.<rel>
            hits = [m for path, found in marks.items() if path.startswith(base) and path.endswith(rel)
                    for m in found] if rel else []
            pieces: list[Any] = [f"  {_s(rel or part)}: {_short(leaf)}"]
            pieces += [(f"  {word}", style) for word, style in hits]
            if any(c and c.startswith(base) and c.endswith(rel) for c in credentials):
                pieces.append(("  credential", "cyan"))
            lines.append(Content.assemble(*pieces))
    return Content("\n").join(lines)


def _leaves(value: Any, prefix: str = "", budget: list[int] | None = None) -> list[tuple[str, Any]]:
    """(relative path, scalar) of a nested value, bounded (a huge item must not freeze the UI)."""
    budget = budget if budget is not None else [400]
    out: list[tuple[str, Any]] = []
    if isinstance(value, dict):
        pairs: Any = value.items()
    elif isinstance(value, list):
        pairs = ((f"[{i}]", v) for i, v in enumerate(value))
    else:
        return [(prefix, value)]
    for key, child in pairs:
        if budget[0] <= 0:
            out.append((f"{prefix}…", "(truncated)"))
            break
        budget[0] -= 1
        path = f"{prefix}{key}" if str(key).startswith("[") else (f"{prefix}.{key}" if prefix else str(key))
        if isinstance(child, (dict, list)) and child:
            out += _leaves(child, path, budget)
        else:
            out.append((path, child))
    return out


def decoding_content(event: dict[str, Any]) -> Content:
    lines: list[Content] = [Content.styled(_s(" → ".join(map(str, event.get("decoding", [])))), "bold"), Content("")]
    for layer in event.get("layers", []):
        detail = layer.get("detail")
        extra = f"  {safe_json(detail)}" if detail else ""
        lines.append(Content(f"• {_s(layer.get('label', layer.get('layer', '')))}{extra}"))
    if event.get("jwe"):
        lines += [Content(""), Content("JWE header: " + safe_json(event["jwe"]))]
    return Content("\n").join(lines)


def _body_lines(record: dict[str, Any], limit: int) -> list[Content]:
    """A request's or response's body preview: text as lines, binary as Base64, or why not."""
    if "body_text" in record:
        return [Content(safe_block(str(record["body_text"])[:limit]))]  # a block: its lines stay lines
    if "body_base64" in record:
        return [Content("(binary, Base64) " + _s(str(record["body_base64"])[:limit]))]
    if record.get("body_redacted"):
        return [Content("(redacted)")]
    return []


def response_content(event: dict[str, Any]) -> list[Content]:
    """The answer the client got: from the server, or the one the inspector gave (blocked, sinkholed)."""
    response = event.get("response")
    if not isinstance(response, dict):
        status = event.get("response_status")
        if status:
            return [Content.styled(f"Response {_s(status)}", "bold"), Content("(headers and body not recorded)")]
        if event.get("action") == "block":
            return [Content.styled("Response", "bold"), Content("none: the connection was closed (block mode kill)")]
        return [Content.styled("Response", "bold"), Content.styled("none recorded", "dim")]
    who = ("the inspector's local answer (" + _s(event.get("action") or "blocked") + "): nothing reached the server"
           if response.get("local") else "from the server")
    lines: list[Content] = [Content.assemble((f"Response {_s(response.get('status', ''))}", "bold"), f" — {who}")]
    for name, value in response.get("headers", []):
        lines.append(Content.assemble((_s(name), "bold"), f": {_s(value)}"))
    size = response.get("body_size", 0)
    lines.append(Content(f"body: {_s(size)} bytes" + (" (first 2 KiB shown)" if response.get("body_truncated") else "")))
    lines += _body_lines(response, 2048)
    return lines


def request_content(event: dict[str, Any]) -> Content:
    request = event.get("request", {})
    lines: list[Content] = [Content.styled(f"{_s(event.get('method', ''))} {_s(event.get('url', ''))}", "bold")]
    if event.get("action"):
        reason = f" ({_s(event['action_reason'])})" if event.get("action_reason") else ""
        lines.append(Content(f"action: {_s(event['action'])}{reason}"))
    response = event.get("response")
    if isinstance(response, dict):  # in one line here, in full below the request
        size = response.get("body_size", 0)
        lines.append(Content.assemble("response: ", (f"{_s(response.get('status', ''))}", "bold"),
                                      " from the inspector: nothing reached the server" if response.get("local")
                                      else f" from the server, {_s(size)} bytes", " (in full below)"))
    lines.append(Content(""))
    for name, value in request.get("headers", []):
        lines.append(Content.assemble((_s(name), "bold"), f": {_s(value)}"))
    cookies = request.get("cookies") or []
    lines.append(Content(""))
    lines.append(Content(f"cookies: {_s(', '.join(map(str, cookies))) if cookies else 'none'}"))
    lines.append(Content(f"body: {_s(request.get('body_size', 0))} bytes"
                         + (" (first 4 KiB shown)" if request.get("body_truncated") else "")))
    lines += _body_lines(request, 4096)
    lines.append(Content(""))
    lines += response_content(event)
    return Content("\n").join(lines)


class DetailPane(Vertical):
    """Tabs for the selected event: Payload, Findings, Decoding, Request."""

    def __init__(self, catalogue: Catalogue, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalogue = catalogue
        self.item_index = 0
        self._event: dict[str, Any] | None = None

    def move_item(self, delta: int) -> None:
        """Show the previous or next item of the shown event."""
        items = (self._event or {}).get("items") or []
        if not items:
            return
        self.item_index = max(0, min(self.item_index + delta, len(items) - 1))
        self.query_one("#items-text", Static).update(items_content(self._event or {}, self.item_index))

    def compose(self) -> ComposeResult:
        with TabbedContent(id="detail-tabs"):
            with TabPane("Payload", id="tab-payload"):
                yield Tree("payload", id="payload-tree")
            with TabPane("Findings", id="tab-findings"), VerticalScroll():
                yield Static("", id="findings-text")
            with TabPane("Decoding", id="tab-decoding"), VerticalScroll():
                yield Static("", id="decoding-text")
            with TabPane("Request", id="tab-request"), VerticalScroll():
                yield Static("", id="request-text")
            with TabPane("Items", id="tab-items"), VerticalScroll():
                yield Static("", id="items-text")

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active

    @active.setter
    def active(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    def show(self, event: dict[str, Any] | None) -> None:
        tree = self.query_one("#payload-tree", Tree)
        if event is not self._event:
            self.item_index = 0
        self._event = event
        if event is None:
            tree.clear()
            tree.root.set_label("no event selected")
            for name in ("items", "findings", "decoding", "request"):
                self.query_one(f"#{name}-text", Static).update("")
            return
        fill_tree(tree, event, self.catalogue)
        self.query_one("#items-text", Static).update(items_content(event, self.item_index))
        self.query_one("#findings-text", Static).update(findings_content(event))
        self.query_one("#decoding-text", Static).update(decoding_content(event))
        self.query_one("#request-text", Static).update(request_content(event))
