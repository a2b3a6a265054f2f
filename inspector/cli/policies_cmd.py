"""`policies`: list, show, check and infer policies (the declared-claims catalogue)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_FINDINGS, InputError
from inspector.cli.options import key_options
from inspector.core.policy import Catalogue, PolicyError, compile_policy_schema, load_policy_documents
from inspector.core.textsafe import safe_block, safe_json, safe_line


@click.group()
def policies() -> None:
    """List, show, check and infer policies (the declared-claims catalogue)."""


@policies.command("list")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR")
@click.option("--json", "as_json", is_flag=True)
@pass_app
def policies_list(app: App, policy_dirs: tuple[Path, ...], as_json: bool) -> None:
    """List the loaded policies."""
    catalogue, _ = app.catalogue((), policy_dirs, False)
    if as_json:
        app.echo(safe_json([p.to_summary() for p in catalogue.policies], indent=2))
        return
    for p in sorted(catalogue.policies, key=lambda p: p.id):
        where = ", ".join(p.hosts)
        app.echo(safe_line(f"{p.id:<32} {p.vendor:<10} {p.transport:<9} {where}  — {p.product}"))


@policies.command("show")
@click.argument("ref", metavar="ID|FILE")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR")
@click.option("--schema", is_flag=True, help="Print the compiled JSON Schema of the declared fields.")
@pass_app
def policies_show(app: App, ref: str, policy_dirs: tuple[Path, ...], schema: bool) -> None:
    """Show one policy (its YAML), or its compiled JSON Schema."""
    _, selected = app.catalogue((ref,), policy_dirs, False)
    policy = selected[0]
    if schema:
        app.echo(safe_json(compile_policy_schema(policy), indent=2))
        return
    import yaml
    app.echo(safe_line(f"# {policy.origin}"))
    app.echo(safe_block(yaml.safe_dump(policy.raw, sort_keys=False, allow_unicode=True, width=100)), nl=False)


@policies.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@pass_app
def policies_check(app: App, files: tuple[Path, ...]) -> None:
    """Validate policy files; errors are printed as FILE:LINE: message. Exit 1 if any is invalid."""
    failed = False
    for path in files:
        targets = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        for target in targets:
            if not target.exists():
                raise InputError(f"no such file: {target}")
            try:  # one policy per YAML document (`policies infer` writes several)
                found, errors = load_policy_documents(target)
            except PolicyError as exc:
                found, errors = [], [exc]
            for policy in found:
                try:
                    policy.validator  # noqa: B018 - compiles the declared fields' schema
                except PolicyError as exc:
                    errors.append(exc)
                    continue
                app.echo(safe_line(f"{target}: ok ({policy.id}: {len(policy.declared_paths())} declared fields, "
                                   f"{len(policy.claims)} claims)"))
            for error in errors:
                failed = True
                for line in error.lines():
                    app.echo(safe_line(line))
    if failed:
        sys.exit(EXIT_FINDINGS)


@policies.command("infer")
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@key_options
@click.option("--host", "hosts", multiple=True, help="Only requests to this host. Repeatable.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the drafts to this file.")
@pass_app
def policies_infer(app: App, captures: tuple[Path, ...], keys: tuple[Path, ...], hosts: tuple[str, ...],
                   output: Path | None) -> None:
    """Draft policies from observed traffic, one per endpoint (edit them to the vendor's words)."""
    from inspector.capture.load import CaptureError, load_capture
    from inspector.core.infer import dump_drafts, infer_policies
    from inspector.core.pipeline import Pipeline

    pipeline = Pipeline(Catalogue(), app.keyring(keys))
    samples = []
    for capture in captures:
        try:
            for obs in load_capture(capture):
                if hosts and obs.host not in hosts:
                    continue
                samples.append((obs, pipeline.decode_auto(obs)))
        except CaptureError as exc:
            raise InputError(str(exc)) from None
    if not samples:
        raise InputError("no requests to infer from" + (f" for host(s) {', '.join(hosts)}" if hosts else ""))
    text = dump_drafts(infer_policies(samples, ", ".join(str(c) for c in captures)))
    if output:
        app.write_report(output, text)  # the drafts quote observed values: private like a report
        app.echo(safe_line(f"wrote draft policies to {output}"), err=True)
    else:
        # On a terminal: YAML leaves bidi and separator characters raw (they are printable to it).
        app.echo(safe_block(text), nl=False)
