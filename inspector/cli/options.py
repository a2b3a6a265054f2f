"""Options several commands share: keys, policies, the store, and the proxy's (as one ProxyConfig)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from inspector.cli.errors import InputError
from inspector.proxy.config import DEFAULT_LISTEN, ProxyConfig


def key_options(func: Any) -> Any:
    func = click.option("--key", "keys", multiple=True, type=click.Path(path_type=Path),
                        help="Private key file (JWK, JWK Set or PEM) or key directory, for JWE. Repeatable.")(func)
    return func


def policy_options(func: Any) -> Any:
    func = click.option("--policy", "policies", multiple=True, metavar="ID|FILE",
                        help="Use only these policies: a built-in id or a YAML file. Repeatable.")(func)
    func = click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path),
                        metavar="DIR", help="Add the policies in this directory (or file). Repeatable.")(func)
    func = click.option("--no-builtin", is_flag=True, help="Do not load the built-in policies.")(func)
    return func


def _regular_store(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    """Refuse a store path that is a symbolic link, a FIFO or a device, before any command opens
    it (`store check`, `tui`, … would otherwise report it as an internal error or a notice)."""
    from inspector.store import StoreError, check_store_path, default_store_path
    if not ctx.resilient_parsing:
        try:
            check_store_path((value or default_store_path()).expanduser())
        except StoreError as exc:
            raise InputError(str(exc)) from None
    return value


def store_option(func: Any) -> Any:
    return click.option("--store", "store_path", type=click.Path(path_type=Path), default=None,
                        callback=_regular_store,
                        help="Store file (default: $XDG_DATA_HOME/telemetry-inspector/store.json).")(func)


# Each proxy option's parameter name, and the ProxyConfig field it sets.
PROXY_FIELDS = {
    "listen": "listen", "allow_remote": "allow_remote", "store_path": "store_path",
    "policy_dirs": "policy_paths", "modes": "modes", "discover": "discover", "block_all": "block_all",
    "block_mode": "block_mode", "block_status": "block_status", "max_events": "max_events",
    "redact": "redact", "confdir": "confdir", "set_options": "set_options", "keys": "key_paths",
}


def proxy_options(func: Any) -> Any:
    """The proxy's options; the command gets them as one `config: ProxyConfig` argument."""

    @functools.wraps(func)
    def command(*args: Any, **kwargs: Any) -> Any:
        fields = {field: kwargs.pop(name) for name, field in PROXY_FIELDS.items()}
        return func(*args, config=ProxyConfig(**fields), **kwargs)

    options: list[Callable[[Any], Any]] = [
        click.option("--listen", default=DEFAULT_LISTEN, show_default=True, metavar="HOST:PORT",
                     help="Address to listen on. Non-loopback needs --allow-remote."),
        click.option("--allow-remote", is_flag=True,
                     help="Allow listening beyond loopback (--listen, --mode MODE@HOST:PORT, --set listen_host); "
                          "prints a warning per such listener."),
        store_option,
        click.option("--policies", "policy_dirs", multiple=True, type=click.Path(path_type=Path), metavar="DIR",
                     help="Add the policies in this directory or file. Repeatable."),
        click.option("--mode", "modes", multiple=True, metavar="MODE",
                     help="mitmproxy mode: regular (default), upstream:URL, reverse:URL, socks5, transparent, "
                          "local, wireguard, dns; MODE@HOST:PORT listens there (loopback unless --allow-remote). "
                          "Repeatable."),
        click.option("--discover", is_flag=True, help="Also inspect unknown hosts; flag likely telemetry."),
        click.option("--block-all", is_flag=True, help="Start blocking every matched telemetry channel."),
        click.option("--block-mode", type=click.Choice(["respond", "kill"]), default="respond", show_default=True,
                     help="Answer blocked requests locally, or kill the connection."),
        click.option("--block-status", type=int, default=403, show_default=True,
                     help="Status of the local answer to a blocked request."),
        click.option("--max-events", type=int, default=0, help="Keep at most N events in the store (0: all)."),
        click.option("--redact", is_flag=True, help="Store events with personal data masked."),
        click.option("--confdir", type=click.Path(path_type=Path), default=None,
                     help="mitmproxy configuration directory (holds the CA). Default ~/.mitmproxy."),
        click.option("--set", "set_options", multiple=True, metavar="NAME=VALUE",
                     help="Any mitmproxy option, as with mitmdump --set. Repeatable."),
        key_options,
    ]
    for option in reversed(options):
        command = option(command)
    return command


def audit_option(func: Any) -> Any:
    """--audit process|thread: where a proxy's events are decoded, audited and recorded."""
    return click.option(
        "--audit", "audit_in", type=click.Choice(["process", "thread"]), default="process", show_default=True,
        help="Where events are decoded, audited and recorded: a helper process (the proxy's own process then "
             "only decides allow/block), or a thread of the proxy's process.")(func)
