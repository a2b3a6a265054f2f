"""The HTML report: one self-contained page, everything escaped, under a CSP that runs and loads nothing."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any, TextIO

from inspector import __version__
from inspector.core.event import Event
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_line
from inspector.report.common import LineWriter, short
from inspector.report.formats.registry import ReportFormat, register, text_of
from inspector.report.model import ReportModel, declared_type, report_model

_CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}code{background:#f6f6f6;padding:0 .2rem}.violation{color:#a00}.warning{color:#a60}.info{color:#246}
blockquote{border-left:3px solid #999;margin:.3rem 0;padding-left:.6rem;color:#444}li{margin-bottom:.6rem}"""


def _h(text: Any) -> str:
    return html.escape(safe_line(text), quote=True)


# Defence in depth: should anything captured ever slip through unescaped, the page still runs
# no script, loads nothing and submits nowhere.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def write_html(events: Iterable[Event], catalogue: Catalogue, inputs: list[str], stream: TextIO) -> None:
    """The page, from counts taken in one pass over `events` (a stream of any length)."""
    with report_model(events, catalogue) as model:
        _write(model, inputs, stream)


def render_html(events: list[Event], catalogue: Catalogue, inputs: list[str]) -> str:
    return text_of(write_html, events, catalogue, inputs)


def _write(model: ReportModel, inputs: list[str], stream: TextIO) -> None:
    summary = model.summary
    f = summary["findings"]
    out = LineWriter(stream, ["<!doctype html>", "<html lang=en><head><meta charset=utf-8>",
           f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">',
           "<title>Telemetry audit report</title>", f"<style>{_CSS}</style></head><body>",
           "<h1>Telemetry audit report</h1>",
           f"<p>telemetry-inspector {_h(__version__)}" + (f", inputs: {_h(', '.join(inputs))}" if inputs else "") + "</p>",
           f"<p><strong>{summary['events']} events</strong>: {f['violation']} violations, "
           f"{f['warning']} warnings, {f['info']} info.</p>"])
    for section in model.sections:
        out.append(f"<h2>{_h(section.title)}</h2>")
        if section.policy is not None:
            p = section.policy
            out.append(f"<p>Policy <code>{_h(p.id)}</code>; source: {_h(p.source.title or p.source.document)}</p>")
            out.append("<table><tr><th>field</th><th>declared by the document</th><th>observed</th>"
                       "<th>example</th><th>status</th></tr>")
            for row in section.rows:
                decl = declared_type(row.declared) if row.declared is not None else "—"
                out.append(f"<tr><td><code>{_h(row.path)}</code></td><td>{_h(decl or 'declared')}</td>"
                           f"<td>{row.seen}</td><td>{_h(short(row.example, 40)) if row.seen else '—'}</td>"
                           f"<td>{_h(row.status)}</td></tr>")
            out.append("</table>")
        if section.collector is not None:
            out.append(f"<p>{section.count} request(s) through <code>{_h(section.collector)}</code>.</p>")
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
                out.append(f"<br>evidence: <code>{_h(short(finding.evidence, 120))}</code>")
            if finding.claim and (finding.claim.citation.quote or finding.claim.citation.section):
                c = finding.claim.citation
                out.append(f"<blockquote>{_h(c.quote)}<br><small>{_h(c.short())}</small></blockquote>")
            out.append("</li>")
        out.append("</ul>")
    out.append("</body></html>")


register(ReportFormat("html", (".html", ".htm"), render_html, order=40,
                      description="one self-contained page", writer=write_html))
