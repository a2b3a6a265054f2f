"""The claim-check registry: every check is one registered object, and what users read comes from it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from typing import Any

import pytest

from inspector.core import claims
from inspector.core.claims import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.findings import CODES, WARNING, Finding
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, PolicyError, parse_policy_text

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = {"no-cookies", "max-requests", "no-pii", "anonymised-values", "no-free-text", "hashed", "optional"}

POLICY = textwrap.dedent("""\
    id: demo
    vendor: Demo
    product: Demo CLI
    source: {document: "demo.md"}
    match: {hosts: ["t.demo.example"], methods: [POST], paths: ["/v1"]}
    payload: {location: body, encoding: [json]}
    declared:
      name: {type: string}
    claims:
""")


def test_the_built_in_checks_are_registered_one_module_each():
    assert set(claims.names()) == BUILTIN
    modules = {type(check).__module__ for check in claims.checks()}
    assert len(modules) == len(BUILTIN)  # one module per check
    for check in claims.checks():
        assert check.description and type(check).__doc__, check.name


def test_every_code_a_check_produces_is_a_documented_finding_code():
    findings_doc = (ROOT / "docs" / "findings.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^### `([a-z0-9-]+)`", findings_doc, re.M))
    for check in claims.checks():
        assert check.codes, f"{check.name} produces no finding code"
        for code, description in check.codes.items():
            assert CODES.get(code) == description, f"{check.name}: {code} differs from findings.CODES"
            assert code in documented, f"{check.name}: {code} is not described in docs/findings.md"
        for code in check.escalates:
            assert code in check.codes, f"{check.name} escalates {code} without listing it"


def test_every_check_and_its_parameters_are_in_the_policy_docs():
    policies_doc = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| `([a-z-]+)` \| ([^|]*) \|", policies_doc, re.M))
    for check in claims.checks():
        assert check.name in rows, f"{check.name} has no row in docs/policies.md's claims table"
        for param in check.params:
            assert f"`{param}`" in rows[check.name], f"{check.name}: parameter {param} is not in its row"


def test_the_policy_format_names_the_registry_and_its_parameters():
    with pytest.raises(PolicyError) as info:
        parse_policy_text(POLICY + "  - {check: no-such-check}\n", "p.yaml")
    assert info.value.lines() == [f"p.yaml:10: claims.0.check: 'no-such-check' is not one of "
                                  f"{', '.join(sorted(BUILTIN))}"]
    with pytest.raises(PolicyError) as info:
        parse_policy_text(POLICY + "  - {check: hashed}\n  - {check: max-requests, count: 2, per: soon}\n", "p.yaml")
    assert info.value.lines() == ["p.yaml:10: claims.0: check hashed needs 'path'",
                                  "p.yaml:11: claims.1.per: not a duration: 'soon' (use e.g. 30s, 10m, 6h, 1d)"]
    # a parameter's schema is the check's; any claim may carry any check's parameter
    with pytest.raises(PolicyError, match=r"claims.0.count: 0 is less than the minimum of 1"):
        parse_policy_text(POLICY + "  - {check: max-requests, count: 0, per: session}\n", "p.yaml")
    assert parse_policy_text(POLICY + "  - {check: hashed, path: name, count: 3}\n", "p.yaml").claims[0].params == \
        {"path": "name", "count": 3}


def test_a_regex_parameter_is_checked_by_both_engines_and_then_by_its_check():
    with pytest.raises(PolicyError) as info:
        parse_policy_text(POLICY + "  - {check: anonymised-values, path: name, pattern: 'x(?=y)'}\n"
                                   "  - {check: anonymised-values, path: name, pattern: 'plain'}\n", "p.yaml")
    first, second = info.value.lines()
    assert first.startswith("p.yaml:10: claims.0.pattern: regular expression not supported by the linear-time engine")
    assert second == "p.yaml:11: claims.1.pattern: anonymised-values needs named groups, e.g. (?P<TABLE_NAME>[^/]+)"


def test_escalating_checks_make_the_auditors_own_findings_violations():
    assert claims.escalating("cookie") == ("no-cookies",)
    assert claims.escalating("pii") == ("no-pii",)
    assert claims.escalating("free-text") == ()


def test_one_name_one_meaning_across_checks():
    params = claims.params()
    assert set(params) == {"count", "per", "path", "pattern"}
    assert params["pattern"].regex and not params["path"].regex


class _Shouting(ClaimCheck):
    """A test check: `path` must not be upper case (reuses the free-text code)."""

    name = "no-shouting"
    description = "the value at `path` is not upper case"
    params = {"path": Param({"type": "string"}, required=True)}
    codes = {"free-text": CODES["free-text"]}

    def on_payload(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        return [Finding("free-text", WARNING, where, f"{where} shouts", evidence=found, claim=self.claim(spec))
                for where, found in ctx.find(spec.params["path"]) if isinstance(found, str) and found.isupper()]

    def on_request(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        seen: dict[str, Any] = ctx.state.setdefault(self.name, {})
        seen[ctx.policy_id] = seen.get(ctx.policy_id, 0) + 1
        return []


def test_adding_a_check_is_registering_one_class():
    claims.register(_Shouting)
    try:
        assert "no-shouting" in claims.names()
        policy = parse_policy_text(POLICY + "  - {check: no-shouting, path: name}\n", "p.yaml")
        with pytest.raises(PolicyError, match="check no-shouting needs 'path'"):
            parse_policy_text(POLICY + "  - {check: no-shouting}\n", "p.yaml")
        pipeline = Pipeline(Catalogue([policy]))
        event = pipeline.process(Observation("POST", "https://t.demo.example/v1", body=b'{"name": "HELLO"}'))
        assert [(f.code, f.path, f.claim.check if f.claim else None) for f in event.findings] == \
            [("free-text", "name", "no-shouting")]
        pipeline.process(Observation("POST", "https://t.demo.example/v1", body=b'{"name": "hello"}'))
        assert pipeline.auditor.state["no-shouting"] == {"demo": 2}  # the check's own memory
    finally:
        claims.unregister("no-shouting")
    with pytest.raises(PolicyError, match="'no-shouting' is not one of"):
        parse_policy_text(POLICY + "  - {check: no-shouting, path: name}\n", "p.yaml")


def test_two_checks_may_not_share_a_name():
    class Other(ClaimCheck):
        name = "hashed"

    with pytest.raises(ValueError, match="two claim checks are named 'hashed'"):
        claims.register(Other)


def test_a_plan_calls_only_the_hooks_a_check_implements_in_the_claims_order():
    policy = parse_policy_text(POLICY + "  - {check: no-pii}\n  - {check: hashed, path: name}\n"
                                        "  - {check: max-requests, count: 2, per: session}\n"
                                        "  - {check: optional, path: name}\n  - {check: no-pii}\n", "p.yaml")
    plan = claims.plan(policy.claims)
    assert [spec.check for _check, spec in plan.on_request] == ["max-requests"]
    assert [spec.check for _check, spec in plan.on_payload] == ["hashed", "optional"]
    assert [spec.check for _check, spec in plan.exempt_paths] == ["hashed"]
    assert plan.escalations == {"pii": policy.claims[0]}  # the first no-pii claim cites
