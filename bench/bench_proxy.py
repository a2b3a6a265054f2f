"""Proxy benchmark: the inspector's proxy against plain mitmdump, interleaved in one run.

    .venv/bin/python bench/bench_proxy.py [--requests 2000] [--rounds 4] [--memory 10000,50000]

Three proxies run as subprocesses in mitmproxy's upstream mode in front of the same local HTTPS
upstream (inspector.emit.upstream, which also answers CONNECT), with the same options: plain
mitmdump, `telemetry-inspector proxy` (auditing in its helper process, the default) and
`telemetry-inspector proxy --audit thread`. The traffic is refine's telemetry pixel (HTTPS GET,
Base64 JSON in the query): for the inspector it is matched, decoded, audited and stored.
Clients keep their connections alive; concurrency 1 and 8. Rounds alternate the order of the
proxies so machine noise hits them alike.

Prints throughput and p50/p99 latency of each and the ratio (target ≥ 0.90); the CPU time per
request of the proxy's process, of its audit process and of this process (load and upstream),
steadier than throughput on a shared machine; then the inspector's RSS (with its audit process)
after N requests (target: flat). Reports; never fails (exit 0).
"""

from __future__ import annotations

import argparse
import http.client
import os
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inspector.emit.channels import wire_requests  # noqa: E402
from inspector.emit.upstream import Upstream  # noqa: E402

MITMDUMP = Path(sys.executable).with_name("mitmdump")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proxy:
    def __init__(self, name: str, args: list[str], port: int) -> None:
        self.name, self.port = name, port
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return
            except OSError:
                if self.proc.poll() is not None:
                    raise SystemExit(f"{name} exited with {self.proc.returncode}") from None
                time.sleep(0.1)
        raise SystemExit(f"{name} did not start")

    def rss_mb(self) -> float:
        """The RSS of the proxy and of its child processes (the inspector's audit process)."""
        pids = [self.proc.pid]
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                pids += [int(k) for k in (task / "children").read_text().split()]
            except OSError:
                pass
        total = 0.0
        for pid in pids:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        return total

    def cpu_seconds(self) -> tuple[float, float]:
        """CPU time (user + system) used so far by the proxy's process and by its children."""
        tick = os.sysconf("SC_CLK_TCK")
        main = _cpu(self.proc.pid) / tick
        kids = 0.0
        for task in Path(f"/proc/{self.proc.pid}/task").iterdir():
            try:
                kids += sum(_cpu(int(k)) for k in (task / "children").read_text().split()) / tick
            except OSError:
                pass
        return main, kids

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def _cpu(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)


def client_run(port: int, ca: Path, host: str, target: str, count: int, latencies: list[float]) -> None:
    """One keep-alive HTTPS connection through the proxy (CONNECT), `count` requests."""
    context = ssl.create_default_context(cafile=str(ca))
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=context, timeout=30)
    conn.set_tunnel(host, 443)
    for _ in range(count):
        started = time.perf_counter()
        conn.request("GET", target, headers={"User-Agent": "bench", "Accept": "*/*"})
        response = conn.getresponse()
        response.read()
        if response.status >= 400:
            raise SystemExit(f"unexpected status {response.status}")
        latencies.append(time.perf_counter() - started)
    conn.close()


def load(port: int, ca: Path, host: str, target: str, total: int, concurrency: int) -> dict[str, float]:
    latencies: list[float] = []
    per = total // concurrency
    threads = [threading.Thread(target=client_run, args=(port, ca, host, target, per, latencies))
               for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    return {"rps": len(latencies) / elapsed, "p50": statistics.median(latencies) * 1000,
            "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per round and concurrency")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--memory", default="10000,50000", help="RSS checkpoints (requests); empty: skip")
    args = parser.parse_args()

    pixel = next(r for r in wire_requests() if r.channel == "refine-v4-browser")
    host = pixel.url.split("/")[2]
    target = pixel.url.split(host, 1)[1]

    with tempfile.TemporaryDirectory() as tmp, Upstream() as upstream:
        tmpdir = Path(tmp)
        confdir = tmpdir / "mitmproxy"
        common = ["--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                  "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}"]
        plain_port, inspector_port, thread_port = free_port(), free_port(), free_port()
        plain = Proxy("plain mitmdump", [str(MITMDUMP), "-q", "--listen-host", "127.0.0.1", "-p", str(plain_port),
                                         "--set", f"confdir={confdir}", "--set", "connection_strategy=lazy",
                                         *common], plain_port)
        inspector = Proxy("inspector", [sys.executable, "-m", "inspector", "proxy",
                                        "--listen", f"127.0.0.1:{inspector_port}", "--confdir", str(confdir),
                                        "--store", str(tmpdir / "store.json"), *common], inspector_port)
        threaded = Proxy("inspector, thread", [sys.executable, "-m", "inspector", "proxy", "--audit", "thread",
                                               "--listen", f"127.0.0.1:{thread_port}", "--confdir", str(confdir),
                                               "--store", str(tmpdir / "store-thread.json"), *common], thread_port)
        proxies = (plain, inspector, threaded)
        ca = confdir / "mitmproxy-ca-cert.pem"
        try:
            for proxy in proxies:  # warm-up: certificates minted, code paths loaded
                load(proxy.port, ca, host, target, 200, 4)
            results: dict[tuple[str, int], list[dict[str, float]]] = {}
            for round_no in range(args.rounds):
                for concurrency in (1, 8):
                    order = proxies if round_no % 2 == 0 else tuple(reversed(proxies))
                    for proxy in order:
                        before, bench_before = proxy.cpu_seconds(), os.times()
                        figures = load(proxy.port, ca, host, target, args.requests, concurrency)
                        after, bench_after = proxy.cpu_seconds(), os.times()
                        figures["cpu"] = (after[0] - before[0]) / args.requests * 1e6
                        figures["helper"] = (after[1] - before[1]) / args.requests * 1e6
                        figures["bench"] = (bench_after.user + bench_after.system - bench_before.user
                                            - bench_before.system) / args.requests * 1e6
                        results.setdefault((proxy.name, concurrency), []).append(figures)
            print(f"proxy: {args.requests} HTTPS requests × {args.rounds} rounds, keep-alive, "
                  f"to a local upstream; median of rounds")
            for concurrency in (1, 8):
                row = {}
                for proxy in proxies:
                    runs = results[(proxy.name, concurrency)]
                    row[proxy.name] = {k: statistics.median(r[k] for r in runs)
                                       for k in ("rps", "p50", "p99", "cpu", "helper", "bench")}
                    f = row[proxy.name]
                    helper = f"  helper {f['helper']:4.0f} µs" if f["helper"] >= 1 else ""
                    print(f"proxy: c={concurrency} {proxy.name:<17} {f['rps']:7.0f} req/s  "
                          f"p50 {f['p50']:6.2f} ms  p99 {f['p99']:6.2f} ms  "
                          f"CPU per request: proxy {f['cpu']:5.0f} µs{helper}  (load + upstream {f['bench']:4.0f} µs)")
                for variant in (inspector, threaded):
                    ratios = [i["rps"] / p["rps"] for i, p in zip(results[(variant.name, concurrency)],
                                                                   results[("plain mitmdump", concurrency)], strict=True)]
                    ratio = statistics.median(ratios)
                    print(f"proxy: c={concurrency} throughput ratio {variant.name}/plain {ratio:.2f} "
                          f"(per round {', '.join(f'{r:.2f}' for r in ratios)}; target ≥ 0.90: "
                          f"{'meets' if ratio >= 0.90 else 'MISSES'})")
                    cpu = statistics.median(p["cpu"] / i["cpu"] for i, p in zip(
                        results[(variant.name, concurrency)], results[("plain mitmdump", concurrency)], strict=True))
                    print(f"proxy: c={concurrency} CPU per request ratio plain/{variant.name}'s proxy process "
                          f"{cpu:.2f} (the proxy process is the ceiling: one event loop)")
            checkpoints = [int(x) for x in args.memory.split(",") if x.strip()]
            done = 200 + args.rounds * 2 * args.requests  # through the inspector so far
            print(f"memory: inspector RSS after {done:,} requests: {inspector.rss_mb():.0f} MB")
            for checkpoint in checkpoints:
                if checkpoint <= done:
                    continue
                load(inspector.port, ca, host, target, checkpoint - done, 8)
                done = checkpoint
                print(f"memory: inspector RSS after {done:,} requests: {inspector.rss_mb():.0f} MB "
                      f"(plain mitmdump, idle: {plain.rss_mb():.0f} MB)")
        finally:
            for proxy in proxies:
                proxy.stop()


if __name__ == "__main__":
    main()
