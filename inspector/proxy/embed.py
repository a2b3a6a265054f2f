"""Embedding mitmproxy: a DumpMaster on our own event loop (for `proxy`, `exec`, `run`, tests).

Pitfalls handled (measured on mitmproxy 12): the stock `errorcheck` addon calls sys.exit on start-up
errors (removed: we report one line instead); "ready" means the proxyserver has listen
addresses (a TCP probe can be fooled by another process on the port); `master.run()`
returning does not close the listener; connections are lazy so a blocked request never
reaches the vendor.
"""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import json
import logging
import os
import signal
import stat
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mitmproxy import options
from mitmproxy.proxy.mode_specs import ProxyMode, WireGuardMode
from mitmproxy.tools.dump import DumpMaster

from inspector.proxy.addon import TelemetryInspector

log = logging.getLogger("telemetry_inspector")


class ProxyStartError(Exception):
    """The proxy could not start (port in use, bad mode, …); one line."""


# Modes that open no socket (mitmproxy/proxy/mode_servers.py): `local` redirects the OS's own
# traffic into mitmproxy, `tun` creates a network interface. Every other mode listens, on TCP,
# UDP or both, at the spec's host or else at the `listen_host` option ("" = every interface).
NO_SOCKET_MODES = frozenset({"local", "tun"})
DEFAULT_LISTEN_HOST = "127.0.0.1"
REMOTE_HINT = "pass --allow-remote if other machines should use this proxy"
# The CA's private key, in PEM (with the certificate) and PKCS#12: whoever reads it can read the
# traffic of every client that trusts the CA. The -ca-cert.* files are public.
CA_KEY_FILES = ("mitmproxy-ca.pem", "mitmproxy-ca.p12")


def is_loopback_host(host: str) -> bool:
    """Only `localhost` and loopback IPs (127.0.0.0/8, ::1) are loopback; any other name (even one
    that resolves to 127.0.0.1), 0.0.0.0, :: and "" (every interface) are not."""
    if host.startswith("[") and host.endswith("]"):  # mitmproxy keeps the brackets of `@[::1]:8080`
        host = host[1:-1]
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class Listener:
    """A server mitmproxy will open for one mode, at the address mitmproxy itself would use."""

    spec: str        # the mode as given, e.g. "socks5@0.0.0.0:1080"
    host: str        # as mitmproxy binds it; "" is every interface (0.0.0.0 and ::)
    port: int | None
    transport: str   # "TCP", "UDP" or "TCP and UDP"
    inherited: bool  # the host is the `listen_host` option's, not the spec's

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host)

    def address(self) -> str:
        port = "?" if self.port is None else str(self.port)
        if self.host == "":
            return f"every interface (*:{port})"
        if ":" in self.host and not self.host.startswith("["):
            return f"[{self.host}]:{port}"
        return f"{self.host}:{port}"

    def origin(self) -> str:
        return f"mode {self.spec}" + (f" with listen_host={self.host!r}" if self.inherited else "")

    def refusal(self) -> str:
        return (f"refusing to listen on {self.address()} for {self.origin()} ({self.transport}): "
                f"it is not a loopback address; {REMOTE_HINT}")

    def warning(self) -> str:
        return (f"listening on {self.address()} for {self.origin()} ({self.transport}), reachable from "
                "other machines: anyone who can reach it can use this proxy and see what it records")


def listeners(modes: Iterable[str], listen_host: str, listen_port: int | None) -> list[Listener]:
    """The servers mitmproxy opens for these option values (modes that open no socket left out)."""
    found = []
    for spec in modes:
        try:
            mode = ProxyMode.parse(spec)
        except ValueError as exc:
            raise ProxyStartError(f"invalid proxy mode {spec!r}: {exc}") from None
        if mode.type_name in NO_SOCKET_MODES:
            continue
        transport = {"tcp": "TCP", "udp": "UDP"}.get(mode.transport_protocol, "TCP and UDP")
        found.append(Listener(spec=spec, host=mode.listen_host(listen_host),
                              port=mode.listen_port(listen_port), transport=transport,
                              inherited=mode.custom_listen_host is None))
    return found


def check_listeners(found: list[Listener], listen_host: str, allow_remote: bool) -> list[Listener]:
    """Raise ProxyStartError for the first non-loopback listener, or a non-loopback `listen_host`
    even if no mode uses it, unless `allow_remote`; the non-loopback listeners otherwise."""
    remote = [item for item in found if not item.loopback]
    if not allow_remote:
        if remote:
            raise ProxyStartError(remote[0].refusal())
        if not is_loopback_host(listen_host):
            where = repr(listen_host) + (" (every interface)" if listen_host == "" else "")
            raise ProxyStartError(f"refusing listen_host={where}: it is not a loopback address; "
                                  f"{REMOTE_HINT}")
    return remote


@dataclass
class ProxySettings:
    """What to start: listen address, modes, mitmproxy options, addons."""

    listen_host: str = DEFAULT_LISTEN_HOST
    listen_port: int = 8080
    modes: tuple[str, ...] = ("regular",)
    allow_remote: bool = False
    confdir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # any mitmproxy option, as with --set
    addons: list[Any] = field(default_factory=list)      # more mitmproxy addons, after ours

    def effective(self) -> tuple[list[str], str, int | None]:
        """mode, listen_host and listen_port as they will be once `extra` (applied last) is in."""
        modes: list[str] = list(self.modes)
        host: str = self.listen_host
        port: int | None = self.listen_port
        if "mode" in self.extra:  # `--set mode=X` replaces the list, as in mitmdump
            value = self.extra["mode"]
            modes = [value] if isinstance(value, str) else list(value)
        if "listen_host" in self.extra:
            host = str(self.extra["listen_host"])
        if "listen_port" in self.extra:
            value = self.extra["listen_port"]
            try:
                port = int(value) if value not in (None, "") else None
            except (TypeError, ValueError):
                pass  # mitmproxy refuses it when the options are applied
        return modes, host, port

    def listeners(self) -> list[Listener]:
        modes, host, port = self.effective()
        return listeners(modes, host, port)

    def check(self) -> list[Listener]:
        """Raise ProxyStartError if anything would listen beyond loopback without `allow_remote`;
        the listeners that will (with `allow_remote`), to warn about."""
        return check_listeners(self.listeners(), self.effective()[1], self.allow_remote)

    def is_loopback(self) -> bool:
        """Does every listener, and `listen_host`, stay on loopback?"""
        try:
            return not check_listeners(self.listeners(), self.effective()[1], False)
        except ProxyStartError:
            return False

    def ca_cert(self) -> Path:
        return (self.confdir or Path("~/.mitmproxy").expanduser()) / "mitmproxy-ca-cert.pem"


def make_options(settings: ProxySettings) -> options.Options:
    """mitmproxy's options for `settings`, with 127.0.0.1 as `listen_host`'s default."""
    opts = options.Options(listen_host=settings.listen_host, listen_port=settings.listen_port)
    # mitmproxy's own default is "" (every interface): whatever resets the option to its default
    # would expose the proxy. mitmproxy has no public way to change a default.
    opts._options["listen_host"]._default = DEFAULT_LISTEN_HOST
    if settings.confdir:
        opts.update(confdir=str(settings.confdir))
    return opts


def keep_private(path: Path) -> None:
    """Make an existing file that holds a private key 0600, without following a symbolic link."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # the user's own link: chmod would change its target
            log.warning("warning: %s is a symbolic link; make sure its target is readable by you only", path)
            return
        raise ProxyStartError(f"cannot open {path}: {exc.strerror}") from None
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISREG(mode) and mode & 0o077:
            os.fchmod(fd, 0o600)
            log.warning("warning: %s holds a private key and was readable by other users (mode %o): "
                        "changed to 0600", path, stat.S_IMODE(mode))
    except OSError as exc:
        log.warning("warning: %s holds a private key and is readable by other users; chmod failed: %s",
                    path, exc.strerror)
    finally:
        os.close(fd)


def wireguard_conf(spec: str, confdir: str) -> Path | None:
    """The key file mitmproxy's wireguard mode reads (its spec's path, or confdir/wireguard.conf)."""
    mode = ProxyMode.parse(spec)
    if not isinstance(mode, WireGuardMode):
        return None
    return Path(mode.data).expanduser() if mode.data else Path(confdir).expanduser() / "wireguard.conf"


def create_wireguard_conf(path: Path) -> None:
    """Write wireguard mode's key file with mode 0600 before mitmproxy would write it 0644 (it
    reads a file that exists): the same content as mitmproxy's, its private keys."""
    if os.path.lexists(path):
        keep_private(path)
        return
    import mitmproxy_rs

    content = json.dumps({"server_key": mitmproxy_rs.wireguard.genkey(),
                          "client_key": mitmproxy_rs.wireguard.genkey()}, indent=4).encode()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        # O_EXCL: never through a link or over a file another process just wrote
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    except FileExistsError:
        keep_private(path)
        return
    except OSError as exc:
        raise ProxyStartError(f"cannot write {path}: {exc.strerror}") from None
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError as exc:
        os.close(fd)
        os.unlink(path)
        raise ProxyStartError(f"cannot write {path}: {exc.strerror}") from None
    os.close(fd)


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
        """Run until shutdown(). Raises ProxyStartError if it cannot start, or if anything would
        listen beyond loopback without `allow_remote` (the caller warns about the listeners
        `settings.check()` returns; others found in the final options are warned about here)."""
        predicted = set(self.settings.check())
        self._loop = asyncio.get_running_loop()
        master = DumpMaster(make_options(self.settings), with_termlog=False, with_dumper=False)
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
            except Exception as exc:  # noqa: BLE001 - OptionsError and friends: one line
                raise ProxyStartError(str(exc).splitlines()[0]) from None
            self._secure(master, predicted)
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
                    except Exception:  # noqa: BLE001, S110 - closing listeners on the way down
                        pass
        except Exception as exc:
            # recorded before `ready` is set: ProxyThread.start() may look before the exception
            # has reached its thread
            if not self.failed:
                self.failed = (str(exc) if isinstance(exc, ProxyStartError)
                               else f"{type(exc).__name__}: {exc}").splitlines()[0]
            raise
        finally:
            logging.getLogger().removeHandler(collector)
            self.ready.set()
        if self.failed:
            raise ProxyStartError(self.failed)

    def _secure(self, master: DumpMaster, predicted: set[Listener]) -> None:
        """Last look before any server starts, at the options as mitmproxy will use them (an addon
        or `extra` may have changed them): loopback only unless allowed; key files 0600."""
        opts = master.options
        effective = listeners(opts.mode, opts.listen_host, opts.listen_port)
        for listener in check_listeners(effective, opts.listen_host, self.settings.allow_remote):
            if listener not in predicted:  # the caller warned about those it saw coming
                log.warning("warning: %s", listener.warning())
        for name in CA_KEY_FILES:  # mitmproxy writes them 0600, but keeps an existing file's mode
            keep_private(Path(opts.confdir).expanduser() / name)
        for spec in opts.mode:
            if (conf := wireguard_conf(spec, opts.confdir)) is not None:
                create_wireguard_conf(conf)

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
        exposed = [a for a in addrs if not is_loopback_host(str(a[0]))]
        if exposed and not self.proxy.settings.allow_remote:  # the checks before start missed a way
            where = ", ".join(f"{a[0] or '*'}:{a[1]}" for a in exposed)
            self.proxy.failed = f"the proxy listened on {where}, which is not a loopback address: stopped it"
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
