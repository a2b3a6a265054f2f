"""The proxy's configuration: one `ProxyConfig`, built by the CLI (its options) and by the addon
under mitmdump (its `ti_` options), and `addon_settings`, the one way it configures the addon."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.core.rules import ACTIONS

BLOCK_MODES = ("respond", "kill")
DEFAULT_LISTEN = "127.0.0.1:8080"


class ConfigError(ValueError):
    """A setting that cannot be used; each front end names it its own way (--flag or ti_option)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting} {problem}")
        self.setting = setting  # the ProxyConfig field, or "set" for an extra mitmproxy option
        self.problem = problem

    def cli_message(self) -> str:
        """As the CLI says it: `--block-status must be …`."""
        return f"--{self.setting.replace('_', '-')} {self.problem}"

    def option_message(self) -> str:
        """As mitmproxy's option says it: `ti_block_status must be …`."""
        return f"ti_{self.setting} {self.problem}"


@dataclass(frozen=True)
class ProxyConfig:
    """Everything a proxy run is configured with (the CLI's proxy options, mitmdump's ti_ options)."""

    # where and how to listen (the embedded proxy only; mitmdump has its own options)
    listen: str = DEFAULT_LISTEN           # HOST:PORT or PORT
    allow_remote: bool = False
    modes: tuple[str, ...] = ()            # () is ("regular",)
    confdir: Path | None = None            # mitmproxy's, holds the CA
    set_options: tuple[str, ...] = ()      # NAME=VALUE, any mitmproxy option
    # what to load and where to record
    store_path: Path | None = None         # None: the default store (CLI) or none (mitmdump)
    max_events: int = 0                    # 0: keep every event
    redact: bool = False
    policy_paths: tuple[Path, ...] = ()
    key_paths: tuple[Path, ...] = ()
    # what to do with telemetry
    default_action: str = "allow"
    block_all: bool = False                # overrides default_action with block
    discover: bool = False
    block_mode: str = "respond"
    block_status: int = 403

    @classmethod
    def from_options(cls, opts: Any) -> ProxyConfig:
        """From mitmproxy's options, as the addon's `load` declared them."""
        return cls(store_path=Path(opts.ti_store).expanduser() if opts.ti_store else None,
                   max_events=opts.ti_max_events, redact=opts.ti_redact,
                   policy_paths=tuple(Path(p) for p in opts.ti_policies),
                   key_paths=tuple(Path(p) for p in opts.ti_keys),
                   default_action=opts.ti_default_action, block_all=opts.ti_block_all,
                   discover=opts.ti_discover, block_mode=opts.ti_block_mode, block_status=opts.ti_block_status)

    def listen_address(self) -> tuple[str, int]:
        """`listen` as (host, port); a bare port listens on 127.0.0.1."""
        host, sep, port = self.listen.rpartition(":")
        if not sep:
            host, port = "127.0.0.1", self.listen
        host = host.strip("[]") or "127.0.0.1"
        try:
            number = int(port)
        except ValueError:
            raise ConfigError("listen", f"wants HOST:PORT, got {self.listen!r}") from None
        if not 0 <= number <= 65535:
            raise ConfigError("listen", f"port out of range: {number}")
        return host, number

    def extra_options(self) -> dict[str, str]:
        """`set_options` as {name: value} (mitmproxy parses each value by its option's type)."""
        extra: dict[str, str] = {}
        for item in self.set_options:
            name, sep, value = item.partition("=")
            if not sep:
                raise ConfigError("set", f"wants NAME=VALUE, got {item!r}")
            extra[name.strip()] = value
        return extra


@dataclass(frozen=True)
class AddonSettings:
    """The addon's own settings, checked (TelemetryInspector.apply_settings)."""

    default_action: str
    block_mode: str
    block_status: int
    discover: bool
    redact: bool


# Which AddonSettings field each of mitmdump's ti_ options sets.
OPTION_SETTINGS = {
    "ti_default_action": "default_action",
    "ti_block_all": "default_action",
    "ti_block_mode": "block_mode",
    "ti_block_status": "block_status",
    "ti_discover": "discover",
    "ti_redact": "redact",
}


def addon_settings(config: ProxyConfig) -> AddonSettings:
    """The addon's settings for `config`; ConfigError for the first that cannot be used."""
    action = "block" if config.block_all else config.default_action
    if action not in ACTIONS:
        raise ConfigError("default_action", f"must be one of {', '.join(ACTIONS)}")
    if config.block_mode not in BLOCK_MODES:
        raise ConfigError("block_mode", "must be respond or kill")
    if not 100 <= config.block_status <= 599:
        raise ConfigError("block_status", "must be an HTTP status code")
    return AddonSettings(default_action=action, block_mode=config.block_mode, block_status=config.block_status,
                         discover=config.discover, redact=config.redact)
