"""Scarf: scarf-js's install report decoded and itemised; report.js run as npm's postinstall
runs it, through `telemetry-inspector exec`."""

from __future__ import annotations

import json
import subprocess

import pytest
from collector_sdk import (
    EMAIL,
    NODE,
    PRELOAD,
    check_sdk_run,
    codes,
    fixtures,
    node_ready,
    observation,
    on_host,
    others,
    pipeline,
    run_exec,
)

from inspector.core import collectors
from inspector.core.observation import Observation

SCARF = collectors.get("scarf")
URL = "https://scarf.sh/package-event/install"


def test_registered():
    assert SCARF is not None and SCARF.title == "Scarf"
    assert collectors.for_request("scarf.sh", "POST", "/package-event/install") is SCARF
    assert collectors.for_request("scarf.sh", "GET", "/package-event/install") is None


def test_install_report_is_one_item_with_the_parent_in_clear_and_the_rest_hashed():
    result = pipeline().process(observation("scarf", "install.json"))
    assert result.collector == "scarf"
    (item,) = result.items
    assert (item["kind"], item["name"], item["path"], item["ids"]) == ("event", "install", "", {})
    info = item["properties"]
    assert info["parent"]["name"] == "scarfed-lib" and info["scarf"] == {"name": "@scarf/scarf", "version": "1.4.0"}
    assert set(info["rootPackage"]) == {"nameHash", "versionHash"} and len(info["grandparent"]["nameHash"]) == 64
    assert item["context"] == {"libraryType": "npm", "rawPlatform": "linux", "rawArch": "x64", "nodeVersion": "20.20.2"}
    assert codes(result) == [("pii", "dependencyInfo.parent.scarfSettings.contact")]


def test_api_token_is_a_credential():
    result = pipeline().process(observation("scarf", "install-token.json"))
    assert codes(result) == [("credential", "headers.authorization")]


def test_sinkhole_is_200():
    assert SCARF.sinkhole(observation("scarf", "install.json")).status == 200


@pytest.mark.parametrize("name", fixtures("scarf"))
def test_recognised_on_another_host(name):
    assert pipeline().process(on_host(observation("scarf", name), "scarf.internal.example")).collector == "scarf"


@pytest.mark.parametrize("folder, name", others("scarf"))
def test_never_claims_another_collectors_payload(folder, name):
    obs = observation(folder, name)
    assert not SCARF.recognises(SCARF.decode(obs, pipeline()).value)


def test_shape_is_strict():
    assert SCARF.recognises({"libraryType": "npm", "rawPlatform": "linux", "dependencyInfo": {}})
    assert not SCARF.recognises({"libraryType": "npm", "dependencyInfo": {}})
    assert not SCARF.recognises({"libraryType": "npm", "rawPlatform": "linux", "dependencyInfo": "x"})
    assert not SCARF.recognises([{"libraryType": "npm"}])


@pytest.mark.parametrize("value", [{"libraryType": 3, "dependencyInfo": [1], "rawArch": None}, [], "text", 7,
                                   {"libraryType": "npm", "rawArch": "x", "dependencyInfo": {"parent": "x" * 10000}}])
def test_hostile_bodies_never_raise(value):
    result = pipeline(small=True).process(Observation("POST", URL, body=json.dumps(value).encode()))
    assert result.collector == "scarf" and len(result.items) <= 1
    assert not [f for f in result.findings if "internal error" in f.message]


# --------------------------------------------------------------------------- real client

@pytest.mark.slow
@pytest.mark.parametrize("token", [False, True])
def test_report_js_through_exec_is_sinkholed(tmp_path, token):
    if (why := node_ready("scarf")) is not None:
        pytest.skip(why)
    app = tmp_path / "shop-app"
    subprocess.run(["node", str(NODE / "scarf" / "make-app.mjs"), str(app), EMAIL], check=True, timeout=60)
    env = {"INIT_CWD": str(app), "NODE_OPTIONS": f"--require {PRELOAD}", "TMPDIR": str(tmp_path)}
    if token:
        env["SCARF_API_TOKEN"] = "scarf-test-token-0123"
    done, events = run_exec(tmp_path, "Scarf", ["node", str(app / "node_modules/@scarf/scarf/report.js")],
                            env=env, cwd=app)
    check_sdk_run(done, events, "scarf", "install", credential="headers.authorization" if token else None)
    assert events[0]["items"][0]["properties"]["parent"]["name"] == "scarfed-lib"


@pytest.mark.slow
def test_opted_out_report_sends_nothing(tmp_path):
    if (why := node_ready("scarf")) is not None:
        pytest.skip(why)
    app = tmp_path / "shop-app"
    subprocess.run(["node", str(NODE / "scarf" / "make-app.mjs"), str(app)], check=True, timeout=60)
    done, events = run_exec(tmp_path, "Scarf", ["node", str(app / "node_modules/@scarf/scarf/report.js")],
                            env={"INIT_CWD": str(app), "NODE_OPTIONS": f"--require {PRELOAD}",
                                 "TMPDIR": str(tmp_path), "SCARF_ANALYTICS": "false"}, cwd=app)
    assert done.returncode == 0 and events == []
