"""The application object in click's context (`ctx.obj`): the services the commands share.

Created once by the root group; a command parses its arguments, asks the App for what it needs
(the store, the catalogue, the keyring, an assembled proxy) and calls domain code. Problems the
user can fix come back as InputError (one line, exit status 2).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple, TextIO

import click

from inspector.cli.errors import InputError
from inspector.core.keys import KeyLoadError, Keyring
from inspector.core.policy import Catalogue, Policy, PolicyError, load_policy_documents
from inspector.core.textsafe import safe_line
from inspector.proxy.config import ConfigError, ProxyConfig

KEYS_VARIABLE = "TELEMETRY_INSPECTOR_KEYS"  # a key directory added to every --key


class Proxy(NamedTuple):
    """An assembled, not yet started proxy: mitmproxy's settings, the addon, its store (or None)."""

    settings: Any  # inspector.proxy.embed.ProxySettings
    addon: Any     # inspector.proxy.addon.TelemetryInspector
    store: Any     # inspector.store.Store


class App:
    """Opening the store, building the catalogue and keyring, assembling a proxy, output."""

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self.environ = environ if environ is not None else os.environ

    # ------------------------------------------------------------------ output
    def echo(self, text: str = "", err: bool = False, nl: bool = True) -> None:
        """One message, as given (callers make captured text safe first)."""
        click.echo(text, err=err, nl=nl)

    def write_report(self, output: Path, text: str) -> None:
        """A report or export to a file, readable by its owner only (mode 0600)."""
        from inspector.report.files import write_private

        try:
            write_private(output, text)
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None

    def write_report_stream(self, output: Path | None, make: Callable[[TextIO], None]) -> None:
        """A report that `make` writes as it goes (a stream of events), to `output` (mode 0600)
        or stdout once complete; nothing is written if `make` raises."""
        from inspector.report.files import write_held

        if output is None:
            write_held(make, None, lambda chunk: click.echo(chunk, nl=False))
            return
        try:
            write_held(make, output, click.echo)
        except OSError as exc:
            raise InputError(f"cannot write {output}: {exc.strerror or exc}") from None

    # ------------------------------------------------------------------ the store
    def store_path(self, path: Path | None) -> Path:
        """`path`, or the default store."""
        from inspector.store import default_store_path

        return path or default_store_path()

    def open_store(self, path: Path | None, readonly: bool = False, **options: Any) -> Any:
        """The store at `path` (default: the user's); InputError if it cannot be opened."""
        from inspector.store import Store, StoreError

        try:
            return Store(self.store_path(path), readonly=readonly, **options)
        except StoreError as exc:
            raise InputError(str(exc)) from None

    def open_recording(self, path: Path | None, max_events: int, keep_events: bool) -> Any:
        """The store a proxy records into (a warning if it could only be opened read-only)."""
        from inspector.store import StoreError, open_recording

        try:
            store, warning = open_recording(self.store_path(path), max_events=max_events or None,
                                            keep_events=keep_events, lazy_events=keep_events)
        except StoreError as exc:
            raise InputError(str(exc)) from None
        if warning:
            click.echo(f"warning: {warning}", err=True)
        return store

    # ------------------------------------------------------------------ policies and keys
    def keyring(self, paths: Sequence[Path]) -> Keyring:
        """The keys of --key, and of the directory $TELEMETRY_INSPECTOR_KEYS."""
        env_dir = self.environ.get(KEYS_VARIABLE)
        all_paths = list(paths) + ([Path(env_dir)] if env_dir else [])
        try:
            return Keyring.from_paths(all_paths)
        except KeyLoadError as exc:
            raise InputError(str(exc)) from None

    def catalogue(self, policies: Sequence[str] = (), policy_dirs: Sequence[Path] = (),
                  no_builtin: bool = False) -> tuple[Catalogue, list[Policy]]:
        """Load built-ins + directories; `--policy` selects ids or adds files. Returns (catalogue, selected)."""
        for path in policy_dirs:
            if not Path(path).exists():
                raise InputError(f"no such policy file or directory: {path}")
        catalogue = Catalogue.load(builtin=not no_builtin, paths=policy_dirs)
        # A file named on its own must load; in a directory, a broken file is reported and skipped.
        named = {str(Path(p)) for p in policy_dirs if Path(p).is_file()}
        for problem in catalogue.problems:
            if problem.origin in named:
                raise InputError(problem.lines()[0] + (f" (+{len(problem.lines()) - 1} more)"
                                                       if len(problem.lines()) > 1 else ""))
        for problem in catalogue.problems:
            for line in problem.lines():
                click.echo(safe_line(f"warning: policy not loaded: {line}"), err=True)
        selected: list[Policy] = []
        for ref in policies:
            path = Path(ref)
            if path.suffix in (".yaml", ".yml") or path.exists():
                try:  # every policy of the file (one per YAML document)
                    found_here, errors = load_policy_documents(path)
                except PolicyError as exc:
                    raise InputError("; ".join(exc.lines())) from None
                if errors:
                    raise InputError("; ".join(line for exc in errors for line in exc.lines()))
                for policy in found_here:
                    catalogue.add(policy)
                    selected.append(policy)
            else:
                found = catalogue.get(ref)
                if found is None:
                    known = ", ".join(p.id for p in catalogue.policies)
                    raise InputError(f"no policy with id {ref!r} (known: {known})")
                selected.append(found)
        if selected:
            catalogue = Catalogue(list(selected), catalogue.problems)
        return catalogue, selected

    # ------------------------------------------------------------------ the proxy
    def build_proxy(self, config: ProxyConfig, callbacks: Sequence[Callable[[Any], None]] = (),
                    keep_events: bool = False) -> Proxy:
        """The proxy's settings, addon and store. `keep_events`: the store handle also serves reads
        (the TUI of `run`, which reads events from the file as it shows them); otherwise it is
        write-only. Either way its memory does not hold the events."""
        from inspector.proxy.assemble import build_addon, proxy_settings
        from inspector.proxy.config import addon_settings
        from inspector.proxy.embed import ProxyStartError

        try:
            settings = proxy_settings(config)
            addon_settings(config)  # checked before anything is opened
        except ConfigError as exc:
            raise InputError(exc.cli_message()) from None
        try:  # every listener (--listen, each --mode …@HOST:PORT, --set listen_host/mode): loopback only
            remote = settings.check()
        except ProxyStartError as exc:
            raise InputError(str(exc)) from None
        for listener in remote:  # only with --allow-remote
            click.echo(f"warning: {listener.warning()}", err=True)
        catalogue, _ = self.catalogue((), config.policy_paths, False)
        keyring = self.keyring(config.key_paths)
        store = self.open_recording(config.store_path, config.max_events, keep_events)
        addon = build_addon(config, catalogue, keyring, store=store, callbacks=callbacks)
        return Proxy(settings, addon, store)


pass_app = click.make_pass_decorator(App, ensure=True)
"""Hands a command the App of its invocation (as its first argument)."""
