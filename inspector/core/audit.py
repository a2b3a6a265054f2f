"""The audit: hold a decoded payload against its policy's declared fields and claims."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache
from typing import Any

from inspector.core import claims
from inspector.core.claims import ClaimContext, ClaimPlan, ClaimSpec
from inspector.core.claims.max_requests import RateTracker
from inspector.core.collectors import Collector
from inspector.core.decode import Decoded, raw_query_params
from inspector.core.discover import looks_like_telemetry
from inspector.core.findings import INFO, MAX_EVIDENCE, VIOLATION, WARNING, Citation, Claim, Finding, evidence
from inspector.core.hosts import default as host_catalogue
from inspector.core.observation import Observation
from inspector.core.pii import PiiHit, scan_text
from inspector.core.policy import Catalogue, Policy, resolve_with_paths

_PII_FORMATS = {"email": "email", "ipv4": "ip", "ip": "ip", "hostname": "hostname"}
_evidence = evidence  # (the name the auditor and its tests use)


def json_path(parts: Iterable[Any]) -> str:
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


@lru_cache(maxsize=256)
def _credential_matcher(paths: tuple[str, ...]) -> tuple[re.Pattern[str], frozenset[str]]:
    """One regex for all of a collector's credential paths, and the field names they end in
    (most strings of a payload are passed over by their name alone)."""
    combined = re.compile("|".join(f"(?:{_path_pattern(p).pattern})" for p in paths))
    keys = frozenset(re.sub(r"\[\]$", "", p.rsplit(".", 1)[-1]) for p in paths)
    return combined, keys


def _path_pattern(path: str) -> re.Pattern[str]:
    """`batch[].userId` / `metrics.*` → a regex over concrete paths (`batch[3].userId`)."""
    escaped = re.escape(path).replace(r"\[\]", r"\[\d+\]").replace(r"\*", r"[^.\[]+")
    return re.compile(f"^{escaped}$")


class Auditor:
    """Turns (observation, decoded payload, policy) into findings."""

    def __init__(self, catalogue: Catalogue) -> None:
        self.catalogue = catalogue
        self.state: dict[str, Any] = {}  # the claim checks' memory across requests (max-requests' counts)
        # id(policy) → (its claims, registry version, their plan): worked out once, not per request
        self._plans: dict[int, tuple[tuple[ClaimSpec, ...], int, ClaimPlan]] = {}
        # the payload walked in this request and its strings: the credential labels and the PII
        # scan walk it once (the value is kept here, so its id cannot be another's)
        self._walked: tuple[Any, list[tuple[str, str | None, str]]] = (None, [])

    def _strings_of(self, value: Any) -> list[tuple[str, str | None, str]]:
        walked = self._walked
        if walked[0] is not value or value is None:
            walked = self._walked = (value, _string_list(value))
        return walked[1]

    def audit(self, obs: Observation, decoded: Decoded, policy: Policy | None,
              collector: Collector | None = None) -> list[Finding]:
        self._walked = (None, [])  # (walked again for each request, even the same value mutated)
        findings: list[Finding] = []
        findings.extend(self._decode_findings(decoded, policy))
        credentials = self._credentials(obs, decoded, collector, findings) if collector is not None else set()
        if policy is None:
            if collector is not None:
                pass  # a collector's request: itemised; what it carries is audited below
            elif self.catalogue.is_telemetry_host(obs.host):
                findings.append(Finding(
                    "unknown-endpoint", WARNING, "",
                    f"{obs.host} is a known telemetry host, but no policy describes "
                    f"{obs.method if obs.transport == 'http' else 'WebSocket'} {obs.path}",
                    evidence=obs.url[:MAX_EVIDENCE]))
            elif (entry := host_catalogue().lookup(obs.host)) is not None:
                findings.append(Finding(
                    "unknown-endpoint", WARNING, "",
                    f"{obs.host} is a known {entry.category} host of {entry.owner}, but no policy or collector "
                    f"profile describes {obs.method if obs.transport == 'http' else 'WebSocket'} {obs.path}",
                    evidence=obs.url[:MAX_EVIDENCE]))
            elif looks_like_telemetry(obs):  # seen with --discover, or in a capture
                findings.append(Finding(
                    "unknown-endpoint", WARNING, "",
                    f"{obs.host}{obs.path} looks like a telemetry or analytics endpoint, and no policy "
                    "describes it", evidence=obs.url[:MAX_EVIDENCE]))
            if decoded.structured:
                findings.extend(self._pii(decoded.value, None, credentials, WARNING))
            findings.extend(self._cookies(obs, None))
            return findings
        findings.extend(self._encoding(decoded, policy))
        plan = self._plan(policy)
        findings.extend(self._cookies(obs, policy, plan))
        ctx = ClaimContext(obs, policy.id, decoded.value if decoded.structured else None, self.state,
                           resolve_with_paths)
        for check, spec in plan.on_request:
            findings.extend(check.on_request(ctx, spec))
        if decoded.structured:
            findings.extend(self._schema(decoded.value, policy))
            declared_pii = self._declared_pii(decoded.value, policy, findings)
            for check, spec in plan.exempt_paths:
                declared_pii.update(check.exempt_paths(ctx, spec))
            severity = VIOLATION if "pii" in plan.escalations else WARNING
            findings.extend(self._pii(decoded.value, policy, declared_pii, severity, plan))
            for check, spec in plan.on_payload:
                findings.extend(check.on_payload(ctx, spec))
        return findings

    # --- a collector's own credentials
    def _credentials(self, obs: Observation, decoded: Decoded, collector: Collector,
                     findings: list[Finding]) -> set[str]:
        """Label the collector's credentials (write keys, project tokens, API keys in the URL):
        they identify the app's account at the collector, not a person. Returns their paths,
        which the PII scan then passes over."""
        found: set[str] = set()
        if decoded.structured and collector.credential_paths:  # (no walk for a collector with none)
            pattern, keys = _credential_matcher(collector.credential_paths)
            for where, key, value in self._strings_of(decoded.value):
                if (key in keys or "*" in keys) and pattern.match(where):
                    found.add(where)
                    findings.append(Finding("credential", INFO, where,
                                            f"{collector.title}'s credential at {where}", evidence=_evidence(value)))
        for name, value in raw_query_params(obs.raw_query):
            if name in collector.credential_params:
                findings.append(Finding("credential", INFO, f"query.{name}",
                                        f"{collector.title}'s credential in the URL ({name})", evidence=value[:80]))
        for name in collector.credential_headers:
            if obs.header(name):
                findings.append(Finding("credential", INFO, f"headers.{name}",
                                        f"{collector.title}'s credential in the {name} header"))
        return found

    # --- decoding
    def _decode_findings(self, decoded: Decoded, policy: Policy | None) -> list[Finding]:
        out = []
        for issue in decoded.issues:
            severity = {"decode-error": WARNING, "unverifiable-encrypted": INFO, "weak-algorithm": INFO}.get(
                issue.code, WARNING)
            claim = None
            if policy is not None and issue.code == "unverifiable-encrypted" and policy.encoding_citation:
                claim = Claim("encoding", policy.encoding_citation)
            out.append(Finding(issue.code, severity, issue.path, issue.message,
                               evidence=decoded.jwe if issue.code != "decode-error" else None, claim=claim))
        return out

    def _encoding(self, decoded: Decoded, policy: Policy) -> list[Finding]:
        actual = [layer.name for layer in decoded.layers[1:]
                  if not layer.name.startswith("json@") and layer.detail.get("via") != "content-encoding"]
        expected = list(policy.encoding)
        incomplete = any(i.code in ("decode-error", "unverifiable-encrypted") for i in decoded.issues)
        if incomplete:
            if actual == expected[: len(actual)]:
                return []
        elif actual == expected:
            return []
        if not actual and incomplete:
            return []
        claim = Claim("encoding", policy.encoding_citation) if policy.encoding_citation else None
        if not actual and expected and expected[0] not in ("json", "form"):
            # Nothing could be peeled off where the document promises an encoding: undecodable.
            return [Finding(
                "decode-error", WARNING, "",
                f"the payload is not valid {expected[0]}: it cannot be decoded as the document describes "
                f"({' → '.join(expected)})", evidence=_evidence(decoded.value), claim=claim)]
        return [Finding(
            "encoding-mismatch", WARNING, "",
            f"the document describes the payload as {' → '.join(expected) or 'plain'}; "
            f"it was {' → '.join(actual) or 'plain text'}",
            evidence=" → ".join(decoded.path_labels), claim=claim)]

    # --- cookies
    def _cookies(self, obs: Observation, policy: Policy | None, plan: ClaimPlan | None = None) -> list[Finding]:
        spec = (plan or self._plan(policy)).escalations.get("cookie") if policy else None
        severity = VIOLATION if spec else INFO
        claim = Claim(spec.check, spec.citation) if spec else None
        out = []
        for value in obs.header_values("cookie"):
            names = [part.split("=", 1)[0].strip() for part in value.split(";") if part.strip()]
            out.append(Finding("cookie", severity, "headers.Cookie",
                               f"the request carries cookie(s): {', '.join(names)}",
                               evidence=", ".join(names), claim=claim))
        for value in obs.response_header_values("set-cookie"):
            name = value.split("=", 1)[0].strip()
            out.append(Finding("cookie", severity, "response.headers.Set-Cookie",
                               f"the response sets cookie {name}", evidence=name, claim=claim))
        return out

    # --- declared fields
    def _field_cite(self, policy: Policy, parts: list[Any]) -> Claim:
        spec = _spec_at(policy, parts)
        cite = spec.get("cite") if isinstance(spec, dict) else None
        return Claim("declared-fields", policy.cite(cite) if cite else policy.source)

    def _schema(self, value: Any, policy: Policy) -> list[Finding]:
        out: list[Finding] = []
        missing: set[str] = set()
        try:
            errors = policy.schema_errors(value)
        except RecursionError:  # bounded by the decoder's depth limit; belt and braces
            return [Finding("decode-error", WARNING, "", "payload too deeply nested to validate")]
        for error in errors:
            parts = list(error.absolute_path)
            if error.validator == "additionalProperties" and isinstance(error.instance, dict):
                allowed = set(error.schema.get("properties", {}))
                for name in sorted(set(error.instance) - allowed, key=str):
                    out.append(Finding(
                        "undeclared-field", VIOLATION, json_path([*parts, name]),
                        f"field {name!r} is not declared by {policy.vendor}'s document",
                        evidence=_evidence(error.instance[name]),
                        claim=Claim("declared-fields", policy.source)))
            elif error.validator == "required" and isinstance(error.instance, dict):
                # jsonschema reports one error per missing name, each listing every required name
                for name in error.validator_value:
                    key = json_path([*parts, name])
                    if name not in error.instance and key not in missing:
                        missing.add(key)
                        out.append(Finding(
                            "missing-declared-field", INFO, json_path([*parts, name]),
                            f"declared field {name!r} is absent",
                            claim=self._field_cite(policy, [*parts, name])))
            else:
                out.append(Finding(
                    "type-mismatch", VIOLATION, json_path(parts),
                    _type_message(error), evidence=_evidence(error.instance),
                    claim=self._field_cite(policy, parts)))
        return out

    # --- PII
    def _declared_pii(self, value: Any, policy: Policy, findings: list[Finding]) -> set[str]:
        """Concrete paths the policy declares as personal data; reported as info."""
        paths: set[str] = set()
        for dotted, spec in policy.declared_paths().items():
            if not isinstance(spec, dict):
                continue
            kind = spec.get("pii") or _PII_FORMATS.get(spec.get("format", ""))
            if not kind:
                continue
            for where, found in resolve_with_paths(value, dotted.replace(".*", "")):
                if found in (None, ""):
                    continue
                paths.add(where)
                if spec.get("pii"):
                    findings.append(Finding(
                        "pii", INFO, where, f"{kind}: declared by the vendor as collected",
                        evidence=_evidence(found), claim=Claim("declared-fields", policy.cite(spec.get("cite")))))
        return paths

    def _pii(self, value: Any, policy: Policy | None, skip: set[str], severity: str,
             plan: ClaimPlan | None = None) -> list[Finding]:
        spec = (plan or self._plan(policy)).escalations.get("pii") if policy else None
        claim = Claim(spec.check, spec.citation) if spec else None
        out = []
        seen: dict[tuple[str, str | None], list[PiiHit]] = {}  # (a payload repeats its strings: file names, versions)
        for where, key, text in self._strings_of(value):
            if where in skip:
                continue
            hits = seen.get((text, key))
            if hits is None:
                hits = seen[(text, key)] = scan_text(text, key)
            for hit in hits:
                out.append(Finding("pii", severity, where, f"{hit.label} in {where or 'the payload'}",
                                   evidence=hit.value, claim=claim))
        return out

    # --- the policy's claims (inspector/core/claims: one module per check)
    def _plan(self, policy: Policy) -> ClaimPlan:
        """Which checks of the policy's claims do what, in the claims' order (cached per policy)."""
        version = claims.version()
        hit = self._plans.get(id(policy))
        # (the claims tuple kept in the entry cannot be another policy's: an id reused is caught)
        if hit is None or hit[0] is not policy.claims or hit[1] != version:
            if len(self._plans) >= 1024:  # bounded: catalogues reloaded in a long run make new policies
                self._plans.clear()
            hit = self._plans[id(policy)] = (policy.claims, version, claims.plan(policy.claims))
        return hit[2]


def _type_message(error: Any) -> str:
    if error.validator == "type":
        want = error.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        return f"declared as {want}, found {type_name(error.instance)}"
    if error.validator == "format":
        return f"declared with format {error.validator_value}, found {_evidence(error.instance)!r}"
    if error.validator == "enum":
        return f"declared as one of {', '.join(map(repr, error.validator_value))}, found {_evidence(error.instance)!r}"
    if error.validator in ("minimum", "maximum"):
        return f"declared {error.validator} {error.validator_value}, found {error.instance!r}"
    if error.validator == "pattern":
        return f"declared to match {error.validator_value!r}, found {_evidence(error.instance)!r}"
    message: str = error.message
    return message[:200]


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__


def _spec_at(policy: Policy, parts: list[Any]) -> dict[str, Any] | None:
    dotted = json_path(["[]" if isinstance(p, int) else p for p in parts]).replace(".[]", "[]")
    dotted = re.sub(r"\[\]", "[]", dotted)
    return policy.declared_paths().get(dotted)


def _string_list(value: Any) -> list[tuple[str, str | None, str]]:
    """`list(_strings(value))`, without a generator's step per string."""
    out: list[tuple[str, str | None, str]] = []
    append = out.append
    stack: list[tuple[Any, str, str | None]] = [(value, "", None)]
    pop, push = stack.pop, stack.append
    while stack:
        node, where, key = pop()
        if isinstance(node, str):
            append((where, key, node))
        elif isinstance(node, dict):
            for k, child in reversed(list(node.items())):
                name = str(k)
                push((child, f"{where}.{name}" if where else name, name))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                push((node[i], f"{where}[{i}]", key))
    return out


def _strings(value: Any) -> Iterable[tuple[str, str | None, str]]:
    """Every string value with its path and field name, iteratively."""
    stack: list[tuple[Any, str, str | None]] = [(value, "", None)]
    while stack:
        node, where, key = stack.pop()
        if isinstance(node, str):
            yield where, key, node
        elif isinstance(node, dict):
            for k, child in reversed(list(node.items())):
                stack.append((child, f"{where}.{k}" if where else str(k), str(k)))
        elif isinstance(node, list):
            for i in range(len(node) - 1, -1, -1):
                stack.append((node[i], f"{where}[{i}]", key))


__all__ = ["MAX_EVIDENCE", "Auditor", "Citation", "RateTracker", "json_path", "type_name"]
