"""The embedded proxy as a runner the TUI can drive (inspector.tui.runner.ProxyRunner)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path

from inspector.core.event import Event
from inspector.core.rules import RuleBook
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.embed import EmbeddedProxy, ProxySettings, ProxyStartError

Addresses = list[tuple[str, int]]


class RunnerBasics:
    """What every runner tells the TUI from its settings and its addon."""

    settings: ProxySettings
    addon: TelemetryInspector

    @property
    def modes(self) -> tuple[str, ...]:
        return self.settings.modes

    @property
    def default_action(self) -> str:
        return self.addon.default_action

    def ca_cert(self) -> Path:
        return self.settings.ca_cert()

    def take_messages(self) -> list[str]:
        """(The embedded proxy's log records go where the UI's process logs.)"""
        return []


class EmbeddedRunner(RunnerBasics):
    """One EmbeddedProxy with its addon, run on the caller's thread under an event loop of its own.

    `on_ready` is called after the TUI's `ready` once the proxy listens (`run --demo` starts
    sending then)."""

    def __init__(self, settings: ProxySettings, addon: TelemetryInspector,
                 on_ready: Callable[[Addresses], object] | None = None) -> None:
        self.settings = settings
        self.addon = addon
        self.on_ready = on_ready
        self.proxy: EmbeddedProxy | None = None
        self._thread: threading.Thread | None = None  # start(): it runs there, not in run()
        self._result: str | None = None

    @property
    def listen_addrs(self) -> Addresses:
        """Where it listens (empty until it does)."""
        return self.proxy.listen_addrs if self.proxy is not None else []

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        self.addon.callbacks.append(callback)

    def start(self, timeout: float = 60.0) -> str | None:
        """Listen now, on a thread of its own, before any UI is drawn: None once it listens, or
        the one line why it cannot (the port is in use, …). run() then reports to the UI."""
        listening = threading.Event()

        def main() -> None:
            self._result = self._serve(lambda _addrs: listening.set())
            listening.set()

        self._thread = threading.Thread(target=main, name="telemetry-inspector-proxy", daemon=True)
        self._thread.start()
        if not listening.wait(timeout):
            self.stop()
            self._thread.join(10)
            return f"the proxy did not start within {timeout:.0f} s"
        if not self._thread.is_alive() or not self.listen_addrs:
            self._thread.join(10)
            return self._result or "the proxy stopped as it started"
        return None

    def run(self, ready: Callable[[Addresses], None]) -> str | None:
        if self._thread is not None:  # started before the UI: tell it, then wait for the end
            ready(self.listen_addrs)
            if self.on_ready is not None:
                self.on_ready(self.listen_addrs)
            self._thread.join()
            return self._result

        def listening(addrs: Addresses) -> None:
            ready(addrs)
            if self.on_ready is not None:
                self.on_ready(addrs)

        return self._serve(listening)

    def _serve(self, listening: Callable[[Addresses], None]) -> str | None:
        # An event loop of its own: mitmproxy's Master.run() switches the running loop to eager
        # tasks and its own exception handler for as long as it runs (mitmproxy/master.py),
        # which the caller's loop (Textual's) must not get.
        proxy = EmbeddedProxy(self.settings, self.addon)
        self.proxy = proxy
        try:
            asyncio.run(proxy.run(listening))
        except ProxyStartError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - told to the user, not raised into the UI
            return f"{type(exc).__name__}: {exc}"
        return None

    def stop(self) -> None:
        if self.proxy is not None:
            self.proxy.shutdown()

    def reload_rules(self) -> None:
        self.addon.reload_rules()

    def use_rules(self, rules: RuleBook) -> None:
        self.addon.rules = rules
