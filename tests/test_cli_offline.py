"""The offline CLI (decode, audit, policies, keys): exit codes, formats, one-line errors."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner
from jwcrypto import jwe, jwk

from inspector.cli.main import cli

POLICY = """\
id: demo-pixel
vendor: Demo
product: Demo pixel
source: {document: "demo.md", title: "Demo docs"}
match:
  hosts: ["t.demo.example"]
  methods: [GET]
  paths: ["/telemetry"]
payload:
  location: "query:payload"
  encoding: [base64, json]
  encoding_cite: {section: How, quote: "encoded with Base64"}
declared:
  version: {type: string, cite: {section: What, quote: "version | string"}}
  count: {type: integer}
claims:
  - check: no-cookies
    cite: {section: Summary, quote: "does not use cookies"}
  - check: no-pii
    cite: {section: Summary, quote: "anonymous"}
"""


def pixel(payload: dict) -> str:
    return "https://t.demo.example/telemetry?payload=" + base64.b64encode(json.dumps(payload).encode()).decode()


def har(urls: list[str], cookie: str | None = None) -> dict:
    entries = []
    for url in urls:
        headers = [{"name": "User-Agent", "value": "demo"}]
        if cookie:
            headers.append({"name": "Cookie", "value": cookie})
        entries.append({"startedDateTime": "2026-11-24T08:00:00+00:00",
                        "request": {"method": "GET", "url": url, "headers": headers},
                        "response": {"status": 200, "headers": []}})
    return {"log": {"version": "1.2", "creator": {"name": "test", "version": "1"}, "entries": entries}}


@pytest.fixture()
def files(tmp_path: Path) -> dict[str, Path]:
    policy = tmp_path / "demo.yaml"
    policy.write_text(POLICY)
    clean = tmp_path / "clean.har"
    clean.write_text(json.dumps(har([pixel({"version": "1.0", "count": 2})])))
    dirty = tmp_path / "dirty.har"
    dirty.write_text(json.dumps(har([pixel({"version": "1.0", "count": 2, "email": "dev@example.com"})],
                                    cookie="sid=1")))
    return {"policy": policy, "clean": clean, "dirty": dirty, "dir": tmp_path}


def run(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)


def test_audit_clean_capture_exits_0(files):
    result = run("audit", str(files["clean"]), "--policy", str(files["policy"]))
    assert result.exit_code == 0, result.output
    assert "clean" in result.output and "0 violations" in result.output


def test_audit_violations_exit_1_with_claims(files):
    result = run("audit", str(files["dirty"]), "--policy", str(files["policy"]), "--format", "json")
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert set(doc) >= {"events", "summary"}
    event = doc["events"][0]
    assert event["policy"] == "demo-pixel" and event["method"] == "GET"
    assert event["decoding"] == ["query:payload", "base64", "json"]
    assert event["decoded"]["email"] == "dev@example.com"
    codes = {(f["code"], f["severity"], f["path"]) for f in event["findings"]}
    assert ("undeclared-field", "violation", "email") in codes
    assert ("pii", "violation", "email") in codes
    assert ("cookie", "violation", "headers.Cookie") in codes
    cookie = next(f for f in event["findings"] if f["code"] == "cookie")
    assert cookie["claim"]["quote"] == "does not use cookies" and cookie["claim"]["document"] == "demo.md"


def test_fail_on_never_and_warning(files):
    assert run("audit", str(files["dirty"]), "--policy", str(files["policy"]), "--fail-on", "never").exit_code == 0
    # an unknown endpoint on a known host is a warning: fails only with --fail-on warning
    other = files["dir"] / "other.har"
    other.write_text(json.dumps(har(["https://t.demo.example/somewhere-else"])))
    args = ["audit", str(other), "--policies", str(files["policy"]), "--no-builtin"]
    assert run(*args).exit_code == 0
    result = run(*args, "--fail-on", "warning")
    assert result.exit_code == 1 and "unknown" in result.output


@pytest.mark.parametrize("fmt,needle", [
    ("markdown", "| `version` |"), ("html", "<table>"), ("sarif", '"version": "2.1.0"'), ("text", "violation"),
])
def test_report_formats(files, fmt, needle):
    out = files["dir"] / f"report.{fmt}"
    result = run("audit", str(files["dirty"]), "--policy", str(files["policy"]), "--format", fmt,
                 "--output", str(out))
    assert result.exit_code == 1
    text = out.read_text()
    assert needle in text
    if fmt == "sarif":
        results = json.loads(text)["runs"][0]["results"]
        assert {r["ruleId"] for r in results} >= {"undeclared-field", "pii", "cookie"}
    if fmt == "markdown":
        assert "undeclared, observed" in text and "“does not use cookies”" in text
    if fmt == "html":
        rows, shown = _html_table_rows(text)
        assert rows == [  # the policy's field table: every field declared or observed, one row each
            ["field", "declared by the document", "observed", "example", "status"],
            ["count", "integer", "1", "2", "declared, observed"],
            ["email", "—", "1", "dev@example.com", "undeclared, observed"],
            ["version", "string", "1", "1.0", "declared, observed"],
        ]
        assert "3 violations" in shown and "does not use cookies" in shown
        for finding in ("violation cookie at headers.Cookie", "violation undeclared-field at email",
                        "violation pii at email"):
            assert finding in shown, finding


def _html_table_rows(text: str) -> tuple[list[list[str]], str]:
    """The HTML's table rows (each a list of its cells' text) and its whole text, whitespace folded."""
    class Rows(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.rows: list[list[str]] = []
            self.cell: list[str] | None = None
            self.text: list[str] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag == "tr":
                self.rows.append([])
            elif tag in ("td", "th"):
                self.cell = []

        def handle_endtag(self, tag: str) -> None:
            if tag in ("td", "th") and self.cell is not None:
                self.rows[-1].append(" ".join("".join(self.cell).split()))
                self.cell = None

        def handle_data(self, data: str) -> None:
            self.text.append(data)
            if self.cell is not None:
                self.cell.append(data)

    parser = Rows()
    parser.feed(text)
    parser.close()
    return parser.rows, " ".join(" ".join(parser.text).split())


def test_redact_masks_evidence(files):
    result = run("audit", str(files["dirty"]), "--policy", str(files["policy"]), "--format", "json", "--redact")
    assert "dev@example.com" not in result.output
    assert "sid=1" not in result.output


@pytest.mark.slow
@pytest.mark.parametrize("args,needle", [
    (["audit", "/no/such/capture.har"], "no such file"),
    (["audit", "{dir}"], "is a directory"),
    (["audit", "{bad_har}"], "not valid JSON"),
    (["audit", "{clean}", "--policy", "no-such-policy"], "no policy with id"),
    (["audit", "{clean}", "--key", "/no/such/key.pem"], "key file not found"),
    (["audit", "{clean}", "--format", "pdf"], "pdf"),
    (["decode", "/no/such/file"], "no such file"),
])
def test_input_errors_exit_2_with_one_line(files, args, needle):
    bad_har = files["dir"] / "bad.har"
    bad_har.write_text("{ not json")
    args = [a.format(dir=files["dir"], bad_har=bad_har, clean=files["clean"]) for a in args]
    proc = subprocess.run([sys.executable, "-m", "inspector", *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3


def test_decode_base64_url_and_stdin():
    url = pixel({"version": "1.0", "x": "???>>>"})
    result = run("decode", "-", input=url.encode())
    assert result.exit_code == 0
    assert "query:payload → base64 → json" in result.output and '"x": "???>>>"' in result.output
    result = run("decode", "--json", "-", input=base64.b64encode(b'{"a": [1, 2]}'))
    assert json.loads(result.output)["value"] == {"a": [1, 2]}


def test_decode_jwe_with_key_and_without(tmp_path):
    key = jwk.JWK.generate(kty="RSA", size=2048, kid="cli-key")
    (tmp_path / "key.json").write_text(key.export_private())
    token = jwe.JWE(b'{"secret": "value"}', json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "cli-key"}))
    token.add_recipient(key)
    (tmp_path / "body.jwe").write_text(token.serialize(compact=True))
    result = run("decode", str(tmp_path / "body.jwe"), "--key", str(tmp_path / "key.json"))
    assert result.exit_code == 0 and '"secret": "value"' in result.output
    assert "jwe(RSA-OAEP-256, A256GCM, kid=cli-key)" in result.output
    private_d = json.loads(key.export_private())["d"]
    assert private_d not in result.output
    result = run("decode", str(tmp_path / "body.jwe"))
    assert "unverifiable-encrypted" in result.output and "not verifiable without the key" in result.output
    keys = run("keys", "--key", str(tmp_path / "key.json"))
    assert "cli-key" in keys.output and private_d not in keys.output


def test_raw_payload_file_with_forced_policy(files):
    raw = files["dir"] / "payload.b64"
    raw.write_text(base64.b64encode(json.dumps({"version": 3, "count": 1}).encode()).decode())
    result = run("audit", str(raw), "--policy", str(files["policy"]), "--format", "json")
    event = json.loads(result.output)["events"][0]
    assert event["policy"] == "demo-pixel"
    assert [f["code"] for f in event["findings"]] == ["type-mismatch"]


def test_policies_check_and_infer(files):
    result = run("policies", "check", str(files["policy"]))
    assert result.exit_code == 0 and "ok (demo-pixel" in result.output
    broken = files["dir"] / "broken.yaml"
    broken.write_text(POLICY.replace("methods: [GET]", "methods: GET"))
    result = run("policies", "check", str(broken))
    assert result.exit_code == 1 and f"{broken}:7:" in result.output
    result = run("policies", "infer", str(files["dirty"]))
    assert result.exit_code == 0
    import yaml
    drafts = [d for d in yaml.safe_load_all(result.output) if d]
    assert drafts[0]["match"]["hosts"] == ["t.demo.example"]
    assert drafts[0]["payload"] == {"location": "query:payload", "encoding": ["base64", "json"]}
    assert drafts[0]["declared"]["email"]["format"] == "email"
    # the draft is itself a valid policy
    draft_file = files["dir"] / "draft.yaml"
    draft_file.write_text(yaml.safe_dump(drafts[0]))
    assert run("policies", "check", str(draft_file)).exit_code == 0


def test_console_script_is_installed():
    exe = Path(sys.executable).with_name("telemetry-inspector")
    assert exe.exists()
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True, timeout=60,
                          env={**os.environ})
    assert proc.returncode == 0 and "telemetry-inspector" in proc.stdout


def test_policy_directory_with_one_broken_file_loads_the_rest(files, tmp_path):
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "demo.yaml").write_text(POLICY)
    (policies / "broken.yaml").write_text("id: broken\nvendor: [\n")
    result = CliRunner().invoke(cli, ["audit", str(files["dirty"]), "--policies", str(policies),
                                      "--format", "json"], catch_exceptions=False)
    assert result.exit_code == 1  # the dirty capture was audited against demo-pixel
    assert json.loads(result.stdout)["events"][0]["policy"] == "demo-pixel"
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning: policy not loaded")]
    assert len(warnings) == 1 and "broken.yaml:" in warnings[0]
    # named on its own, a broken file is an error: one line, exit 2
    alone = CliRunner().invoke(cli, ["audit", str(files["dirty"]), "--policies", str(policies / "broken.yaml")],
                               catch_exceptions=False)
    assert alone.exit_code == 2 and "broken.yaml:" in alone.stderr and len(alone.stderr.strip().splitlines()) == 1
