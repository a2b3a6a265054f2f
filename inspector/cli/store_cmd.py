"""`store`: check or repair a store file."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_FINDINGS, InputError
from inspector.cli.options import store_option


@click.group()
def store() -> None:
    """Check or repair a store file."""


@store.command("check")
@store_option
@pass_app
def store_check(app: App, store_path: Path | None) -> None:
    """Report the store's state; exit 1 if it needs repair."""
    from inspector.store import check_store
    path = app.store_path(store_path)
    if not path.exists():
        raise InputError(f"no store at {path}")
    result = check_store(path)
    app.echo(_describe_report(path, result))
    if getattr(result, "bad_lines", None):
        sys.exit(EXIT_FINDINGS)


@store.command("repair")
@store_option
@pass_app
def store_repair(app: App, store_path: Path | None) -> None:
    """Rewrite the store without unreadable records (a backup of the original is kept)."""
    from inspector.store import repair_store
    path = app.store_path(store_path)
    if not path.exists():
        raise InputError(f"no store at {path}")
    result = repair_store(path)
    app.echo(_describe_report(path, result))


def _describe_report(path: Path, report: Any) -> str:
    """One line for `store check` / `store repair`, from a StoreReport."""
    counts = ", ".join(f"{n} {table}" for table, n in sorted(report.counts.items())) or "no records"
    parts = [f"{path}: {report.format} store, {counts}"]
    if report.bad_lines:
        shown = ", ".join(str(n) for n in report.bad_lines[:10])
        more = f" (+{len(report.bad_lines) - 10} more)" if len(report.bad_lines) > 10 else ""
        parts.append(f"{len(report.bad_lines)} unreadable line(s): {shown}{more}; "
                     f"run `telemetry-inspector store repair --store {path}`")
    if report.torn_lines or report.partial_tail:
        parts.append("an interrupted write was closed off (harmless)")
    if report.dropped_lines:
        parts.append(f"dropped {len(report.dropped_lines)} unreadable line(s)")
    if report.backup is not None:
        parts.append(f"original kept as {report.backup}")
    if not report.bad_lines and not report.dropped_lines:
        parts.append("ok")
    return "; ".join(parts)
