"""`audit`: audit saved captures against the policies."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_FINDINGS, InputError
from inspector.cli.options import key_options, policy_options
from inspector.core.event import Event
from inspector.core.findings import SEVERITY_RANK
from inspector.core.textsafe import safe_line


class Seen:
    """Counts the events on their way to the report, and whether one reached --fail-on."""

    def __init__(self, threshold: int | None) -> None:
        self.threshold = threshold
        self.events = 0
        self.failed = False

    def __call__(self, event: Event) -> Event:
        self.events += 1
        if self.threshold is not None and not self.failed:
            self.failed = any(SEVERITY_RANK[f.severity] >= self.threshold for f in event.findings)
        return event


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
    from inspector.core.redact import redact_event
    from inspector.report import formats

    catalogue, selected = app.catalogue(policies, policy_dirs, no_builtin)
    keyring = app.keyring(keys)
    pipeline = Pipeline(catalogue, keyring)
    forced = selected[0] if len(selected) == 1 else None
    seen = Seen(SEVERITY_RANK[fail_on] if fail_on != "never" else None)

    def events() -> Iterator[Event]:
        # One request at a time from capture to report: memory holds no list of events.
        for capture in captures:
            try:
                for obs in load_capture(capture):
                    use = forced if forced is not None and obs.url.startswith("file:") else None
                    event = pipeline.process(obs, policy=use)
                    yield seen(redact_event(event) if redact else event)
            except CaptureError as exc:
                raise InputError(str(exc)) from None

    report = formats.get(fmt)
    app.write_report_stream(output, lambda out: report.write(events(), catalogue, [str(c) for c in captures], out))
    if output:
        app.echo(safe_line(f"wrote {fmt} report of {seen.events} events to {output}"), err=True)
    if seen.failed:
        sys.exit(EXIT_FINDINGS)

