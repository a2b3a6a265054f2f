"""The `exec` command: run a command with its traffic routed through the inspector."""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path
from typing import Any

import click

from inspector.cli.live import build_proxy, exit_now, log_to_stderr, proxy_options
from inspector.cli.main import EXIT_FINDINGS, InputError, cli


CA_VARIABLES = ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "NODE_EXTRA_CA_CERTS", "GIT_SSL_CAINFO",
                "AWS_CA_BUNDLE", "PIP_CERT", "HTTPLIB2_CA_CERTS", "DENO_CERT", "CARGO_HTTP_CAINFO")


def proxy_environment(port: int, ca_bundle: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(base if base is not None else os.environ)
    url = f"http://127.0.0.1:{port}"
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env[name] = url
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    for name in CA_VARIABLES:
        env[name] = str(ca_bundle)
    # Node's built-in fetch ignores proxy variables unless told (Node ≥ 22.?: NODE_USE_ENV_PROXY)
    env["NODE_USE_ENV_PROXY"] = "1"
    return env


def ca_bundle(ca_cert: Path, target: Path) -> Path:
    """The system CA bundle plus the proxy's CA: a client that trusts only this still reaches others."""
    parts = []
    for candidate in ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt", "/etc/ssl/cert.pem"):
        if Path(candidate).is_file():
            parts.append(Path(candidate).read_text(errors="replace"))
            break
    else:
        try:
            import certifi
            parts.append(Path(certifi.where()).read_text())
        except ImportError:  # pragma: no cover
            pass
    parts.append(ca_cert.read_text())
    target.write_text("\n".join(parts))
    return target


@cli.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@proxy_options
@click.option("--expect-none", is_flag=True, help="Exit non-zero if any telemetry was seen (opt-out check).")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
def exec_(expect_none: bool, quiet: bool, command: tuple[str, ...], listen: str, **kwargs: Any) -> None:
    """Run COMMAND with its traffic routed through the inspector, then summarise its telemetry.

    Sets HTTP(S)_PROXY and the CA-trust variables (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
    NODE_EXTRA_CA_CERTS, CURL_CA_BUNDLE, GIT_SSL_CAINFO, …) for COMMAND. Returns COMMAND's
    exit status; with --expect-none, exit 1 if any telemetry was seen.
    """
    import tempfile

    from inspector.proxy.embed import ProxyStartError, ProxyThread
    from inspector.report.render import event_line

    seen: list[Any] = []
    lock = threading.Lock()

    def emit(event: Any) -> None:
        with lock:
            seen.append(event)
            if not quiet:
                click.echo("telemetry-inspector: " + event_line(event), err=True)

    if listen == "127.0.0.1:8080":
        listen = "127.0.0.1:0"  # a free port: exec must not fight a running proxy
    log_to_stderr()
    settings, addon, store = build_proxy(listen=listen, callbacks=[emit], **kwargs)
    thread = ProxyThread(settings, addon)
    try:
        thread.start()
    except ProxyStartError as exc:
        raise InputError(str(exc)) from None
    with tempfile.TemporaryDirectory(prefix="ti-exec-") as tmp:
        try:
            bundle = ca_bundle(settings.ca_cert(), Path(tmp) / "ca-bundle.pem")
            env = proxy_environment(thread.port, bundle)
            try:
                rc = subprocess.call(list(command), env=env)
            except FileNotFoundError:
                raise InputError(f"command not found: {command[0]}") from None
            except KeyboardInterrupt:
                rc = 130
            addon.wait_idle(10)
        finally:
            thread.stop()
            addon.stop()
            if store is not None:
                store.close()
    from inspector.core.textsafe import safe_line

    violations = sum(1 for e in seen if e.verdict == "violation")
    channels = sorted({e.policy or e.host for e in seen})  # host names come from the traffic
    click.echo(safe_line(f"telemetry-inspector: {len(seen)} telemetry event(s), {violations} with violations"
                         + (f" — {', '.join(channels)}" if channels else "")), err=True)
    if expect_none and seen:
        click.echo("telemetry-inspector: telemetry was sent although none was expected (--expect-none)", err=True)
        exit_now(EXIT_FINDINGS if rc == 0 else rc)
    exit_now(rc)
