"""Store benchmark: per-insert cost vs store size, load time, and TinyDB's default for comparison.

    .venv/bin/python bench/bench_store.py [--n 100000] [--fsync batch|never|always]

Reports; never fails (exit 0).
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tinydb import TinyDB

from inspector.store import Store

WINDOW = 200


def realistic_event(i: int, rng: random.Random) -> dict:
    """~1 KB, shaped like inspector.core.event.Event.to_dict()."""
    host = rng.choice(["api.segment.io", "events.statsig.com", "telemetry.example.dev", "o1.ingest.sentry.io"])
    return {
        "id": f"{rng.getrandbits(128):032x}",
        "time": 1_750_000_000.0 + i * 0.01,
        "session": "s1",
        "transport": "https",
        "method": "POST",
        "url": f"https://{host}/v1/batch?seq={i}",
        "host": host,
        "path": "/v1/batch",
        "policy": "segment",
        "vendor": "Segment",
        "product": "analytics-node",
        "decoding": ["gzip", "json"],
        "layers": [{"kind": "gzip", "bytes": 412}, {"kind": "json", "bytes": 1033}],
        "decoded": {"event": "app_opened", "anonymousId": f"{rng.getrandbits(64):016x}",
                    "properties": {"os": "linux", "version": "1.4.2", "locale": "en-GB", "n": i},
                    "context": {"library": {"name": "analytics-node", "version": "6.2.0"}}},
        "jwe": None,
        "verdict": rng.choice(["clean", "warning", "violation"]),
        "action": None,
        "findings": [{"code": "undeclared-field", "severity": "warning", "path": "properties.locale",
                      "message": "field not declared in the vendor's published schema"}],
        "request": {"headers": {"content-type": "application/json", "user-agent": "analytics-node/6.2.0",
                                "content-encoding": "gzip"}, "size": 412},
        "response_status": 200,
        "source": "proxy",
    }


def bench_append_store(n: int, marks: list[int], fsync: str, tmp: Path) -> dict:
    rng = random.Random(1)
    path = tmp / "store.json"
    store = Store(path, fsync=fsync)
    windows: dict[int, list[float]] = {m: [] for m in marks}
    spans = {m: range(m - WINDOW // 2, m + WINDOW // 2) for m in marks}
    gc.disable()
    t_all = time.perf_counter()
    gen_time = 0.0
    batch: list[dict] = []
    for i in range(1, n + 1):
        if not batch:  # fresh dicts, as the proxy makes them (generated outside the timing)
            g0 = time.perf_counter()
            batch = [realistic_event(j, rng) for j in range(i + 999, i - 1, -1)]
            gen_time += time.perf_counter() - g0
        ev = batch.pop()
        t0 = time.perf_counter()
        store.add_event(ev)
        dt = time.perf_counter() - t0
        for m in marks:
            if i in spans[m]:
                windows[m].append(dt)
        if i % 20000 == 0:
            gc.collect()
    total = time.perf_counter() - t_all - gen_time
    gc.enable()
    store.close()
    size = path.stat().st_size
    means = {m: statistics.mean(v) for m, v in windows.items()}
    medians = {m: statistics.median(v) for m, v in windows.items()}
    return {"means": means, "medians": medians, "total": total, "size": size, "path": path}


def bench_load(path: Path, lazy: bool = False) -> tuple[float, int, float]:
    """Open in a fresh process (so its memory figure is the store's alone). `lazy`: as the TUI
    opens it (event ids and file offsets; events read when shown)."""
    # Peak RSS from VmHWM (per address space, so new at exec; ru_maxrss would carry over the
    # forking benchmark's own size).
    code = ("import sys, time, re; sys.path.insert(0, sys.argv[2]);"
            "from inspector.store import Store; t = time.perf_counter();"
            f"s = Store(sys.argv[1], readonly=True, lazy_events={lazy}); dt = time.perf_counter() - t;"
            "hwm = int(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1));"
            "print(dt, s.event_count(), hwm / 1024)")
    out = subprocess.run([sys.executable, "-c", code, str(path), str(Path(__file__).resolve().parent.parent)],
                         capture_output=True, text=True, check=True).stdout.split()
    return float(out[0]), int(out[1]), float(out[2])


def bench_tinydb_default(sizes: list[int], tmp: Path) -> dict[int, float]:
    rng = random.Random(2)
    out = {}
    path = tmp / "tinydb-default.json"
    db = TinyDB(path)
    table = db.table("events")
    current = 0
    for target in sizes:
        # fill up to the mark quickly with insert_multiple (one rewrite), then time single inserts
        need = target - WINDOW // 4 - current
        if need > 0:
            table.insert_multiple(realistic_event(i, rng) for i in range(need))
            current += need
        times = []
        for _ in range(WINDOW // 4):  # 50 inserts: it is slow
            ev = realistic_event(current, rng)
            t0 = time.perf_counter()
            table.insert(ev)
            times.append(time.perf_counter() - t0)
            current += 1
        out[target] = statistics.mean(times)
    db.close()
    return out


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--fsync", default="batch", choices=["batch", "never", "always"])
    ap.add_argument("--skip-tinydb", action="store_true")
    args = ap.parse_args()
    marks = [m for m in (1_000, 10_000, 100_000) if m <= args.n]
    tmp = Path(tempfile.mkdtemp(prefix="bench-store-"))
    try:
        print(f"telemetry-inspector store benchmark: {args.n:,} single-event inserts (fsync={args.fsync}), "
              f"~{len(str(realistic_event(0, random.Random(0))))} B events, window {WINDOW} inserts, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        res = bench_append_store(args.n, marks, args.fsync, tmp)
        print("\nAppendLogStorage, time per insert around the Nth insert:")
        print(f"  {'N':>8}  {'mean ms':>9}  {'median ms':>9}")
        for m in marks:
            print(f"  {m:>8,}  {res['means'][m] * 1e3:>9.4f}  {res['medians'][m] * 1e3:>9.4f}")
        if 1_000 in marks and len(marks) > 1:
            last = marks[-1]
            ratio = res["means"][last] / res["means"][1_000]
            mratio = res["medians"][last] / res["medians"][1_000]
            verdict = "OK" if ratio <= 1.5 else "ABOVE TARGET"
            print(f"  ratio {last:,}/1,000: mean {ratio:.2f}, median {mratio:.2f} (target <= 1.5: {verdict})")
        print(f"  {args.n:,} inserts in {res['total']:.1f} s ({res['total'] / args.n * 1e3:.4f} ms/insert overall), "
              f"file {res['size'] / 1e6:.1f} MB")
        dt, count, rss = bench_load(res["path"])
        lazy_dt, _count, lazy_rss = bench_load(res["path"], lazy=True)
        print(f"\nOpen of the {count:,}-event store as the TUI opens it (ids and offsets, events read when "
              f"shown): {lazy_dt:.2f} s (target < 2 s: {'OK' if lazy_dt < 2 else 'ABOVE TARGET'}), "
              f"process peak RSS {lazy_rss:.0f} MB")
        print(f"Load of every event into memory (report, audit of a store): {dt:.2f} s, process peak RSS "
              f"{rss:.0f} MB (lazy/full: time {lazy_dt / dt:.2f}, memory {lazy_rss / rss:.2f})")
        if not args.skip_tinydb:
            t = bench_tinydb_default([1_000, 5_000], tmp)
            print("\nTinyDB default JSONStorage (for comparison), time per insert:")
            for m, v in t.items():
                print(f"  {m:>8,}  {v * 1e3:>9.2f} ms")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        main()
    except Exception as exc:  # noqa: BLE001 - a benchmark reports, it does not fail
        print(f"benchmark error: {type(exc).__name__}: {exc}")
    sys.exit(0)
