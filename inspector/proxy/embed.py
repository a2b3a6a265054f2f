"""Embedding mitmproxy: a DumpMaster on our own event loop (for `proxy`, `exec`, `run`, tests).

Pitfalls handled (MEASUREMENTS.md): the stock `errorcheck` addon calls sys.exit on start-up
errors (removed: we report one line instead); "ready" means the proxyserver has listen
addresses (a TCP probe can be fooled by another process on the port); `master.run()`
returning does not close the listener; connections are lazy so a blocked request never
reaches the vendor.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from mitmproxy import options
from mitmproxy.tools.dump import DumpMaster

from inspector.proxy.addon import TelemetryInspector

log = logging.getLogger("telemetry_inspector")


class ProxyStartError(Exception):
    """The proxy could not start (port in use, bad mode, …); one line."""


@dataclass
class ProxySettings:
    listen_host: str = "127.0.0.1"
    listen_port: int = 8080
    modes: tuple[str, ...] = ("regular",)
    allow_remote: bool = False
    confdir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any mitmproxy option, as with --set
    addons: list[Any] = field(default_factory=list)      # more mitmproxy addons, after ours

    def check(self) -> None:
        if not self.is_loopback() and not self.allow_remote:
            raise ProxyStartError(
                f"refusing to listen on {self.listen_host}: it is not a loopback address; "
                "pass --allow-remote if other machines should use this proxy")

    def is_loopback(self) -> bool:
        if self.listen_host in ("localhost",):
            return True
        try:
            return ipaddress.ip_address(self.listen_host).is_loopback
        except ValueError:
            return False

    def ca_cert(self) -> Path:
        return (self.confdir or Path("~/.mitmproxy").expanduser()) / "mitmproxy-ca-cert.pem"


class _ErrorCollector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _explain(messages: list[str], settings: ProxySettings) -> str:
    text = " ".join(messages)
    if "Address already in use" in text or "address already in use" in text or "Errno 98" in text:
        return f"cannot listen on {settings.listen_host}:{settings.listen_port}: the port is already in use"
    if "Permission denied" in text or "Errno 13" in text:
        return f"cannot listen on {settings.listen_host}:{settings.listen_port}: permission denied"
    if messages:
        return messages[-1].splitlines()[0][:300]
    return f"the proxy did not start on {settings.listen_host}:{settings.listen_port}"


class EmbeddedProxy:
    """One mitmproxy instance with the inspector addon, on the current event loop."""

    def __init__(self, settings: ProxySettings, addon: TelemetryInspector) -> None:
        self.settings = settings
        self.addon = addon
        self.master: DumpMaster | None = None
        self.listen_addrs: list[tuple[str, int]] = []
        self.ready = threading.Event()
        self.failed: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def run(self, on_ready: Callable[[list[tuple[str, int]]], None] | None = None) -> None:
        """Run until shutdown(). Raises ProxyStartError if it cannot start."""
        self.settings.check()
        self._loop = asyncio.get_running_loop()
        opts = options.Options(listen_host=self.settings.listen_host, listen_port=self.settings.listen_port)
        if self.settings.confdir:
            opts.update(confdir=str(self.settings.confdir))
        master = DumpMaster(opts, with_termlog=False, with_dumper=False)
        if (errorcheck := master.addons.get("errorcheck")) is not None:
            master.addons.remove(errorcheck)
        collector = _ErrorCollector()
        logging.getLogger().addHandler(collector)
        try:
            master.addons.add(self.addon)
            for extra_addon in self.settings.addons:
                master.addons.add(extra_addon)
            try:
                master.options.update(mode=list(self.settings.modes), connection_strategy="lazy")
                typed = {k: v for k, v in self.settings.extra.items() if not isinstance(v, str)}
                texts = [f"{k}={v}" for k, v in self.settings.extra.items() if isinstance(v, str)]
                if typed:
                    master.options.update(**typed)
                if texts:  # as with `mitmdump --set NAME=VALUE`: parsed by the option's type
                    master.options.set(*texts)
            except Exception as exc:  # OptionsError and friends: one line
                raise ProxyStartError(str(exc).splitlines()[0]) from None
            self.master = master
            watcher = _ReadyWatcher(self, on_ready, collector)
            master.addons.add(watcher)
            try:
                await master.run()
            except SystemExit:  # an addon may still call sys.exit on fatal errors
                pass
            finally:
                proxyserver = master.addons.get("proxyserver")
                if proxyserver is not None:
                    try:
                        await proxyserver.servers.update([])
                    except Exception:  # noqa: BLE001
                        pass
        finally:
            logging.getLogger().removeHandler(collector)
            self.ready.set()
        if self.failed:
            raise ProxyStartError(self.failed)

    def shutdown(self) -> None:
        """Thread-safe; a no-op once the proxy's loop has ended."""
        if self.master is not None and self._loop is not None and not self._loop.is_closed():
            try:
                self.master.shutdown()
            except RuntimeError:  # the loop closed in between
                pass


class _ReadyWatcher:
    """After mitmproxy's `running`: are we listening? If not, say why and stop."""

    def __init__(self, proxy: EmbeddedProxy, on_ready: Callable[[list[tuple[str, int]]], None] | None,
                 collector: _ErrorCollector) -> None:
        self.proxy = proxy
        self.on_ready = on_ready
        self.collector = collector

    def running(self) -> None:
        master = self.proxy.master
        assert master is not None
        proxyserver = master.addons.get("proxyserver")
        addrs = [(a[0], a[1]) for a in proxyserver.listen_addrs()] if proxyserver else []
        if not addrs and any(m.split("@")[0].split(":")[0] in ("regular", "upstream", "reverse", "socks5",
                                                                 "transparent", "http3", "dns")
                             for m in self.proxy.settings.modes):
            self.proxy.failed = _explain(self.collector.messages, self.proxy.settings)
            master.shutdown()
            self.proxy.ready.set()
            return
        self.proxy.listen_addrs = addrs
        self.proxy.ready.set()
        if self.on_ready:
            self.on_ready(addrs)


def serve_forever(settings: ProxySettings, addon: TelemetryInspector,
                  on_ready: Callable[[list[tuple[str, int]]], None] | None = None) -> None:
    """Run the proxy in this thread until Ctrl-C or SIGTERM. Raises ProxyStartError."""

    async def main() -> None:
        proxy = EmbeddedProxy(settings, addon)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, proxy.shutdown)
            except (NotImplementedError, RuntimeError):  # pragma: no cover - not on the main thread
                pass
        await proxy.run(on_ready)

    asyncio.run(main())


class ProxyThread:
    """The proxy on a background thread (for `exec` and tests): start(), port, stop()."""

    def __init__(self, settings: ProxySettings, addon: TelemetryInspector) -> None:
        self.proxy = EmbeddedProxy(settings, addon)
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="telemetry-inspector-proxy", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self.proxy.run())
        except BaseException as exc:  # noqa: BLE001 - reported by start()
            self.error = exc
            self.proxy.ready.set()

    def start(self, timeout: float = 30.0) -> ProxyThread:
        self.thread.start()
        if not self.proxy.ready.wait(timeout):
            raise ProxyStartError("the proxy did not start within the time limit")
        if self.error is not None:
            if isinstance(self.error, ProxyStartError):
                raise self.error
            raise ProxyStartError(f"{type(self.error).__name__}: {self.error}")
        if self.proxy.failed:
            self.thread.join(10)
            raise ProxyStartError(self.proxy.failed)
        return self

    @property
    def port(self) -> int:
        return self.proxy.listen_addrs[0][1]

    def stop(self, timeout: float = 15.0) -> None:
        self.proxy.shutdown()
        self.thread.join(timeout)

    def __enter__(self) -> ProxyThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
