"""`keys`: the keys given with --key."""

from __future__ import annotations

from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.options import key_options
from inspector.core.textsafe import safe_line


@click.command()
@key_options
@pass_app
def keys(app: App, keys: tuple[Path, ...]) -> None:
    """List the keys given with --key (kid, type, thumbprint; never the key material)."""
    keyring = app.keyring(keys)
    if not len(keyring):
        app.echo("no keys loaded (use --key FILE or set TELEMETRY_INSPECTOR_KEYS to a key directory)")
        return
    for info in keyring.describe():
        app.echo(safe_line(f"{info['kid'] or '-':<28} {info['kty']:<4} {info['alg'] or '-':<14} "
                           f"sha256:{info['thumbprint']}  ({info['origin']})"))
