"""The policy format: loading, line-numbered errors, compiling to JSON Schema, matching."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from inspector.core.observation import Observation
from inspector.core.policy import (
    Catalogue,
    PolicyError,
    compile_policy_schema,
    parse_duration,
    parse_policy_text,
    resolve,
)

GOOD = textwrap.dedent("""\
    id: demo-channel
    vendor: Demo
    product: Demo client
    source: {document: "demo.md", title: "Demo docs"}
    match:
      hosts: ["t.demo.example", "*.demo.example"]
      methods: [POST]
      paths: ["/v1/*", "re:^/legacy/\\\\d+$"]
      shape:
        - {path: topic, in: [cli, cli_test]}
    payload:
      location: body
      encoding: [json]
      root: data
    envelope:
      topic: {type: string}
    declared:
      uuid: {type: string, format: uuid, cite: {section: CLI, quote: "a randomly generated UUID"}}
      count: {type: integer, minimum: 0}
      nested:
        type: object
        fields:
          flag: {type: boolean}
      tags: {type: array, items: {type: string}}
      metrics: {type: object, values: {type: integer}}
      email: {type: string, format: email, optional: true, pii: email}
    claims:
      - check: max-requests
        count: 2
        per: 6h
      - check: no-free-text
        path: data.uuid
        pattern: "^[0-9a-f-]+$"
    """)


def obs(method="POST", url="https://t.demo.example/v1/http", body=b"", **kw) -> Observation:
    return Observation(method=method, url=url, body=body, **kw)


def test_good_policy_loads_and_compiles():
    policy = parse_policy_text(GOOD, "good.yaml")
    assert policy.id == "demo-channel" and policy.root == "data"
    schema = compile_policy_schema(policy)
    data = schema["properties"]["data"]
    assert data["additionalProperties"] is False
    assert set(data["required"]) == {"uuid", "count", "nested", "tags", "metrics"}
    assert data["properties"]["metrics"]["additionalProperties"] == {"type": "integer"}
    assert schema["required"] == ["data"] or "data" in schema["required"]
    assert "data.nested.flag" in policy.declared_paths()
    assert policy.claims[0].citation.document == "demo.md"


def test_validator_accepts_a_conforming_payload_and_rejects_others():
    policy = parse_policy_text(GOOD, "good.yaml")
    ok = {"topic": "cli", "data": {"uuid": "0e4e2e9b-7fc9-44b8-9d5c-955673e20e0b", "count": 1,
                                   "nested": {"flag": True}, "tags": ["a"], "metrics": {"x": 1}}}
    assert list(policy.validator.iter_errors(ok)) == []
    bad = {"topic": "cli", "data": {**ok["data"], "uuid": "nope", "count": -1, "extra": 1}}
    kinds = sorted(e.validator for e in policy.validator.iter_errors(bad))
    assert kinds == ["additionalProperties", "format", "minimum"]


def test_matching_by_host_method_path_and_shape():
    policy = parse_policy_text(GOOD, "good.yaml")
    catalogue = Catalogue([policy])
    assert catalogue.candidates(obs()) == [policy]
    assert catalogue.candidates(obs(url="https://x.demo.example/legacy/12")) == [policy]
    assert catalogue.candidates(obs(url="https://t.demo.example/legacy/x")) == []
    assert catalogue.candidates(obs(method="GET")) == []
    assert catalogue.candidates(obs(url="https://other.example/v1/http")) == []
    assert policy.matches_shape({"topic": "cli"}) and not policy.matches_shape({"topic": "console"})


def test_candidates_memo_follows_policy_changes():
    """The proxy asks for every request; the answer is memoized, and a changed catalogue is asked anew."""
    policy = parse_policy_text(GOOD, "good.yaml")
    catalogue = Catalogue([policy])
    assert catalogue.candidates(obs()) == [policy]
    assert catalogue.candidates(obs(method="GET")) == []
    replacement = parse_policy_text(GOOD.replace("methods: [POST]", "methods: [GET]"), "mine.yaml")
    assert replacement.methods != policy.methods
    catalogue.add(replacement)  # same id: replaces it
    assert catalogue.candidates(obs(method="GET")) == [replacement]
    assert catalogue.candidates(obs()) == []
    returned = catalogue.candidates(obs(method="GET"))
    returned.clear()  # a caller's list, not the memo's
    assert catalogue.candidates(obs(method="GET")) == [replacement]
    assert catalogue.is_telemetry_host("a.demo.example") and not catalogue.is_telemetry_host("demo.example.com")


@pytest.mark.parametrize("old,new,needle", [
    ("vendor: Demo", "vendr: Demo", "unknown key(s): vendr"),
    ("methods: [POST]", "methods: POST", "match.methods"),
    ("encoding: [json]", "encoding: [json, rot13]", "rot13"),
    ("count: {type: integer, minimum: 0}", "count: {type: int, minimum: 0}", "declared.count.type"),
    ("per: 6h", "per: sometimes", "not a duration"),
    ('pattern: "^[0-9a-f-]+$"', 'pattern: "([unclosed"', "bad regular expression"),
])
def test_check_reports_line_numbers(old, new, needle):
    assert old in GOOD
    text = GOOD.replace(old, new)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if new in row)
    with pytest.raises(PolicyError) as info:
        parse_policy_text(text, "bad.yaml")
    report = "\n".join(info.value.lines())
    assert needle in report
    assert f"bad.yaml:{line}:" in report, report


def test_yaml_syntax_error_has_a_line():
    with pytest.raises(PolicyError) as info:
        parse_policy_text("id: x\nvendor: [unclosed\n", "syntax.yaml")
    assert info.value.lines()[0].startswith("syntax.yaml:")
    assert "YAML syntax error" in info.value.lines()[0]


def test_broken_file_in_directory_does_not_stop_the_others(tmp_path):
    (tmp_path / "good.yaml").write_text(GOOD)
    (tmp_path / "broken.yaml").write_text("id: [\n")
    catalogue = Catalogue.load(builtin=False, paths=[tmp_path])
    assert [p.id for p in catalogue.policies] == ["demo-channel"]
    assert len(catalogue.problems) == 1 and "broken.yaml" in catalogue.problems[0].lines()[0]


def test_resolve_paths_and_durations():
    value = {"batch": [{"userId": "a"}, {"userId": "b"}, {}]}
    assert list(resolve(value, "batch[].userId"))[:2] == ["a", "b"]
    assert parse_duration("6h") == 21600 and parse_duration("30s") == 30
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_the_documented_example_is_a_valid_policy():
    import re

    from inspector.core.policy import parse_policy_text
    text = (Path(__file__).resolve().parents[1] / "docs" / "policies.md").read_text()
    example = re.search(r"```yaml\n(.*?)```", text, re.S).group(1)
    policy = parse_policy_text(example, "docs/policies.md")
    assert policy.id == "refine-v4-browser" and set(policy.declared) == {"providers", "version", "resourceCount"}


def test_shape_any_matches_either_wire_shape_and_unknown_bodies_are_unknown_endpoints():
    from inspector.core.observation import Observation
    from inspector.core.pipeline import Pipeline
    from inspector.core.policy import Catalogue
    pipe = Pipeline(Catalogue.load())

    def policy_of(body: bytes) -> tuple[str | None, set[str]]:
        event = pipe.process(Observation("POST", "https://telemetry.hasura.io/v1/http", body=body))
        return event.policy, {f.code for f in event.findings}

    assert policy_of(b'{"topic":"server_metrics_v2","data":{}}')[0] == "hasura-server-metrics"
    assert policy_of(b'{"server_metrics":{"resource_cpu":1}}')[0] == "hasura-server-metrics"
    assert policy_of(b'{"topic":"brand_new","data":{"x":1}}') == (None, {"unknown-endpoint"})
    with pytest.raises(PolicyError):  # an empty `any` is a policy error
        parse_policy_text("id: x\nvendor: V\nproduct: P\nsource: {document: d, title: t}\n"
                          "match: {hosts: [h], shape: [{any: []}]}\npayload: {location: body, encoding: [json]}\n"
                          "declared: {}\n", "x.yaml")
