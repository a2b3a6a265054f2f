"""TUI benchmark: first screen of a large store, and input latency while events arrive live.

    .venv/bin/python bench/bench_tui.py [--events 100000] [--rate 200] [--seconds 5]

Headless (Textual's run_test), 120×40. Prints figures and the targets:
first screen of a 100k-event store < 2 s; 200 events/s live with input lag < 100 ms.
Reports; never fails (exit 0).
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from textual.events import Key

from inspector.core.event import Event
from inspector.core.findings import Finding
from inspector.core.policy import Catalogue
from inspector.store import Store
from inspector.tui.app import InspectorApp
from inspector.tui.event_list import EventList


def make_event(i: int) -> Event:
    findings = [Finding("undeclared-field", "violation", "projectId", "field not declared")] if i % 3 == 0 else []
    return Event(method="GET", url=f"https://telemetry.refine.dev/telemetry?payload=e30{i}",
                 host="telemetry.refine.dev", path="/telemetry", transport="http", time=1_750_000_000 + i,
                 session="s1", policy="refine-v4-browser", vendor="Refine", product="Refine v4 browser",
                 decoding=["query:payload", "base64", "json"], layers=[],
                 decoded={"providers": {"auth": True}, "version": "4.47.1", "resourceCount": i % 17,
                          "projectId": f"p{i}"},
                 structured=True, jwe=None, findings=findings, request={"headers": {}, "body": ""},
                 source="bench", action="allow" if i % 5 else "block", response_status=200)


def fill_store(path: Path, n: int) -> float:
    started = time.perf_counter()
    with Store(path, fsync="never", keep_events=False) as store:
        batch = []
        for i in range(n):
            batch.append(make_event(i).to_dict())
            if len(batch) == 1000:
                store.add_events(batch)
                batch = []
        if batch:
            store.add_events(batch)
    return time.perf_counter() - started


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 1e6


async def first_screen(path: Path, expected: int) -> dict[str, float]:
    """From opening the store to the event list painted with its rows; then the time until the
    header counts are complete (counted between frames), the key→cursor lag meanwhile, and
    the process's memory."""
    base = rss_mb()
    painted: list[float] = []
    original = EventList.render_line

    def render_line(self: EventList, y: int):  # the first row drawn from the store
        if not painted and self.virtual_size.height >= expected:
            painted.append(time.perf_counter())
        return original(self, y)

    EventList.render_line = render_line  # type: ignore[method-assign]
    started = time.perf_counter()
    store = Store(path, readonly=True, lazy_events=True)
    app = InspectorApp(Catalogue.load(), store=store)
    figures: dict[str, float] = {}
    async with app.run_test(size=(120, 40)) as pilot:
        while not painted and time.perf_counter() - started < 60:
            await asyncio.sleep(0.005)
        EventList.render_line = original  # type: ignore[method-assign]
        figures["first"] = painted[0] - started
        events = app.query_one(EventList)
        assert events.virtual_size.height >= expected
        assert "events" in str(app.query_one("#status").render())
        lags = []
        keys = ["up", "down"]
        while not app.feed.counts()["complete"] and time.perf_counter() - started < 120:
            before = events.cursor
            pressed = time.perf_counter()
            app.post_message(Key(keys[len(lags) % 2], None))
            while events.cursor == before and time.perf_counter() - pressed < 2:
                await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - pressed)
            await pilot.pause(0.05)
        figures["counted"] = time.perf_counter() - started
        figures["lag_max"] = max(lags, default=0.0)
        figures["lag_p50"] = statistics.median(lags) if lags else 0.0
        await pilot.pause(0.2)
        figures["rss"] = rss_mb() - base
    store.close()
    return figures


def full_load_rss(path: Path) -> tuple[float, float]:
    """For comparison: a handle that keeps every event in memory (what the TUI used to do)."""
    base = rss_mb()
    started = time.perf_counter()
    store = Store(path, readonly=True)
    elapsed = time.perf_counter() - started
    grown = rss_mb() - base
    store.close()
    return elapsed, grown


async def live_input_latency(rate: int, seconds: float) -> tuple[list[float], int]:
    """Events arrive from a thread at `rate`/s (as the proxy's worker delivers them) while the
    user presses down: the time from the key press to the cursor having moved."""
    app = InspectorApp(Catalogue.load())
    lags: list[float] = []
    stop = threading.Event()

    def feeder() -> None:
        i = 0
        interval = 1.0 / rate
        next_at = time.perf_counter()
        while not stop.is_set():
            app._from_proxy(make_event(i))
            i += 1
            next_at += interval
            delay = next_at - time.perf_counter()
            if delay > 0:
                time.sleep(delay)

    async with app.run_test(size=(120, 40)) as pilot:
        for i in range(100):  # rows to move through from the start
            app._from_proxy(make_event(-i))
        thread = threading.Thread(target=feeder, daemon=True)
        if rate:
            thread.start()
        await pilot.pause(0.5)
        events = app.query_one(EventList)
        deadline = time.perf_counter() + seconds
        keys = ["up", "down"]  # up first: the list stops following the newest event
        while time.perf_counter() < deadline:
            before = events.cursor
            pressed = time.perf_counter()
            key = keys[len(lags) % 2]
            app.post_message(Key(key, None))  # as the terminal driver delivers a key press
            while events.cursor == before and time.perf_counter() - pressed < 2:
                await asyncio.sleep(0.001)
            lags.append(time.perf_counter() - pressed)
            await pilot.pause(0.05)
        stop.set()
        if rate:
            thread.join(2)
        received = len(app.feed.all)
    return lags, received


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "store.json"
        fill = fill_store(path, args.events)
        print(f"tui: wrote a store of {args.events:,} events in {fill:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
        f = asyncio.run(first_screen(path, args.events))
        verdict = "meets" if f["first"] < 2.0 else "MISSES"
        print(f"tui: first screen of {args.events:,} events: {f['first']:.2f} s (target < 2 s: {verdict})")
        print(f"tui: header counts complete after {f['counted']:.1f} s (counted between frames); key→cursor "
              f"lag meanwhile p50 {f['lag_p50'] * 1000:.1f} ms, max {f['lag_max'] * 1000:.1f} ms")
        full_s, full_mb = full_load_rss(path)
        print(f"tui: memory for {args.events:,} events: +{f['rss']:.0f} MB (ids and offsets; rows read when "
              f"shown) vs +{full_mb:.0f} MB for a handle holding every event ({full_s:.1f} s to load): "
              f"ratio {f['rss'] / max(full_mb, 1):.2f}")
    figures = {}
    for rate in (0, args.rate):  # idle and under load, side by side in one run
        lags, received = asyncio.run(live_input_latency(rate, args.seconds))
        lags_ms = sorted(x * 1000 for x in lags)
        figures[rate] = (statistics.median(lags_ms), lags_ms[min(len(lags_ms) - 1, int(len(lags_ms) * 0.99))],
                         max(lags_ms), len(lags_ms), received)
    for rate, (p50, p99, worst, presses, received) in figures.items():
        print(f"tui: {rate} events/s live ({received:,} received): key→cursor lag p50 {p50:.1f} ms, "
              f"p99 {p99:.1f} ms, max {worst:.1f} ms over {presses} presses")
    worst = figures[args.rate][2]
    ratio = figures[args.rate][0] / figures[0][0]
    print(f"tui: lag at {args.rate}/s vs idle: p50 ratio {ratio:.2f}; max {worst:.1f} ms "
          f"(target < 100 ms: {'meets' if worst < 100 else 'MISSES'})")


if __name__ == "__main__":
    main()
