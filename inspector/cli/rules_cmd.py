"""`rules`: list and change the allow/block/sinkhole rules in a store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import InputError
from inspector.cli.options import store_option
from inspector.core.rules import ACTIONS, RuleError, infer_kind


@click.group()
def rules() -> None:
    """List and change allow/block/sinkhole rules (applied by a running proxy within a second)."""


@rules.command("list")
@store_option
@click.option("--json", "as_json", is_flag=True)
@pass_app
def rules_list(app: App, store_path: Path | None, as_json: bool) -> None:
    """List the rules in the store."""
    store = app.open_store(store_path)
    try:
        rows = store.rules()
    finally:
        store.close()
    if as_json:
        app.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        app.echo("no rules: matched telemetry is allowed (audited) unless the proxy runs with --block-all")
    for row in sorted(rows, key=lambda r: (r["kind"], r["target"])):
        app.echo(f"{row['action']:<9} {row['kind']:<7} {row['target']}")


def _rule_command(action: str) -> Any:
    @store_option
    @click.argument("target")
    @click.option("--policy", "kind", flag_value="policy", help="TARGET is a policy id.")
    @click.option("--vendor", "kind", flag_value="vendor", help="TARGET is a vendor.")
    @click.option("--host", "kind", flag_value="host", help="TARGET is a host name (wildcards allowed).")
    @pass_app
    def command(app: App, target: str, kind: str | None, store_path: Path | None) -> None:
        from inspector.core.policy import Catalogue
        if kind is None:
            catalogue = Catalogue.load()
            try:
                kind = infer_kind(target, [p.id for p in catalogue.policies], catalogue.vendors())
            except RuleError as exc:
                raise InputError(str(exc)) from None
        store = app.open_store(store_path)
        try:
            store.set_rule(target, kind, action)
        finally:
            store.close()
        app.echo(f"{action} {kind} {target}")

    command.__doc__ = f"{action.capitalize()} TARGET: a policy id, a vendor, or a host."
    return command


for _action in ACTIONS:
    rules.command(_action)(_rule_command(_action))


@rules.command("reset")
@store_option
@click.argument("target", required=False)
@pass_app
def rules_reset(app: App, store_path: Path | None, target: str | None) -> None:
    """Remove the rule for TARGET, or every rule."""
    store = app.open_store(store_path)
    try:
        if target:
            if not store.remove_rule(target):
                raise InputError(f"no rule for {target!r}")
            app.echo(f"removed the rule for {target}")
        else:
            store.reset_rules()
            app.echo("removed every rule")
    finally:
        store.close()
