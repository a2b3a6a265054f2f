"""mitmproxy addon: send every upstream connection to a local address (the fake internet).

The SNI and the Host header stay the vendor's, so mitmproxy still verifies the upstream
certificate for the vendor's name: give it the local server's CA with
`ssl_verify_upstream_trusted_ca`. Embedded: `ProxySettings(addons=[LoopbackRedirect(up.address)])`.
As a script:

    mitmdump -s inspector/emit/redirect.py --set ti_redirect=127.0.0.1:PORT \\
             --set ssl_verify_upstream_trusted_ca=CA.pem

This module imports only mitmproxy, so the script runs without the package installed.
"""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import ctx, exceptions
from mitmproxy.proxy import server_hooks

log = logging.getLogger("telemetry_inspector")


def parse_address(spec: str) -> tuple[str, int]:
    """`HOST:PORT` (or `[v6]:PORT`) → (host, port); ValueError if malformed."""
    host, sep, port = spec.strip().rpartition(":")
    host = host.strip("[]")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"expected HOST:PORT, got {spec!r}")
    return host, int(port)


class LoopbackRedirect:
    """Points each upstream connection at `address`, keeping SNI = the original host."""

    def __init__(self, address: tuple[str, int] | None = None) -> None:
        self.address = address
        self.redirected = 0

    def load(self, loader: Any) -> None:
        loader.add_option("ti_redirect", str, "",
                          "telemetry-inspector: connect every upstream to this HOST:PORT instead (tests, demo).")

    def configure(self, updated: set[str]) -> None:
        if "ti_redirect" in updated and ctx.options.ti_redirect:
            try:
                self.address = parse_address(ctx.options.ti_redirect)
            except ValueError as exc:
                raise exceptions.OptionsError(f"ti_redirect: {exc}") from None

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        if self.address is None:
            return
        server = data.server
        if server.address is not None and server.sni is None and server.tls:
            server.sni = server.address[0]  # keep verifying the vendor's name, not 127.0.0.1
        if server.address != self.address:
            log.debug("redirect: %s → %s:%d", server.address, *self.address)
            server.address = self.address
            self.redirected += 1


addons = [LoopbackRedirect()]
