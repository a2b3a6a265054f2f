"""The host catalogue: owners and categories of known hosts, user entries, rules that name them."""

from __future__ import annotations

import json

import pytest

from inspector.core import collectors, hosts
from inspector.core.enforce import Enforcer
from inspector.core.observation import Observation
from inspector.core.policy import Catalogue
from inspector.core.rules import Rule, RuleBook, infer_kind


def test_lookup_by_any_spelling_and_wildcards(tmp_path):
    user = tmp_path / "hosts.json"
    user.write_text(json.dumps({"hosts": [
        {"host": "*.ingest.example-errors.io", "owner": "ExampleCo", "category": "error-reporting", "source": "test"},
        {"host": "api.segment.io", "owner": "Someone Else", "category": "analytics", "source": "test override"},
    ]}), encoding="utf-8")
    catalogue = hosts.load(user)
    assert catalogue.lookup("O123.Ingest.Example-Errors.io.").owner == "ExampleCo"
    assert catalogue.lookup("api.segment.io").owner == "Someone Else"  # the user's entry replaces
    assert catalogue.lookup("example.org") is None
    assert catalogue.lookup("[v]x") is None


@pytest.mark.parametrize("content, message", [
    ("{not json", "not a readable JSON host catalogue"),
    ('{"hosts": [{"host": "a.example", "owner": "A", "category": "analytics"}]}', "lacks source"),
    ('{"hosts": [{"host": "a.example", "owner": "A", "category": "spying", "source": "x"}]}', "unknown category"),
    ('{"hosts": [{"host": "a b", "owner": "A", "category": "analytics", "source": "x"}]}', "is not a host name"),
    ('[' * 100000 + ']' * 100000, "not a readable JSON host catalogue"),
    ('{"hosts": 3}', 'a "hosts" list'),
])
def test_a_broken_user_catalogue_is_one_line_naming_the_file(tmp_path, content, message):
    user = tmp_path / "hosts.json"
    user.write_text(content, encoding="utf-8")
    with pytest.raises(hosts.HostCatalogueError) as info:
        hosts.load(user)
    text = str(info.value)
    assert str(user) in text and message in text and "\n" not in text


def test_every_entry_has_a_source_and_every_collector_host_an_entry():
    catalogue = hosts.default()
    assert all(e.source and e.owner and e.category in hosts.CATEGORIES for e in catalogue.entries)
    for collector in collectors.collectors():
        for pattern in collector.hosts:
            probe = pattern.replace("*", "o1")
            entry = catalogue.lookup(probe)
            assert entry is not None, f"{collector.name}: host {pattern} has no host catalogue entry"
            assert entry.collector in (None, collector.name)


def test_rules_can_name_a_company_or_a_category():
    assert infer_kind("Twilio", [], []) == "owner"
    assert infer_kind("analytics", [], []) == "category"
    assert infer_kind("Segment", [], []) == "vendor"  # a collector's title
    obs = Observation("POST", "https://api.segment.io/v1/batch")
    names = (("destination", "api.segment.io"),)
    for rule in (Rule("Twilio", "owner", "block"), Rule("analytics", "category", "sinkhole")):
        outcome = Enforcer(Catalogue.load(), RuleBook([rule])).decide(obs, names)
        assert outcome.action == rule.action, rule
        assert outcome.decision.rule == rule
    refine = Observation("POST", "https://telemetry.refine.dev/send")
    assert Enforcer(Catalogue.load(), RuleBook([Rule("analytics", "category", "block")])).decide(
        refine, (("destination", "telemetry.refine.dev"),)).action == "allow"  # product telemetry, not analytics


def test_a_catalogue_host_without_a_policy_is_intercepted_and_reported(tmp_path):
    from inspector.core.pipeline import Pipeline

    enforcer = Enforcer(Catalogue.load(), RuleBook())
    assert enforcer.intercepts("cdn.segment.com")
    event = Pipeline(Catalogue.load()).process(Observation("GET", "https://cdn.segment.com/v1/projects/x/settings"))
    assert event.owner == "Twilio"
    assert any(f.code == "unknown-endpoint" and "analytics host of Twilio" in f.message for f in event.findings)


def test_a_broken_user_file_is_said_once_and_the_builtins_stay(tmp_path, monkeypatch, caplog):
    import logging
    (tmp_path / "telemetry-inspector").mkdir()
    (tmp_path / "telemetry-inspector" / "hosts.json").write_text("{broken", encoding="utf-8")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    hosts.default.cache_clear()
    try:
        with caplog.at_level(logging.WARNING, logger="telemetry_inspector"):
            catalogue = hosts.default()
        assert catalogue.lookup("api.segment.io") is not None
        assert next(r.getMessage() for r in caplog.records if "hosts.json" in r.getMessage()).endswith(
            "using the built-in hosts only")
    finally:
        hosts.default.cache_clear()
