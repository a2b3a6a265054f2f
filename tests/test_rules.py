"""Rules: most specific wins; the strictest of several candidates; kinds inferred from targets."""

import pytest

from inspector.core.rules import Rule, RuleBook, RuleError, infer_kind


def test_most_specific_rule_wins():
    book = RuleBook([
        Rule("Refine", "vendor", "block"),
        Rule("refine-v4-browser", "policy", "allow"),
        Rule("*.refine.dev", "host", "sinkhole"),
        Rule("telemetry.hasura.io", "host", "sinkhole"),
        Rule("Hasura", "vendor", "block"),
    ])
    assert book.decide("refine-v4-browser", "Refine", "telemetry.refine.dev").action == "allow"
    assert book.decide("refine-cli", "Refine", "telemetry.refine.dev").action == "block"  # vendor beats wildcard
    assert book.decide(None, None, "x.refine.dev").action == "sinkhole"
    assert book.decide("hasura-cli", "Hasura", "telemetry.hasura.io").action == "sinkhole"  # exact host beats vendor
    assert book.decide("other", "Other", "example.com").action == "allow"
    assert book.decide("other", "Other", "example.com").rule is None


def test_default_and_block_all():
    assert RuleBook(default="block").decide("x", "y", "z").action == "block"
    with pytest.raises(RuleError):
        RuleBook(default="explode")


def test_strictest_of_candidates_fails_closed():
    book = RuleBook([Rule("hasura-cli", "policy", "block"), Rule("hasura-server", "policy", "sinkhole")])
    decision = book.decide_any([("hasura-server", "Hasura"), ("hasura-cli", "Hasura")], "telemetry.hasura.io")
    assert decision.action == "block"


def test_malformed_rows_are_skipped():
    book = RuleBook.from_dicts([{"target": "a", "kind": "policy", "action": "nuke"},
                                {"target": "b", "kind": "policy", "action": "block"}, {"kind": "x"}])
    assert [r.target for r in book.rules] == ["b"]


def test_infer_kind():
    assert infer_kind("refine-v4-browser", ["refine-v4-browser"], ["Refine"]) == "policy"
    assert infer_kind("refine", ["refine-v4-browser"], ["Refine"]) == "vendor"
    assert infer_kind("api.segment.io", [], []) == "host"
    with pytest.raises(RuleError):
        infer_kind("nothing", [], [])
