"""Run every benchmark, one after the other, and print their figures.

    ./dev bench            (or: .venv/bin/python bench/run_all.py [--quick])

Not part of the test suite: the figures are reported, never asserted. Each benchmark measures
what it compares side by side in one run, because this machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

FULL = [
    ["bench_pipeline.py"],
    ["bench_store.py", "--n", "100000"],
    ["bench_tui.py", "--events", "100000"],
    ["bench_proxy.py", "--requests", "300", "--rounds", "10", "--memory", "10000,50000"],
    ["bench_audit.py", "--sizes", "10000,20000,100000,1000000", "--formats", "json,html",
     "--store-sizes", "20000,100000"],
]
QUICK = [
    ["bench_pipeline.py", "--repeat", "500"],
    ["bench_store.py", "--n", "20000"],
    ["bench_tui.py", "--events", "20000", "--seconds", "2"],
    ["bench_proxy.py", "--requests", "200", "--rounds", "4", "--memory", ""],
    ["bench_audit.py", "--quick"],
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs (a minute or two)")
    args = parser.parse_args()
    cpus = len(__import__("os").sched_getaffinity(0))
    print(f"machine: {platform.platform()}, {cpus} CPUs, Python {platform.python_version()}, "
          f"{time.strftime('%Y-%m-%d %H:%M %Z')}", flush=True)
    failed = 0
    for script, *options in (QUICK if args.quick else FULL):
        print(f"\n== {script} {' '.join(options)}", flush=True)
        started = time.monotonic()
        rc = subprocess.call([sys.executable, str(HERE / script), *options])
        print(f"== {script}: {time.monotonic() - started:.0f} s" + (f", exit {rc}" if rc else ""), flush=True)
        failed += rc != 0
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
