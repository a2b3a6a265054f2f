"""Shared by the collector profiles' tests: their recorded fixtures as observations, hostile
payloads, and a real client run as a user runs it — under `telemetry-inspector exec --store STORE`
with the collector sinkholed in the store.
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from conftest import ROOT, cli_env

from inspector.core.decode import Limits
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue

FIXTURES = ROOT / "fixtures" / "collectors"
NODE = ROOT / "tests" / "node"
PRELOAD = NODE / "env-proxy.cjs"  # Node 20 ignores HTTPS_PROXY: see the file
EMAIL = "jane.doe@example.com"
# Small bounds for the hostile tests: a bound is met quickly.
SMALL = Limits(max_body=1 << 20, max_decompressed=1 << 20, max_depth=32)


@cache
def pipeline(small: bool = False) -> Pipeline:
    return Pipeline(Catalogue.load(), limits=SMALL if small else Limits())


def fixture(folder: str, name: str) -> dict[str, Any]:
    """A recorded request: method, url, headers (pairs), body (bytes), description, sdk."""
    data = json.loads((FIXTURES / folder / name).read_text())
    data["headers"] = tuple((k, v) for k, v in data["headers"])
    data["body"] = base64.b64decode(data.pop("body_base64"))
    return data


def fixtures(folder: str) -> list[str]:
    return sorted(p.name for p in (FIXTURES / folder).glob("*.json"))


def observation(folder: str, name: str, url: str | None = None, body: bytes | None = None,
                headers: tuple[tuple[str, str], ...] | None = None, method: str | None = None) -> Observation:
    data = fixture(folder, name)
    return Observation(method or data["method"], url or data["url"],
                       data["headers"] if headers is None else headers, data["body"] if body is None else body)


def recorded(folder: str) -> tuple[Callable[[str], dict[str, Any]], Callable[..., Observation]]:
    """For one collector's tests: `fixture(name)`, a recorded request as stored (JSON, the body in
    Base64), and `observation(name, url=None, **fields)`, it as an Observation."""
    def stored(name: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((FIXTURES / folder / f"{name}.json").read_text())
        return data

    def as_observation(name: str, url: str | None = None, **changes: Any) -> Observation:
        data = stored(name)
        fields = {"method": data["method"], "url": url or data["url"],
                  "headers": tuple((k, v) for k, v in data["headers"]), "body": base64.b64decode(data["body_base64"])}
        return Observation(**{**fields, **changes})

    return stored, as_observation


def code_set(event: Any) -> set[tuple[str, str]]:
    """Its findings as (code, path) pairs."""
    return {(f.code, f.path) for f in event.findings}


def others(*mine: str) -> list[tuple[str, str]]:
    """(folder, file) of every recorded fixture of the other collectors."""
    return [(p.parent.name, p.name) for p in sorted(FIXTURES.glob("*/*.json")) if p.parent.name not in mine]


def on_host(obs: Observation, host: str) -> Observation:
    """The same request sent to another host (a self-hosted or proxied collector)."""
    scheme, _, rest = obs.url.partition("://")
    path = rest[rest.index("/"):] if "/" in rest else "/"
    headers = tuple((k, v) for k, v in obs.headers if k.lower() != "host")
    return Observation(obs.method, f"{scheme}://{host}{path}", headers, obs.body)


def codes(event: Any) -> list[tuple[str, str]]:
    return [(f.code, f.path) for f in event.findings]


# --------------------------------------------------------------------------- real clients

def node_ready(folder: str) -> str | None:
    """Why a Node client cannot run (None when it can)."""
    if shutil.which("node") is None:
        return "node is not installed"
    if not (NODE / folder / "node_modules").is_dir():
        return f"tests/node/{folder}/node_modules is missing (./dev setup runs npm ci there)"
    return None


def run_exec(tmp_path: Path, title: str, argv: list[str], env: dict[str, str] | None = None,
             cwd: Path | None = None, args: tuple[str, ...] = (), sinkhole: bool = True,
             timeout: float = 240) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """`telemetry-inspector exec --store STORE [ARGS] -- ARGV`, the collector sinkholed by its
    title in the store beforehand (as `rules sinkhole TITLE --store STORE` does); the events
    the store then holds."""
    from inspector.store import Store
    store_path = tmp_path / "store.json"
    if sinkhole:
        with Store(store_path) as store:
            store.set_rule(title, "vendor", "sinkhole")
    done = subprocess.run([sys.executable, "-m", "inspector", "exec", "--store", str(store_path),
                           "--confdir", str(tmp_path / "mitmproxy"), *args, "--", *argv],
                          capture_output=True, text=True, timeout=timeout, cwd=cwd, env=cli_env(**(env or {})))
    with Store(store_path, readonly=True) as store:
        events = store.events()
    return done, events


def check_sdk_run(done: subprocess.CompletedProcess[str], events: list[dict[str, Any]], collector: str,
                  name: str, requests: int = 1, credential: str | None = None,
                  email: str = EMAIL) -> dict[str, Any]:
    """What every real-client run must show; returns the item named `name`."""
    assert done.returncode == 0, done.stderr[-3000:]
    # exactly the requests the client made (a retry would be one more), each one intercepted
    assert len(events) == requests, [e.get("url") for e in events]
    event = next(e for e in events if any(i.get("name") == name for i in e.get("items", [])))
    assert event["collector"] == collector
    assert event["action"] == "sinkhole"
    item = next(i for i in event["items"] if i["name"] == name)
    inside = [f for f in event["findings"] if f["code"] == "pii" and email in str(f.get("evidence"))]
    assert inside, event["findings"]
    assert all(f["path"] == item["path"] or f["path"].startswith(item["path"] + ".") or not item["path"]
               for f in inside), (item["path"], [f["path"] for f in inside])
    if credential is not None:
        labelled = [f for f in event["findings"] if f["path"] == credential]
        assert labelled and all(f["code"] == "credential" for f in labelled), event["findings"]
    return item
