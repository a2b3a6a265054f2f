"""`tui`: browse a store in the terminal UI."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.options import key_options, store_option


@click.command()
@store_option
@key_options
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR")
@pass_app
def tui(app: App, store_path: Path | None, keys: tuple[Path, ...], policy_dirs: tuple[Path, ...]) -> None:
    """Browse a store (updates live while a proxy in another process writes to it)."""
    from inspector.store import Store, StoreError
    from inspector.tui.app import InspectorApp

    path = app.store_path(store_path)
    notice = None
    try:
        store = Store(path, lazy_events=True)
    except StoreError as exc:  # a corrupt store is shown as a notice, with the way out
        store, notice = None, str(exc)
    catalogue, _ = app.catalogue((), policy_dirs, False)
    ui = InspectorApp(catalogue, app.keyring(keys), store=store, poll_store=True, notice=notice)
    try:
        code = ui.run()
    finally:
        if store is not None:
            store.close()
    sys.exit(code or 0)
