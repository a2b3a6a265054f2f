"""`proxy`: the proxy headless, one line per telemetry event."""

from __future__ import annotations

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import InputError, exit_now
from inspector.cli.options import audit_option, proxy_options
from inspector.proxy.config import ProxyConfig


@click.command()
@proxy_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (as in audit --format json).")
@audit_option
@pass_app
def proxy(app: App, config: ProxyConfig, as_json: bool, audit_in: str) -> None:
    """Run the proxy headless: one line per telemetry event. Ctrl-C or SIGTERM stops it."""
    from inspector.proxy.assemble import audit_in_process
    from inspector.proxy.embed import ProxyStartError, serve_forever
    from inspector.proxy.output import event_printer, log_to_stderr

    log_to_stderr()
    settings, addon, store = app.build_proxy(config, callbacks=[event_printer(as_json)])
    if audit_in == "process":
        audit_in_process(addon, config, store, output="json" if as_json else "line")

    def ready(addrs: list[tuple[str, int]]) -> None:
        where = ", ".join(f"{h}:{p}" for h, p in addrs)
        app.echo(f"telemetry-inspector {'/'.join(settings.modes)} proxy listening on {where}; "
                 f"CA certificate: {settings.ca_cert()}; store: {store.path if store else '-'}", err=True)

    try:
        serve_forever(settings, addon, ready)
    except ProxyStartError as exc:
        raise InputError(str(exc)) from None
    finally:
        addon.stop()
        if store is not None:
            store.close()
    s = addon.stats
    app.echo(f"stopped: {s['events']} events, {s['violation']} with violations, {s['blocked']} blocked, "
             f"{s['sinkholed']} sinkholed", err=True)
    exit_now(0)


__all__ = ["proxy"]
