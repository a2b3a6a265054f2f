"""The verification report of `exec`: text, Markdown or JSON (by the file's extension).

Everything in it that came from the command's traffic or environment (host names, channel
names, destinations, canary evidence) is hostile: text lines go through `safe_line`,
Markdown through the report renderer's `md_text`/`md_code`, JSON through `safe_json`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inspector import __version__
from inspector.core.findings import WARNING, Finding
from inspector.core.textsafe import safe_json, safe_line
from inspector.report.render import md_code, md_text
from inspector.verify.canary import Planted
from inspector.verify.results import Channel, Run

SCHEMA = "telemetry-inspector/verification/1"


@dataclass
class Verification:
    """Everything `exec` found out, ready to print or write."""

    command: list[str]
    mode: str                      # "plain", "opt-out", "compare"
    isolation: str                 # "namespace" or "detection"
    isolation_detail: str
    runs: list[Run]
    channels: list[Channel]
    warnings: list[str] = field(default_factory=list)
    planted: list[Planted] = field(default_factory=list)
    canary: list[tuple[str, Finding]] = field(default_factory=list)
    exit_status: int = 0
    reasons: list[str] = field(default_factory=list)  # why the verification failed

    def findings(self) -> list[Finding]:
        """Each bypass, refused destination and canary hit as a finding (docs/findings.md)."""
        out = []
        for run in self.runs:
            for destination, count in sorted(run.bypasses.items()):
                out.append(Finding("bypass", WARNING, "", f"{run.label}: around the proxy: {destination} (×{count})",
                                   evidence=destination))
            for destination, count in sorted(run.refused.items()):
                out.append(Finding("refused", WARNING, "", f"{run.label}: refused: {destination} (×{count})",
                                   evidence=destination))
        return out + [f for _channel, f in self.canary]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA, "tool": "telemetry-inspector", "version": __version__,
            "generated": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "command": self.command, "mode": self.mode,
            "isolation": {"mode": self.isolation, "detail": self.isolation_detail},
            "warnings": self.warnings,
            "runs": [{"label": r.label, "exit_status": r.exit_status, "events": len(r.events),
                      "opt_outs": [o.to_dict() for o in r.opt_outs],
                      "bypasses": dict(r.bypasses), "refused": dict(r.refused),
                      "tunnels": dict(r.tunnels), "lookups": dict(r.lookups)} for r in self.runs],
            "channels": [c.to_dict() for c in self.channels],
            "findings": [f.to_dict() for f in self.findings()],
            "canary": {"planted": [p.to_dict() for p in self.planted],
                       "hits": [{"channel": ch, **f.to_dict()} for ch, f in self.canary]},
            "verdict": {"exit_status": self.exit_status, "passed": not self.reasons, "reasons": self.reasons},
        }


def _counts(channel: Channel) -> str:
    return ", ".join(f"{label} {n}" for label, n in channel.counts.items())


def _opt_outs(channel: Channel) -> str:
    return ", ".join(f"{o.variable}={o.value}" for o in channel.opt_outs) or "-"


def render_text(v: Verification) -> str:
    lines = [f"telemetry-inspector {__version__} verification report",
             f"command: {' '.join(v.command)}",
             f"isolation: {v.isolation} — {v.isolation_detail}"]
    lines += [f"warning: {w}" for w in v.warnings]
    for run in v.runs:
        lines.append(f"run {run.label}: exit status {run.exit_status}, {len(run.events)} telemetry event(s)")
    lines.append("channels:" if v.channels else "channels: none — nothing was seen leaving")
    for c in v.channels:
        status = f" [{c.status}]" if c.status else ""
        lines.append(f"  {c.name}{status} ({c.kind}; owner {c.owner or 'unknown'}): {_counts(c)}")
        if c.hosts:
            lines.append(f"    hosts: {', '.join(c.hosts)}")
        if c.claims:
            lines.append(f"    claims held against: {', '.join(c.claims)}")
        if v.mode != "plain":
            lines.append(f"    opt-outs set for it: {_opt_outs(c)}")
        if c.violations or c.canary:
            lines.append(f"    {c.violations} event(s) with violations, {c.canary} canary hit(s)")
    if v.planted:
        lines.append("canaries planted: " + ", ".join(f"{p.what} ({'/'.join(p.variables)})" for p in v.planted))
        for channel, f in v.canary:
            lines.append(f"  {f.severity} canary in {channel}: {f.message}")
    lines.append(f"verdict: {'passed' if not v.reasons else 'failed'} (exit status {v.exit_status})")
    lines += [f"  {reason}" for reason in v.reasons]
    return "\n".join(safe_line(line) for line in lines) + "\n"


def render_markdown(v: Verification) -> str:
    out = ["# Telemetry verification report", "",
           f"Command {md_code(' '.join(v.command))}, telemetry-inspector {md_text(__version__)}.", "",
           f"Isolation: **{md_text(v.isolation)}** — {md_text(v.isolation_detail)}", ""]
    for w in v.warnings:
        out.append(f"- warning: {md_text(w)}")
    if v.warnings:
        out.append("")
    out += ["| run | exit status | telemetry events |", "|---|---|---|"]
    out += [f"| {md_text(r.label)} | {r.exit_status} | {len(r.events)} |" for r in v.runs]
    out += ["", "## Channels", ""]
    if not v.channels:
        out.append("Nothing was seen leaving.")
    else:
        out += ["| channel | status | kind | owner | requests | claims | opt-outs set |", "|---|---|---|---|---|---|---|"]
        for c in v.channels:
            out.append(f"| {md_code(c.name, in_table=True)} | {md_text(c.status or '-')} | {md_text(c.kind)} | "
                       f"{md_text(c.owner or 'unknown')} | {md_text(_counts(c))} | {md_text(', '.join(c.claims) or '-')} | "
                       f"{md_code(_opt_outs(c), in_table=True)} |")
    if v.planted:
        out += ["", "## Canaries", ""]
        out += [f"- planted {md_text(p.what)} in {md_code('/'.join(p.variables))}" for p in v.planted]
        out.append("")
        if not v.canary:
            out.append("No planted value was found in the traffic.")
        for channel, f in v.canary:
            out.append(f"- **{md_text(f.severity)}** in {md_code(channel)}: {md_text(f.message)}"
                       f" (evidence {md_code(str(f.evidence))})")
    out += ["", "## Verdict", "", f"**{'passed' if not v.reasons else 'failed'}** (exit status {v.exit_status})"]
    out += [f"- {md_text(reason)}" for reason in v.reasons]
    return "\n".join(out) + "\n"


def render(v: Verification, path: Path) -> str:
    """The report in the format `path`'s extension names: .json, .md/.markdown, else text."""
    suffix = path.suffix.lower()
    if suffix == ".json":
        return safe_json(v.to_dict(), indent=2) + "\n"
    if suffix in (".md", ".markdown"):
        return render_markdown(v)
    return render_text(v)
