"""The detail pane: Payload (marked tree), Findings, Decoding, Request."""

from __future__ import annotations

import json
import re
from typing import Any

from rich.markup import escape
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static, TabbedContent, TabPane, Tree

from inspector.core.policy import Catalogue

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
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


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
    marks = build_marks(event)
    tree.root.set_label(Text("payload" if value is not None else "payload (not decoded)", style="bold"))

    def label(key: str, node_value: Any, path: str) -> Text:
        text = Text()
        text.append(key, style="bold")
        if not isinstance(node_value, (dict, list)):
            text.append(": ")
            text.append(_short(node_value))
        elif isinstance(node_value, list):
            text.append(f" [{len(node_value)}]", style="dim")
        for word, style in marks.get(path, []):
            text.append(f"  {word}", style=style)
        if policy and not marks.get(path) and _norm(path) in declared:
            text.append("  ✓ declared", style="green")
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
                tree.root.add_leaf(Text(f"{key}: {header[key]}"))
    tree.root.expand()


def findings_markup(event: dict[str, Any]) -> str:
    findings = event.get("findings", [])
    if not findings:
        return "[green]✓ no findings: the payload matches the vendor's declared fields and claims[/]"
    order = {"violation": 0, "warning": 1, "info": 2}
    lines = []
    for f in sorted(findings, key=lambda f: order.get(f.get("severity", "info"), 3)):
        sev = f.get("severity", "info")
        where = f" at [bold]{escape(f['path'])}[/]" if f.get("path") else ""
        lines.append(f"[{SEVERITY_STYLE.get(sev, '')}]{SEVERITY_MARK.get(sev, '?')} {sev} {escape(f.get('code', ''))}[/]"
                     f"{where}: {escape(f.get('message', ''))}")
        if f.get("evidence") not in (None, ""):
            lines.append(f"    evidence: {escape(_short(f['evidence'], 200))}")
        claim = f.get("claim") or {}
        if claim.get("quote"):
            lines.append(f"    [italic]“{escape(claim['quote'])}”[/]")
        where_cited = ", ".join(escape(claim[k]) for k in ("title", "document", "section") if claim.get(k))
        if where_cited:
            lines.append(f"    [dim]— {where_cited}[/]")
        lines.append("")
    return "\n".join(lines)


def decoding_markup(event: dict[str, Any]) -> str:
    lines = ["[bold]" + escape(" → ".join(event.get("decoding", []))) + "[/]", ""]
    for layer in event.get("layers", []):
        detail = layer.get("detail")
        extra = f"  {escape(json.dumps(detail, ensure_ascii=False))}" if detail else ""
        lines.append(f"• {escape(layer.get('label', layer.get('layer', '')))}{extra}")
    if event.get("jwe"):
        lines += ["", "JWE header: " + escape(json.dumps(event["jwe"]))]
    return "\n".join(lines)


def request_markup(event: dict[str, Any]) -> str:
    request = event.get("request", {})
    lines = [f"[bold]{escape(event.get('method', ''))} {escape(event.get('url', ''))}[/]"]
    if event.get("response_status"):
        lines.append(f"response: {event['response_status']}")
    if event.get("action"):
        lines.append(f"action: {event['action']}")
    lines.append("")
    for name, value in request.get("headers", []):
        lines.append(f"[bold]{escape(name)}[/]: {escape(value)}")
    cookies = request.get("cookies") or []
    lines.append("")
    lines.append(f"cookies: {escape(', '.join(cookies)) if cookies else 'none'}")
    lines.append(f"body: {request.get('body_size', 0)} bytes" + (" (first 4 KiB shown)" if request.get("body_truncated") else ""))
    if "body_text" in request:
        lines.append(escape(request["body_text"]))
    elif "body_base64" in request:
        lines.append("(binary, Base64) " + escape(request["body_base64"][:2000]))
    elif request.get("body_redacted"):
        lines.append("(redacted)")
    return "\n".join(lines)


class DetailPane(Vertical):
    """Tabs for the selected event: Payload, Findings, Decoding, Request."""

    def __init__(self, catalogue: Catalogue, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.catalogue = catalogue

    def compose(self) -> ComposeResult:
        with TabbedContent(id="detail-tabs"):
            with TabPane("Payload", id="tab-payload"):
                yield Tree("payload", id="payload-tree")
            with TabPane("Findings", id="tab-findings"):
                with VerticalScroll():
                    yield Static("", id="findings-text")
            with TabPane("Decoding", id="tab-decoding"):
                with VerticalScroll():
                    yield Static("", id="decoding-text")
            with TabPane("Request", id="tab-request"):
                with VerticalScroll():
                    yield Static("", id="request-text")

    @property
    def active(self) -> str:
        return self.query_one(TabbedContent).active

    @active.setter
    def active(self, tab_id: str) -> None:
        self.query_one(TabbedContent).active = tab_id

    def show(self, event: dict[str, Any] | None) -> None:
        tree = self.query_one("#payload-tree", Tree)
        if event is None:
            tree.clear()
            tree.root.set_label("no event selected")
            for name in ("findings", "decoding", "request"):
                self.query_one(f"#{name}-text", Static).update("")
            return
        fill_tree(tree, event, self.catalogue)
        self.query_one("#findings-text", Static).update(findings_markup(event))
        self.query_one("#decoding-text", Static).update(decoding_markup(event))
        self.query_one("#request-text", Static).update(request_markup(event))
