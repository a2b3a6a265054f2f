"""The live proxy behind the TUI of `run`, as the TUI sees it.

The TUI imports no proxy (and so no mitmproxy): the CLI builds a runner from inspector.proxy
(inspector.proxy.runner.EmbeddedRunner) and passes it in. The TUI runs it on a thread of its
own, receives its events and changes its rules; nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from inspector.core.event import Event
from inspector.core.rules import RuleBook

Addresses = list[tuple[str, int]]


class ProxyRunner(Protocol):
    """A proxy the TUI starts, stops, feeds rules to, and receives events from."""

    @property
    def modes(self) -> tuple[str, ...]:
        """mitmproxy's modes (for the status line)."""
        ...

    @property
    def default_action(self) -> str:
        """The action without a rule."""
        ...

    def ca_cert(self) -> Path:
        """The proxy's CA certificate (for the status line)."""
        ...

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Call `callback` with every event, on the proxy's worker thread."""
        ...

    def run(self, ready: Callable[[Addresses], None]) -> str | None:
        """Run until stop(), calling `ready` with the listen addresses once it listens. Blocks; the
        TUI calls it on a thread. None when stopped, or the one line why it could not run."""
        ...

    def stop(self) -> None:
        """End run(); thread-safe, and a no-op when it is not running."""
        ...

    def reload_rules(self) -> None:
        """Read the rules from the store again (one was just changed)."""
        ...

    def use_rules(self, rules: RuleBook) -> None:
        """Apply these rules from now on (without a store, they live in memory only)."""
        ...

    def take_messages(self) -> list[str]:
        """The proxy's warnings since the last call (a request blocked because deciding failed,
        a store it cannot write, …): the TUI shows them, as `proxy` prints them."""
        ...
