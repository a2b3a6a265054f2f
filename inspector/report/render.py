"""Render audited events as text, JSON, Markdown, HTML or SARIF.

Captured data (keys, values, headers, methods, URLs) is hostile: every format shows it and never
lets it act. Text goes through `inspector.core.textsafe` (control, bidi and separator characters
as visible escapes); Markdown also escapes its own syntax and HTML, HTML is escaped, and JSON and
SARIF are strict JSON written by `safe_json`. See docs/security.md.
"""

from __future__ import annotations

import html
import re
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any, Callable
from urllib.parse import quote as percent_encode

from inspector import __version__
from inspector.core.event import Event, item_summary, summarize
from inspector.core.findings import CODES, Finding
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_json, safe_line
from inspector.report.model import build_sections, declared_type

FORMATS = ("text", "json", "markdown", "html", "sarif")
BADGES = {"violation": "✗ violation", "warning": "! warning", "encrypted": "🔒 encrypted",
          "unknown": "? unknown", "error": "! decode error", "clean": "✓ clean"}
SEVERITY_MARK = {"violation": "✗", "warning": "!", "info": "i"}


def _time(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S") if ts else "-"


def _short(value: Any, limit: int = 80) -> str:
    text = value if isinstance(value, str) else safe_json(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _claim_line(finding: Finding) -> str:
    if not finding.claim:
        return ""
    c = finding.claim.citation
    quote = f"“{c.quote}”" if c.quote else ""
    where = c.short()
    return f"{quote} — {where}".strip(" —") if quote or where else ""


def render(events: list[Event], catalogue: Catalogue, fmt: str, inputs: list[str] | None = None) -> str:
    renderer: Callable[..., str] = {
        "text": render_text, "json": render_json, "markdown": render_markdown,
        "html": render_html, "sarif": render_sarif,
    }[fmt]
    return renderer(events, catalogue, inputs or [])


# ------------------------------------------------------------------------ text

def event_line(event: Event) -> str:
    """One line per event (`proxy`, `exec`, the text report), safe to print."""
    target = event.policy or (f"{event.collector}: {item_summary(event.items)}" if event.collector else "-")
    action = f" [{event.action}]" if event.action else ""
    # One pass over the finished line: nothing captured can be missed, and a clean line
    # costs a single str.isprintable scan (this runs for every event the proxy sees).
    return safe_line(f"{_time(event.time)}  {BADGES[event.verdict]:<14} {target:<28} "
                     f"{event.method:<4} {event.host}{event.path}{action}")


def render_text(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    lines = []
    for event in events:
        lines.append(event_line(event))
        lines.append(safe_line(f"    decoding: {' → '.join(event.decoding)}"))
        for finding in event.findings:
            where = f" at {finding.path}" if finding.path else ""
            lines.append(safe_line(f"    {SEVERITY_MARK[finding.severity]} {finding.severity} {finding.code}{where}: "
                                   f"{finding.message}"))
            claim = _claim_line(finding)
            if claim:
                lines.append(safe_line(f"        claim: {claim}"))
    summary = summarize(events)
    f = summary["findings"]
    lines.append("")
    for name, group in summary["collectors"].items():
        items = ", ".join(f"{item} ×{count}" for item, count in sorted(group["items"].items(), key=lambda p: -p[1]))
        lines.append(safe_line(f"collector {name}: {group['events']} request(s)" + (f" — {items}" if items else "")))
    lines.append(f"{summary['events']} events: {f['violation']} violations, {f['warning']} warnings, {f['info']} info")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------ json

def render_json(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    document = {
        "tool": {"name": "telemetry-inspector", "version": __version__},
        "inputs": inputs,
        "events": [e.to_dict() for e in events],
        "summary": summarize(events),
    }
    return safe_json(document, indent=2) + "\n"


# ------------------------------------------------------------------------ markdown

# Backslash-escaped, these are literal in CommonMark (which allows escaping any ASCII
# punctuation): emphasis, code, links and images, raw HTML and autolinks, entities, hard
# breaks, headings' closing #s, list markers (+), footnotes (^), GFM tables (|), strikethrough
# (~), and the ':', '.' and '@' that GFM's extended autolinks (www., https:, e-mail addresses)
# are found by. Commas, quotes, '-', '/', '?' and '=' do nothing inside a line: left readable.
_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+!|~&$:.@^])")
_BACKTICKS = re.compile(r"`+")


def md_text(value: Any) -> str:
    """Captured text as literal Markdown inline text: one line, no markup, no HTML, no link."""
    return _MD_SPECIAL.sub(r"\\\1", safe_line(value))


def md_code(value: Any, in_table: bool = False) -> str:
    """Captured text as a Markdown code span (CommonMark: literal, whatever it holds)."""
    text = safe_line(value)  # a line ending would end a table row or the list item
    if in_table:
        # GFM splits cells at | even inside a code span; its table parser turns \| back into |.
        text = text.replace("|", "\\|")
    runs = _BACKTICKS.findall(text)
    fence = "`" * (max(map(len, runs), default=0) + 1)  # longer than any run inside
    # CommonMark strips one space from each end of a span that starts and ends with one, and
    # a backtick at an end would merge with the fence: pad both ends in either case.
    if not text or text[0] == "`" or text[-1] == "`" or (text[0] == text[-1] == " " and text.strip(" ")):
        text = f" {text} "
    return f"{fence}{text}{fence}"


def render_markdown(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    summary = summarize(events)
    f = summary["findings"]
    out = ["# Telemetry audit report", ""]
    out.append(f"Generated by telemetry-inspector {__version__} on {_time(datetime.now(timezone.utc).timestamp())} UTC"
               + (f" from {', '.join(md_code(i) for i in inputs)}" if inputs else "") + ".")
    out.append("")
    out.append(f"**{summary['events']} events** — {f['violation']} violations, {f['warning']} warnings, {f['info']} info.")
    out.append("")
    for section in build_sections(events, catalogue):
        out.append(f"## {md_text(section.title)}")
        out.append("")
        if section.policy is not None:
            p = section.policy
            src = p.source
            out.append(f"Policy {md_code(p.id)} — source: {md_text(src.title or src.document)}"
                       + (f" ({md_text(src.url)})" if src.url else "") + f"; {len(section.events)} event(s).")
            out.append("")
            out.append("### Declared vs. observed fields")
            out.append("")
            out.append("| field | declared by the document | observed | example | status |")
            out.append("|---|---|---|---|---|")
            for row in section.rows:
                decl = declared_type(row.declared) if row.declared is not None else "—"
                example = md_code(_short(row.example, 40), in_table=True) if row.seen else "—"
                out.append(f"| {md_code(row.path, in_table=True)} | {md_text(decl) or 'declared'} | {row.seen} | "
                           f"{example} | {md_text(row.status)} |")
            out.append("")
            if p.opt_out:
                out.append("Opt-out: " + "; ".join(md_text(o.get('how') or f"{o.get('kind')} {o.get('name', '')}")
                                                   for o in p.opt_out))
                out.append("")
        if section.collector is not None:
            out.append(f"{len(section.events)} request(s) through {md_code(section.collector)}.")
            out.append("")
            out.append("### Items by event name")
            out.append("")
            out.append("| kind | event name | items |")
            out.append("|---|---|---|")
            for kind, name, count in section.item_counts():
                out.append(f"| {md_text(kind)} | {md_code(name, in_table=True)} | {count} |")
            out.append("")
        out.append("### Findings")
        out.append("")
        findings = section.findings()
        if not findings:
            out.append("No findings.")
            out.append("")
        for event, finding in findings:
            where = f" at {md_code(finding.path)}" if finding.path else ""
            out.append(f"- **{md_text(finding.severity)}** {md_code(finding.code)}{where} — {md_text(finding.message)}  ")
            out.append(f"  request: {md_code(f'{event.method} {event.url[:120]}')} ({md_code(event.source)}), "
                       f"decoding: {md_text(' → '.join(event.decoding))}  ")
            if finding.evidence not in (None, ""):
                out.append(f"  evidence: {md_code(_short(finding.evidence, 120))}  ")
            claim = _claim_line(finding)
            if claim:
                out.append(f"  claim: {md_text(claim)}")
        out.append("")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------ html

_CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}code{background:#f6f6f6;padding:0 .2rem}.violation{color:#a00}.warning{color:#a60}.info{color:#246}
blockquote{border-left:3px solid #999;margin:.3rem 0;padding-left:.6rem;color:#444}li{margin-bottom:.6rem}"""


def _h(text: Any) -> str:
    return html.escape(safe_line(text), quote=True)


# Defence in depth: should anything captured ever slip through unescaped, the page still runs
# no script, loads nothing and submits nowhere.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def render_html(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    summary = summarize(events)
    f = summary["findings"]
    out = ["<!doctype html>", "<html lang=en><head><meta charset=utf-8>",
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           "<title>Telemetry audit report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Telemetry audit report</h1>",
           f"<p>telemetry-inspector {_h(__version__)}" + (f", inputs: {_h(', '.join(inputs))}" if inputs else "") + "</p>",
           f"<p><strong>{summary['events']} events</strong>: {f['violation']} violations, "
           f"{f['warning']} warnings, {f['info']} info.</p>"]
    for section in build_sections(events, catalogue):
        out.append(f"<h2>{_h(section.title)}</h2>")
        if section.policy is not None:
            p = section.policy
            out.append(f"<p>Policy <code>{_h(p.id)}</code>; source: {_h(p.source.title or p.source.document)}</p>")
            out.append("<table><tr><th>field</th><th>declared by the document</th><th>observed</th>"
                       "<th>example</th><th>status</th></tr>")
            for row in section.rows:
                decl = declared_type(row.declared) if row.declared is not None else "—"
                out.append(f"<tr><td><code>{_h(row.path)}</code></td><td>{_h(decl or 'declared')}</td>"
                           f"<td>{row.seen}</td><td>{_h(_short(row.example, 40)) if row.seen else '—'}</td>"
                           f"<td>{_h(row.status)}</td></tr>")
            out.append("</table>")
        if section.collector is not None:
            out.append(f"<p>{len(section.events)} request(s) through <code>{_h(section.collector)}</code>.</p>")
            out.append("<h3>Items by event name</h3><table><tr><th>kind</th><th>event name</th><th>items</th></tr>")
            for kind, name, count in section.item_counts():
                out.append(f"<tr><td>{_h(kind)}</td><td><code>{_h(name)}</code></td><td>{count}</td></tr>")
            out.append("</table>")
        out.append("<h3>Findings</h3><ul>")
        for event, finding in section.findings():
            where = f" at <code>{_h(finding.path)}</code>" if finding.path else ""
            out.append(f'<li><span class="{_h(finding.severity)}"><strong>{_h(finding.severity)}</strong> '
                       f"<code>{_h(finding.code)}</code></span>{where}: {_h(finding.message)}<br>"
                       f"request <code>{_h(event.method)} {_h(event.url[:120])}</code>, decoding "
                       f"{_h(' → '.join(event.decoding))}")
            if finding.evidence not in (None, ""):
                out.append(f"<br>evidence: <code>{_h(_short(finding.evidence, 120))}</code>")
            if finding.claim and (finding.claim.citation.quote or finding.claim.citation.section):
                c = finding.claim.citation
                out.append(f"<blockquote>{_h(c.quote)}<br><small>{_h(c.short())}</small></blockquote>")
            out.append("</li>")
        out.append("</ul>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------ sarif

_LEVEL = {"violation": "error", "warning": "warning", "info": "note"}


def _uri_reference(name: str) -> str:
    """A file name or path as a URI reference (SARIF `artifactLocation.uri`, RFC 3986)."""
    if name.startswith("/"):
        return PurePosixPath(name).as_uri()  # file:///…, percent-encoded
    # Relative: percent-encode all but the path characters; ':' too, or a first segment
    # such as "c:x" would read as a scheme.
    return percent_encode(name, safe="/!$&'()*+,;=@-._~")


def render_sarif(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    # No helpUri: the schema requires an absolute URI ("format": "uri") and the findings'
    # documentation has no public address; `help` names the document instead.
    rules = [{"id": code, "name": code, "shortDescription": {"text": text},
              "help": {"text": f"See docs/findings.md, section {code}, in the telemetry-inspector documentation."}}
             for code, text in CODES.items()]
    results = []
    for event in events:
        artifact = event.source.split("#", 1)[0] if event.source else (inputs[0] if inputs else "capture")
        for finding in event.findings:
            result: dict[str, Any] = {
                "ruleId": finding.code,
                "level": _LEVEL[finding.severity],
                "message": {"text": f"{finding.message} ({event.method} {event.url[:200]})"},
                "locations": [{
                    "physicalLocation": {"artifactLocation": {"uri": _uri_reference(artifact)}},
                    "logicalLocations": [{"fullyQualifiedName": f"{event.policy or event.host}:{finding.path or '$'}",
                                          "kind": "member"}],
                }],
                "properties": {"policy": event.policy, "url": event.url, "path": finding.path,
                               "evidence": finding.evidence,
                               "claim": finding.claim.to_dict() if finding.claim else None,
                               "event": event.id},
            }
            results.append(result)
    document = {
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{"tool": {"driver": {"name": "telemetry-inspector", "version": __version__,
                                      "rules": rules}},
                  "artifacts": [{"location": {"uri": _uri_reference(i)}} for i in inputs],
                  "results": results}],
    }
    return safe_json(document, indent=2) + "\n"
