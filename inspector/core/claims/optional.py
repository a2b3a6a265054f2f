"""optional: the vendor says a field is collected only if the user provided it."""

from __future__ import annotations

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import register
from inspector.core.findings import INFO, Finding, evidence


@register
class Optional(ClaimCheck):
    """A present, non-empty value at `path` is reported (info): worth a look, breaks nothing."""

    name = "optional"
    description = "the field at `path` is collected only if the user provided it"
    params = {"path": Param({"type": "string"}, required=True, description="dotted path; `[]` for every item")}
    codes = {"optional-field": "an optional field (collected only if the user gave it) is present"}

    def on_payload(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        out: list[Finding] = []
        for where, found in ctx.find(spec.params["path"]):
            if found not in (None, "", [], {}):
                out.append(Finding(
                    "optional-field", INFO, where,
                    f"{where} is present: the vendor says it is collected only if the user provided it",
                    evidence=evidence(found), claim=self.claim(spec)))
        return out
