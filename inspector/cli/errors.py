"""Exit statuses, the one-line input error, and how a proxy command ends.

Exit status: 0 success / nothing at or above --fail-on; 1 findings at or above --fail-on
(or a policy check that failed); 2 usage error or unreadable input; 3 internal error.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import click

from inspector.core.textsafe import safe_line

EXIT_FINDINGS = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3


class InputError(click.ClickException):
    """Unreadable input or a bad argument: one line on stderr, exit status 2."""

    exit_code = EXIT_INPUT

    def show(self, file: Any = None) -> None:
        click.echo(safe_line(f"error: {self.format_message()}"), err=True)


def exit_now(code: int) -> None:
    """End a proxy command once everything is written and closed, without interpreter teardown:
    mitmproxy_rs (its UDP servers in reverse/wireguard modes) can segfault while Python
    garbage-collects at exit, which would turn a clean stop into exit status 139."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
