"""JWE: a compact token (five Base64url parts) or the JSON serialization, opened with the keyring."""

from __future__ import annotations

from typing import Any

from inspector.core.decode.model import Issue, Layer, Stop
from inspector.core.decode.registry import DONE, DecodeLayer, Round, register
from inspector.core.decode.sniff import JWE_COMPACT_RE, jwe_compact_header, jwe_json_like
from inspector.core.keys import WEAK_ALGORITHMS


def open_jwe(raw: str | dict[str, Any], rnd: Round) -> bytes | None:
    """The plaintext, or None when no key opens it (an `unverifiable-encrypted` issue); records the step."""
    result, budget, limits = rnd.result, rnd.budget, rnd.limits
    budget.check("decrypting a JWE")
    opened = rnd.decoder.keyring.open(raw, max_plaintext=limits.max_decompressed,
                                      max_recipients=limits.max_jwe_recipients,
                                      max_pbes2_iterations=limits.max_pbes2_iterations,
                                      deadline=budget)
    detail: dict[str, Any] = dict(opened.header)
    detail["serialization"] = opened.serialization
    detail["status"] = opened.status
    if opened.kid:
        detail["key"] = opened.kid
    result.jwe = dict(opened.header)
    result.layers.append(Layer("jwe", detail))
    alg = opened.header.get("alg")
    if isinstance(alg, str) and alg in WEAK_ALGORITHMS:  # (a header's alg may be any JSON value)
        result.issues.append(Issue("weak-algorithm", f"JWE uses the legacy key-management algorithm {alg}"))
    if opened.status == "ok":
        return opened.plaintext
    if opened.status == "no-key":
        hdr = ", ".join(f"{k}={str(opened.header[k])[:80]}" for k in ("alg", "enc", "kid") if k in opened.header)
        result.issues.append(Issue(
            "unverifiable-encrypted",
            f"encrypted ({hdr or 'no header'}): contents not verifiable without the key; {opened.message}",
        ))
        result.value = None
        return None
    raise Stop("decode-error", f"JWE: {opened.message}")


def _peel(rnd: Round) -> Any:
    text = rnd.text
    assert text is not None
    # Before the JSON layer: a JSON-serialised JWE is a JSON object too (parsed once, for both).
    if text[:1] == "{":
        value, _issues = rnd.json()
        if jwe_json_like(value):
            opened = open_jwe(value, rnd)
            return DONE if opened is None else opened
        return None
    # A compact JWE's protected header is Base64url JSON: it starts `eyJ` (jwe_compact_header
    # asks the same), which no JSON text does, so the order changes nothing for JSON.
    if not text.startswith("eyJ"):
        return None
    if JWE_COMPACT_RE.match(text) and jwe_compact_header(text) is not None:
        opened = open_jwe(text, rnd)
        return DONE if opened is None else opened
    if text.count(".") >= 1 and jwe_compact_header(text) is not None:
        parts = text.count(".") + 1
        rnd.result.jwe = jwe_compact_header(text)
        raise Stop("decode-error", f"truncated or malformed JWE: {parts} parts, a compact JWE has 5")
    return None


def label(detail: dict[str, Any]) -> str:
    """`jwe(RSA-OAEP-256, A256GCM, kid=…)`, and the status when it did not open."""
    parts = [str(detail[k]) for k in ("alg", "enc") if detail.get(k)]
    if detail.get("kid"):
        parts.append(f"kid={detail['kid']}")
    if detail.get("status") and detail["status"] != "ok":
        parts.append(detail["status"])
    return f"jwe({', '.join(parts)})"


register(DecodeLayer("jwe", _peel, order=20, label=label,
                     description="JWE, compact or JSON serialization: opened with a supplied key"))
