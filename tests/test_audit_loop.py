"""The audit process fed from mitmproxy's event loop, as the proxy runs it: no thread in the
proxy's process, batches written without blocking the loop, acknowledgements read by a loop
callback, the rules polled by a loop timer; a child that dies hands over to a thread here.

Each test runs a real asyncio loop and a real child (`python -m inspector.proxy.auditproc`)
with a real store; the observations are the built-in channels' wire requests.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from pathlib import Path

from inspector.core.keys import Keyring
from inspector.core.policy import Catalogue
from inspector.core.rules import Decision
from inspector.emit.channels import observation_of, wire_requests
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.assemble import audit_in_process
from inspector.proxy.auditproc import AuditProcess
from inspector.proxy.config import ProxyConfig
from inspector.store import Store

ROOT = Path(__file__).resolve().parent.parent
KEYS = ROOT / "fixtures" / "keys"
AUDIT_THREADS = {"telemetry-inspector-audit-feeder", "telemetry-inspector-audit-acks"}


def _observations(channel: str = "refine-v4-browser") -> list:
    return [obs for r in wire_requests(KEYS) if r.channel == channel and not r.ws_messages
            for obs in observation_of(r)]


def _addon(tmp_path: Path, events: str | None = "full") -> tuple[TelemetryInspector, list, Store]:
    store = Store(tmp_path / "store.json", keep_events=False)
    seen: list = []

    def callback(event) -> None:
        seen.append((event, threading.current_thread().name))
    addon = TelemetryInspector(Catalogue.load(), Keyring.from_paths([KEYS]), store=store, callbacks=[callback])
    audit_in_process(addon, ProxyConfig(), store, output=None, events=events)
    return addon, seen, store


async def _until(predicate, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        await asyncio.sleep(0.02)
    return predicate()


def _stored(path: Path) -> list[dict]:
    with Store(path, readonly=True) as store:
        return store.events()


def test_on_the_event_loop_the_proxy_process_runs_no_audit_thread(tmp_path):
    addon, seen, store = _addon(tmp_path)
    sample = _observations()
    threads: set[str] = set()

    async def main() -> None:
        addon.start()  # (mitmproxy's `running` hook, on its loop)
        assert isinstance(addon.worker, AuditProcess) and addon.worker.is_alive()
        for _ in range(5):
            for obs in sample:
                addon.worker_submit(obs, Decision("allow", None), "refine-v4-browser")
            await asyncio.sleep(0.01)
        assert await _until(addon.worker.is_idle)
        threads.update(t.name for t in threading.enumerate())
        addon.stop()

    try:
        asyncio.run(main())
    finally:
        store.close()
    sent = 5 * len(sample)
    assert not threads & AUDIT_THREADS  # neither a feeder nor an acknowledgement thread
    assert len(seen) == sent and {name for _, name in seen} == {"MainThread"}  # the callbacks, on the loop
    assert all(e.policy == "refine-v4-browser" and e.store_id is not None for e, _ in seen)
    assert addon.stats["events"] == sent and addon.stats["allowed"] == sent
    assert [e["doc_id"] for e in _stored(tmp_path / "store.json")] == [e.store_id for e, _ in seen]


def test_a_batch_larger_than_the_socket_takes_is_written_as_it_drains_without_holding_the_loop(tmp_path):
    addon, _seen, store = _addon(tmp_path, events=None)
    base = _observations()[0]
    from dataclasses import replace
    big = [replace(base, body=bytes([65 + i % 26]) * (512 * 1024)) for i in range(48)]  # 24 MiB in all
    ticks: list[float] = []
    waiting: list[int] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.monotonic())
            await asyncio.sleep(0.005)

    async def main() -> None:
        addon.start()
        task = asyncio.create_task(ticker())
        worker = addon.worker
        for obs in big:
            addon.worker_submit(obs, Decision("allow", None), "refine-v4-browser")
        started = len(ticks)
        while not worker.is_idle():
            waiting.append(len(worker._out))
            await asyncio.sleep(0.01)
        assert len(ticks) - started > 5  # the loop went on while the child read
        task.cancel()
        addon.stop()

    try:
        asyncio.run(main())
    finally:
        store.close()
    assert max(waiting) > 0  # bytes waited for the socket: the writer callback sent them
    stored = _stored(tmp_path / "store.json")
    assert len(stored) == len(big)
    assert addon.stats["events"] == len(big)


def test_a_child_that_dies_hands_over_to_a_thread_here_and_nothing_later_is_lost(tmp_path, caplog):
    addon, seen, store = _addon(tmp_path)
    sample = _observations()

    async def main() -> None:
        addon.start()
        worker = addon.worker
        for obs in sample:
            addon.worker_submit(obs, Decision("allow", None), "refine-v4-browser")
        assert await _until(worker.is_idle)
        worker.child.kill()
        worker.child.wait()
        assert await _until(lambda: worker._fallback is not None, 10)  # seen by the reader callback
        for obs in sample:
            addon.worker_submit(obs, Decision("sinkhole", None), "refine-v4-browser")
        assert await _until(worker.is_idle)
        addon.stop()

    with caplog.at_level(logging.ERROR, logger="telemetry_inspector"):
        try:
            asyncio.run(main())
        finally:
            store.close()
    assert any("audit process ended" in r.getMessage() and "from now on" in r.getMessage() for r in caplog.records)
    actions = [e["action"] for e in _stored(tmp_path / "store.json")]
    assert actions == ["allow"] * len(sample) + ["sinkhole"] * len(sample)  # the later ones, by the thread
    assert [e.action for e, _ in seen] == actions  # and each reached the callbacks


def test_stopped_from_another_thread_while_the_loop_runs_everything_queued_is_recorded(tmp_path):
    addon, _seen, store = _addon(tmp_path, events=None)
    sample = _observations()
    loop = asyncio.new_event_loop()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(lambda: (addon.start(), started.set()))
        loop.run_forever()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        assert started.wait(30)
        for obs in sample * 3:  # submitted from this thread: the flush is scheduled on the loop
            addon.worker_submit(obs, Decision("allow", None), "refine-v4-browser")
        addon.stop(timeout=30)  # before the batch window passes: stop hands the queue over
        assert addon.worker is None
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
        store.close()
    assert len(_stored(tmp_path / "store.json")) == 3 * len(sample)


def test_the_rules_are_polled_on_the_loop_and_an_unchanged_store_keeps_the_book(tmp_path):
    addon, _seen, store = _addon(tmp_path, events=None)
    addon.rules_poll = 0.05
    books: list = []

    async def main() -> None:
        addon.start()
        await asyncio.sleep(0.3)
        books.append(addon.rules)  # polled several times: the same book (its memo stands)
        store.set_rule("refine-v4-browser", "policy", "block")
        assert await _until(lambda: addon.rules is not books[0], 5)
        books.append(addon.rules)
        await asyncio.sleep(0.3)
        books.append(addon.rules)
        addon.stop()

    try:
        asyncio.run(main())
    finally:
        store.close()
    assert books[1].decide("refine-v4-browser", "refine", "x").action == "block"
    assert books[2] is books[1]


def test_observations_and_decisions_cross_to_the_child_whole():
    # Observation, Rule and Decision pickle as tuples of their fields (cheaper on the loop);
    # every field must come back, in its place, for every kind of request.
    import pickle
    from dataclasses import fields

    from inspector.core.observation import Observation
    from inspector.core.rules import Rule

    observations = [obs for r in wire_requests(KEYS) for obs in observation_of(r)]
    assert len(observations) > 10
    assert any(obs.transport == "websocket" for obs in observations)
    def round_trip(value):  # (our own objects: what the audit process receives)
        return pickle.loads(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))  # noqa: S301
    for obs in observations:
        back = round_trip(obs)
        assert back == obs
        assert [getattr(back, f.name) for f in fields(Observation)] == \
            [getattr(obs, f.name) for f in fields(Observation)]
    rule = Rule("*.example.com", "host", "sinkhole")
    decision = Decision("sinkhole", rule, "rule *.example.com")
    assert round_trip(decision) == decision
    assert round_trip(decision).rule.target == "*.example.com"
