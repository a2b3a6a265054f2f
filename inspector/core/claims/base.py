"""A claim check: one promise a policy's `claims:` entry may state, and how the audit holds a request to it.

A check is a `ClaimCheck` subclass registered with `@register` (see `registry.py`): its name (what
`check:` says), the parameters it reads with their JSON Schemas (the policy format's schema is
built from them), the finding codes it produces with their descriptions (`findings.CODES` and
docs/findings.md are tested against them), and its hooks into the audit:

- `on_request`: every request the policy describes (max-requests counts them);
- `on_payload`: the decoded payload, when it is structured (hashed, no-free-text, …);
- `exempt_paths`: payload paths the PII scan passes over (a `hashed` value is not PII);
- `escalates`: codes of the auditor's own scans (`cookie`, `pii`) that become violations citing
  the claim (no-cookies, no-pii).

This package imports nothing of the policy package (which builds its format from the registry):
a check gets the policy's path resolver through `ClaimContext`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, ClassVar

from inspector.core.findings import Citation, Claim, Finding
from inspector.core.observation import Observation


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    """One claim as a policy states it: the check's name, its citation and its parameters."""

    check: str
    citation: Citation
    params: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter a check reads from its claim."""

    schema: dict[str, Any]  # the JSON Schema of its value, in the policy format's schema
    required: bool = False  # a claim without it is a policy problem ("check X needs 'p'")
    regex: bool = False  # a regular expression: both engines (RE2, Python's) must compile it at load
    description: str = ""


# (value, dotted path) → [(concrete path, value)], absent ones skipped: `policy.resolve_with_paths`
Resolver = Callable[[Any, str], list[tuple[str, Any]]]


@dataclass(slots=True)
class ClaimContext:
    """What a check sees of one audited request."""

    obs: Observation
    policy_id: str
    value: Any  # the decoded payload; None unless it is structured
    state: dict[str, Any]  # the auditor's memory across requests, one entry per check name
    resolve: Resolver

    def find(self, path: str) -> list[tuple[str, Any]]:
        """The payload's values at a dotted path (`batch[].userId`), each with its concrete path."""
        return self.resolve(self.value, path)


class ClaimCheck:
    """One kind of claim. Subclass, set the class attributes, override the hooks it needs."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""  # one line: what the vendor promises
    params: ClassVar[dict[str, Param]] = {}
    codes: ClassVar[dict[str, str]] = {}  # finding code → its description (as in findings.CODES)
    escalates: ClassVar[tuple[str, ...]] = ()  # the auditor's own codes this claim makes violations

    def problems(self, claim: dict[str, Any]) -> list[tuple[str, str]]:
        """Problems the parameters' schemas cannot see, as (parameter, message). A regular
        expression that did not compile (already a problem) is left out of `claim`."""
        return []

    def on_request(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        """Findings for a request the policy describes, before its payload is checked."""
        return []

    def on_payload(self, ctx: ClaimContext, spec: ClaimSpec) -> list[Finding]:
        """Findings for the structured payload (`ctx.value`)."""
        return []

    def exempt_paths(self, ctx: ClaimContext, spec: ClaimSpec) -> Iterable[str]:
        """Concrete payload paths the PII scan passes over."""
        return ()

    def claim(self, spec: ClaimSpec) -> Claim:
        """The promise a finding of this check breaks."""
        return Claim(self.name, spec.citation)
