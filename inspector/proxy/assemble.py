"""An embedded proxy from a ProxyConfig: mitmproxy's settings, the addon, its audit process.

The caller (the CLI) loads the catalogue and keyring and opens the store: it decides how their
problems are told to the user.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from inspector.core.keys import Keyring
from inspector.core.policy import Catalogue
from inspector.proxy.addon import EventCallback, TelemetryInspector
from inspector.proxy.auditproc import AuditConfig, audit_in_child
from inspector.proxy.config import ProxyConfig, addon_settings
from inspector.proxy.embed import ProxySettings


def proxy_settings(config: ProxyConfig) -> ProxySettings:
    """What mitmproxy is started with; ConfigError for a bad --listen or --set."""
    host, port = config.listen_address()
    return ProxySettings(listen_host=host, listen_port=port, modes=tuple(config.modes) or ("regular",),
                         allow_remote=config.allow_remote, confdir=config.confdir, extra=config.extra_options())


def build_addon(config: ProxyConfig, catalogue: Catalogue, keyring: Keyring, store: Any = None,
                callbacks: Sequence[EventCallback] = ()) -> TelemetryInspector:
    """The addon, configured by `config` (ConfigError for a setting it cannot use), its rules read."""
    settings = addon_settings(config)
    addon = TelemetryInspector(catalogue, keyring, store=store, callbacks=callbacks)
    addon.apply_settings(settings)
    addon.reload_rules()
    addon.freeze_at_start = True  # (the CLI's process is the proxy's)
    return addon


def audit_in_process(addon: TelemetryInspector, config: ProxyConfig, store: Any, output: str | None,
                     events: str | None = None) -> None:
    """Audit, record and print (`output`: None, "line" or "json") in a child process: the proxy's
    own process then only decides allow/block (auditproc). `events` ("summary" or "full"): the
    child sends each event back, and the addon's callbacks get it in this process."""
    audit_in_child(addon, AuditConfig(
        policies=[(p.raw, p.origin, p.builtin) for p in addon.catalogue.policies],
        keys=list(addon.keyring),
        store_path=str(store.path) if store is not None and not store.readonly else None,
        max_events=config.max_events or None, redact=config.redact, output=output, events=events))
