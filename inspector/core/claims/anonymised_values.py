"""anonymised-values: the vendor says names in a value are replaced by placeholders."""

from __future__ import annotations

import re
from typing import Any

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import register
from inspector.core.findings import VIOLATION, Finding, evidence
from inspector.core.linear_regex import linear


@register
class AnonymisedValues(ClaimCheck):
    """Each named group of `pattern` must read its own name (`(?P<TABLE_NAME>[^/]+)` → `TABLE_NAME`)."""

    name = "anonymised-values"
    description = "names in the value at `path` are replaced by placeholders"
    params = {
        "path": Param({"type": "string"}, required=True, description="dotted path; `[]` for every item"),
        "pattern": Param({"type": "string"}, required=True, regex=True, description="a regular expression"),
    }
    codes = {"not-anonymised": "a value the vendor says is anonymised, carrying real names"}

    def problems(self, claim: dict[str, Any]) -> list[tuple[str, str]]:
        if "pattern" in claim and not re.compile(claim["pattern"]).groupindex:
            return [("pattern", "anonymised-values needs named groups, e.g. (?P<TABLE_NAME>[^/]+)")]
        return []

    def on_payload(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        out: list[Finding] = []
        pattern = linear(spec.params["pattern"])
        for where, found in ctx.find(spec.params["path"]):
            if not isinstance(found, str):
                continue
            for match in pattern.finditer(found):
                for name, group in match.groupdict().items():
                    if group is not None and group != name:
                        out.append(Finding(
                            "not-anonymised", VIOLATION, where,
                            f"{name} should read the placeholder {name!r}, found {group!r}",
                            evidence=evidence(found), claim=self.claim(spec)))
        return out
