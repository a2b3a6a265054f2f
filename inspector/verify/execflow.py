"""`exec` from start to verdict: run the command (once, or twice to compare) in isolation or
watched, with opt-outs and canaries as asked, and decide what it proved.

The CLI builds the proxy (settings, addon, store) and hands it here with the two functions
that make the command's proxy environment; this module starts the proxy, runs, prints one
line per event and a summary on `out`, writes the report and returns the exit status:

* the command's own status when nothing was to be proved, or all was;
* 1 (when the command itself exited 0; else its status) when the verification failed:
  ``--expect-none`` and something left or may have left (telemetry seen, a bypass, refused
  traffic); ``--compare`` and a channel was ``ignored`` or ``new`` (sent with the opt-outs
  set); ``--canary`` and a planted value was found.

`ExecError` is a one-line refusal (exit 2 in the CLI): the proxy did not start, the command
does not exist, or ``--isolate namespace`` where no namespace can be had.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspector.core.event import Event, EventSummary
from inspector.core.textsafe import safe_line
from inspector.report.render import event_line
from inspector.verify import canary as canaries
from inspector.verify.bypass import POLL_INTERVAL, BypassWatch
from inspector.verify.netns import Namespace, NamespaceError
from inspector.verify.optouts import all_opt_outs, environment
from inspector.verify.report import Verification, render
from inspector.verify.results import Run, channel_of, channels
from inspector.verify.runtimes import warnings as runtime_warnings

EXIT_FAILED = 1
ISOLATE_CHOICES = ("auto", "namespace", "off")
SETTLE = 0.2  # seconds for the proxy to finish the last flows once the command has exited
PREFIX = "telemetry-inspector: "


class ExecError(Exception):
    """A one-line refusal to run (see the module doc)."""


@dataclass
class ExecOptions:
    expect_none: bool = False
    quiet: bool = False
    isolate: str = "auto"
    opt_out: bool = False
    compare: bool = False
    canary: bool = False
    canary_cwd: bool = False
    report: Path | None = None


NAMESPACE_DETAIL = ("network namespace: names resolve to the inspector, TCP 80/443 to any address is "
                    "intercepted transparently, the proxy variables work as usual, any other traffic "
                    "(other TCP ports, UDP, QUIC) is refused and reported")
DETECTION_DETAIL = (f"not isolated: the command's sockets are polled every {int(POLL_INTERVAL * 1000)} ms "
                    "for connections that go around the proxy (shorter ones can be missed)")


class Collector:
    """The addon's event callback: events into the current run, printed unless quiet, and
    searched for canaries."""

    def __init__(self, out: Callable[[str], None], quiet: bool, search: canaries.CanarySearch | None,
                 catalogue: Any) -> None:
        self.out = out
        self.quiet = quiet
        self.search = search
        self.catalogue = catalogue
        self.run: Run | None = None
        self.lock = threading.Lock()

    def __call__(self, event: Event | EventSummary) -> None:
        """An event (audited in this process, or sent back whole for the canary search) or its
        summary (the helper's, with its line rendered there): the run keeps the summary only."""
        hits = []
        if isinstance(event, EventSummary):
            summary = event
        else:
            if self.search is not None:
                policy = self.catalogue.get(event.policy) if event.policy else None
                hits = [canaries.finding(hit, policy) for hit in self.search.search_event(event.to_dict())]
            summary = EventSummary.of(event, event_line(event) if not self.quiet else "")
        with self.lock:
            if self.run is not None:
                self.run.events.append(summary)
                self.run.canary.extend((channel_of(summary), f) for f in hits)
            if not self.quiet:
                self.out(PREFIX + summary.line)
                for f in hits:
                    self.out(safe_line(f"{PREFIX}  {f.severity} canary: {f.message}"))


def run_exec(command: list[str], options: ExecOptions, settings: Any, addon: Any, store: Any,
             proxy_env: Callable[[int, Path], dict[str, str]], make_bundle: Callable[[Path, Path], Path],
             out: Callable[[str], None]) -> int:
    """Run `command` as `options` say; the exit status (see the module doc). Raises ExecError."""
    from inspector.proxy.embed import ProxyStartError, ProxyThread

    if options.isolate not in ISOLATE_CHOICES:
        raise ExecError(f"--isolate must be one of {', '.join(ISOLATE_CHOICES)}")
    planted = canaries.plant(cwd=options.canary_cwd) if options.canary else None
    search = canaries.CanarySearch(planted.values) if planted else None
    collector = Collector(out, options.quiet, search, addon.catalogue)
    addon.callbacks.append(collector)
    thread = ProxyThread(settings, addon)
    try:
        thread.start()
    except ProxyStartError as exc:
        raise ExecError(str(exc)) from None
    try:
        with tempfile.TemporaryDirectory(prefix="ti-exec-") as tmp:
            bundle = make_bundle(settings.ca_cert(), Path(tmp) / "ca-bundle.pem")
            base = proxy_env(thread.port, bundle)
            verification = _verify(command, options, base, thread.port, addon, collector, planted, search, out)
    finally:
        thread.stop()
        addon.stop()
        if store is not None:
            store.close()
        if planted is not None:
            planted.cleanup()
    _summarise(verification, out)
    if options.report is not None:
        from inspector.report.files import write_private
        try:
            write_private(options.report, render(verification, options.report))
        except OSError as exc:
            out(safe_line(f"{PREFIX}cannot write the report {options.report}: {exc.strerror or exc}"))
            return 2
        out(safe_line(f"{PREFIX}wrote the verification report to {options.report}"))
    return verification.exit_status


def _verify(command: list[str], options: ExecOptions, base: dict[str, str], port: int, addon: Any,
            collector: Collector, planted: canaries.Canaries | None, search: canaries.CanarySearch | None,
            out: Callable[[str], None]) -> Verification:
    opt_outs = all_opt_outs(addon.catalogue.policies) if options.opt_out or options.compare else []
    if options.compare:
        phases = [("without opt-outs", []), ("with opt-outs", opt_outs)]
        mode = "compare"
    elif options.opt_out:
        phases, mode = [("with opt-outs", opt_outs)], "opt-out"
    else:
        phases, mode = [("run", [])], "plain"
    if shutil.which(command[0], path=base.get("PATH")) is None:
        raise ExecError(f"command not found: {command[0]}")
    isolation = "detection" if options.isolate == "off" else "namespace"
    notes: list[str] = []
    warned = False
    runs: list[Run] = []
    session = addon.session
    for index, (label, chosen) in enumerate(phases):
        env = dict(base)
        env.update(environment(chosen))
        cwd = None
        if planted is not None:
            env.update(planted.env)
            cwd = planted.cwd
        run = Run(label, list(chosen))
        if len(phases) > 1:
            addon.session = f"{session}-{index + 1}"  # the rate claims count per run
        collector.run = run
        if len(phases) > 1:
            out(safe_line(f"{PREFIX}run {index + 1} of {len(phases)}: {label}"))

        def warn_up_front(isolated: bool) -> None:
            nonlocal warned
            if not warned:
                for line in runtime_warnings(command, env, isolated):  # noqa: B023 - called in this iteration
                    out(safe_line(f"{PREFIX}warning: {line}"))
                warned = True

        if isolation == "namespace":
            try:
                ns = Namespace.start(command, env, cwd, ("127.0.0.1", port),
                                     hostname=planted.hostname if planted else None)
            except NamespaceError as exc:
                if options.isolate == "namespace":
                    raise ExecError(f"cannot isolate the command: {exc}") from None
                out(safe_line(f"{PREFIX}warning: cannot isolate the command ({exc}); "
                              "watching it for connections around the proxy instead"))
                isolation = "detection"
            else:
                warn_up_front(True)
                _in_namespace(run, ns, notes)
        if isolation == "detection":
            warn_up_front(False)
            _watched(run, command, env, cwd, port)
        time.sleep(SETTLE)
        addon.wait_idle(10)
        collector.run = None
        if search is not None:
            names = list(run.lookups) + [t.rsplit(":", 1)[0] for t in run.tunnels]
            for hit in search.search_names(names, "host name"):
                run.canary.append(("dns " + hit.where.removeprefix("host name "),
                                   canaries.finding(hit, None)))
        runs.append(run)
    addon.session = session
    detail = NAMESPACE_DETAIL if isolation == "namespace" else DETECTION_DETAIL
    if notes:
        detail += "; " + "; ".join(dict.fromkeys(notes))
    rows = channels(runs, addon.catalogue, mode)
    verification = Verification(command, mode, isolation, detail, runs, rows,
                                planted=planted.values if planted else [],
                                canary=[item for run in runs for item in run.canary])
    _judge(verification, options)
    return verification


def _in_namespace(run: Run, ns: Namespace, notes: list[str]) -> None:
    try:
        ns.go()
    except NamespaceError as exc:
        raise ExecError(str(exc)) from None
    try:
        run.exit_status = ns.wait()
    except KeyboardInterrupt:
        run.exit_status = 130
        ns.proc.wait()
    result = ns.finish()
    notes.extend(result.notes)
    if result.userns:
        notes.append("through a user namespace (unprivileged)")
    run.tunnels = Counter(result.log.tunnels)
    run.lookups = Counter(result.log.lookups)
    run.refused = Counter({item.label(): count for item, count in result.refused.items()})


def _watched(run: Run, command: list[str], env: dict[str, str], cwd: str | None, port: int) -> None:
    try:
        proc = subprocess.Popen(command, env=env, cwd=cwd)
    except FileNotFoundError:
        raise ExecError(f"command not found: {command[0]}") from None
    except OSError as exc:
        raise ExecError(f"cannot run {command[0]}: {exc.strerror or exc}") from None
    watch = BypassWatch(proc.pid, {port}).start()
    try:
        run.exit_status = proc.wait()
    except KeyboardInterrupt:
        run.exit_status = 130
        proc.wait()
    found = watch.stop()
    run.bypasses = Counter({item.label(): count for item, count in found.items()})


def _judge(v: Verification, options: ExecOptions) -> None:
    """The reasons the verification failed, and the exit status."""
    status = next((r.exit_status for r in v.runs if r.exit_status), 0)
    last = v.runs[-1]
    if options.expect_none and last.left():
        what = []
        if last.events:
            what.append(f"{len(last.events)} telemetry event(s)")
        if last.bypasses:
            what.append(f"{sum(last.bypasses.values())} connection(s) around the proxy")
        if last.refused:
            what.append(f"{sum(last.refused.values())} refused attempt(s) to reach elsewhere")
        if last.passed():
            what.append(f"{sum(last.passed().values())} connection(s) passed through to hosts no policy "
                        f"names ({', '.join(sorted(last.passed()))})")
        v.reasons.append("telemetry was sent although none was expected (--expect-none): " + ", ".join(what))
    if options.compare:
        broken = [c.name for c in v.channels if c.status in ("ignored", "new")]
        if broken:
            v.reasons.append("sent with the opt-outs set: " + ", ".join(broken))
    if v.canary:
        v.reasons.append(f"{len(v.canary)} planted value(s) found in the traffic")
    v.exit_status = (EXIT_FAILED if status == 0 else status) if v.reasons else status


def _summarise(v: Verification, out: Callable[[str], None]) -> None:
    out(safe_line(f"{PREFIX}isolation: {v.isolation} — {v.isolation_detail}"))
    for run in v.runs:
        violations = sum(1 for e in run.events if e.verdict == "violation")
        names = sorted({channel_of(e) for e in run.events})
        label = f"{run.label}: " if len(v.runs) > 1 else ""
        out(safe_line(f"{PREFIX}{label}{len(run.events)} telemetry event(s), {violations} with violations"
                      + (f" — {', '.join(names)}" if names else "")))
        for what, counter in (("bypass", run.bypasses), ("refused", run.refused), ("passed through", run.passed())):
            for destination, count in sorted(counter.items()):
                out(safe_line(f"{PREFIX}{label}{what}: {destination} (×{count})"))
    if v.mode != "plain":
        for c in v.channels:
            counts = ", ".join(f"{k} {n}" for k, n in c.counts.items())
            opt = ", ".join(o.variable for o in c.opt_outs) or "none known"
            out(safe_line(f"{PREFIX}{c.name} ({c.owner or 'owner unknown'}): {c.status} — {counts}; "
                          f"opt-outs set for it: {opt}"))
    for channel, f in v.canary:
        out(safe_line(f"{PREFIX}canary ({f.severity}) in {channel}: {f.message}"))
    for reason in v.reasons:
        out(safe_line(f"{PREFIX}{reason}"))
