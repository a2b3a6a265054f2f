"""`audit`: audit saved captures against the policies."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_FINDINGS, InputError
from inspector.cli.options import key_options, policy_options
from inspector.core.event import Event
from inspector.core.findings import SEVERITY_RANK
from inspector.core.textsafe import safe_line


@click.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@policy_options
@key_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html", "sarif"]),
              default="text", show_default=True, help="Report format.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the report to this file.")
@click.option("--fail-on", type=click.Choice(["violation", "warning", "never"]), default="violation",
              show_default=True, help="Exit 1 when a finding at or above this severity is found.")
@click.option("--redact", is_flag=True, help="Mask evidence and PII values in the report.")
@pass_app
def audit(app: App, captures: tuple[Path, ...], policies: tuple[str, ...], policy_dirs: tuple[Path, ...],
          no_builtin: bool, keys: tuple[Path, ...], fmt: str, output: Path | None, fail_on: str,
          redact: bool) -> None:
    """Audit saved captures: HAR files, mitmproxy .mitm flow files, or raw payload files.

    Exit 0 when nothing reaches --fail-on, 1 when something does, 2 on usage or input errors.
    """
    from inspector.capture.load import CaptureError, load_capture
    from inspector.core.pipeline import Pipeline
    from inspector.report.render import render

    catalogue, selected = app.catalogue(policies, policy_dirs, no_builtin)
    keyring = app.keyring(keys)
    pipeline = Pipeline(catalogue, keyring)
    forced = selected[0] if len(selected) == 1 else None
    events: list[Event] = []
    for capture in captures:
        try:
            for obs in load_capture(capture):
                use = forced if forced is not None and obs.url.startswith("file:") else None
                events.append(pipeline.process(obs, policy=use))
        except CaptureError as exc:
            raise InputError(str(exc)) from None
    if redact:
        from inspector.core.redact import redact_event
        events = [redact_event(e) for e in events]
    text = render(events, catalogue, fmt, [str(c) for c in captures])
    if output:
        app.write_report(output, text)
        app.echo(safe_line(f"wrote {fmt} report of {len(events)} events to {output}"), err=True)
    else:
        app.echo(text, nl=False)
    if fail_on != "never":
        threshold = SEVERITY_RANK[fail_on]
        if any(SEVERITY_RANK[f.severity] >= threshold for e in events for f in e.findings):
            sys.exit(EXIT_FINDINGS)
