"""The "Telemetry" contentview in mitmproxy's own UIs: through mitmproxy's contentview API, and
once in a headless mitmweb."""

from __future__ import annotations

import base64
import json
import subprocess
import urllib.request

import pytest
from conftest import ROOT, cli_env, free_port, wait_for
from mitmproxy import contentviews
from mitmproxy.test import taddons, tflow, tutils

from inspector.proxy.addon import TelemetryInspector

PAYLOAD = {"providers": {"auth": False}, "version": "4.58.0", "resourceCount": 2, "projectId": "p1",
           "owner": "jane@example.com\x1b]0;pwned\x07"}


def pixel_flow() -> object:
    query = base64.b64encode(json.dumps(PAYLOAD).encode()).decode()
    request = tutils.treq(host="telemetry.refine.dev", port=443, scheme=b"https", method=b"GET",
                          path=f"/telemetry?payload={query}".encode(), headers=((b"host", b"telemetry.refine.dev"),),
                          content=b"")
    return tflow.tflow(req=request)


def test_a_telemetry_request_shows_decoded_with_its_findings_and_claims():
    addon = TelemetryInspector()
    with taddons.context(addon):
        flow = pixel_flow()
        assert "telemetry" in contentviews.registry.available_views()
        result = contentviews.prettify_message(flow.request, flow)  # "auto": ours is chosen
        assert result.view_name == "Telemetry"
        text = result.text
        assert "policy: refine-v4-browser" in text and "decoding: query:payload → base64 → json" in text
        assert "undeclared-field at owner" in text and "claim: “" in text
        assert '"version": "4.58.0"' in text
        assert "\x1b" not in text and "\x07" not in text  # captured data shown, never executed
        other = tflow.tflow()  # a request to a host no policy names: not ours
        assert contentviews.prettify_message(other.request, other).view_name != "Telemetry"


@pytest.mark.slow
def test_mitmweb_lists_and_serves_the_view(tmp_path):
    port, web = free_port(), free_port()
    proc = subprocess.Popen(
        [str(ROOT / ".venv/bin/mitmweb") if (ROOT / ".venv/bin/mitmweb").exists() else "mitmweb",
         "-s", str(ROOT / "addons/telemetry_inspector.py"), "--set", f"confdir={tmp_path}",
         "--listen-host", "127.0.0.1", "--listen-port", str(port), "--web-host", "127.0.0.1",
         "--web-port", str(web), "--no-web-open-browser", "--set", "web_password=test-token"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=cli_env(), text=True)
    try:
        def state() -> dict | None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{web}/state?token=test-token", timeout=2) as r:
                    return json.load(r)
            except OSError:
                return None
        found = wait_for(state, timeout=30, interval=0.3)
        assert found, "mitmweb did not start"
        assert "telemetry" in found["contentViews"]
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_decided_flows_carry_a_marker_and_their_rule_in_the_comment():
    from inspector.core.rules import Rule, RuleBook

    addon = TelemetryInspector()
    with taddons.context(addon):
        addon.rules = RuleBook([Rule("Refine", "vendor", "block")])
        flow = pixel_flow()
        flow.live = True
        addon.requestheaders(flow)
        assert flow.response is not None and flow.response.status_code == 403
        assert flow.marked == ":no_entry:"
        assert flow.comment.startswith("telemetry-inspector: refine-v4-browser — block (vendor Refine")
        other = tflow.tflow()
        other.live = True
        addon.requestheaders(other)
        assert not other.marked and other.response is None  # not telemetry: untouched
