"""`telemetry-inspector run --demo`: every built-in channel's wire format, sent through the proxy.

Nothing leaves the machine: the proxy's upstream connections are redirected to a local HTTPS
server (its own CA, trusted by the proxy for this run only). The demo makes a fresh key pair:
the emitter encrypts refine v3's JWE to its public half and the proxy's keyring gets the private
half, so one JWE is decoded; another is encrypted to a key the proxy never sees (unverifiable).
It sets two rules so both actions show: Appsmith's usage events sinkholed, the Hasura CLI blocked.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from inspector.emit.channels import wire_requests
from inspector.emit.keys import PRIVATE_JWK, write_test_keys
from inspector.emit.redirect import LoopbackRedirect
from inspector.emit.send import SendError, send
from inspector.emit.upstream import Upstream

log = logging.getLogger("telemetry_inspector")

DEMO_RULES = (("appsmith-server-usage", "policy", "sinkhole"), ("hasura-cli", "policy", "block"))


class DemoRunner:
    """prepare() before the proxy starts; start_sending() once it listens."""

    def __init__(self, settings: Any, addon: Any, store: Any, pause: float = 0.25) -> None:
        self.settings = settings
        self.addon = addon
        self.store = store
        self.pause = pause
        self.upstream: Upstream | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="ti-demo-keys-")
        self.keys_dir = Path(self._tmp.name)
        self.sent = 0
        self.failed = 0
        self.done = threading.Event()

    def prepare(self) -> DemoRunner:
        self.upstream = Upstream().__enter__()
        self.settings.extra["ssl_verify_upstream_trusted_ca"] = str(self.upstream.ca_file)
        self.settings.addons.append(LoopbackRedirect(self.upstream.address))
        write_test_keys(self.keys_dir)  # fresh for this run; the emitters encrypt to its public half
        self.addon.keyring.add_path(self.keys_dir / PRIVATE_JWK)
        if self.store is not None:
            existing = {(r["target"], r["kind"]) for r in self.store.rules()}
            for target, kind, action in DEMO_RULES:
                if (target, kind) not in existing:
                    self.store.set_rule(target, kind, action)
        self.addon.reload_rules()
        return self

    def start_sending(self, addrs: list[tuple[str, int]]) -> threading.Thread:
        """The runner's on_ready hook: the proxy listens at `addrs` now."""
        port = addrs[0][1]
        thread = threading.Thread(target=self._send_all, args=(port,), name="telemetry-inspector-demo",
                                  daemon=True)
        thread.start()
        return thread

    def send_all(self, port: int) -> None:
        """Send every sample through the proxy on `port` (blocking)."""
        ca = self.settings.ca_cert()
        for request in wire_requests(self.keys_dir):
            try:
                send(request, proxy=("127.0.0.1", port), ca_file=ca, timeout=10)
                self.sent += 1
            except SendError as exc:  # a blocked WebSocket is refused: expected
                self.failed += 1
                log.debug("demo: %s/%s: %s", request.channel, request.name, exc)
            time.sleep(self.pause)
        self.done.set()

    def _send_all(self, port: int) -> None:
        try:
            self.send_all(port)
        except Exception as exc:  # noqa: BLE001 - the demo must never take the app down
            log.warning("demo: stopped: %s", exc)
            self.done.set()

    def close(self) -> None:
        """Stop the local upstream and remove the demo keys."""
        if self.upstream is not None:
            self.upstream.__exit__(None, None, None)
            self.upstream = None
        self._tmp.cleanup()
