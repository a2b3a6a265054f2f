"""`decode`: decode one payload and show how."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_FINDINGS, InputError
from inspector.cli.options import key_options
from inspector.core.decode import DEFAULT_LIMITS
from inspector.core.policy import Catalogue
from inspector.core.textsafe import safe_block, safe_json, safe_line


@click.command()
@click.argument("source", required=False, default="-", metavar="[FILE|-]")
@key_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (value, decoding, jwe, issues).")
@pass_app
def decode(app: App, source: str, keys: tuple[Path, ...], as_json: bool) -> None:
    """Decode one payload: a raw body, Base64, a JWE (compact or JSON), or a URL with a payload parameter.

    Reads FILE, or standard input with '-'. Prints the decoded value and the decoding path.
    """
    from inspector.capture.load import raw_observation
    from inspector.core.pipeline import Pipeline

    data = read_input(source)
    keyring = app.keyring(keys)
    pipeline = Pipeline(Catalogue(), keyring)
    obs = raw_observation(data, "stdin" if source == "-" else Path(source).name)
    if obs.url.startswith(("http://", "https://")):
        decoded = pipeline.decode_auto(obs)
    else:
        decoded = pipeline.decoder.decode(data, "input")
    if as_json:
        app.echo(safe_json({
            "decoding": decoded.path_labels, "layers": [layer.to_dict() for layer in decoded.layers],
            "value": decoded.value, "structured": decoded.structured, "jwe": decoded.jwe,
            "issues": [{"code": i.code, "message": i.message} for i in decoded.issues],
        }, indent=2))
    else:
        app.echo(safe_line(f"decoding: {' → '.join(decoded.path_labels)}"))
        if decoded.jwe:
            app.echo("jwe header: " + safe_json(decoded.jwe))
        for issue in decoded.issues:
            app.echo(safe_line(f"{issue.code}: {issue.message}"))
        if decoded.value is not None:
            if decoded.structured:
                app.echo(safe_json(decoded.value, indent=2))
            else:
                app.echo(safe_block(decoded.value))  # a text payload: its lines stay lines
    if decoded.value is None and any(i.code == "decode-error" for i in decoded.issues):
        sys.exit(EXIT_FINDINGS)


def read_input(source: str) -> bytes:
    """FILE's bytes, or standard input's with '-' (at most one byte past the body limit)."""
    limit = DEFAULT_LIMITS.max_body + 1
    if source == "-":
        return sys.stdin.buffer.read(limit)
    path = Path(source)
    if not path.is_file():
        raise InputError(f"no such file: {source}")
    try:
        with path.open("rb") as handle:
            return handle.read(limit)
    except OSError as exc:
        raise InputError(f"cannot read {source}: {exc.strerror or exc}") from None
