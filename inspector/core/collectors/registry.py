"""The collector registry: every profile module in this package registers itself here.

Adding a collector is one module in `inspector/core/collectors/` with a `@register`ed class,
plus its entries in the host catalogue; nothing else names it.
"""

from __future__ import annotations

from typing import Any

from inspector.core.collectors.base import Collector
from inspector.core.plugins import PackageModules

_REGISTRY: dict[str, Collector] = {}


def register[C: type[Collector]](cls: C) -> C:
    """Class decorator: one instance of each profile, by its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and type(_REGISTRY[cls.name]) is not cls:
        raise ValueError(f"two collector profiles are named {cls.name!r}")
    _REGISTRY[cls.name] = cls()
    _SERVING.clear()
    return cls


# (modules whose name starts with "_" are helpers, not profiles: importing them is harmless)
_MODULES = PackageModules("inspector.core.collectors", skip=("base", "registry"))
_load = _MODULES.load


def collectors() -> tuple[Collector, ...]:
    """Every registered profile, by name."""
    _load()
    return tuple(_REGISTRY[name] for name in sorted(_REGISTRY))


def get(name: str) -> Collector | None:
    _load()
    return _REGISTRY.get(name)


_SERVING: dict[str, tuple[Collector, ...]] = {}


def serving(host: str) -> tuple[Collector, ...]:
    """The profiles whose own hosts include `host` (normalised). Memoised per host (the proxy
    asks on every request and handshake); bounded, since hosts come from clients."""
    found = _SERVING.get(host)
    if found is None:
        found = tuple(c for c in collectors() if c.serves(host))
        if len(_SERVING) >= 4096:
            _SERVING.clear()
        _SERVING[host] = found
    return found


def for_request(host: str, method: str, path: str) -> Collector | None:
    """The profile of a request to a collector's own host and endpoint."""
    for collector in serving(host):
        if collector.endpoint(method, path):
            return collector
    return None


def by_shape(method: str, path: str, value: Any) -> Collector | None:
    """A profile recognised on any host: its endpoint and its payload's shape."""
    for collector in collectors():
        if collector.endpoint(method, path) and collector.recognises(value):
            return collector
    return None


def hosts() -> tuple[str, ...]:
    """Every collector's own host patterns."""
    return tuple(sorted({h for c in collectors() for h in c.hosts}))
