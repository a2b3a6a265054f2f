"""no-free-text: the vendor says a value holds no free text, only what `pattern` describes."""

from __future__ import annotations

import json

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import register
from inspector.core.findings import VIOLATION, Finding, evidence
from inspector.core.linear_regex import linear


@register
class NoFreeText(ClaimCheck):
    """The value at `path` must fully match `pattern` (absent or null is fine)."""

    name = "no-free-text"
    description = "the value at `path` holds no free text, only what `pattern` describes"
    params = {
        "path": Param({"type": "string"}, required=True, description="dotted path; `[]` for every item"),
        "pattern": Param({"type": "string"}, required=True, regex=True, description="a regular expression"),
    }
    codes = {"free-text": "free text where the vendor says none is recorded"}

    def on_payload(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        out: list[Finding] = []
        pattern = linear(spec.params["pattern"])
        for where, found in ctx.find(spec.params["path"]):
            if found is None:
                continue
            text = found if isinstance(found, str) else json.dumps(found, ensure_ascii=False, default=str)
            if not pattern.fullmatch(text):
                out.append(Finding(
                    "free-text", VIOLATION, where,
                    f"free text in {where}: does not match the vendor's description",
                    evidence=evidence(found), claim=self.claim(spec)))
        return out
