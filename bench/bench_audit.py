"""Offline audit benchmark: peak memory and time per request of `audit` as the capture grows.

    .venv/bin/python bench/bench_audit.py [--sizes 10000,20000,100000,1000000] [--formats json,html]
    .venv/bin/python bench/bench_audit.py --quick        # 2,000 / 10,000 / 20,000 requests
    .venv/bin/python bench/bench_audit.py --sizes 20000,100000 --store-sizes 20000,100000

Generates HAR captures of each size by cycling the entries of fixtures/captures/all-channels.har
(every built-in channel, JWE and WebSocket entries included; each entry's time moved on by 10 ms),
written to disk entry by entry, never held in memory; audits each with the CLI in a subprocess
(`telemetry-inspector audit CAPTURE --format F -o REPORT --fail-on never`, the keys of
fixtures/keys) and reads its peak RSS (VmHWM of /proc/PID/status, sampled until it exits) and its
wall time. With --store-sizes, also stores of those sizes (events of the fixture with fresh ids, written
by this process): `report --store S --format json` and `audit S --format json` on each.
Prints the figures side by side; targets: the largest size under 1M (100k) peaks at ≤ 1.3× the
RSS of 20k and under 300 MB, its time per request within 1.3× of 20k's; 1M completes.
Everything is written to a temporary directory that is removed. Reports; never fails (exit 0).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "fixtures" / "captures" / "all-channels.har"
KEYS = ROOT / "fixtures" / "keys"
BYTES_PER_REQUEST = 4000  # on disk: the HAR (~3.6 KB an entry) and no more than its JSON report


def write_har(path: Path, requests: int) -> int:
    """A HAR of `requests` entries cycled from the fixture, streamed to `path`; its size."""
    log = json.loads(FIXTURE.read_text())["log"]
    entries = log["entries"]
    start = datetime.fromisoformat(entries[0]["startedDateTime"])
    texts = []
    for entry in entries:  # the time as a placeholder, replaced per entry as it is written
        texts.append(json.dumps(dict(entry, startedDateTime="@TIME@")))
    head = json.dumps({"version": log.get("version", "1.2"), "creator": log.get("creator", {})})[:-1]
    with open(path, "w", encoding="utf-8") as out:
        out.write('{"log": ' + head + ', "entries": [\n')
        for i in range(requests):
            when = (start + timedelta(milliseconds=10 * i)).isoformat()
            out.write(texts[i % len(texts)].replace("@TIME@", when, 1))
            out.write(",\n" if i + 1 < requests else "\n")
        out.write("]}}\n")
    return path.stat().st_size


def write_store(path: Path, requests: int) -> None:
    """A store of `requests` events: the fixture's, audited once, repeated with fresh ids."""
    sys.path.insert(0, str(ROOT))
    import uuid

    from inspector.capture.load import load_capture
    from inspector.core.keys import Keyring
    from inspector.core.pipeline import Pipeline
    from inspector.core.policy import Catalogue
    from inspector.store import Store

    pipeline = Pipeline(Catalogue.load(), Keyring.from_paths([KEYS]))
    events = [pipeline.process(o).to_dict() for o in load_capture(FIXTURE)]
    with Store(path, fsync="never") as store:
        for start in range(0, requests, 1000):
            store.add_events([{**events[i % len(events)], "id": uuid.uuid4().hex}
                              for i in range(start, min(requests, start + 1000))])


def measure(argv: list[str], env: dict[str, str]) -> tuple[float, float, int]:
    """Run `argv`; (wall seconds, peak RSS in MB from VmHWM, exit status)."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=ROOT)
    peak = 0
    status = Path(f"/proc/{proc.pid}/status")
    while proc.poll() is None:
        try:
            for line in status.read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peak = max(peak, int(line.split()[1]))
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    err = proc.stderr.read().decode("utf-8", "replace") if proc.stderr else ""
    if proc.returncode not in (0, 1):
        print(f"audit: {' '.join(argv[3:])} exited {proc.returncode}: {err.strip()[-300:]}")
    return elapsed, peak / 1024, proc.returncode


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "inspector", *args]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,20000,100000,1000000", help="requests per capture")
    parser.add_argument("--formats", default="json,html", help="report formats to write, each a run")
    parser.add_argument("--million-formats", default="json",
                        help="the formats for sizes of 1,000,000 and more (each run takes minutes)")
    parser.add_argument("--store-sizes", default="",
                        help="sizes (of --sizes) to also record as a store, then `report` and `audit` it")
    parser.add_argument("--quick", action="store_true", help="sizes 2,000, 10,000 and 20,000")
    args = parser.parse_args()
    sizes = [2000, 10000, 20000] if args.quick else [int(s) for s in args.sizes.split(",") if s.strip()]
    if args.quick and not args.store_sizes:
        args.store_sizes = "2000,20000"
    formats = [f for f in args.formats.split(",") if f]
    store_sizes = {int(s) for s in args.store_sizes.split(",") if s.strip()}
    columns = formats + (["report", "audit-store"] if store_sizes else [])
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("TELEMETRY_INSPECTOR_KEYS", None)

    results: dict[tuple[int, str], tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="ti-bench-audit-") as tmp:
        tmpdir = Path(tmp)
        for size in sizes:
            free = shutil.disk_usage(tmpdir).free
            if free < size * BYTES_PER_REQUEST * 3:
                print(f"audit: {size:,} requests skipped: {free / 1e9:.1f} GB free in {tmpdir}, "
                      f"need ~{size * BYTES_PER_REQUEST * 3 / 1e9:.1f} GB")
                continue
            har = tmpdir / f"capture-{size}.har"
            t0 = time.perf_counter()
            har_bytes = write_har(har, size)
            print(f"audit: wrote {har.name}: {har_bytes / 1e6:,.0f} MB in {time.perf_counter() - t0:.1f} s",
                  flush=True)
            for fmt in (formats if size < 1_000_000 else [f for f in args.million_formats.split(",") if f]):
                report = tmpdir / f"report-{size}.{fmt}"
                elapsed, peak, rc = measure(cli("audit", str(har), "--key", str(KEYS), "--format", fmt,
                                                "-o", str(report), "--fail-on", "never"), env)
                results[(size, fmt)] = (elapsed, peak, rc)
                out_mb = report.stat().st_size / 1e6 if report.exists() else 0.0
                print(f"audit: {size:>9,} requests  {fmt:<6} {elapsed:7.1f} s  "
                      f"{elapsed / size * 1e6:6.0f} µs/request  peak RSS {peak:6.0f} MB  "
                      f"(report {out_mb:,.0f} MB)", flush=True)
                report.unlink(missing_ok=True)
            har.unlink()
            if size in store_sizes:
                store = tmpdir / f"store-{size}.json"
                write_store(store, size)
                for label, argv in (("report", cli("report", "--store", str(store), "--format", "json",
                                                   "-o", str(tmpdir / "report.json"))),
                                    ("audit-store", cli("audit", str(store), "--key", str(KEYS), "--format", "json",
                                                        "-o", str(tmpdir / "report.json"), "--fail-on", "never"))):
                    elapsed, peak, rc = measure(argv, env)
                    results[(size, label)] = (elapsed, peak, rc)
                    print(f"audit: {size:>9,} events    {label:<11} {elapsed:7.1f} s  "
                          f"{elapsed / size * 1e6:6.0f} µs/event    peak RSS {peak:6.0f} MB", flush=True)
                (tmpdir / "report.json").unlink(missing_ok=True)
                store.unlink()

    print("audit: side by side (µs per request / peak RSS MB)")
    print("audit: " + "requests".rjust(10) + "".join(f"  {fmt:>18}" for fmt in columns))
    for size in sizes:
        cells = []
        for fmt in columns:
            got = results.get((size, fmt))
            cells.append(f"{got[0] / size * 1e6:7.0f} / {got[1]:6.0f} MB" if got else "skipped".rjust(18))
        print(f"audit: {size:>10,}" + "".join(f"  {c:>18}" for c in cells))
    below = [s for s in sizes if s < 1_000_000]
    if 20000 in sizes and len(below) >= 2 and max(below) > 20000:
        big = max(below)
        for fmt in columns:
            small, large = results.get((20000, fmt)), results.get((big, fmt))
            if not small or not large:
                continue
            rss, per = large[1] / small[1], (large[0] / big) / (small[0] / 20000)
            ok = rss <= 1.3 and large[1] < 300 and per <= 1.3
            print(f"audit: {fmt}: {big:,} vs 20,000: peak RSS ×{rss:.2f} ({large[1]:.0f} MB), time per request "
                  f"×{per:.2f} (targets ≤ 1.3, < 300 MB, ≤ 1.3: {'meets' if ok else 'MISSES'})")
    for fmt in columns:
        got = results.get((1_000_000, fmt))
        if got:
            print(f"audit: {fmt}: 1,000,000 requests {'completed' if got[2] in (0, 1) else 'FAILED'} "
                  f"in {got[0]:.0f} s, peak RSS {got[1]:.0f} MB")


if __name__ == "__main__":
    main()
