"""Live commands: proxy, exec, rules, ca, report, store."""

from __future__ import annotations

import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import click

from inspector.cli.main import (
    EXIT_FINDINGS,
    EXIT_INPUT,
    InputError,
    build_catalogue,
    build_keyring,
    cli,
    key_options,
)
from inspector.core.findings import SEVERITY_RANK
from inspector.core.rules import ACTIONS, RuleError, infer_kind
from inspector.proxy.output import event_printer, log_to_stderr


def _default_store() -> Path:
    from inspector.store import default_store_path
    return default_store_path()


def _regular_store(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a store path that is a symbolic link, a FIFO or a device, before any command opens
    it (`store check`, `tui`, … would otherwise report it as an internal error or a notice)."""
    from inspector.store import StoreError, check_store_path
    if not ctx.resilient_parsing:
        try:
            check_store_path((value or _default_store()).expanduser())
        except StoreError as exc:
            raise InputError(str(exc)) from None
    return value


def store_option(func: Any) -> Any:
    return click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
                        callback=_regular_store,
                        help="Store file (default: $XDG_DATA_HOME/telemetry-inspector/store.json).")(func)


def open_store(path: Path | None, readonly: bool = False, **kwargs: Any) -> Any:
    from inspector.store import Store, StoreError
    path = path or _default_store()
    try:
        return Store(path, readonly=readonly, **kwargs)
    except StoreError as exc:
        raise InputError(str(exc)) from None


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", value
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise InputError(f"--listen wants HOST:PORT, got {value!r}") from None
    if not 0 <= number <= 65535:
        raise InputError(f"--listen port out of range: {number}")
    return host, number


def proxy_options(func: Any) -> Any:
    options = [
        click.option("--listen", default="127.0.0.1:8080", show_default=True, metavar="HOST:PORT",
                     help="Address to listen on. Non-loopback needs --allow-remote."),
        click.option("--allow-remote", is_flag=True,
                     help="Allow listening beyond loopback (--listen, --mode MODE@HOST:PORT, --set listen_host); "
                          "prints a warning per such listener."),
        store_option,
        click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
                     help="Add the policies in this directory or file. Repeatable."),
        click.option("--mode", "modes", multiple=True, metavar="MODE",
                     help="mitmproxy mode: regular (default), upstream:URL, reverse:URL, socks5, transparent, "
                          "local, wireguard, dns; MODE@HOST:PORT listens there (loopback unless --allow-remote). "
                          "Repeatable."),
        click.option("--discover", is_flag=True, help="Also inspect unknown hosts; flag likely telemetry."),
        click.option("--block-all", is_flag=True, help="Start blocking every matched telemetry channel."),
        click.option("--block-mode", type=click.Choice(["respond", "kill"]), default="respond", show_default=True,
                     help="Answer blocked requests locally, or kill the connection."),
        click.option("--block-status", type=int, default=403, show_default=True,
                     help="Status of the local answer to a blocked request."),
        click.option("--max-events", type=int, default=0, help="Keep at most N events in the store (0: all)."),
        click.option("--redact", is_flag=True, help="Store events with personal data masked."),
        click.option("--confdir", type=click.Path(path_type=Path), default=None,
                     help="mitmproxy configuration directory (holds the CA). Default ~/.mitmproxy."),
        click.option("--set", "set_options", multiple=True, metavar="NAME=VALUE",
                     help="Any mitmproxy option, as with mitmdump --set. Repeatable."),
        key_options,
    ]
    for option in reversed(options):
        func = option(func)
    return func


def exit_now(code: int) -> None:
    """End a proxy command once everything is written and closed, without interpreter teardown:
    mitmproxy_rs (its UDP servers in reverse/wireguard modes) can segfault while Python
    garbage-collects at exit, which would turn a clean stop into exit status 139."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def build_proxy(listen: str, allow_remote: bool, store_path: Path | None, policy_dirs: tuple[Path, ...],
                modes: tuple[str, ...], discover: bool, block_all: bool, block_mode: str, block_status: int,
                max_events: int, redact: bool, confdir: Path | None, set_options: tuple[str, ...],
                keys: tuple[Path, ...], callbacks: list[Any] | None = None, use_store: bool = True,
                keep_events: bool = False) -> Any:
    """The proxy's settings, addon and store. `keep_events`: the store handle also serves reads
    (the TUI of `run`, which reads events from the file as it shows them); otherwise it is
    write-only. Either way its memory does not hold the events."""
    from inspector.proxy.addon import TelemetryInspector
    from inspector.proxy.embed import ProxySettings, ProxyStartError

    host, port = parse_listen(listen)
    extra: dict[str, Any] = {}
    for item in set_options:
        name, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set wants NAME=VALUE, got {item!r}")
        extra[name.strip()] = value
    settings = ProxySettings(listen_host=host, listen_port=port, modes=tuple(modes) or ("regular",),
                             allow_remote=allow_remote, confdir=confdir, extra=extra)
    try:  # every listener (--listen, each --mode …@HOST:PORT, --set listen_host/mode): loopback only
        remote = settings.check()
    except ProxyStartError as exc:
        raise InputError(str(exc)) from None
    for listener in remote:  # only with --allow-remote
        click.echo(f"warning: {listener.warning()}", err=True)
    catalogue, _ = build_catalogue((), policy_dirs, False)
    keyring = build_keyring(keys)
    store = None
    if use_store:
        from inspector.store import StoreError, open_recording
        try:
            store, warning = open_recording(store_path or _default_store(), max_events=max_events or None,
                                            keep_events=keep_events, lazy_events=keep_events)
        except StoreError as exc:
            raise InputError(str(exc)) from None
        if warning:
            click.echo(f"warning: {warning}", err=True)
    addon = TelemetryInspector(catalogue, keyring, store=store, callbacks=callbacks or [])
    addon.default_action = "block" if block_all else "allow"
    addon.discover = discover
    addon.block_mode = block_mode
    if not 100 <= block_status <= 599:
        raise InputError("--block-status must be an HTTP status code")
    addon.block_status = block_status
    addon.redact = redact
    addon.reload_rules()
    return settings, addon, store


@cli.command()
@proxy_options
@click.option("--json", "as_json", is_flag=True, help="One JSON object per event (as in audit --format json).")
@click.option("--audit", "audit_in", type=click.Choice(["process", "thread"]), default="process", show_default=True,
              help="Where events are decoded, audited and recorded: a helper process (the proxy's own "
                   "process then only decides allow/block), or a thread of the proxy's process.")
def proxy(as_json: bool, audit_in: str, **kwargs: Any) -> None:
    """Run the proxy headless: one line per telemetry event. Ctrl-C or SIGTERM stops it."""
    from inspector.proxy.embed import ProxyStartError, serve_forever

    log_to_stderr()
    settings, addon, store = build_proxy(callbacks=[event_printer(as_json)], **kwargs)
    if audit_in == "process":
        from inspector.proxy.auditproc import AuditConfig
        addon.audit_config = AuditConfig(
            policies=[(p.raw, p.origin, p.builtin) for p in addon.catalogue.policies],
            key_paths=[str(k) for k in kwargs["keys"]],
            store_path=str(store.path) if store is not None and not store.readonly else None,
            max_events=kwargs["max_events"] or None, redact=kwargs["redact"],
            output="json" if as_json else "line")

    def ready(addrs: list[tuple[str, int]]) -> None:
        where = ", ".join(f"{h}:{p}" for h, p in addrs)
        click.echo(f"telemetry-inspector {'/'.join(settings.modes)} proxy listening on {where}; "
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
    click.echo(f"stopped: {s['events']} events, {s['violation']} with violations, {s['blocked']} blocked, "
               f"{s['sinkholed']} sinkholed", err=True)
    exit_now(0)


# ---------------------------------------------------------------------- rules

@cli.group()
def rules() -> None:
    """List and change allow/block/sinkhole rules (applied by a running proxy within a second)."""


@rules.command("list")
@store_option
@click.option("--json", "as_json", is_flag=True)
def rules_list(store_path: Path | None, as_json: bool) -> None:
    """List the rules in the store."""
    store = open_store(store_path)
    try:
        rows = store.rules()
    finally:
        store.close()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no rules: matched telemetry is allowed (audited) unless the proxy runs with --block-all")
    for row in sorted(rows, key=lambda r: (r["kind"], r["target"])):
        click.echo(f"{row['action']:<9} {row['kind']:<7} {row['target']}")


def _rule_command(action: str) -> Any:
    @store_option
    @click.argument("target")
    @click.option("--policy", "kind", flag_value="policy", help="TARGET is a policy id.")
    @click.option("--vendor", "kind", flag_value="vendor", help="TARGET is a vendor.")
    @click.option("--host", "kind", flag_value="host", help="TARGET is a host name (wildcards allowed).")
    def command(target: str, kind: str | None, store_path: Path | None) -> None:
        from inspector.core.policy import Catalogue
        if kind is None:
            catalogue = Catalogue.load()
            try:
                kind = infer_kind(target, [p.id for p in catalogue.policies], catalogue.vendors())
            except RuleError as exc:
                raise InputError(str(exc)) from None
        store = open_store(store_path)
        try:
            store.set_rule(target, kind, action)
        finally:
            store.close()
        click.echo(f"{action} {kind} {target}")

    command.__doc__ = f"{action.capitalize()} TARGET: a policy id, a vendor, or a host."
    return command


for _action in ACTIONS:
    rules.command(_action)(_rule_command(_action))


@rules.command("reset")
@store_option
@click.argument("target", required=False)
def rules_reset(store_path: Path | None, target: str | None) -> None:
    """Remove the rule for TARGET, or every rule."""
    store = open_store(store_path)
    try:
        if target:
            if not store.remove_rule(target):
                raise InputError(f"no rule for {target!r}")
            click.echo(f"removed the rule for {target}")
        else:
            store.reset_rules()
            click.echo("removed every rule")
    finally:
        store.close()


# ---------------------------------------------------------------------- ca

@cli.command()
@click.option("--confdir", type=click.Path(path_type=Path), default=None, help="mitmproxy configuration directory.")
@click.option("--path", "path_only", is_flag=True, help="Print only the certificate's path.")
def ca(confdir: Path | None, path_only: bool) -> None:
    """Where the proxy's CA certificate is, and how to trust it."""
    from mitmproxy.certs import CertStore

    confdir = (confdir or Path("~/.mitmproxy")).expanduser()
    CertStore.from_store(str(confdir), "mitmproxy", 2048)  # creates the CA on first use
    cert = confdir / "mitmproxy-ca-cert.pem"
    if path_only:
        click.echo(str(cert))
        return
    click.echo(f"CA certificate: {cert}\n")
    click.echo(CA_HELP.format(cert=cert))


CA_HELP = """\
Trust it only where you need it (see docs/routing.md for details):
  one command        telemetry-inspector exec -- CMD ...   (sets everything below for CMD)
  Python (requests)  REQUESTS_CA_BUNDLE={cert}
  Python (ssl/httpx) SSL_CERT_FILE={cert}
  Node.js            NODE_EXTRA_CA_CERTS={cert}
  curl               curl --cacert {cert} ...   or CURL_CA_BUNDLE={cert}
  Debian/Ubuntu      sudo cp {cert} /usr/local/share/ca-certificates/telemetry-inspector.crt
                     && sudo update-ca-certificates
  macOS              sudo security add-trusted-cert -d -p ssl -p basic \\
                       -k /Library/Keychains/System.keychain {cert}
  Firefox            Settings → Privacy & Security → Certificates → View Certificates → Import
  Chrome/Chromium    Settings → Privacy and security → Security → Manage certificates → Import
  Docker             mount it and set the variables above, or copy it into the image's CA store
The private key beside it ({cert}'s directory, mitmproxy-ca.pem) lets anyone who has it
read your traffic: keep it private, and remove the CA from system stores when done."""


# ---------------------------------------------------------------------- report

@cli.command()
@store_option
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html", "sarif"]), default="text",
              show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path))
@click.option("--fail-on", type=click.Choice(["violation", "warning", "never"]), default="never", show_default=True)
@click.option("--policy", "policy_filter", multiple=True, help="Only events of this policy id. Repeatable.")
@click.option("--vendor", "vendor_filter", multiple=True, help="Only events of this vendor. Repeatable.")
@click.option("--redact", is_flag=True, help="Mask personal data.")
def report(store_path: Path | None, fmt: str, output: Path | None, fail_on: str,
           policy_filter: tuple[str, ...], vendor_filter: tuple[str, ...], redact: bool) -> None:
    """The audit report of a store."""
    from inspector.core.event import event_from_dict
    from inspector.core.redact import redact_event
    from inspector.report.render import render

    store = open_store(store_path, readonly=True)
    try:
        rows = store.events()
    finally:
        store.close()
    events = [event_from_dict(r) for r in rows]
    if policy_filter:
        events = [e for e in events if e.policy in policy_filter]
    if vendor_filter:
        wanted = {v.lower() for v in vendor_filter}
        events = [e for e in events if (e.vendor or "").lower() in wanted]
    if redact:
        events = [redact_event(e) for e in events]
    catalogue, _ = build_catalogue((), (), False)
    text = render(events, catalogue, fmt, [str(store_path or _default_store())])
    if output:
        from inspector.cli.main import write_report
        write_report(output, text)  # mode 0600: the report holds captured data
        click.echo(f"wrote {fmt} report of {len(events)} events to {output}", err=True)
    else:
        click.echo(text, nl=False)
    if fail_on != "never":
        threshold = SEVERITY_RANK[fail_on]
        if any(SEVERITY_RANK[f.severity] >= threshold for e in events for f in e.findings):
            sys.exit(EXIT_FINDINGS)


# ---------------------------------------------------------------------- store

@cli.group()
def store() -> None:
    """Check or repair a store file."""


@store.command("check")
@store_option
def store_check(store_path: Path | None) -> None:
    """Report the store's state; exit 1 if it needs repair."""
    from inspector.store import check_store
    path = store_path or _default_store()
    if not path.exists():
        raise InputError(f"no store at {path}")
    result = check_store(path)
    click.echo(_describe_report(path, result))
    if getattr(result, "bad_lines", None):
        sys.exit(EXIT_FINDINGS)


@store.command("repair")
@store_option
def store_repair(store_path: Path | None) -> None:
    """Rewrite the store without unreadable records (a backup of the original is kept)."""
    from inspector.store import repair_store
    path = store_path or _default_store()
    if not path.exists():
        raise InputError(f"no store at {path}")
    result = repair_store(path)
    click.echo(_describe_report(path, result))


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


__all__ = ["EXIT_INPUT"]


# ---------------------------------------------------------------------- run / tui

@cli.command()
@proxy_options
@click.option("--demo", is_flag=True,
              help="Also send every built-in channel's wire format through the proxy (to a local upstream).")
def run(demo: bool, **kwargs: Any) -> None:
    """Start the proxy and the terminal UI: watch, understand and toggle telemetry live."""
    import tempfile

    from inspector.tui.app import InspectorApp

    tmp = None
    if demo:
        tmp = tempfile.TemporaryDirectory(prefix="ti-demo-")
        if kwargs.get("store_path") is None:
            kwargs["store_path"] = Path(tmp.name) / "demo-store.json"
        if kwargs.get("confdir") is None:
            kwargs["confdir"] = Path(tmp.name) / "mitmproxy"
        if kwargs["listen"] == "127.0.0.1:8080":
            kwargs["listen"] = "127.0.0.1:0"
    settings, addon, store = build_proxy(keep_events=True, **kwargs)
    on_ready = None
    runner = None
    if demo:
        from inspector.emit.demo import DemoRunner
        runner = DemoRunner(settings, addon, store).prepare()
        on_ready = runner.start_sending
    app = InspectorApp(addon.catalogue, addon.keyring, store=store, proxy_settings=settings, addon=addon,
                       on_ready=on_ready)
    try:
        code = app.run()
    finally:
        addon.stop()
        if store is not None:
            store.close()
        if runner is not None:
            runner.close()
        if tmp is not None:
            tmp.cleanup()
    if app.proxy_error:
        click.echo(f"error: {app.proxy_error}", err=True)
        sys.exit(EXIT_INPUT)
    exit_now(code or 0)


@cli.command()
@store_option
@key_options
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR")
def tui(store_path: Path | None, keys: tuple[Path, ...], policy_dirs: tuple[Path, ...]) -> None:
    """Browse a store (updates live while a proxy in another process writes to it)."""
    from inspector.tui.app import InspectorApp

    from inspector.store import Store, StoreError

    path = store_path or _default_store()
    notice = None
    try:
        store = Store(path, lazy_events=True)
    except StoreError as exc:  # a corrupt store is shown as a notice, with the way out
        store, notice = None, str(exc)
    catalogue, _ = build_catalogue((), policy_dirs, False)
    app = InspectorApp(catalogue, build_keyring(keys), store=store, poll_store=True, notice=notice)
    try:
        code = app.run()
    finally:
        if store is not None:
            store.close()
    sys.exit(code or 0)


# Commands in their own modules register themselves on `cli` too.
from inspector.cli import exec_cmd as _exec_cmd  # noqa: E402,F401
