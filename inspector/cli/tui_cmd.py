"""`tui`: browse a store in the terminal UI."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import InputError
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
    if store_path is not None and not path.exists():  # a typo must not become an empty store
        raise InputError(f"no store at {path} (`telemetry-inspector run`, `proxy` or `exec` record one)")
    notice = None
    store = None
    if path.exists():  # the default store before anything was recorded: none is created
        try:
            store = Store(path, lazy_events=True)
        except StoreError as exc:  # a corrupt store is shown as a notice, with the way out
            notice = str(exc)
    catalogue, _ = app.catalogue((), policy_dirs, False)
    ui = InspectorApp(catalogue, app.keyring(keys), store=store, poll_store=True, notice=notice,
                      store_path=path if notice is None else None)
    try:
        code = ui.run()
    finally:
        if store is not None:
            store.close()
    sys.exit(code or 0)
