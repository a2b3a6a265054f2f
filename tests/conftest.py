"""Shared fixtures for the live tests: a local HTTPS "internet" and a real embedded proxy in front of it.

Everything listens on 127.0.0.1 and is stopped when the test ends.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "fixtures"
KEYS = FIXTURES / "keys"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra)
    return env


def run_cli(*args: str, timeout: float = 60, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True,
                          timeout=timeout, env=cli_env(), **kwargs)


def wait_for(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture(scope="module")
def pipeline() -> Any:
    """The built-in catalogue's pipeline, no keys, default limits (a module's own fixture of the
    name takes its place there)."""
    from inspector.core.pipeline import Pipeline
    from inspector.core.policy import Catalogue
    return Pipeline(Catalogue.load())


@pytest.fixture
def upstream() -> Iterator[Any]:
    from inspector.emit.upstream import Upstream
    with Upstream() as up:
        yield up


@dataclass
class LiveProxy:
    thread: Any
    addon: Any
    store: Any
    settings: Any
    upstream: Any

    @property
    def port(self) -> int:
        return self.thread.port

    @property
    def address(self) -> tuple[str, int]:
        return ("127.0.0.1", self.thread.port)

    @property
    def ca(self) -> Path:
        return self.settings.ca_cert()

    def send(self, request: Any, **kwargs: Any) -> Any:
        from inspector.emit.send import send
        return send(request, proxy=self.address, ca_file=self.ca, **kwargs)

    def events(self) -> list[dict]:
        assert self.addon.wait_idle(15), "the proxy's worker did not finish in time"
        self.store.refresh()
        return self.store.events()


@pytest.fixture
def live_proxy(tmp_path: Path, upstream: Any) -> Iterator[Callable[..., LiveProxy]]:
    """A factory: live_proxy(keys=[...], block_all=False) → a running proxy in front of `upstream`."""
    from inspector.core.keys import Keyring
    from inspector.core.policy import Catalogue
    from inspector.emit.redirect import LoopbackRedirect
    from inspector.proxy.addon import TelemetryInspector
    from inspector.proxy.embed import ProxySettings, ProxyThread
    from inspector.store import Store

    started: list[LiveProxy] = []

    def start(keys: tuple[Path, ...] = (), default_action: str = "allow", store_path: Path | None = None,
              **addon_attrs: Any) -> LiveProxy:
        store = Store(store_path or tmp_path / f"store-{len(started)}.json")
        addon = TelemetryInspector(Catalogue.load(), Keyring.from_paths(list(keys)), store=store)
        addon.default_action = default_action
        for name, value in addon_attrs.items():
            setattr(addon, name, value)
        addon.reload_rules()
        settings = ProxySettings(listen_port=0, confdir=tmp_path / "mitmproxy",
                                 extra={"ssl_verify_upstream_trusted_ca": str(upstream.ca_file)},
                                 addons=[LoopbackRedirect(upstream.address)])
        thread = ProxyThread(settings, addon).start()
        live = LiveProxy(thread, addon, store, settings, upstream)
        started.append(live)
        return live

    try:
        yield start
    finally:
        for live in started:
            live.thread.stop()
            live.addon.stop()
            live.store.close()
