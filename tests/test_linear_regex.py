"""Policy authors' patterns run by a linear-time engine in the audit."""

from __future__ import annotations

import json


def test_authors_claim_and_field_patterns_run_in_linear_time():
    """A backtracking pattern in a claim or a field spec is run by RE2 in the audit (Python's
    `re` takes seconds on `(a|aa)+x` against a few dozen characters)."""
    import re2

    from inspector.core.linear_regex import linear
    from inspector.core.observation import Observation
    from inspector.core.pipeline import Pipeline
    from inspector.core.policy import Catalogue, parse_policy_text

    assert isinstance(linear(r"(a|aa)+x"), type(re2.compile("a")))
    text = """\
id: slow-patterns
vendor: V
product: P
source: {document: d.md}
match: {hosts: [t.example], methods: [POST], paths: [/e]}
payload: {location: body, encoding: [json]}
declared:
  name: {type: string, pattern: "^(a|aa)+x$"}
claims:
  - {check: no-free-text, path: note, pattern: "(a|aa)+x"}
"""
    catalogue = Catalogue([parse_policy_text(text, "slow.yaml")])
    hostile = "a" * 5000
    body = json.dumps({"name": hostile, "note": hostile}).encode()
    event = Pipeline(catalogue).process(Observation("POST", "https://t.example/e", body=body))
    codes = {(f.code, f.path) for f in event.findings}
    assert ("type-mismatch", "name") in codes and ("free-text", "note") in codes
