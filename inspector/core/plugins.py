"""Loading a registry's modules: every module of a package imported once, so that each one's
`@register` runs. Shared by the registries of decode layers, claim checks, collector profiles
and report formats (adding one is adding a module, and nothing else names it)."""

from __future__ import annotations

import importlib
import pkgutil
import threading


class PackageModules:
    """Imports the modules of `package` (less `skip`) the first time `load()` is called.

    Thread-safe: the proxy decides on its event loop while a worker thread audits, and neither
    may see a registry half filled. Re-entrant: a module may use its registry while loading."""

    def __init__(self, package: str, skip: tuple[str, ...] = ()) -> None:
        self.package = package
        self.skip = frozenset(skip)
        self.loaded = False
        self._lock = threading.RLock()

    def load(self) -> None:
        if self.loaded:
            return
        with self._lock:
            if self.loaded:
                return
            package = importlib.import_module(self.package)
            for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
                if module.name not in self.skip:
                    importlib.import_module(f"{self.package}.{module.name}")
            self.loaded = True
