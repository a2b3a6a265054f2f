"""Helpers for the collector tests of RudderStack, Segment, Datadog and Microsoft 1DS: fixtures
as observations, and a real SDK run under `telemetry-inspector exec` with its collector's
sinkhole rule set in the store first (as a user does: `rules sinkhole <Title>`)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import ROOT, cli_env, run_cli

from inspector.core.observation import Observation

EMAIL = "jane.doe@example.com"


def fixture(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def observation(path: Path, **changes: Any) -> Observation:
    """A recorded request (method, URL, headers, Base64 body) as an Observation."""
    data = fixture(path)
    fields: dict[str, Any] = {"method": data["method"], "url": data["url"],
                              "headers": tuple(tuple(h) for h in data["headers"]),
                              "body": base64.b64decode(data["body_base64"])}
    fields.update(changes)
    return Observation(**fields)


def exec_sdk(tmp_path: Path, title: str | None, argv: list[str], *extra: str, cwd: Path | None = None,
             env: dict[str, str] | None = None) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """Run `argv` under `telemetry-inspector exec`; with `title`, `rules sinkhole <title>` first.
    Returns the finished process and the store's events."""
    from inspector.store import Store
    store = tmp_path / "store.json"
    if title is not None:
        done = run_cli("rules", "sinkhole", title, "--store", str(store))
        assert done.returncode == 0, done.stderr
    done = subprocess.run([sys.executable, "-m", "inspector", "exec", "--store", str(store),
                           "--confdir", str(tmp_path / "mitmproxy"), *extra, "--", *argv],
                          capture_output=True, text=True, timeout=180, env=cli_env(**(env or {})), cwd=cwd or ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    with Store(store, readonly=True) as opened:
        return done, opened.events()


def reported(done: subprocess.CompletedProcess[str], key: str) -> str:
    """A `key: value` line the SDK script printed."""
    line = next((line for line in done.stdout.splitlines() if line.startswith(f"{key}: ")), None)
    assert line is not None, f"the script printed no {key!r} line: {done.stdout[-1000:]} {done.stderr[-1000:]}"
    return line.split(": ", 1)[1]


def check_run(events: list[dict[str, Any]], requests: int, collector: str, name: str, action: str = "sinkhole",
              credential_paths: tuple[str, ...] = ()) -> dict[str, Any]:
    """Each request the SDK made is one event of `collector` (so none was retried), one item is
    named `name`, the planted e-mail is PII inside that item, the credentials are labelled as
    such (and not as PII). Returns that item's event."""
    assert requests >= 1 and len(events) == requests, [e["url"] for e in events]
    assert {e["collector"] for e in events} == {collector}
    assert {e["action"] for e in events} == {action}
    named = [(e, i) for e in events for i in e["items"] if i["name"] == name]
    assert len(named) == 1, [i["name"] for e in events for i in e["items"]]
    event, item = named[0]
    pii = [f for f in event["findings"] if f["code"] == "pii" and f["evidence"] == EMAIL]
    prefix = item["path"]
    assert pii and all(not prefix or f["path"].startswith(prefix + ".") for f in pii), (prefix, pii)
    credentials = {f["path"] for e in events for f in e["findings"] if f["code"] == "credential"}
    for path in credential_paths:
        assert path in credentials, credentials
    assert not [f for e in events for f in e["findings"] if f["code"] == "pii" and f["path"] in credentials]
    return event
