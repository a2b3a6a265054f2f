"""The HTML report: one self-contained page, everything escaped, under a CSP that runs and loads nothing."""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any, TextIO

from inspector import __version__
from inspector.core.event import Event
from inspector.core.policy import Catalogue
from inspector.core.quotes import readable_quote
from inspector.core.textsafe import safe_line
from inspector.report.common import LineWriter, short
from inspector.report.formats.registry import ReportFormat, register, text_of
from inspector.report.model import ReportModel, declared_type, report_model

_CSS = """body{font-family:system-ui,sans-serif;max-width:70rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;width:100%;margin:1rem 0}td,th{border:1px solid #ccc;padding:.3rem .5rem;text-align:left;vertical-align:top}
th{background:#f2f2f2}code{background:#f6f6f6;padding:0 .2rem}.violation{color:#a00}.warning{color:#a60}.info{color:#246}
blockquote{border-left:3px solid #999;margin:.3rem 0;padding-left:.6rem;color:#444}li{margin-bottom:.6rem}
figure.chart{margin:1rem 0;overflow-x:auto}"""


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


# The summary chart: inline SVG, drawn from the report's counts — no script, no external asset,
# every label escaped (vendor names come from policies; a collector's from its profile). Each
# bar carries its numbers as text beside it: the colours only help.
_FIELD_PARTS = (("declared, seen", "#2e7d32"), ("declared, never seen", "#9e9e9e"), ("undeclared, observed", "#c62828"))
_SEVERITY_PARTS = (("violation", "#c62828"), ("warning", "#ef6c00"), ("info", "#1565c0"))
_LABEL_W, _BAR_W, _ROW_H, _TOP = 200, 300, 50, 62


def chart_rows(model: ReportModel) -> list[tuple[str, tuple[int, int, int], tuple[int, int, int]]]:
    """(who, (declared seen, never seen, undeclared observed), (violations, warnings, info)) per
    vendor (its policies summed), per collector, and for the requests no policy describes."""
    rows: dict[str, list[int]] = {}
    for section in model.sections:
        if section.policy is not None:
            who = section.policy.vendor
        elif section.collector is not None:
            who = section.title.split(": collector requests")[0] + " (collector)"
        else:
            who = "requests no policy describes"
        counts = rows.setdefault(who, [0] * 6)
        for k, n in enumerate((*section.field_counts(), *(section.severities.get(s, 0) for s, _ in _SEVERITY_PARTS))):
            counts[k] += n
    return [(who, (c[0], c[1], c[2]), (c[3], c[4], c[5])) for who, c in rows.items()]


def _bar(x: int, y: int, parts: tuple[tuple[str, str], ...], counts: tuple[int, ...], scale: float) -> list[str]:
    out, at = [], float(x)
    for (name, colour), n in zip(parts, counts, strict=True):
        if n:
            width = max(1.0, n * scale)
            out.append(f'<rect x="{at:.1f}" y="{y}" width="{width:.1f}" height="13" fill="{colour}">'
                       f"<title>{_h(name)}: {n}</title></rect>")
            at += width
    return out


def _legend(y: int, title: str, parts: tuple[tuple[str, str], ...]) -> list[str]:
    out = [f'<text x="0" y="{y + 10}" font-weight="bold">{_h(title)}</text>']
    at = _LABEL_W
    for name, colour in parts:
        out.append(f'<rect x="{at}" y="{y}" width="11" height="11" fill="{colour}"/>'
                   f'<text x="{at + 16}" y="{y + 10}">{_h(name)}</text>')
        at += 16 + 7 * len(name) + 18  # (7 px a character at 12 px is generous)
    return out


def summary_chart(model: ReportModel) -> str:
    """The chart the report opens with: per vendor and collector, two bars — its fields
    (declared seen, never seen, undeclared observed) and its findings by severity — each with
    its numbers written beside it."""
    rows = chart_rows(model)
    if not rows:
        return ""
    field_max = max(sum(f) for _, f, _ in rows) or 1
    finding_max = max(sum(s) for _, _, s in rows) or 1
    text_x = _LABEL_W + _BAR_W + 12
    width = text_x + 330
    height = _TOP + _ROW_H * len(rows) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="system-ui,sans-serif" font-size="12" '
           'aria-labelledby="chart-title">',
           '<title id="chart-title">Per vendor and collector: declared fields seen, never seen and '
           "undeclared fields observed; findings by severity</title>",
           *_legend(4, "Fields", _FIELD_PARTS), *_legend(24, "Findings", _SEVERITY_PARTS),
           f'<line x1="0" y1="{_TOP - 12}" x2="{width}" y2="{_TOP - 12}" stroke="#bdbdbd"/>']
    for k, (who, fields, severities) in enumerate(rows):
        y = _TOP + _ROW_H * k
        out.append(f'<text x="0" y="{y + 11}" font-weight="bold">{_h(short(who, 30))}</text>')
        out += _bar(_LABEL_W, y, _FIELD_PARTS, fields, _BAR_W / field_max)
        out.append(f'<text x="{text_x}" y="{y + 11}">fields: {fields[0]} seen · {fields[1]} never seen · '
                   f"{fields[2]} undeclared</text>")
        out += _bar(_LABEL_W, y + 18, _SEVERITY_PARTS, severities, _BAR_W / finding_max)
        out.append(f'<text x="{text_x}" y="{y + 29}">findings: {severities[0]} violations · '
                   f"{severities[1]} warnings · {severities[2]} info</text>")
        out.append(f'<line x1="0" y1="{y + 40}" x2="{width}" y2="{y + 40}" stroke="#eeeeee"/>')
    out.append(f'<text x="0" y="{height - 4}" fill="#555555">Fields: of the policies whose requests were seen; '
               "each kind of bar to its own scale.</text>")
    out.append("</svg>")
    return "\n".join(out)


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
    chart = summary_chart(model)
    if chart:
        out.append(f'<figure class="chart">{chart}</figure>')
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
                out.append(f"<blockquote>{_h(readable_quote(c.quote))}<br><small>{_h(c.short())}</small></blockquote>")
            out.append("</li>")
        out.append("</ul>")
    out.append("</body></html>")


register(ReportFormat("html", (".html", ".htm"), render_html, order=40,
                      description="one self-contained page", writer=write_html))
