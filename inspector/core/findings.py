"""Findings: what the audit reports, with stable codes (documented in docs/findings.md)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

VIOLATION = "violation"
WARNING = "warning"
INFO = "info"
SEVERITIES = (VIOLATION, WARNING, INFO)
SEVERITY_RANK = {VIOLATION: 3, WARNING: 2, INFO: 1}

# Stable finding codes. Adding one means documenting it in docs/findings.md.
CODES = {
    "undeclared-field": "a field the vendor's document does not declare",
    "type-mismatch": "a declared field whose value has another type, format or range",
    "missing-declared-field": "a declared, non-optional field that is absent",
    "pii": "personal data (e-mail, IP, MAC, home path, hostname, token, card number)",
    "cookie": "a cookie sent or set, against a no-cookies claim",
    "rate-exceeded": "more requests than the vendor says it sends",
    "not-anonymised": "a value the vendor says is anonymised, carrying real names",
    "free-text": "free text where the vendor says none is recorded",
    "not-hashed": "a value the vendor says is hashed that is not a SHA-256 hex digest",
    "optional-field": "an optional field (collected only if the user gave it) is present",
    "unverifiable-encrypted": "an encrypted payload no supplied key opens",
    "weak-algorithm": "a payload encrypted with a legacy algorithm (RSA1_5)",
    "encoding-mismatch": "the payload's encoding differs from what the document describes",
    "decode-error": "a payload that could not be decoded (malformed, or past a safety limit)",
    "number-out-of-range": "a JSON number Python cannot hold (over-long integer, overflowing float, NaN), kept as text",
    "unknown-endpoint": "a request to a telemetry host that no policy describes",
    "credential": "a collector's own credential (write key, project token, DSN key): the app's account, not a person",
    "host-mismatch": "a request whose destination, TLS SNI and Host header name different hosts",
    "canary": "a value planted by `exec --canary` (user, host, home, e-mail, token…) found in a request, in any form",
    "bypass": "a connection of an `exec` command that went around the proxy (not isolated: detected, not stopped)",
    "refused": "traffic of an isolated `exec` command that tried to leave other than through the inspector",
}


MAX_EVIDENCE = 300  # characters of a value shown as a finding's evidence


def evidence(value: Any) -> Any:
    """A value as a finding's evidence: long text cut, an object or list shown as JSON."""
    if isinstance(value, str) and len(value) > MAX_EVIDENCE:
        return value[:MAX_EVIDENCE] + "…"
    if isinstance(value, (dict, list)):
        # shown as JSON, as it was on the wire (not a Python repr: {'auth': False})
        text = json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
        return text[:MAX_EVIDENCE] + ("…" if len(text) > MAX_EVIDENCE else "")
    return value


@dataclass(frozen=True, slots=True)
class Citation:
    """Where a claim comes from: the document, its section and the quoted words."""

    document: str = ""
    title: str = ""
    section: str = ""
    quote: str = ""
    url: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (
            ("document", self.document), ("title", self.title), ("section", self.section),
            ("quote", self.quote), ("url", self.url)) if v}

    def short(self) -> str:
        where = self.title or self.document
        if self.section:
            where = f"{where}, “{self.section}”" if where else f"“{self.section}”"
        return where


@dataclass(frozen=True, slots=True)
class Claim:
    """The promise a finding breaks: the check's name and its citation."""

    check: str
    citation: Citation = field(default_factory=Citation)

    def to_dict(self) -> dict[str, Any]:
        return {"check": self.check, **self.citation.to_dict()}


@dataclass(frozen=True, slots=True)
class Finding:
    code: str
    severity: str
    path: str
    message: str
    evidence: Any = None
    claim: Claim | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "severity": self.severity,
            "path": self.path,
            "message": self.message,
            "evidence": self.evidence,
            "claim": self.claim.to_dict() if self.claim else None,
        }
