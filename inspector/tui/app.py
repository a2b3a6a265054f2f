"""The inspector TUI: watch telemetry arrive, understand each payload, allow/block/sinkhole it."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.content import Content
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.widgets import Footer, Static

from inspector.core.event import (
    Event,
    observation_from_event,
)
from inspector.core.keys import KeyLoadError, Keyring
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue
from inspector.core.rules import RuleBook
from inspector.core.textsafe import safe_block, safe_line
from inspector.tui.detail import DetailPane
from inspector.tui.event_list import EventList
from inspector.tui.feed import EventFeed
from inspector.tui.runner import ProxyRunner
from inspector.tui.screens import HelpScreen, PromptScreen, VendorsScreen, policy_details, vendor_rows

CATCH_UP_SLICE = 0.006  # seconds of counting/filtering between two looks at the input


def data_dir() -> Path:
    """Where exports go unless told otherwise: the data directory (the default store's), not
    the directory the command happened to be started in."""
    from inspector.store import default_store_path

    return default_store_path().parent


def _unopened(event: dict[str, Any]) -> bool:
    """An event whose payload no key opened (whatever else its verdict says)."""
    return event.get("verdict") == "encrypted" or any(
        isinstance(f, dict) and f.get("code") == "unverifiable-encrypted" for f in event.get("findings") or [])


def _tail(text: str, width: int) -> str:
    """`text` in `width` columns, keeping its end (a path's file name)."""
    return text if len(text) <= width else "…" + text[len(text) - width + 1:]


UNOPENED_CODES = ("unverifiable-encrypted", "decode-error")


def _with_context_findings(old: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
    """An event decoded again keeps the findings its audit made from more than the request
    alone (request 2 of a session, a rule's reason): an audit of it on its own cannot make them
    again. Those about the payload that did not open go; the verdict is counted anew."""
    from inspector.core.event import event_from_dict

    made = {(f.get("code"), f.get("path")) for f in fresh.get("findings") or [] if isinstance(f, dict)}
    kept = [f for f in old.get("findings") or [] if isinstance(f, dict) and f.get("code") not in UNOPENED_CODES
            and (f.get("code"), f.get("path")) not in made]
    if kept:
        fresh = {**fresh, "findings": kept + list(fresh.get("findings") or [])}
        fresh["verdict"] = event_from_dict(fresh).verdict
    return fresh


class InspectorApp(App[int]):
    """`telemetry-inspector run` (embedded proxy) and `tui --store PATH` (browse a store)."""

    CSS_PATH = "inspector.tcss"
    TITLE = "telemetry-inspector"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("b", "rule('block', 'policy')", "Block"),
        Binding("a", "rule('allow', 'policy')", "Allow"),
        Binding("s", "rule('sinkhole', 'policy')", "Sinkhole"),
        Binding("B", "rule('block', 'host')", "Block host", show=False),
        Binding("A", "rule('allow', 'host')", "Allow host", show=False),
        Binding("S", "rule('sinkhole', 'host')", "Sinkhole host", show=False),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("v", "vendors", "Vendors"),
        Binding("k", "load_key", "Key"),
        Binding("e", "export", "Export"),
        Binding("c", "copy", "Copy", show=False),
        Binding("question_mark", "help", "Help"),
        Binding("1", "tab('payload')", "Payload tab", show=False),
        Binding("2", "tab('findings')", "Findings tab", show=False),
        Binding("3", "tab('decoding')", "Decoding tab", show=False),
        Binding("4", "tab('request')", "Request tab", show=False),
        Binding("5", "tab('items')", "Items tab", show=False),
        Binding("left_square_bracket", "item(-1)", "Previous item", show=False),
        Binding("right_square_bracket", "item(1)", "Next item", show=False),
    ]

    def __init__(self, catalogue: Catalogue, keyring: Keyring | None = None, store: Any = None,
                 runner: ProxyRunner | None = None, poll_store: bool = False, export_dir: Path | None = None,
                 notice: str | None = None, store_path: Path | None = None) -> None:
        """`store_path` without `store`: the store that does not exist yet — nothing is created
        until something is recorded; the view opens it once a proxy has written it."""
        super().__init__()
        self.notice = notice
        self.catalogue = catalogue
        self.keyring = keyring if keyring is not None else Keyring()
        self.pipeline = Pipeline(catalogue, self.keyring)
        self.store = store
        self.store_path = Path(store.path) if store is not None and getattr(store, "path", None) else store_path
        self.runner = runner  # the live proxy of `run` (built by the CLI), or None
        self.poll_store = poll_store
        self.export_dir = export_dir or data_dir()
        self.feed = EventFeed(store)
        self.rules = RuleBook()
        self.proxy_error: str | None = None
        self.listen: str = ""
        self._pending: list[dict[str, Any]] = []
        self._pending_lock = threading.Lock()
        self.exit_code = 0
        self._catching_up = False

    # ------------------------------------------------------------------ lifecycle
    def compose(self) -> ComposeResult:
        yield Static("", id="status")
        with Vertical(id="main"):
            yield EventList(lambda: self.feed.view, self.empty_text, id="events")
            yield DetailPane(self.catalogue, id="detail")
        yield Static("", id="filter-bar")
        # compact, without the palette's entry (ctrl+p still opens it; the help says so): every
        # key fits 80 columns
        yield Footer(compact=True, show_command_palette=False)

    def _main(self, selector: Any, expect_type: Any = None) -> Any:
        """A widget of the main screen, whichever screen is on top (vendors, help, a prompt)."""
        screen = self.screen_stack[0] if self.screen_stack else self.screen
        return screen.query_one(selector, expect_type) if expect_type else screen.query_one(selector)

    def on_mount(self) -> None:
        self.call_after_refresh(self._start)

    def _start(self) -> None:
        if self.runner is not None:
            # Subscribed before the store is read: an event is then in one or the other (or both:
            # _flush_pending drops the ones already read), none is missed.
            self.runner.subscribe(self._from_proxy)
        if self.store is not None:
            self._load_store()
        self._reload_rules()
        if self.runner is not None:
            self._run_proxy()
        self.set_interval(0.1, self._flush_pending)
        if self.poll_store and (self.store is not None or self.store_path is not None):
            self.set_interval(0.5, self._poll_store)
        self._update_status()
        self._main(EventList).focus()
        if self.notice:
            self.notify(self.notice, severity="error", timeout=60)

    def _load_store(self) -> None:
        """Only the ids: the list reads the rows it shows, `_catch_up` counts the rest."""
        try:
            self.store.refresh()
            ids = self.store.event_ids()
        except Exception as exc:  # noqa: BLE001 - a corrupt store is a notice, not a crash
            self.notify(f"cannot read the store: {exc}", severity="error", timeout=15)
            return
        self.feed.add_ids(ids)
        self._refresh_list()
        self._catch_up_soon()

    def _open_store_when_recorded(self) -> bool:
        """The store of `tui` without one yet: opened once a proxy has created it."""
        if self.store_path is None or not self.store_path.exists():
            return False
        from inspector.store import Store
        try:
            self.store = Store(self.store_path, lazy_events=True)
        except Exception as exc:  # noqa: BLE001 - shown, and tried again at the next poll
            self.notify(f"cannot open the store: {exc}", severity="error", timeout=10)
            return False
        self._own_store = True
        self.feed.store = self.store
        self._load_store()
        self._reload_rules()
        return True

    _own_store = False

    def _poll_store(self) -> None:
        if self.runner is not None:
            for line in self.runner.take_messages():  # the proxy's warnings, as `proxy` prints them
                self.notify(safe_line(line), title="proxy", severity="warning", timeout=15)
        if self.store is None:
            self._open_store_when_recorded()
            return
        try:
            if not self.store.refresh():
                self._reload_rules()
                return
            added = self.feed.add_ids(self.store.event_ids(after=self.feed.last_store_id()))
            gone = self.feed.forget_missing()
            if added or gone:
                self._refresh_list()
                self._catch_up_soon()
            self._reload_rules()
        except Exception as exc:  # noqa: BLE001
            self.notify(f"cannot read the store: {exc}", severity="error", timeout=10)

    def _catch_up_soon(self, budget: int = 0) -> None:
        """Count and filter the events not yet seen: `budget` of them now, the rest in slices
        between frames."""
        if budget and self.feed.behind():
            self.feed.step(budget)
            self._refresh_list()
        if self.feed.behind() and not self._catching_up:
            self._catching_up = True
            self._catch_up()

    @work(exclusive=True, group="feed", exit_on_error=False)
    async def _catch_up(self) -> None:
        # Slices of a few milliseconds, so a key press waits at most that long; the list and
        # the counts are redrawn a few times a second, not after every slice.
        clock = time.perf_counter
        shown = clock()
        try:
            while self.feed.behind():
                until = clock() + CATCH_UP_SLICE
                while clock() < until and self.feed.behind():
                    self.feed.step(25)
                if clock() - shown > 0.25:
                    self._refresh_list()
                    shown = clock()
                await asyncio.sleep(0)
        finally:
            self._catching_up = False
            self._refresh_list()

    def _reload_rules(self) -> None:
        rows = []
        if self.store is not None:
            try:
                rows = self.store.rules()
            except Exception:  # noqa: BLE001
                rows = []
        default = self.runner.default_action if self.runner is not None else "allow"
        self.rules = RuleBook.from_dicts(rows, default=default)

    # ------------------------------------------------------------------ the embedded proxy
    @work(thread=True, exclusive=True, group="proxy", exit_on_error=False)
    def _run_proxy(self) -> None:
        # A thread worker of the app: the runner blocks until stopped, with an event loop of its
        # own that Textual's is not troubled by. The UI is fed in batches (_from_proxy,
        # _flush_pending) and never waits on the proxy.
        assert self.runner is not None

        def ready(addrs: list[tuple[str, int]]) -> None:
            self.listen = ", ".join(f"{h}:{p}" for h, p in addrs)
            self.call_from_thread(self._refresh_list)  # the status, and the empty list's port

        error = self.runner.run(ready)
        if error is not None:
            self.call_from_thread(self._proxy_failed, error)

    def _proxy_failed(self, message: str) -> None:
        self.proxy_error = message
        self.exit_code = 2
        self._update_status()
        self.notify(f"{message} — press q to quit", title="The proxy could not start", severity="error",
                    timeout=60)

    def _from_proxy(self, event: Event) -> None:
        """Called on the proxy's worker thread: queue, the UI flushes in batches."""
        row = event.to_dict()
        if getattr(event, "store_id", None) is not None:
            row["doc_id"] = event.store_id
        with self._pending_lock:
            self._pending.append(row)

    def _flush_pending(self) -> None:
        with self._pending_lock:
            rows, self._pending = self._pending, []
        last = self.feed.last_store_id()  # stored ids grow: up to it, read from the store already
        rows = [r for r in rows if not isinstance(r.get("doc_id"), int) or r["doc_id"] > last]
        if rows and self.store is not None and any(isinstance(r.get("doc_id"), int) for r in rows):
            # Another handle may have written them (`run` audits in a helper process, which
            # records): this one reads what was appended before the list asks for the rows.
            try:
                self.store.refresh()
            except Exception as exc:  # noqa: BLE001 - a notice; the rows say what they are
                self.notify(f"cannot read the store: {exc}", severity="error", timeout=10)
        if rows:
            self.feed.add(rows)
            self.feed.forget_missing()
            self._refresh_list()
            self._catch_up_soon()

    def _refresh_list(self) -> None:
        try:
            self._main(EventList).refresh_rows()
        except Exception:  # noqa: BLE001 - not mounted yet
            return
        self._update_status()

    def _update_status(self) -> None:
        counts = self.feed.counts()
        # Content, not markup: an error message, a path or a typed filter may hold "[".
        if self.proxy_error:
            where = Content.styled(safe_line(f"proxy not running: {self.proxy_error}"), "bold red")
        elif self.runner is not None:
            mode = "/".join(self.runner.modes)
            where = Content(safe_line(f"{mode} proxy {self.listen or 'starting…'} · CA {self.runner.ca_cert()}"))
        elif self.store is None and self.store_path is not None:
            where = Content(safe_line(f"no store yet at {self.store_path}"))
        else:
            where = Content(safe_line(f"store {getattr(self.store, 'path', '-')}"))
        if counts["complete"]:
            tally = f"{counts['violations']} with violations · {counts['blocked']} blocked/sinkholed"
        else:
            tally = f"counting… {self.feed.progress():.0%}"
        text = Content.assemble(f"{counts['events']} events · {tally} │ ", where)
        try:
            self._main("#status", Static).update(text)
            bar = self._main("#filter-bar", Static)
            searching = "" if not self.feed.behind() else f", searching {self.feed.progress():.0%}"
            bar.update(Content(safe_line(f"filter: {self.feed.filter_text} ({len(self.feed.view)} shown{searching})"
                                         " — Esc clears")) if self.feed.filter_text else "")
            bar.display = bool(self.feed.filter_text)
        except Exception:  # noqa: BLE001, S110 - not mounted yet, or being torn down
            pass

    def empty_text(self) -> list[str]:
        """What the event list says while it has nothing to show: how to get something there
        (at most six lines of 78 columns: the list's height at 80×24)."""
        if self.feed.filter_text and len(self.feed.all):
            return [f"No event matches the filter {self.feed.filter_text!r} — Esc clears it."]
        if self.runner is not None:
            if self.proxy_error:
                return [f"The proxy is not running: {self.proxy_error}", "Press q to quit."]
            port = self.listen.rsplit(":", 1)[-1] if self.listen else "PORT"
            return ["Waiting for telemetry. Send an app's traffic through the proxy:",
                    f"  HTTPS_PROXY=http://127.0.0.1:{port} your-app   (HTTP_PROXY alike)",
                    f"  trusting the CA {_tail(str(self.runner.ca_cert()), 58)}",
                    "  or: telemetry-inspector exec -- your-app   (does both)"]
        where = (f"The store {_tail(str(self.store_path), 40)} holds no events yet." if self.store is not None
                 else f"Nothing recorded yet (no store at {_tail(str(self.store_path or '-'), 40)}).")
        return [where, "Start capturing, in another terminal:",
                "  telemetry-inspector exec -- your-app     runs it through the proxy",
                "  telemetry-inspector proxy    then HTTPS_PROXY=http://127.0.0.1:8080 ...",
                "  or instead: telemetry-inspector run      the proxy and this view in one",
                "Events appear here as they are recorded; ? shows the keys."]

    def notify(self, message: str, *, title: str = "", severity: SeverityLevel = "information",
               timeout: float | None = None, markup: bool = False) -> None:
        """Every notification as plain, visible text (`markup` is ignored): they quote stores, files,
        errors and hosts."""
        super().notify(safe_block(message), title=safe_line(title), severity=severity, timeout=timeout,
                       markup=False)

    # ------------------------------------------------------------------ selection
    def on_event_list_selected(self, message: EventList.Selected) -> None:
        self._main(DetailPane).show(message.event)

    def selected(self) -> dict[str, Any] | None:
        try:
            return self._main(EventList).selected()
        except Exception:  # noqa: BLE001
            return None

    # ------------------------------------------------------------------ actions
    def set_rule(self, target: str, kind: str, action: str) -> None:
        if self.store is None and self.store_path is not None and self.poll_store:
            # `tui` before anything was recorded: a rule is the first record (a proxy started
            # later reads it from the store)
            try:
                from inspector.store import Store
                Store(self.store_path).close()
            except Exception as exc:  # noqa: BLE001
                self.notify(f"cannot create the store for the rule: {exc}", severity="error")
                return
            self._open_store_when_recorded()
        if self.store is not None:
            try:
                self.store.set_rule(target, kind, action)
            except Exception as exc:  # noqa: BLE001
                self.notify(f"cannot save the rule: {exc}", severity="error")
                return
        if self.runner is not None:
            self.runner.reload_rules()
        self._reload_rules()
        if self.store is None:  # no store: keep the rule in memory for this session
            from inspector.core.rules import Rule
            self.rules = RuleBook([*self.rules.rules, Rule(target, kind, action)], self.rules.default)
            if self.runner is not None:
                self.runner.use_rules(self.rules)
        self.notify(f"{action} {kind} {target}: applies to the next request", title="rule saved")

    def rule_for(self, policy_id: str, vendor: str) -> str:
        """The rule its requests get: on the policy, else on its host (`B`), its vendor, … (the
        first host it names; a pattern host only through a wildcard rule)."""
        policy = self.catalogue.get(policy_id)
        hosts = [h for h in (policy.hosts if policy else ()) if "*" not in h]
        decision = self.rules.decide(policy_id, vendor, hosts[0] if hosts else "")
        if decision.rule is not None and decision.rule.kind == "policy":
            return decision.action  # a rule on this very policy: no need to say which
        return f"{decision.action} ({decision.reason})"

    def action_rule(self, action: str, kind: str) -> None:
        event = self.selected()
        if event is None:
            self.notify("select an event first", severity="warning")
            return
        if kind == "policy" and event.get("policy"):
            self.set_rule(event["policy"], "policy", action)
        else:
            self.set_rule(event.get("host", ""), "host", action)

    def action_filter(self) -> None:
        def done(value: str | None) -> None:
            if value is None:
                return
            self.feed.set_filter(value)
            events = self._main(EventList)
            events.follow = True
            self._catch_up_soon(2000)
            events.refresh_rows()
            self._update_status()

        self.push_screen(PromptScreen("Filter (words; vendor:, host:, verdict:, action:, policy:)",
                                      self.feed.filter_text), done)

    def action_clear_filter(self) -> None:
        if self.feed.filter_text:
            self.feed.set_filter("")
            self._catch_up_soon()
            self._main(EventList).refresh_rows()
            self._update_status()

    def action_vendors(self) -> None:
        if not self.feed.counts()["complete"]:
            self.notify(f"still counting the stored events ({self.feed.progress():.0%}): "
                        "reopen the view for the full figures", severity="warning")
        self.push_screen(VendorsScreen(
            lambda: vendor_rows(self.feed.vendors, self.catalogue, self.rule_for, self.rules.rules),
            self.set_rule, self.policy_details))

    def policy_details(self, policy_id: str) -> Content | None:
        """The vendors view's drill-down into one policy."""
        policy = self.catalogue.get(policy_id)
        if policy is None:
            return None
        return policy_details(policy, self.feed.vendors.seen.get(policy_id), self.rule_for(policy.id, policy.vendor))

    def action_tab(self, name: str) -> None:
        self._main(DetailPane).active = f"tab-{name}"

    def action_item(self, delta: int) -> None:
        """The previous or next item of a collector request, on the Items tab."""
        pane = self._main(DetailPane)
        pane.active = "tab-items"
        pane.move_item(delta)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_copy(self) -> None:
        event = self.selected()
        if event is None:
            return
        self.copy_to_clipboard(json.dumps(event.get("decoded"), indent=2, ensure_ascii=False, default=str))
        self.notify("decoded payload copied to the clipboard")

    def export_default(self) -> Path:
        """Where `e` offers to write: the export directory, a name with the time in it."""
        return self.export_dir / f"telemetry-report-{datetime.now().strftime('%Y%m%d-%H%M%S')}.md"

    def action_export(self) -> None:
        """Ask where (the data directory by default), then write the report of the events shown."""
        def done(value: str | None) -> None:
            if value is None or not value.strip():
                return
            self.export_to(Path(value.strip()).expanduser())

        self.push_screen(PromptScreen("Export a report to (.md .html .json .txt .sarif)",
                                      str(self.export_default())), done)

    def export_to(self, path: Path) -> Path | None:
        """Write the report to `path` (a directory: a new file in it), mode 0600; say where."""
        from inspector.core.event import event_from_dict
        from inspector.report import formats
        from inspector.report.files import write_held

        if path.is_dir():
            path = path / self.export_default().name
        fmt = formats.for_path(path) or formats.get("markdown")
        name = fmt.name
        view = self.feed.view
        # An event at a time from the store into the report (docs/performance.md): not a list of them all
        events = (event_from_dict(e) for e in view)
        inputs = [f"filter: {self.feed.filter_text}" if self.feed.filter_text else "all events"]
        try:  # mode 0600: the report holds captured data; its directory is made 0700
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            write_held(lambda out: fmt.write(events, self.catalogue, inputs, out), path, lambda _chunk: None)
        except OSError as exc:
            self.notify(f"cannot write {path}: {exc.strerror or exc}", severity="error", timeout=15)
            return None
        self.notify(f"{name} report of {len(view)} events written to {path.resolve()} (readable by you only)",
                    title="exported", timeout=15)
        return path

    def action_load_key(self) -> None:
        def done(value: str | None) -> None:
            if not value:
                return
            try:
                added = self.keyring.add_path(Path(value).expanduser())
            except KeyLoadError as exc:
                self.notify(str(exc), severity="error", timeout=10)
                return
            redone = self.redecode_encrypted()
            kept = (f"; {self._not_redone} could not be: the store kept only the start of their body"
                    if self._not_redone else "")
            self.notify(f"{added} key(s) loaded ({len(self.keyring)} in all); {redone} encrypted event(s) "
                        f"decoded again{kept}", title="keys")

        self.push_screen(PromptScreen("Key file or directory (JWK, JWK Set, PEM)", "", "path/to/key.jwk.json"), done)

    def redecode_encrypted(self) -> int:
        """Decode again the events no key opened, with the keys loaded now. The first
        thousands now, the rest (a big store) in slices between frames."""
        done = self._redecode_slice(0, 2000)
        if done < len(self.feed.ids):
            self._redecode_rest(done)
        else:
            self._redecoded()
        return self._redone

    _redone = 0

    _not_redone = 0

    def _redecode_slice(self, start: int, count: int) -> int:
        if start == 0:
            self._redone = self._not_redone = 0
        ids = self.feed.ids
        stop = min(len(ids), start + count)
        for k in range(start, stop):
            event = self.feed.get(ids[k])
            if not _unopened(event):
                continue
            obs = observation_from_event(event)
            if obs is None:  # the store kept only the start of its body: nothing to decrypt
                self._not_redone += 1
                continue
            obs = replace(obs, response_status=event.get("response_status"))
            fresh = self.pipeline.process(obs, action=event.get("action")).to_dict()
            fresh["id"] = event.get("id", fresh["id"])
            for kept in ("action_reason", "response"):  # what decoding does not change
                if event.get(kept) is not None:
                    fresh[kept] = event[kept]
            fresh = _with_context_findings(event, fresh)
            try:
                self.feed.replace(ids[k], fresh)
            except Exception as exc:  # noqa: BLE001
                self.notify(f"cannot update the store: {exc}", severity="warning")
            self._redone += 1
        return stop

    @work(exclusive=True, group="redecode", exit_on_error=False)
    async def _redecode_rest(self, start: int) -> None:
        while start < len(self.feed.ids):
            start = self._redecode_slice(start, 200)
            await asyncio.sleep(0)
        self._redecoded()
        self.notify(f"{self._redone} encrypted event(s) decoded again", title="keys")

    def _redecoded(self) -> None:
        self.feed.retally()
        self._catch_up_soon(2000)
        self._main(EventList).refresh_rows()
        self._main(DetailPane).show(self.selected())
        self._update_status()

    async def action_quit(self) -> None:
        if self.runner is not None:
            self.runner.stop()
        self.exit(self.exit_code)

    def on_unmount(self) -> None:
        # However the app ends (quit, an error, a test), the proxy's thread must end with it.
        if self.runner is not None:
            self.runner.stop()
        if self._own_store and self.store is not None:
            self.store.close()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand("Block policy", "Block the selected event's policy", lambda: self.action_rule("block", "policy"))
        yield SystemCommand("Allow policy", "Allow the selected event's policy", lambda: self.action_rule("allow", "policy"))
        yield SystemCommand("Sinkhole policy", "Sinkhole the selected event's policy",
                            lambda: self.action_rule("sinkhole", "policy"))
        yield SystemCommand("Block host", "Block the selected event's host", lambda: self.action_rule("block", "host"))
        yield SystemCommand("Allow host", "Allow the selected event's host", lambda: self.action_rule("allow", "host"))
        yield SystemCommand("Sinkhole host", "Sinkhole the selected event's host",
                            lambda: self.action_rule("sinkhole", "host"))
        yield SystemCommand("Filter", "Filter events", self.action_filter)
        yield SystemCommand("Vendors", "Declared vs. observed per policy", self.action_vendors)
        yield SystemCommand("Load key", "Load a JWE key and decode encrypted events", self.action_load_key)
        yield SystemCommand("Export report", "Write a Markdown report of the events shown", self.action_export)
        yield SystemCommand("Copy payload", "Copy the decoded payload", self.action_copy)
        yield SystemCommand("Keys help", "Show the key bindings", self.action_help)
