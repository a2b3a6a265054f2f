"""The addon's request hooks on mitmproxy's own flow objects: what is decided at the head stands at
`request` only while nothing it rested on changed; a local answer is made once per flow."""

from __future__ import annotations

import pytest
from mitmproxy.test import taddons, tflow

from inspector.core.enforce import Enforcer
from inspector.core.rules import Rule, RuleBook
from inspector.emit.channels import wire_requests
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.worker import complete

PIXEL = next(r for r in wire_requests() if r.channel == "refine-v4-browser")
HOST = PIXEL.url.split("/")[2]
PATH = PIXEL.url.split(HOST, 1)[1]


class Inbox:
    def __init__(self) -> None:
        self.items: list = []

    def submit(self, obs, decision, policy_id, extras=None) -> None:
        self.items.append((complete(obs, extras), decision, policy_id))  # as the worker merges them


@pytest.fixture
def addon():
    addon = TelemetryInspector()
    addon.worker = Inbox()  # type: ignore[assignment]
    with taddons.context(addon):
        yield addon


def flow(host: str = HOST, path: str = PATH):
    f = tflow.tflow()
    f.request.scheme, f.request.host, f.request.port, f.request.path = "https", host, 443, path
    f.request.headers["host"] = host
    f.client_conn.sni = host
    return f


def count_decisions(monkeypatch) -> list[int]:
    calls = [0]
    real = Enforcer.decide

    def counting(self, *args, **kwargs):
        calls[0] += 1
        return real(self, *args, **kwargs)
    monkeypatch.setattr(Enforcer, "decide", counting)
    return calls


def test_an_unchanged_request_is_decided_once(addon, monkeypatch):
    calls = count_decisions(monkeypatch)
    f = flow()
    addon.requestheaders(f)
    addon.request(f)
    assert calls[0] == 1
    assert f.metadata["ti"].outcome.action == "allow" and f.response is None
    f.response = tflow.tresp()
    addon.response(f)
    obs = addon.worker.items[-1][0]
    assert obs.body == f.request.raw_content and obs.url == PIXEL.url
    assert obs.response_status == 200 and obs.response_body == f.response.raw_content[:2048]
    assert dict(obs.response_headers) == dict(f.response.headers.items())
    assert not obs.response_local


def test_a_destination_rewritten_between_the_hooks_is_decided_again(addon, monkeypatch):
    addon.rules = RuleBook([Rule("telemetry.hasura.io", "host", "block")])
    calls = count_decisions(monkeypatch)
    f = flow()
    addon.requestheaders(f)
    assert f.response is None  # allowed at the head
    f.request.host = "telemetry.hasura.io"  # another addon sends it elsewhere
    addon.request(f)
    assert calls[0] == 2
    assert f.response is not None and f.response.status_code == 403
    assert addon.worker.items[-1][1].action == "block"


@pytest.mark.parametrize("change", ["path", "rules"])
def test_a_path_or_rules_changed_between_the_hooks_are_decided_again(addon, monkeypatch, change):
    calls = count_decisions(monkeypatch)
    f = flow()
    addon.requestheaders(f)
    if change == "path":
        f.request.path = "/cli"
    else:
        addon.rules = RuleBook([Rule("refine-v4-browser", "policy", "sinkhole")])
    addon.request(f)
    assert calls[0] == 2
    if change == "rules":
        assert f.response is not None and f.response.headers.get("X-Telemetry-Inspector") == "sinkhole"


def test_a_local_answer_is_made_once_and_each_is_its_own(addon):
    addon.rules = RuleBook([Rule("refine-v4-browser", "policy", "sinkhole")])
    first, second = flow(), flow()
    addon.requestheaders(first)
    answer = first.response
    assert answer is not None and answer.status_code == 200
    addon.request(first)
    assert first.response is answer  # not made again at `request`
    addon.requestheaders(second)
    addon.request(second)
    assert second.response is not answer and second.response.content == answer.content
    second.response.headers["X-Changed"] = "1"  # a later addon changing one answer changes no other
    assert "X-Changed" not in first.response.headers
    assert second.response.timestamp_start >= answer.timestamp_start
    assert [item[1].action for item in addon.worker.items] == ["sinkhole", "sinkhole"]
    assert all(item[0].response_local for item in addon.worker.items)


def test_a_rule_stricter_at_request_replaces_the_heads_answer(addon):
    addon.rules = RuleBook([Rule("refine-v4-browser", "policy", "sinkhole")])
    f = flow()
    addon.requestheaders(f)
    assert f.response is not None and f.response.status_code == 200
    addon.rules = RuleBook([Rule("refine-v4-browser", "policy", "block")])
    addon.request(f)
    assert f.response.status_code == 403
    assert addon.worker.items[-1][1].action == "block"


def test_what_start_up_built_is_out_of_the_collectors_view_once_running(addon):
    import gc

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    addon.start = lambda: None  # (no worker here: the hook's other half)
    try:
        addon.running()
        assert gc.get_freeze_count() == 0  # an embedded addon leaves its program's heap alone
        addon.freeze_at_start = True  # as the CLI's and mitmdump's (build_addon, addons/telemetry_inspector.py)
        addon.running()
        assert gc.get_freeze_count() > 10_000  # mitmproxy's and the catalogue's objects
    finally:
        gc.unfreeze()
