"""The `telemetry-inspector` command line.

Exit status: 0 success / nothing at or above --fail-on; 1 findings at or above --fail-on
(or a policy check that failed); 2 usage error or unreadable input; 3 internal error.

Whatever is printed may hold captured data or names taken from it (a file name in an error, a
value in a decoded payload): it goes through `inspector.core.textsafe` first, so it is shown,
never acted on by the terminal (docs/security-output.md).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from inspector import __version__
from inspector.core.decode import DEFAULT_LIMITS
from inspector.core.event import Event
from inspector.core.findings import SEVERITY_RANK
from inspector.core.keys import KeyLoadError, Keyring
from inspector.core.policy import Catalogue, Policy, PolicyError, compile_policy_schema, load_policy_file
from inspector.core.textsafe import safe_block, safe_json, safe_line

EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3


class InputError(click.ClickException):
    """Unreadable input or a bad argument: one line on stderr, exit status 2."""

    exit_code = EXIT_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(safe_line(f"error: {self.format_message()}"), err=True)


# ---------------------------------------------------------------------- shared options

def key_options(func: Any) -> Any:
    func = click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
                        help="Private key file (JWK, JWK Set or PEM) or key directory, for JWE. Repeatable.")(func)
    return func


def policy_options(func: Any) -> Any:
    func = click.option("--policy", "policies", multiple=True, metavar="ID|FILE",
                        help="Use only these policies: a built-in id or a YAML file. Repeatable.")(func)
    func = click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path),
                        metavar="DIR", help="Add the policies in this directory (or file). Repeatable.")(func)
    func = click.option("--no-builtin", is_flag=True, help="Do not load the built-in policies.")(func)
    return func


def build_keyring(paths: tuple[Path, ...]) -> Keyring:
    env_dir = os.environ.get("TELEMETRY_INSPECTOR_KEYS")
    all_paths = list(paths) + ([Path(env_dir)] if env_dir else [])
    try:
        return Keyring.from_paths(all_paths)
    except KeyLoadError as exc:
        raise InputError(str(exc)) from None


def build_catalogue(policies: tuple[str, ...], policy_dirs: tuple[Path, ...], no_builtin: bool,
                    strict: bool = True) -> tuple[Catalogue, list[Policy]]:
    """Load built-ins + directories; `--policy` selects ids or adds files. Returns (catalogue, selected)."""
    for path in policy_dirs:
        if not Path(path).exists():
            raise InputError(f"no such policy file or directory: {path}")
    catalogue = Catalogue.load(builtin=not no_builtin, paths=policy_dirs)
    # A file named on its own must load; in a directory, a broken file is reported and skipped.
    named = {str(Path(p)) for p in policy_dirs if Path(p).is_file()}
    for problem in catalogue.problems:
        if problem.origin in named:
            raise InputError(problem.lines()[0] + (f" (+{len(problem.lines()) - 1} more)"
                                                   if len(problem.lines()) > 1 else ""))
    for problem in catalogue.problems:
        for line in problem.lines():
            click.echo(safe_line(f"warning: policy not loaded: {line}"), err=True)
    selected: list[Policy] = []
    for ref in policies:
        path = Path(ref)
        if path.suffix in (".yaml", ".yml") or path.exists():
            try:
                policy = load_policy_file(path)
            except PolicyError as exc:
                raise InputError("; ".join(exc.lines())) from None
            catalogue.add(policy)
            selected.append(policy)
        else:
            found = catalogue.get(ref)
            if found is None:
                known = ", ".join(p.id for p in catalogue.policies)
                raise InputError(f"no policy with id {ref!r} (known: {known})")
            selected.append(found)
    if selected:
        catalogue = Catalogue(list(selected), catalogue.problems)
    return catalogue, selected


# ---------------------------------------------------------------------- root

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="telemetry-inspector")
def cli() -> None:
    """A local, privacy-auditing proxy and inspector for telemetry.

    Intercept what apps send home, decode it, and hold it against what the vendor
    says it collects.
    """


# ---------------------------------------------------------------------- decode

@cli.command()
@click.argument("source", required=False, default="-", metavar="[FILE|-]")
@key_options
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (value, decoding, jwe, issues).")
def decode(source: str, keys: tuple[Path, ...], as_json: bool) -> None:
    """Decode one payload: a raw body, Base64, a JWE (compact or JSON), or a URL with a payload parameter.

    Reads FILE, or standard input with '-'. Prints the decoded value and the decoding path.
    """
    from inspector.capture.load import raw_observation
    from inspector.core.pipeline import Pipeline

    data = _read_input(source)
    keyring = build_keyring(keys)
    pipeline = Pipeline(Catalogue(), keyring)
    obs = raw_observation(data, "stdin" if source == "-" else Path(source).name)
    if obs.url.startswith(("http://", "https://")):
        decoded = pipeline.decode_auto(obs)
    else:
        decoded = pipeline.decoder.decode(data, "input")
    if as_json:
        click.echo(safe_json({
            "decoding": decoded.path_labels, "layers": [l.to_dict() for l in decoded.layers],
            "value": decoded.value, "structured": decoded.structured, "jwe": decoded.jwe,
            "issues": [{"code": i.code, "message": i.message} for i in decoded.issues],
        }, indent=2))
    else:
        click.echo(safe_line(f"decoding: {' → '.join(decoded.path_labels)}"))
        if decoded.jwe:
            click.echo("jwe header: " + safe_json(decoded.jwe))
        for issue in decoded.issues:
            click.echo(safe_line(f"{issue.code}: {issue.message}"))
        if decoded.value is not None:
            if decoded.structured:
                click.echo(safe_json(decoded.value, indent=2))
            else:
                click.echo(safe_block(decoded.value))  # a text payload: its lines stay lines
    if decoded.value is None and any(i.code == "decode-error" for i in decoded.issues):
        sys.exit(EXIT_FINDINGS)


def write_report(output: Path, text: str) -> None:
    """A report or export to a file, readable by its owner only (mode 0600)."""
    from inspector.report.files import write_private

    try:
        write_private(output, text)
    except OSError as exc:
        raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None


def _read_input(source: str) -> bytes:
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


# ---------------------------------------------------------------------- audit

@cli.command()
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@policy_options
@key_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "html", "sarif"]),
              default="text", show_default=True, help="Report format.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the report to this file.")
@click.option("--fail-on", type=click.Choice(["violation", "warning", "never"]), default="violation",
              show_default=True, help="Exit 1 when a finding at or above this severity is found.")
@click.option("--redact", is_flag=True, help="Mask evidence and PII values in the report.")
def audit(captures: tuple[Path, ...], policies: tuple[str, ...], policy_dirs: tuple[Path, ...],
          no_builtin: bool, keys: tuple[Path, ...], fmt: str, output: Path | None, fail_on: str,
          redact: bool) -> None:
    """Audit saved captures: HAR files, mitmproxy .mitm flow files, or raw payload files.

    Exit 0 when nothing reaches --fail-on, 1 when something does, 2 on usage or input errors.
    """
    from inspector.capture.load import CaptureError, load_capture
    from inspector.core.pipeline import Pipeline
    from inspector.report.render import render

    catalogue, selected = build_catalogue(policies, policy_dirs, no_builtin)
    keyring = build_keyring(keys)
    pipeline = Pipeline(catalogue, keyring)
    forced = selected[0] if len(selected) == 1 else None
    events: list[Event] = []
    for capture in captures:
        try:
            for obs in load_capture(capture):
                use = forced if forced is not None and obs.url.startswith("file:") else None
                events.append(pipeline.process(obs, policy=use))
        except CaptureError as exc:
            raise InputError(str(exc)) from None
    if redact:
        from inspector.core.redact import redact_event
        events = [redact_event(e) for e in events]
    text = render(events, catalogue, fmt, [str(c) for c in captures])
    if output:
        write_report(output, text)
        click.echo(safe_line(f"wrote {fmt} report of {len(events)} events to {output}"), err=True)
    else:
        click.echo(text, nl=False)
    if fail_on != "never":
        threshold = SEVERITY_RANK[fail_on]
        if any(SEVERITY_RANK[f.severity] >= threshold for e in events for f in e.findings):
            sys.exit(EXIT_FINDINGS)


# ---------------------------------------------------------------------- policies

@cli.group()
def policies() -> None:
    """List, show, check and infer policies (the declared-claims catalogue)."""


@policies.command("list")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR")
@click.option("--json", "as_json", is_flag=True)
def policies_list(policy_dirs: tuple[Path, ...], as_json: bool) -> None:
    """List the loaded policies."""
    catalogue, _ = build_catalogue((), policy_dirs, False)
    if as_json:
        click.echo(safe_json([p.to_summary() for p in catalogue.policies], indent=2))
        return
    for p in sorted(catalogue.policies, key=lambda p: p.id):
        where = ", ".join(p.hosts)
        click.echo(safe_line(f"{p.id:<32} {p.vendor:<10} {p.transport:<9} {where}  — {p.product}"))


@policies.command("show")
@click.argument("ref", metavar="ID|FILE")
@click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR")
@click.option("--schema", is_flag=True, help="Print the compiled JSON Schema of the declared fields.")
def policies_show(ref: str, policy_dirs: tuple[Path, ...], schema: bool) -> None:
    """Show one policy (its YAML), or its compiled JSON Schema."""
    _, selected = build_catalogue((ref,), policy_dirs, False)
    policy = selected[0]
    if schema:
        click.echo(safe_json(compile_policy_schema(policy), indent=2))
        return
    import yaml
    click.echo(safe_line(f"# {policy.origin}"))
    click.echo(safe_block(yaml.safe_dump(policy.raw, sort_keys=False, allow_unicode=True, width=100)), nl=False)


@policies.command("check")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def policies_check(files: tuple[Path, ...]) -> None:
    """Validate policy files; errors are printed as FILE:LINE: message. Exit 1 if any is invalid."""
    failed = False
    for path in files:
        targets = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
        for target in targets:
            if not target.exists():
                raise InputError(f"no such file: {target}")
            try:
                policy = load_policy_file(target)
                policy.validator  # compiles the declared fields' schema
            except PolicyError as exc:
                failed = True
                for line in exc.lines():
                    click.echo(safe_line(line))
                continue
            click.echo(safe_line(f"{target}: ok ({policy.id}: {len(policy.declared_paths())} declared fields, "
                                 f"{len(policy.claims)} claims)"))
    if failed:
        sys.exit(EXIT_FINDINGS)


@policies.command("infer")
@click.argument("captures", nargs=-1, required=True, type=click.Path(path_type=Path))
@key_options
@click.option("--host", "hosts", multiple=True, help="Only requests to this host. Repeatable.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the drafts to this file.")
def policies_infer(captures: tuple[Path, ...], keys: tuple[Path, ...], hosts: tuple[str, ...],
                   output: Path | None) -> None:
    """Draft policies from observed traffic, one per endpoint (edit them to the vendor's words)."""
    from inspector.capture.load import CaptureError, load_capture
    from inspector.core.infer import dump_drafts, infer_policies
    from inspector.core.pipeline import Pipeline

    pipeline = Pipeline(Catalogue(), build_keyring(keys))
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
        write_report(output, text)  # the drafts quote observed values: private like a report
        click.echo(safe_line(f"wrote draft policies to {output}"), err=True)
    else:
        # On a terminal: YAML leaves bidi and separator characters raw (they are printable to it).
        click.echo(safe_block(text), nl=False)


# ---------------------------------------------------------------------- keys

@cli.command()
@key_options
def keys(keys: tuple[Path, ...]) -> None:
    """List the keys given with --key (kid, type, thumbprint; never the key material)."""
    keyring = build_keyring(keys)
    if not len(keyring):
        click.echo("no keys loaded (use --key FILE or set TELEMETRY_INSPECTOR_KEYS to a key directory)")
        return
    for info in keyring.describe():
        click.echo(safe_line(f"{info['kid'] or '-':<28} {info['kty']:<4} {info['alg'] or '-':<14} "
                             f"sha256:{info['thumbprint']}  ({info['origin']})"))


# ---------------------------------------------------------------------- entry point

def main() -> None:
    """Console-script entry point: no traceback reaches the user."""
    try:
        rc = cli.main(prog_name="telemetry-inspector", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "telemetry-inspector"
        click.echo(safe_line(f"error: {exc.format_message()} (see '{command} --help')"), err=True)
        sys.exit(EXIT_INPUT)
    except click.ClickException as exc:
        if isinstance(exc, InputError):
            exc.show()
        else:  # click's own show() prints file names and values as they are
            click.echo(safe_line(f"error: {exc.format_message()}"), err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001
        if os.environ.get("TELEMETRY_INSPECTOR_DEBUG"):
            raise
        click.echo(safe_line(f"error: internal error: {type(exc).__name__}: {exc} "
                             "(set TELEMETRY_INSPECTOR_DEBUG=1 for the traceback)"), err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else 0)


# The live commands (proxy, exec, rules, ca, report, store) register themselves on `cli`.
from inspector.cli import live as _live  # noqa: E402,F401
