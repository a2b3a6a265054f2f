"""End to end, in-process: a real mitmproxy on 127.0.0.1 with the inspector addon, a real HTTPS
upstream with its own CA, and the project's emitters sending every built-in channel's wire format."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import Counter

import pytest
from conftest import KEYS, cli_env, wait_for

from inspector.emit.channels import WireRequest, wire_requests
from inspector.emit.send import SendError, send


def by_channel(channel: str, name: str | None = None) -> WireRequest:
    for request in wire_requests(KEYS):
        if request.channel == channel and (name is None or request.name == name):
            return request
    raise LookupError(f"no wire request {channel}/{name}")


def units(request: WireRequest) -> int:
    """Events one request makes: one per HTTP request, one per WebSocket message."""
    return len(request.ws_messages) if request.ws_messages else 1


def _per_channel(requests: list[WireRequest]) -> Counter:
    counts: Counter = Counter()
    for request in requests:
        counts[request.channel] += units(request)
    return counts


@pytest.mark.slow
def test_every_channel_is_captured_decoded_audited_stored_and_forwarded(live_proxy, upstream):
    proxy = live_proxy(keys=(KEYS,))
    requests = wire_requests(KEYS)
    assert {r.channel for r in requests} >= {"refine-v3-browser", "refine-v4-browser", "hasura-console",
                                              "hasura-cli", "appsmith-server-usage"}
    for request in requests:
        response = proxy.send(request)
        expected = 101 if request.ws_messages else 200
        assert response.status == expected, (request.channel, request.name, response.status)

    events = proxy.events()
    assert len(events) == sum(units(r) for r in requests)
    # allowed: every HTTP request and every WebSocket message reached the upstream, body intact
    http_requests = [r for r in requests if not r.ws_messages]
    assert len(upstream.requests) - sum(1 for r in requests if r.ws_messages) == len(http_requests)
    assert len(upstream.ws_messages) == sum(len(r.ws_messages) for r in requests)

    seen = Counter(e["policy"] for e in events)
    assert seen == _per_channel(requests)  # each request matched the policy it was written for
    for event in events:
        assert event["action"] == "allow"
        assert event["decoding"], event["url"]
    # the JWE was decrypted with the bundled test key, not left unverifiable
    jwe = [e for e in events if e["policy"] == "refine-v3-browser" and "jwe" in " ".join(e["decoding"])]
    assert jwe and any(isinstance(e["decoded"], dict) for e in jwe)
    # each planted violation shows up as its finding on the event from that request
    codes = {(e["policy"]): set() for e in events}
    for event in events:
        codes[event["policy"]].update(f["code"] for f in event["findings"])
    for request in requests:
        for code in request.expect:
            assert code in codes.get(request.channel, set()), (request.channel, request.name, code)


def test_block_and_sinkhole_never_reach_the_upstream(live_proxy, upstream):
    proxy = live_proxy()
    pixel = by_channel("refine-v4-browser")
    usage = by_channel("appsmith-server-usage")
    cli = by_channel("hasura-cli")
    proxy.store.set_rule("refine-v4-browser", "policy", "sinkhole")
    proxy.store.set_rule("Appsmith", "vendor", "sinkhole")
    proxy.store.set_rule("hasura-cli", "policy", "block")
    proxy.addon.reload_rules()

    gif = proxy.send(pixel)
    assert gif.status == 200 and gif.body.startswith(b"GIF8")
    answer = proxy.send(usage)
    assert answer.status == 200 and json.loads(answer.body) == {"success": True}
    blocked = proxy.send(cli)
    assert blocked.status == 403
    assert upstream.count() == 0

    actions = {e["policy"]: e["action"] for e in proxy.events()}
    assert actions == {"refine-v4-browser": "sinkhole", "appsmith-server-usage": "sinkhole", "hasura-cli": "block"}


@pytest.mark.slow
def test_blocked_requests_stay_local_under_load_and_decode_errors(live_proxy, upstream):
    proxy = live_proxy(default_action="block")  # like --block-all
    pixel = by_channel("refine-v4-browser")
    broken = WireRequest(channel=pixel.channel, name="broken", method="GET",
                         url=pixel.url.split("?")[0] + "?payload=%%%not-base64" + "A" * 300,
                         headers=pixel.headers)
    statuses = Counter()
    for i in range(1000):
        statuses[proxy.send(broken if i % 2 else pixel).status] += 1
    assert statuses == {403: 1000}
    assert upstream.count() == 0
    events = proxy.events()
    assert len(events) == 1000 and {e["action"] for e in events} == {"block"}
    assert any(f["code"] == "decode-error" for e in events for f in e["findings"])


def test_block_kill_mode_drops_the_connection(live_proxy, upstream):
    proxy = live_proxy(default_action="block", block_mode="kill")
    with pytest.raises(SendError):
        proxy.send(by_channel("refine-cli"))
    assert upstream.count() == 0


@pytest.mark.slow
def test_rule_from_another_process_applies_within_a_second(live_proxy, upstream):
    proxy = live_proxy()
    pixel = by_channel("refine-v4-browser")
    assert proxy.send(pixel).status == 200
    assert upstream.count() == 1
    done = subprocess.run([sys.executable, "-m", "inspector", "rules", "block", "refine-v4-browser",
                           "--store", str(proxy.store.path)], capture_output=True, text=True, timeout=60,
                          env=cli_env())
    assert done.returncode == 0, done.stderr
    changed = time.monotonic()
    # poll like an app would: the first blocked answer must come within one second of the change
    while proxy.send(pixel).status != 403:
        assert time.monotonic() - changed < 1.0, "the rule did not apply within one second"
        time.sleep(0.05)
    before = upstream.count()
    assert proxy.send(pixel).status == 403
    assert upstream.count() == before


def test_websocket_messages_are_events_and_block_applies_to_the_connection(live_proxy, upstream):
    proxy = live_proxy()
    console = next(r for r in wire_requests(KEYS) if r.ws_messages)
    proxy.send(console)
    assert wait_for(lambda: len(upstream.ws_messages) == len(console.ws_messages), 5)
    events = [e for e in proxy.events() if e["transport"] == "websocket"]
    assert len(events) == len(console.ws_messages)
    assert {e["policy"] for e in events} == {console.channel}

    upstream.reset()
    proxy.store.set_rule(console.channel, "policy", "block")
    proxy.addon.reload_rules()
    with pytest.raises(SendError):
        proxy.send(console)
    assert upstream.count() == 0 and upstream.ws_messages == []


def test_hosts_without_a_policy_pass_through_untouched(live_proxy, upstream):
    proxy = live_proxy()
    other = WireRequest(channel="", name="unrelated", method="GET", url="https://example.org/index.html",
                        headers=(("accept", "*/*"),))
    # not intercepted: the client sees the upstream's own certificate, not one minted by the proxy
    response = send(other, proxy=proxy.address, ca_file=upstream.ca_file)
    assert response.status == 200
    with pytest.raises(SendError):
        send(other, proxy=proxy.address, ca_file=proxy.ca)
    assert proxy.events() == []


def test_http2_clients_are_inspected_and_blocked_like_http1(live_proxy, upstream):
    from inspector.emit.send import send_h2
    proxy = live_proxy()
    pixel = by_channel("refine-v4-browser", "email-in-project-id")
    usage = by_channel("appsmith-server-usage")
    assert send_h2(pixel, proxy.address, proxy.ca).status == 200
    assert send_h2(usage, proxy.address, proxy.ca).status == 200
    assert upstream.count() == 2 and upstream.requests[1].body == usage.body  # forwarded intact
    proxy.store.set_rule("Refine", "vendor", "block")
    proxy.addon.reload_rules()
    assert send_h2(pixel, proxy.address, proxy.ca).status == 403
    assert upstream.count() == 2
    events = proxy.events()
    assert [e["policy"] for e in events] == ["refine-v4-browser", "appsmith-server-usage", "refine-v4-browser"]
    assert "pii" in {f["code"] for f in events[0]["findings"]}
    assert [e["action"] for e in events] == ["allow", "allow", "block"]


def test_redact_stores_payloads_with_personal_data_masked(live_proxy, upstream):
    proxy = live_proxy(redact=True)
    pixel = by_channel("refine-v4-browser", "email-in-project-id")
    assert proxy.send(pixel).status == 200
    assert upstream.requests[0].path == pixel.url.split(pixel.url.split("/")[2], 1)[1]  # the wire is untouched
    stored = proxy.store.path.read_text()
    emails = [f["evidence"] for e in proxy.events() for f in e["findings"] if f["code"] == "pii"]
    assert emails and all("@" not in str(evidence) or "*" in str(evidence) for evidence in emails)
    decoded = json.dumps(proxy.events()[0]["decoded"])
    raw = json.loads(__import__("base64").b64decode(pixel.url.split("payload=", 1)[1]))
    secret = next(v for v in raw.values() if isinstance(v, str) and "@" in v)
    assert secret not in decoded and secret not in stored


def test_discover_records_likely_telemetry_on_unknown_hosts(live_proxy, upstream):
    proxy = live_proxy(discover=True)
    track = WireRequest(channel="", name="unknown-tracker", method="POST", url="https://example.org/v1/track",
                        headers=(("content-type", "application/json"),),
                        body=b'{"event":"app_opened","anonymousId":"u-1","properties":{"os":"linux"}}')
    page = WireRequest(channel="", name="page", method="GET", url="https://example.org/index.html",
                       headers=(("accept", "text/html"),))
    assert proxy.send(track).status == 200  # intercepted now: the proxy's CA is what the client sees
    assert proxy.send(page).status == 200
    assert upstream.count() == 2
    events = proxy.events()
    assert [e["path"] for e in events] == ["/v1/track"]  # the page is not telemetry: not recorded
    assert events[0]["policy"] is None and events[0]["decoded"]["event"] == "app_opened"
    assert "unknown-endpoint" in {f["code"] for f in events[0]["findings"]}


@pytest.mark.slow
def test_the_demo_sends_every_channel_with_a_decrypted_jwe_a_block_and_a_sinkhole(tmp_path):
    from inspector.cli.app import App
    from inspector.emit.demo import DemoRunner
    from inspector.proxy.config import ProxyConfig
    from inspector.proxy.embed import ProxyThread

    settings, addon, store = App().build_proxy(
        ProxyConfig(listen="127.0.0.1:0", store_path=tmp_path / "s.json", confdir=tmp_path / "mitmproxy"),
        keep_events=True)
    addon.freeze_at_start = False  # (this process is the test run's, not a proxy's)
    runner = DemoRunner(settings, addon, store, pause=0).prepare()
    thread = ProxyThread(settings, addon).start()
    try:
        runner.send_all(thread.port)
        assert addon.wait_idle(15)
        events = store.events()
    finally:
        thread.stop()
        addon.stop()
        store.close()
        runner.close()
    assert runner.failed == 0
    assert {e["policy"] for e in events} == {r.channel for r in wire_requests(KEYS)}
    jwe = [e for e in events if e["policy"] == "refine-v3-browser"]
    opened = [isinstance(e["decoded"], dict) for e in jwe]
    unverifiable = ["unverifiable-encrypted" in {f["code"] for f in e["findings"]} for e in jwe]
    assert sorted(opened) == [False, True] and sorted(unverifiable) == [False, True]  # one opened, one not
    assert {e["action"] for e in events} == {"allow", "block", "sinkhole"}
    assert not runner.keys_dir.exists()  # the generated demo keys are gone


# ---------------------------------------------------------------------- the worker's inbox


def _pixel_observation(i: int):
    from inspector.core.observation import Observation
    pixel = by_channel("refine-v4-browser")
    return Observation(method="GET", url=f"{pixel.url}&n={i}", headers=(("User-Agent", "test"),))


@pytest.mark.slow
def test_worker_batches_and_finishes_what_is_pending_when_stopped(tmp_path):
    from inspector.core.rules import Decision
    from inspector.proxy import addon as addon_module
    from inspector.store import Store, open_recording

    store, _ = open_recording(tmp_path / "store.json", keep_events=False)
    addon = addon_module.TelemetryInspector(store=store)
    batches: list[int] = []

    class Recording(addon_module.Worker):
        def _process(self, batch):
            batches.append(len(batch))
            super()._process(batch)

    worker = Recording(addon)
    n = 2 * addon_module.BATCH_MAX + 200
    for i in range(n):  # queued before the worker runs: a backlog
        worker.submit(_pixel_observation(i), Decision("allow", None), None)
    assert worker.submitted == n and not worker.is_idle()
    worker.start()
    worker.stop()
    worker.join(30)
    assert not worker.is_alive()
    assert worker.processed == n and worker.is_idle()
    assert batches == [addon_module.BATCH_MAX, addon_module.BATCH_MAX, 200]  # one store write each
    store.close()
    with Store(tmp_path / "store.json", readonly=True) as reader:
        assert reader.event_count() == n


@pytest.mark.slow
def test_worker_wakes_for_a_lone_observation_and_drops_beyond_its_bound(caplog):
    from inspector.core.rules import Decision
    from inspector.proxy.addon import BATCH_WINDOW, TelemetryInspector, Worker

    addon = TelemetryInspector()
    addon.rules_poll = 30.0  # its idle wait: only the wake-up can end it early
    worker = Worker(addon)
    worker.start()
    try:
        time.sleep(0.2)  # asleep with nothing to do
        started = time.monotonic()
        worker.submit(_pixel_observation(0), Decision("allow", None), None)
        assert wait_for(worker.is_idle, 5)
        assert time.monotonic() - started < BATCH_WINDOW + 1.0
        assert addon.stats["events"] == 1
    finally:
        worker.stop()
        worker.join(10)
    assert not worker.is_alive()

    full = Worker(addon)  # not started: nothing drains it
    full.max_pending = 3
    with caplog.at_level("WARNING", logger="telemetry_inspector"):
        for i in range(3 + 2500):
            full.submit(_pixel_observation(i), Decision("block", None), None)
    assert full.submitted == 3 and len(full.pending) == 3 and full.dropped == 2500
    warnings = [r.getMessage() for r in caplog.records if "audit queue full" in r.getMessage()]
    assert len(warnings) == 3  # the first drop, then every 1,000th: not a line per event
    assert "2000 event(s) dropped" in warnings[-1]
