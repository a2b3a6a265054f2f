"""`report`: the audit report of a store."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.audit_cmd import Seen
from inspector.cli.errors import EXIT_FINDINGS, InputError
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
    from inspector.core.event import Event, event_from_dict
    from inspector.core.redact import redact_event
    from inspector.report import formats
    from inspector.store import StoreError

    # Lazily: memory holds an id and a file offset per event, each event read as the report
    # is written (in large sequential blocks), never the store's events all at once.
    store = app.open_store(store_path, readonly=True, lazy_events=True)
    wanted = {v.lower() for v in vendor_filter}
    seen = Seen(SEVERITY_RANK[fail_on] if fail_on != "never" else None)

    def events() -> Iterator[Event]:
        for row in store.scan_events():
            event = event_from_dict(row)
            if policy_filter and event.policy not in policy_filter:
                continue
            if vendor_filter and (event.vendor or "").lower() not in wanted:
                continue
            yield seen(redact_event(event) if redact else event)

    catalogue, _ = app.catalogue()
    report = formats.get(fmt)
    try:
        app.write_report_stream(output, lambda out: report.write(events(), catalogue,
                                                                 [str(app.store_path(store_path))], out))
    except StoreError as exc:
        raise InputError(str(exc)) from None
    finally:
        store.close()
    if output:
        app.echo(f"wrote {fmt} report of {seen.events} events to {output}", err=True)
    if seen.failed:
        sys.exit(EXIT_FINDINGS)
