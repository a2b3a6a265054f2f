"""The `exec` command: run a command with its traffic routed through the inspector."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import click

from inspector.cli.app import App, pass_app
from inspector.cli.errors import InputError, exit_now
from inspector.cli.options import audit_option, proxy_options
from inspector.proxy.config import DEFAULT_LISTEN, ProxyConfig
from inspector.proxy.output import log_to_stderr

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


@click.command(name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@proxy_options
@click.option("--expect-none", is_flag=True,
              help="Exit 1 if anything left or may have left: telemetry, a bypass, refused traffic.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary.")
@click.option("--isolate", type=click.Choice(["auto", "namespace", "off"]), default="auto", show_default=True,
              help="namespace: run COMMAND in a network namespace whose only way out is the inspector; off: "
                   "watch it for connections around the proxy; auto: namespace where possible.")
@click.option("--opt-out", is_flag=True, help="Set every known opt-out (DO_NOT_TRACK, vendors' variables); "
                                              "report what is still sent.")
@click.option("--compare", is_flag=True, help="Run twice, without and with the opt-outs; per channel: "
                                              "stopped, ignored or new (exit 1 on ignored/new).")
@click.option("--canary", is_flag=True, help="Plant fake user, host, home, e-mail, token values; find them "
                                             "in the traffic, in any encoding or digest (exit 1 if found).")
@click.option("--canary-cwd", is_flag=True, help="With --canary: run COMMAND in a canary-named directory.")
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write the verification report (.json, .md, else text), mode 0600.")
@audit_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@pass_app
def exec_(app: App, config: ProxyConfig, expect_none: bool, quiet: bool, isolate: str, opt_out: bool,
          compare: bool, canary: bool, canary_cwd: bool, report_path: Path | None, audit_in: str,
          command: tuple[str, ...]) -> None:
    """Run COMMAND with its traffic routed through the inspector, then summarise its telemetry.

    Sets HTTP(S)_PROXY and the CA-trust variables (SSL_CERT_FILE, REQUESTS_CA_BUNDLE,
    NODE_EXTRA_CA_CERTS, CURL_CA_BUNDLE, GIT_SSL_CAINFO, …) for COMMAND; on Linux it runs in
    a network namespace whose only way out is the inspector (docs/verification.md). Returns
    COMMAND's exit status; 1 when a verification flag's check failed.
    """
    from inspector.verify.execflow import ExecError, ExecOptions, run_exec

    if config.listen == DEFAULT_LISTEN:
        config = replace(config, listen="127.0.0.1:0")  # a free port: exec must not fight a running proxy
    log_to_stderr()
    settings, addon, store = app.build_proxy(config)
    if audit_in == "process":
        from inspector.proxy.assemble import audit_in_process

        # The events come back for the summary and the lines; whole when canaries are searched
        # for in them (their payload and request), else as summaries with their line rendered.
        audit_in_process(addon, config, store, output=None, events="full" if canary or canary_cwd else "summary")
    options = ExecOptions(expect_none=expect_none, quiet=quiet, isolate=isolate, opt_out=opt_out,
                          compare=compare, canary=canary or canary_cwd, canary_cwd=canary_cwd,
                          report=report_path)
    try:
        rc = run_exec(list(command), options, settings, addon, store, proxy_environment, ca_bundle,
                      lambda line: click.echo(line, err=True))
    except ExecError as exc:
        raise InputError(str(exc)) from None
    exit_now(rc)
