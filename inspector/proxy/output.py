"""What a headless proxy prints: one line per event on stdout, the addon's warnings on stderr.

Used by `telemetry-inspector proxy` and by its audit process (auditproc), which prints the events
it audits itself.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

LOGGER = "telemetry_inspector"


def log_to_stderr() -> None:
    """The addon's warnings (store write failures, unreadable rules) as one line each on stderr."""
    logger = logging.getLogger(LOGGER)
    if not any(getattr(h, "_ti_cli", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))  # messages name the tool themselves
        handler.setLevel(logging.WARNING)
        handler._ti_cli = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


def event_printer(as_json: bool) -> Callable[[Any], None]:
    """`proxy`'s output: one line per event on stdout (JSON or text), from any thread. When the
    reader goes away (`proxy | head`), printing stops; recording goes on."""
    from inspector.core.textsafe import safe_json
    from inspector.report.render import event_line

    lock = threading.Lock()
    printing = True

    def emit(event: Any) -> None:
        nonlocal printing
        # Both are one line and safe to print: safe_json escapes what json.dumps leaves raw
        # (C1 controls, bidi overrides, U+2028/2029, lone surrogates) and writes no NaN/Infinity.
        line = safe_json(event.to_dict()) if as_json else event_line(event)
        with lock:
            if printing:
                out = sys.stdout  # looked up each time: whatever stdout is now (a test's capture)
                try:
                    out.write(line + "\n")
                    out.flush()  # a line per event as it happens, also into a pipe
                except OSError:
                    printing = False

    return emit
