"""The emitters against real components: the local fake internet (direct TLS and CONNECT), the
core Decoder, a real embedded mitmproxy with the redirect addon, a real mitmdump writing
captures, and the capture readers. Everything listens on 127.0.0.1 and is stopped at the end."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import FIXTURES, KEYS, ROOT, cli_env
from mitmproxy import exceptions
from mitmproxy.test import taddons

from inspector.capture import load_capture
from inspector.core.decode import Decoder, raw_query_param
from inspector.core.keys import Keyring, load_key_file
from inspector.core.policy import Catalogue
from inspector.emit.channels import WireRequest, channels, observation_of, wire_requests
from inspector.emit.redirect import LoopbackRedirect, parse_address
from inspector.emit.send import SendError, send
from inspector.emit.upstream import Upstream
from inspector.proxy.addon import TelemetryInspector
from inspector.proxy.embed import ProxySettings, ProxyThread

POLICY_IDS = {"refine-v3-browser", "refine-v4-browser", "refine-cli", "refine-project-registration",
              "refine-superplate",
              "hasura-server", "hasura-server-metrics", "hasura-enterprise-server", "hasura-console",
              "hasura-cli", "appsmith-installation", "appsmith-server-ping", "appsmith-server-usage",
              "appsmith-client"}
FINDING_CODES = {"undeclared-field", "type-mismatch", "missing-declared-field", "pii", "cookie", "rate-exceeded",
                 "not-anonymised", "free-text", "not-hashed", "unverifiable-encrypted", "decode-error",
                 "unknown-endpoint"}
REFINE_V3_FIRST_SEGMENT = "eyJhbGciOiJSU0EtT0FFUC0yNTYiLCJlbmMiOiJBMjU2R0NNIn0"


def units(request: WireRequest) -> int:
    return len(request.ws_messages) if request.ws_messages else 1


def sample(channel: str, name: str | None = None) -> WireRequest:
    return next(r for r in wire_requests(KEYS) if r.channel == channel and (name is None or r.name == name))


# ---------------------------------------------------------------- the samples themselves

def test_samples_cover_every_channel_and_plant_each_violation() -> None:
    requests = wire_requests(KEYS)
    assert set(channels()) == POLICY_IDS
    assert {r.channel for r in requests} == POLICY_IDS
    assert len({(r.channel, r.name) for r in requests}) == len(requests)
    planted = {code for r in requests for code in r.expect}
    assert planted == {"pii", "cookie", "free-text", "not-anonymised", "not-hashed", "undeclared-field",
                       "unverifiable-encrypted"}
    assert planted <= FINDING_CODES
    for request in requests:
        assert request.url.startswith("wss://" if request.ws_messages else "https://")
        assert request.host in ("telemetry.refine.dev", "telemetry.hasura.io", "api.segment.io")
    # the first sample of each channel is a clean one
    firsts: dict[str, WireRequest] = {}
    for request in requests:
        firsts.setdefault(request.channel, request)
    assert all(not r.expect for r in firsts.values())


def test_every_payload_decodes_with_the_core_decoder_and_the_test_keys() -> None:
    decoder = Decoder(Keyring.from_paths([KEYS]))
    for request in wire_requests(KEYS):
        observations = observation_of(request)
        assert len(observations) == units(request)
        for obs in observations:
            if request.method == "GET":
                payload = raw_query_param(obs.raw_query, "payload")
                assert payload is not None
                decoded = decoder.decode(payload.encode(), location="query:payload")
                assert decoded.encodings == ["base64", "json"], request.name
            else:
                decoded = decoder.decode(obs.body, location="ws-message" if request.ws_messages else "body")
            if "unverifiable-encrypted" in request.expect:
                assert [i.code for i in decoded.issues] == ["unverifiable-encrypted"]
                assert decoded.jwe == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}
                continue
            assert not decoded.issues, (request.channel, request.name, decoded.issues)
            assert decoded.structured and isinstance(decoded.value, dict), (request.channel, request.name)


def test_refine_wire_details() -> None:
    v3 = sample("refine-v3-browser", "jwe")
    assert v3.body.decode().split(".")[0] == REFINE_V3_FIRST_SEGMENT and v3.body.count(b".") == 4
    assert dict(v3.headers)["Content-Type"] == "application/text"
    opened = Decoder(Keyring.from_paths([KEYS / "refine-test-rsa.pem"])).decode(v3.body)
    assert opened.value["version"] == "3.65.0" and "projectId" not in opened.value
    pixels = [r for r in wire_requests(KEYS) if r.channel == "refine-v4-browser"]
    assert all(r.method == "GET" and not r.body and "%" not in r.url for r in pixels)
    raw = raw_query_param(sample("refine-v4-browser", "plus-slash").url.split("?", 1)[1], "payload")
    assert raw is not None and "+" in raw and "/" in raw  # not URL-encoded
    decoded = Decoder().decode(sample("refine-v4-browser").url.split("payload=", 1)[1].encode())
    assert isinstance(decoded.value["providers"], dict) and decoded.value["projectId"] == "abc-123"


def test_test_keys_are_consistent_and_the_other_key_is_public_only() -> None:
    jwk_key = load_key_file(KEYS / "refine-test-rsa.jwk")[0]
    pem_key = load_key_file(KEYS / "refine-test-rsa.pem")[0]
    assert jwk_key.key.thumbprint() == pem_key.key.thumbprint()
    jwks = load_key_file(KEYS / "test-keys.jwks")
    assert {k.key.get("kty") for k in jwks} == {"RSA", "EC"}
    public = json.loads((KEYS / "refine-test-public.jwk").read_text())
    assert "d" not in public and public["kid"] == jwk_key.kid
    assert "d" not in json.loads((KEYS / "other-rsa.jwk").read_text())
    assert len(Keyring.from_paths([KEYS])) == 4  # jwk + pem + the two in the JWKS; other-rsa skipped


# ---------------------------------------------------------------- the fake internet

def test_upstream_answers_direct_tls_and_connect_and_records(upstream: Upstream) -> None:
    pixel = sample("refine-v4-browser")
    cli = sample("hasura-cli")
    console = sample("hasura-console")
    direct = send(pixel, proxy=None, ca_file=upstream.ca_file, connect_to=upstream.address, timeout=5)
    assert direct.status == 200 and direct.body.startswith(b"GIF8")
    tunnelled = send(cli, proxy=upstream.address, ca_file=upstream.ca_file, timeout=5)
    assert tunnelled.status == 200 and json.loads(tunnelled.body) == {"ok": True}
    ws = send(console, proxy=upstream.address, ca_file=upstream.ca_file, timeout=5)
    assert ws.status == 101 and len(ws.ws_replies) == len(console.ws_messages)

    assert upstream.count() == 3
    assert upstream.count(host="telemetry.hasura.io") == 2
    assert upstream.count(path="/telemetry") == 1
    first, second, third = upstream.requests
    assert (first.via_connect, second.via_connect) == (False, True)
    assert first.path == pixel.target and first.method == "GET"
    assert second.body == cli.body and second.header("user-agent") == "Go-http-client/1.1"
    assert third.header("upgrade") == "websocket"
    assert [m.text for m in upstream.ws_messages] == list(console.ws_messages)
    upstream.reset()
    assert upstream.count() == 0 and upstream.ws_messages == []


def test_send_fails_clearly_and_never_goes_direct(upstream: Upstream) -> None:
    pixel = sample("refine-v4-browser")
    with pytest.raises(SendError, match="TLS verification failed"):
        send(pixel, proxy=upstream.address, ca_file=None, timeout=5)  # the system CAs do not know it
    with pytest.raises(SendError, match="refusing"):
        send(pixel, proxy=None, ca_file=None)
    with Upstream() as gone:
        address = gone.address
    with pytest.raises(SendError):
        send(pixel, proxy=address, ca_file=None, timeout=2)


# ---------------------------------------------------------------- through a real proxy

@pytest.mark.slow
def test_embedded_proxy_with_the_redirect_reaches_the_upstream_intact(tmp_path: Path, upstream: Upstream) -> None:
    addon = TelemetryInspector(Catalogue.load(), Keyring.from_paths([KEYS]))
    events: list = []
    addon.callbacks.append(events.append)
    redirect = LoopbackRedirect(upstream.address)
    # ti_discover: intercept the telemetry hosts even if no built-in policy names them
    settings = ProxySettings(listen_port=0, confdir=tmp_path / "mitmproxy",
                             extra={"ssl_verify_upstream_trusted_ca": str(upstream.ca_file), "ti_discover": True},
                             addons=[redirect])
    requests = wire_requests(KEYS)
    thread = ProxyThread(settings, addon).start()
    try:
        for request in requests:
            response = send(request, proxy=("127.0.0.1", thread.port), ca_file=settings.ca_cert(), timeout=10)
            assert response.status in (200, 101), (request.channel, request.name)
        assert addon.wait_idle(15)
    finally:
        thread.stop()
        addon.stop()
    assert redirect.redirected >= 1
    http_requests = [r for r in requests if not r.ws_messages]
    assert upstream.count() == len(requests)  # one upgrade request per WebSocket
    received = [(r.method, r.path, r.body) for r in upstream.requests if r.header("upgrade") is None]
    assert received == [(r.method, r.target, r.body) for r in http_requests]
    assert all(r.via_connect is False for r in upstream.requests)  # redirected, not tunnelled
    assert [m.text for m in upstream.ws_messages] == [m for r in requests for m in r.ws_messages]
    assert len(events) == sum(units(r) for r in requests)


def test_redirect_option_parsing() -> None:
    assert parse_address("127.0.0.1:8443") == ("127.0.0.1", 8443)
    assert parse_address("[::1]:80") == ("::1", 80)
    for bad in ("127.0.0.1", "host:0", ":80", "h:x"):
        with pytest.raises(ValueError):
            parse_address(bad)
    redirect = LoopbackRedirect()
    with taddons.context(redirect) as tctx:
        tctx.configure(redirect, ti_redirect="127.0.0.1:9")
        assert redirect.address == ("127.0.0.1", 9)
        with pytest.raises(exceptions.OptionsError):
            tctx.configure(redirect, ti_redirect="nonsense")


# ---------------------------------------------------------------- captures

def _make_captures():  # fixtures/make_captures.py is a script, not a package module
    spec = importlib.util.spec_from_file_location("make_captures", FIXTURES / "make_captures.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_real_mitmdump_records_har_and_flow_captures(tmp_path: Path) -> None:
    har, flows = tmp_path / "c.har", tmp_path / "c.mitm"
    count = _make_captures().record(har, flows, KEYS, timeout=60)
    requests = wire_requests(KEYS)
    assert count == len(requests)
    # the JWE bodies are random, so compare shapes via the bodies recorded this run
    for path in (har, flows):
        observations = list(load_capture(path))
        assert len(observations) == sum(units(r) for r in requests)
        assert sum(o.transport == "websocket" for o in observations) == sum(len(r.ws_messages) for r in requests)
    entries = json.loads(har.read_text())["log"]["entries"]
    assert any("_webSocketMessages" in e for e in entries)


def test_bundled_captures_hold_one_event_per_request_and_message() -> None:
    captures = FIXTURES / "captures"
    requests = wire_requests(KEYS)
    for name in ("all-channels.har", "all-channels.mitm"):
        observations = list(load_capture(captures / name))
        assert len(observations) == sum(units(r) for r in requests)
        non_jwe = [r for r in requests if not r.body.startswith(b"eyJ")]
        _check_capture_subset(observations, non_jwe)


def _check_capture_subset(observations: list, requests: list[WireRequest]) -> None:
    bodies = [o.body for o in observations]
    for request in requests:
        if request.ws_messages:
            for message in request.ws_messages:
                assert message.encode() in bodies
        else:
            assert any(o.url == request.url and o.body == request.body for o in observations), request.name


# ---------------------------------------------------------------- the CLI

@pytest.mark.slow
def test_cli_lists_and_sends_through_connect_to(upstream: Upstream) -> None:
    listing = subprocess.run([sys.executable, "-m", "inspector.emit", "--list"], capture_output=True, text=True,
                             timeout=60, env=cli_env(), cwd=ROOT)
    assert listing.returncode == 0 and len(listing.stdout.splitlines()) == len(wire_requests(KEYS))
    done = subprocess.run([sys.executable, "-m", "inspector.emit", "--connect-to", f"127.0.0.1:{upstream.port}",
                           "--ca", str(upstream.ca_file), "--channel", "refine-cli", "--channel", "hasura-console"],
                          capture_output=True, text=True, timeout=60, env=cli_env(), cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert [line.split()[0] for line in done.stdout.splitlines()] == ["200", "101"]
    assert upstream.count() == 2
    refused = subprocess.run([sys.executable, "-m", "inspector.emit", "--channel", "refine-cli"],
                             capture_output=True, text=True, timeout=60, env=cli_env(), cwd=ROOT)
    assert refused.returncode == 2 and "refusing" in refused.stderr
    assert upstream.count() == 2
