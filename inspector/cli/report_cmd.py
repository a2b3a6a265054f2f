"""`report`: the audit report of a store."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_FINDINGS
from inspector.cli.options import store_option
from inspector.core.findings import SEVERITY_RANK


@click.command()
@store_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html", "sarif"]), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path))
@click.option("--fail-on", type=click.Choice(["violation", "warning", "never"]), default="never", show_default=True)
@click.option("--policy", "policy_filter", multiple=True, help="Only events of this policy id. Repeatable.")
@click.option("--vendor", "vendor_filter", multiple=True, help="Only events of this vendor. Repeatable.")
@click.option("--redact", is_flag=True, help="Mask personal data.")
@pass_app
def report(app: App, store_path: Path | None, fmt: str, output: Path | None, fail_on: str,
           policy_filter: tuple[str, ...], vendor_filter: tuple[str, ...], redact: bool) -> None:
    """The audit report of a store."""
    from inspector.core.event import event_from_dict
    from inspector.core.redact import redact_event
    from inspector.report.render import render

    store = app.open_store(store_path, readonly=True)
    try:
        rows = store.events()
    finally:
        store.close()
    events = [event_from_dict(r) for r in rows]
    if policy_filter:
        events = [e for e in events if e.policy in policy_filter]
    if vendor_filter:
        wanted = {v.lower() for v in vendor_filter}
        events = [e for e in events if (e.vendor or "").lower() in wanted]
    if redact:
        events = [redact_event(e) for e in events]
    catalogue, _ = app.catalogue()
    text = render(events, catalogue, fmt, [str(app.store_path(store_path))])
    if output:
        app.write_report(output, text)  # mode 0600: the report holds captured data
        app.echo(f"wrote {fmt} report of {len(events)} events to {output}", err=True)
    else:
        app.echo(text, nl=False)
    if fail_on != "never":
        threshold = SEVERITY_RANK[fail_on]
        if any(SEVERITY_RANK[f.severity] >= threshold for e in events for f in e.findings):
            sys.exit(EXIT_FINDINGS)
