"""The `telemetry-inspector` command line: the root group, its commands, the entry point.

Exit status: 0 success / nothing at or above --fail-on; 1 findings at or above --fail-on
(or a policy check that failed); 2 usage error or unreadable input; 3 internal error.

Each command group is a module of its own (inspector/cli/*_cmd.py); the services they share
(store, catalogue, keyring, proxy assembly, output) are the App in click's context (app.py).

Whatever is printed may hold captured data or names taken from it (a file name in an error, a
value in a decoded payload): it goes through `inspector.core.textsafe` first, so it is shown,
never acted on by the terminal (docs/security-output.md).
"""

from __future__ import annotations

import os
import sys

import click

from inspector import __version__
from inspector.cli.app import App
from inspector.cli.audit_cmd import audit
from inspector.cli.ca_cmd import ca
from inspector.cli.decode_cmd import decode
from inspector.cli.errors import EXIT_FINDINGS, EXIT_INPUT, EXIT_INTERNAL, InputError
from inspector.cli.exec_cmd import exec_
from inspector.cli.keys_cmd import keys
from inspector.cli.options import key_options, policy_options
from inspector.cli.policies_cmd import policies
from inspector.cli.proxy_cmd import proxy
from inspector.cli.report_cmd import report
from inspector.cli.rules_cmd import rules
from inspector.cli.run_cmd import run
from inspector.cli.store_cmd import store
from inspector.cli.tui_cmd import tui
from inspector.core.textsafe import safe_line

__all__ = [
    "EXIT_FINDINGS",
    "EXIT_INPUT",
    "EXIT_INTERNAL",
    "App",
    "InputError",
    "cli",
    "key_options",
    "main",
    "policy_options",
]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="telemetry-inspector")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """A local, privacy-auditing proxy and inspector for telemetry.

    Intercept what apps send home, decode it, and hold it against what the vendor
    says it collects.
    """
    ctx.ensure_object(App)  # one App per invocation, shared by the command (ctx.obj)


for _command in (decode, audit, policies, keys, proxy, exec_, run, tui, rules, ca, report, store):
    cli.add_command(_command)


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
    except Exception as exc:
        if os.environ.get("TELEMETRY_INSPECTOR_DEBUG"):
            raise
        click.echo(safe_line(f"error: internal error: {type(exc).__name__}: {exc} "
                             "(set TELEMETRY_INSPECTOR_DEBUG=1 for the traceback)"), err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(rc if isinstance(rc, int) else 0)
