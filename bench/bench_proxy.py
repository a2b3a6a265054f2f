"""Proxy benchmark: `proxy`, `exec` and a headless `run` against plain mitmdump, interleaved in one run.

    .venv/bin/python bench/bench_proxy.py [--requests 300] [--rounds 10] [--memory 10000,50000]
        [--variants proxy,exec,run] (also: proxy-thread, exec-thread: the audit in a thread)

Every proxy runs as a subprocess in mitmproxy's upstream mode in front of the same local HTTPS
upstream (inspector.emit.upstream, which also answers CONNECT), with the same options
(connection_strategy=lazy, the upstream's certificate verified):

* plain mitmdump, three of them: forwarding; answering the pixel itself (a one-line script, as a
  sinkhole does); and passing a host through untouched (`ignore_hosts`, as the inspector does
  for a host no policy names);
* `telemetry-inspector proxy`, `exec -- sleep …` (isolated as by default, in a network namespace
  where it can be had; the load comes from outside the command) and `run` with Textual's
  headless driver, each auditing in its helper process (the default), with a store.

Three kinds of traffic, each at concurrency 1 and 4, keep-alive clients: refine's telemetry pixel
(HTTPS GET, Base64 JSON in the query) forwarded to the upstream (matched, decoded, audited and
stored by the inspector); the same pixel sinkholed (a policy rule in each inspector's store, and
the answering mitmdump); and a GET to example.org, which no policy names (passed through: not
decrypted, not audited; 4× the requests, which are ~4× faster). Each inspector's run comes between two runs of its plain mitmdump and
is held to their mean (the machine's speed drifts within seconds here: a ratio to one neighbour
moved by ±0.1), and rounds alternate the order of the inspectors. Prints throughput, p50/p99 latency and the CPU time per request of the proxy's process,
its helper process and this process (load generator and upstream); the throughput ratio of each
to its plain mitmdump (median of the per-round ratios, each to the mean of the two runs beside it; targets ≥ 0.95, pass-through ≥ 0.98), all
side by side; then the `proxy` inspector's RSS after N requests (target: flat). Reports; never
fails (exit 0).
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
from inspector.emit.upstream import PIXEL_GIF, Upstream  # noqa: E402
from inspector.store import Store  # noqa: E402

MITMDUMP = Path(sys.executable).with_name("mitmdump")
OTHER_HOST = "example.org"  # no policy, collector or rule names it
PIXEL_POLICY = "refine-v4-browser"
ANSWER = f"""from mitmproxy import http

def request(flow):
    flow.response = http.Response.make(200, {PIXEL_GIF!r}, {{"Content-Type": "image/gif", "Cache-Control": "no-store"}})
"""
TARGETS = {"forwarded": 0.95, "sinkholed": 0.95, "pass-through": 0.98}
PASS_THROUGH_FACTOR = 4  # passed-through runs send this many times --requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Proxy:
    def __init__(self, name: str, args: list[str], port: int, env: dict[str, str] | None = None,
                 store: Path | None = None) -> None:
        self.name, self.port, self.store = name, port, store
        self._listener: int | None = None
        # A session of its own: exec's command and every helper stop with it (killpg of its id)
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT,
                                     env=env, start_new_session=True)
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

    def listener(self) -> int:
        """The process that holds the listening socket: the proxy's (for `run`, a child of the
        UI's process; otherwise the process started)."""
        if self._listener is None:
            self._listener = _listening_pid(self.port, _tree(self.proc.pid)) or self.proc.pid
        return self._listener

    def rss_mb(self) -> float:
        """The RSS of every process of the proxy (its helper, for `run` its UI too)."""
        total = 0.0
        for pid in _tree(self.proc.pid):
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1]) / 1024
            except OSError:
                pass
        return total

    def cpu_seconds(self) -> tuple[float, float, float]:
        """CPU time (user + system) used so far by the proxy's process, by its children (the
        audit helper) and by the rest of the tree (`run`'s UI)."""
        tick = os.sysconf("SC_CLK_TCK")
        proxy = self.listener()
        helpers = _tree(proxy)[1:]
        others = [pid for pid in _tree(self.proc.pid) if pid != proxy and pid not in helpers]
        return (_cpu(proxy) / tick, sum(_cpu(pid) for pid in helpers) / tick,
                sum(_cpu(pid) for pid in others) / tick)

    def stop(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)
        except ProcessLookupError:
            pass


def _cpu(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)


def _tree(pid: int) -> list[int]:
    """`pid` and its descendants, parents first."""
    found, queue = [], [pid]
    while queue:
        current = queue.pop(0)
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                queue += [int(k) for k in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _listening_pid(port: int, pids: list[int]) -> int | None:
    """Which of `pids` holds a socket listening on 127.0.0.1:`port` (from /proc/net/tcp)."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":
            inodes.add(f"socket:[{fields[9]}]")
    for pid in pids:
        try:
            if any(os.readlink(fd) in inodes for fd in Path(f"/proc/{pid}/fd").iterdir()):
                return pid
        except OSError:
            continue
    return None


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


def inspector_args(variant: str, port: int, confdir: Path, store: Path, common: list[str]) -> list[str]:
    base = [sys.executable, "-m", "inspector"]
    where = ["--listen", f"127.0.0.1:{port}", "--confdir", str(confdir), "--store", str(store), *common]
    audit = ["--audit", "thread"] if variant.endswith("-thread") else []
    if variant.startswith("proxy"):
        return [*base, "proxy", *where, *audit]
    if variant.startswith("exec"):
        return [*base, "exec", *where, *audit, "--", "sleep", "100000"]
    return [*base, "run", *where, *audit]


def set_pixel_rule(proxy: Proxy, action: str) -> None:
    assert proxy.store is not None
    with Store(proxy.store) as store:
        store.set_rule(PIXEL_POLICY, "policy", action)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per run, traffic and concurrency")
    parser.add_argument("--rounds", type=int, default=10,
                        help="rounds, alternating the order of the proxies (more, shorter rounds: a steadier median)")
    parser.add_argument("--variants", default="proxy,exec,run",
                        help="inspector variants: proxy, exec, run, proxy-thread, exec-thread")
    parser.add_argument("--memory", default="10000,50000", help="RSS checkpoints of `proxy` (requests); empty: skip")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]

    pixel = next(r for r in wire_requests() if r.channel == PIXEL_POLICY)
    host = pixel.url.split("/")[2]
    target = pixel.url.split(host, 1)[1]
    concurrencies = (1, 4)

    with tempfile.TemporaryDirectory() as tmp, Upstream() as upstream:
        tmpdir = Path(tmp)
        confdir = tmpdir / "mitmproxy"
        answer = tmpdir / "answer.py"
        answer.write_text(ANSWER)
        common = ["--mode", f"upstream:http://127.0.0.1:{upstream.port}",
                  "--set", f"ssl_verify_upstream_trusted_ca={upstream.ca_file}"]
        mitmdump = [str(MITMDUMP), "-q", "--listen-host", "127.0.0.1", "--set", f"confdir={confdir}",
                    "--set", "connection_strategy=lazy", *common]
        plain: dict[str, Proxy] = {}
        for traffic, extra in (("forwarded", []), ("sinkholed", ["-s", str(answer)]),
                               ("pass-through", ["--ignore-hosts", OTHER_HOST.replace(".", r"\.")])):
            port = free_port()
            plain[traffic] = Proxy(f"mitmdump {traffic}", [*mitmdump, "-p", str(port), *extra], port)
        inspectors: list[Proxy] = []
        headless = dict(os.environ, TEXTUAL_DRIVER="textual.drivers.headless_driver:HeadlessDriver")
        for variant in variants:
            port = free_port()
            store = tmpdir / f"store-{variant}.json"
            inspectors.append(Proxy(variant, inspector_args(variant, port, confdir, store, common), port,
                                    env=headless if variant.startswith("run") else None, store=store))
        ca = confdir / "mitmproxy-ca-cert.pem"
        both = tmpdir / "both-cas.pem"  # the pass-through host shows the upstream's certificate
        both.write_text(ca.read_text() + Path(upstream.ca_file).read_text())
        hosts = {"forwarded": (host, target, ca), "sinkholed": (host, target, ca),
                 "pass-through": (OTHER_HOST, "/", both)}
        results: dict[tuple[str, str, int], list[dict[str, float]]] = {}
        try:
            for proxy in [*plain.values(), *inspectors]:  # warm-up: certificates minted, code paths loaded
                for traffic in ("forwarded", "pass-through"):
                    name, path, cafile = hosts[traffic]
                    load(proxy.port, cafile, name, path, 100, 4)
            for traffic in ("forwarded", "sinkholed", "pass-through"):
                for proxy in inspectors:  # the rule for the pixel, picked up within the rules poll (0.5 s)
                    set_pixel_rule(proxy, "sinkhole" if traffic == "sinkholed" else "allow")
                time.sleep(1.5)
                name, path, cafile = hosts[traffic]
                baseline = plain[traffic]

                # Passed-through requests are ~4× faster: as many of them would make a run of a
                # quarter second, at the mercy of one hiccup, and a CPU figure of a few ticks.
                count = args.requests * (PASS_THROUGH_FACTOR if traffic == "pass-through" else 1)

                def measure(proxy: Proxy, concurrency: int, count: int = count) -> dict[str, float]:
                    before, bench_before = proxy.cpu_seconds(), os.times()
                    figures = load(proxy.port, cafile, name, path, count, concurrency)  # noqa: B023
                    after, bench_after = proxy.cpu_seconds(), os.times()
                    figures["cpu"] = (after[0] - before[0]) / count * 1e6
                    figures["helper"] = (after[1] - before[1]) / count * 1e6
                    figures["ui"] = (after[2] - before[2]) / count * 1e6
                    figures["bench"] = (bench_after.user + bench_after.system - bench_before.user
                                        - bench_before.system) / count * 1e6
                    return figures

                for round_no in range(args.rounds):
                    for concurrency in concurrencies:
                        # Each inspector's run between two of plain mitmdump's: its ratio is to
                        # their mean, so the machine's drift over a round cancels.
                        order = inspectors if round_no % 2 == 0 else list(reversed(inspectors))
                        before = measure(baseline, concurrency)
                        results.setdefault((baseline.name, traffic, concurrency), []).append(before)
                        for proxy in order:
                            figures = measure(proxy, concurrency)
                            after = measure(baseline, concurrency)
                            results.setdefault((baseline.name, traffic, concurrency), []).append(after)
                            figures["base_rps"] = (before["rps"] + after["rps"]) / 2
                            figures["base_cpu"] = (before["cpu"] + after["cpu"]) / 2
                            results.setdefault((proxy.name, traffic, concurrency), []).append(figures)
                            before = after
            print(f"proxy: {args.requests} HTTPS requests ({args.requests * PASS_THROUGH_FACTOR} passed through) "
                  f"× {args.rounds} rounds per traffic and concurrency, keep-alive, through a local upstream; "
                  f"medians of rounds")
            ratios: dict[tuple[str, str, int], float] = {}
            cpu_ratios: dict[tuple[str, str, int], float] = {}
            for traffic in ("forwarded", "sinkholed", "pass-through"):
                for concurrency in concurrencies:
                    for proxy in [plain[traffic], *inspectors]:
                        runs = results[(proxy.name, traffic, concurrency)]
                        f = {k: statistics.median(r[k] for r in runs) for k in ("rps", "p50", "p99", "cpu", "helper",
                                                                                  "ui", "bench")}
                        helper = f"  helper {f['helper']:4.0f} µs" if f["helper"] >= 1 else ""
                        if f["ui"] >= 1:
                            helper += f"  UI {f['ui']:4.0f} µs"
                        extra = ""
                        if proxy not in plain.values():
                            per_round = [i["rps"] / i["base_rps"] for i in runs]
                            ratio = ratios[(proxy.name, traffic, concurrency)] = statistics.median(per_round)
                            cpu_ratio = cpu_ratios[(proxy.name, traffic, concurrency)] = statistics.median(
                                i["base_cpu"] / i["cpu"] for i in runs if i["cpu"] > 0)
                            extra = (f"  ratio {ratio:.2f} ({', '.join(f'{r:.2f}' for r in per_round)})"
                                     f"  CPU ratio {cpu_ratio:.2f}")
                        print(f"proxy: {traffic:<12} c={concurrency} {proxy.name:<22} {f['rps']:6.0f} req/s  "
                              f"p50 {f['p50']:6.2f} ms  p99 {f['p99']:6.2f} ms  CPU/request: proxy {f['cpu']:5.0f} µs"
                              f"{helper}  (load + upstream {f['bench']:4.0f} µs){extra}")
            print("proxy: throughput ratio to plain mitmdump (median of rounds), side by side")
            columns = [(t, c) for t in ("forwarded", "sinkholed", "pass-through") for c in concurrencies]
            print("proxy: " + "variant".ljust(14) + "".join(f"{t[:11]} c={c}".rjust(17) for t, c in columns))
            for proxy in inspectors:
                cells = []
                for traffic, concurrency in columns:
                    ratio = ratios[(proxy.name, traffic, concurrency)]
                    # (three digits: 0.975 would print as a 0.98 that misses 0.98)
                    cells.append(f"{ratio:.3f} {'meets' if ratio >= TARGETS[traffic] else 'MISSES'}")
                print("proxy: " + proxy.name.ljust(14) + "".join(c.rjust(17) for c in cells))
            print("proxy: targets ≥ 0.95 forwarded and sinkholed, ≥ 0.98 pass-through")
            print("proxy: CPU ratio: plain mitmdump's CPU per request over the inspector's proxy process's "
                  "(median of rounds; the proxy's process is the ceiling: one event loop), side by side")
            print("proxy: " + "variant".ljust(14) + "".join(f"{t[:11]} c={c}".rjust(17) for t, c in columns))
            for proxy in inspectors:
                print("proxy: " + proxy.name.ljust(14) + "".join(
                    f"{cpu_ratios[(proxy.name, t, c)]:.2f}".rjust(17) for t, c in columns))
            checkpoints = [int(x) for x in args.memory.split(",") if x.strip()]
            subject = next((p for p in inspectors if p.name == "proxy"), None)
            if checkpoints and subject is not None:
                set_pixel_rule(subject, "allow")
                time.sleep(1.5)
                done = 100 + args.rounds * len(concurrencies) * args.requests * 2  # audited so far
                print(f"memory: `proxy` RSS (with its helper) after {done:,} requests: {subject.rss_mb():.0f} MB")
                for checkpoint in checkpoints:
                    if checkpoint <= done:
                        continue
                    load(subject.port, ca, host, target, checkpoint - done, 4)
                    done = checkpoint
                    print(f"memory: `proxy` RSS (with its helper) after {done:,} requests: {subject.rss_mb():.0f} MB "
                          f"(plain mitmdump, idle: {plain['forwarded'].rss_mb():.0f} MB)")
        finally:
            for proxy in [*plain.values(), *inspectors]:
                proxy.stop()


if __name__ == "__main__":
    main()
