"""hashed: the vendor says a value is a hash (a SHA-256 hex digest), not the value itself."""

from __future__ import annotations

import re
from collections.abc import Iterable

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import register
from inspector.core.findings import VIOLATION, Finding, evidence

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")


@register
class Hashed(ClaimCheck):
    """The value at `path` must be a lower-case SHA-256 hex digest; the PII scan passes over it."""

    name = "hashed"
    description = "the value at `path` is a SHA-256 hex digest"
    params = {"path": Param({"type": "string"}, required=True, description="dotted path; `[]` for every item")}
    codes = {"not-hashed": "a value the vendor says is hashed that is not a SHA-256 hex digest"}

    def exempt_paths(self, ctx: ClaimContext, spec: ClaimSpec) -> Iterable[str]:
        return [where for where, _found in ctx.find(spec.params["path"])]

    def on_payload(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        out: list[Finding] = []
        for where, found in ctx.find(spec.params["path"]):
            if found is None:
                continue
            if not (isinstance(found, str) and _SHA256_HEX.match(found)):
                out.append(Finding(
                    "not-hashed", VIOLATION, where, f"{where} is not a SHA-256 hex digest",
                    evidence=evidence(found), claim=self.claim(spec)))
        return out
