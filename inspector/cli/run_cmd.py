"""`run`: the proxy and the terminal UI together."""

from __future__ import annotations

import sys
from dataclasses import replace
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import EXIT_INPUT, exit_now
from inspector.cli.options import audit_option, proxy_options
from inspector.core.textsafe import safe_line
from inspector.proxy.config import DEFAULT_LISTEN, ProxyConfig


@click.command()
@proxy_options
@click.option("--demo", is_flag=True,
              help="Also send every built-in channel's wire format through the proxy (to a local upstream).")
@audit_option
@pass_app
def run(app: App, config: ProxyConfig, demo: bool, audit_in: str) -> None:
    """Start the proxy and the terminal UI: watch, understand and toggle telemetry live."""
    import tempfile

    from inspector.proxy.runner import EmbeddedRunner
    from inspector.proxy.service import ProcessRunner
    from inspector.tui.app import InspectorApp

    tmp = None
    if demo:  # a store, a CA and a port of its own: the demo leaves nothing behind
        tmp = tempfile.TemporaryDirectory(prefix="ti-demo-")
        config = replace(config, store_path=config.store_path or Path(tmp.name) / "demo-store.json",
                         confdir=config.confdir or Path(tmp.name) / "mitmproxy",
                         listen="127.0.0.1:0" if config.listen == DEFAULT_LISTEN else config.listen)
    settings, addon, store = app.build_proxy(config, keep_events=True)
    demo_runner = None
    on_ready = None
    runner: EmbeddedRunner | ProcessRunner
    if audit_in == "process" and not demo:
        # The proxy runs as `proxy` does, in a process of its own (its audit in its helper): the
        # UI's drawing never holds the proxy's interpreter. The UI reads the events from the store.
        runner = ProcessRunner(settings, addon, config, store.path if store is not None else None)
    else:
        if audit_in == "process":
            from inspector.proxy.assemble import audit_in_process

            # The demo's proxy (its local upstream and redirect are addons of this process): it
            # only decides here; each event comes back whole for the live list and its tallies.
            audit_in_process(addon, config, store, output=None, events="full")
        if demo:
            from inspector.emit.demo import DemoRunner
            demo_runner = DemoRunner(settings, addon, store).prepare()
            on_ready = demo_runner.start_sending
        runner = EmbeddedRunner(settings, addon, on_ready=on_ready)
    ui = InspectorApp(addon.catalogue, addon.keyring, store=store, runner=runner,
                      poll_store=isinstance(runner, ProcessRunner))
    try:
        # Listening before the UI is drawn: a port in use is one line and exit 2, not an empty UI
        error = runner.start()
        code: int | None
        if error is not None:
            ui.proxy_error = error
            code = EXIT_INPUT
        else:
            code = ui.run()
    finally:
        runner.stop()  # (a no-op once the UI stopped it)
        addon.stop()
        if store is not None:
            store.close()
        if demo_runner is not None:
            demo_runner.close()
        if tmp is not None:
            tmp.cleanup()
    if ui.proxy_error:
        app.echo(safe_line(f"error: {ui.proxy_error}"), err=True)
        sys.exit(EXIT_INPUT)
    s = runner.stats if isinstance(runner, ProcessRunner) else addon.stats  # what `proxy` prints when it stops
    app.echo(f"stopped: {s['events']} events, {s['violation']} with violations, {s['blocked']} blocked, "
             f"{s['sinkholed']} sinkholed" + ("" if demo else f"; store: {store.path if store else '-'}"), err=True)
    exit_now(code or 0)
