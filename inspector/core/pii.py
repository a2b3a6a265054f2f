"""Detectors for personal data in decoded payloads: e-mail, IP, MAC, home paths, hostnames,
tokens and API keys, JWTs, card numbers. Each returns what it found and the kind."""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True, slots=True)
class PiiHit:
    kind: str  # email, ipv4, ipv6, mac, home-path, hostname, token, jwt, api-key, card-number
    value: str
    label: str


# Every pattern is linear in the text it scans (tests/test_budgets.py checks their structure and
# times them on adversarial text): no nested quantifiers over overlapping classes, and a match
# may only start where the previous character could not have continued it — otherwise each of
# n starting points inside one long run rescans the run, n² steps (`%a%a…@`, `eyJ-eyJ-…`).
# Where a lookbehind holds a class's own characters, that is why.
_EMAIL = re.compile(r"(?<![\w.%+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}(?![\w-])")
# Not after "Product/" (User-Agent version tokens such as Chrome/124.0.0.0); still in "http://10.0.0.1".
_IPV4 = re.compile(r"(?<![\w.])(?<!\w/)(?:\d{1,3}\.){3}\d{1,3}(?![\w.]*\d)")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
_MAC = re.compile(r"(?<![\w:-])(?:[0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}(?![\w:-])")
_HOME = re.compile(r"(?:/home/|/Users/|[A-Za-z]:\\\\?Users\\\\?)([A-Za-z0-9._-]+)")
_LOCAL_HOST = re.compile(r"(?<![\w.-])[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.(?:local|lan|internal|corp|home|localdomain)(?![\w-])")
_FQDN = re.compile(r"(?<![\w.@/-])(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.){2,}(?:com|net|org|io|dev|app|co|us|uk|de|fr|info|biz|cloud|ai|me)(?![\w-])")
_BEARER = re.compile(r"\b[Bb]earer\s++[A-Za-z0-9._~+/=-]{12,}")
_JWT = re.compile(r"(?<!-)\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
_API_KEY = re.compile(
    r"\b(?:sk_live_[A-Za-z0-9]{10,}|sk_test_[A-Za-z0-9]{10,}|rk_live_[A-Za-z0-9]{10,}|ghp_[A-Za-z0-9]{30,}"
    r"|gho_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{30,}|AKIA[0-9A-Z]{16}|xox[abposr]-[A-Za-z0-9-]{10,}"
    r"|AIza[0-9A-Za-z_-]{35}|glpat-[A-Za-z0-9_-]{20,}|npm_[A-Za-z0-9]{36})\b")
_CARD = re.compile(r"(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])")
_SECRET_KEY = re.compile(r"(?i)(?:^|[_-])(?:password|passwd|secret|token|api[_-]?key|apikey|access[_-]?key|auth|admin[_-]?secret)$")


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 1:
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return total % 10 == 0


def _valid_ipv4(text: str) -> bool:
    try:
        address = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    # 0.0.0.0 and the like carry nothing about a person
    return not address.is_unspecified


def _valid_ipv6(text: str) -> bool:
    if text.count(":") < 2 or not any(c.isalnum() for c in text):
        return False
    try:
        address = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (address.is_unspecified or address.is_loopback)


_API_HINT = re.compile(r"sk_|rk_|gh[po]_|github_pat_|AKIA|xox|AIza|glpat-|npm_")
# What a match of each needs somewhere in the text, found by a pattern that starts with a literal
# or a plain class (Python's re scans for those fast; a pattern that starts with a lookbehind is
# tried at every position): digits and three dots as an IPv4 address has them; a dot and one of
# the top-level names for a host name.
_IPV4_HINT = re.compile(r"\d\.\d{1,3}\.\d{1,3}\.\d")
_FQDN_HINT = re.compile(r"\.(?:com|net|org|io|dev|app|co|us|uk|de|fr|info|biz|cloud|ai|me)(?![\w-])")
_LOCAL_HINT = re.compile(r"\.(?:local|lan|internal|corp|home|localdomain)(?![\w-])")
_NO_DIGITS = str.maketrans("", "", "0123456789")
# What a text shorter than a card number needs for any detector to look at it (the union of
# the prefilters below): most telemetry strings are short words and numbers with none of these.
_ANY_HINT = re.compile(r"[@.:\-]|Users|/home/|earer|eyJ|sk_|rk_|gh[po]_|github_pat_|AKIA|xox|AIza|glpat-|npm_")


@lru_cache(maxsize=4096)
def _secret_key(key: str) -> bool:
    """Is `key` a field name that holds a secret (password, token, api_key…)? (Names repeat.)"""
    return _SECRET_KEY.search(key) is not None


def scan_text(text: str, key: str | None = None, prefilter: bool = True) -> list[PiiHit]:
    """Personal data in one string value (`key` is its field name, for token-like fields).

    `prefilter`: skip each detector whose match needs something the text lacks (an "@" for an
    e-mail, "digit.digit" for an IPv4 address, ".com"-like for a host name, 13 digits for a card
    number…): most telemetry strings are short words, versions and paths. The answer is the
    same either way (tests/test_audit_claims.py)."""
    hits: list[PiiHit] = []
    if len(text) > 100_000:
        text = text[:100_000]
    if prefilter and len(text) < 13 and not _ANY_HINT.search(text):  # no detector would look
        if key and len(text) >= 6 and _secret_key(key):
            hits.append(PiiHit("token", text[:4] + "…", f"secret in a field named {key!r}"))
        return hits
    check = not prefilter
    dot = check or "." in text
    if check or "@" in text:
        for m in _EMAIL.finditer(text):
            hits.append(PiiHit("email", m.group(0), "e-mail address"))
    if check or (dot and text.count(".") >= 3 and _IPV4_HINT.search(text)):
        for m in _IPV4.finditer(text):
            if _valid_ipv4(m.group(0)):
                hits.append(PiiHit("ipv4", m.group(0), "IPv4 address"))
    colons = text.count(":")
    if check or colons >= 2:  # (an IPv6 address has two at least)
        for m in _IPV6.finditer(text):
            if _valid_ipv6(m.group(0)) and not _MAC.fullmatch(m.group(0)):
                hits.append(PiiHit("ipv6", m.group(0), "IPv6 address"))
    if check or colons + text.count("-") >= 5:  # (a MAC address has five separators)
        for m in _MAC.finditer(text):
            hits.append(PiiHit("mac", m.group(0), "MAC address"))
    if check or "Users" in text or "/home/" in text:
        for m in _HOME.finditer(text):
            hits.append(PiiHit("home-path", m.group(0), f"home-directory path (user name {m.group(1)!r})"))
    if check or (dot and _LOCAL_HINT.search(text)):
        for m in _LOCAL_HOST.finditer(text):
            hits.append(PiiHit("hostname", m.group(0), "local host name"))
    if check or (dot and _FQDN_HINT.search(text)):
        emails = {h.value for h in hits if h.kind == "email"}
        for m in _FQDN.finditer(text):
            if not any(m.group(0) in e for e in emails):
                hits.append(PiiHit("hostname", m.group(0), "host name"))
    if check or "earer" in text:
        for m in _BEARER.finditer(text):
            hits.append(PiiHit("token", m.group(0)[:16] + "…", "bearer token"))
    if check or "eyJ" in text:
        for m in _JWT.finditer(text):
            hits.append(PiiHit("jwt", m.group(0)[:16] + "…", "JSON Web Token"))
    if check or _API_HINT.search(text):
        for m in _API_KEY.finditer(text):
            hits.append(PiiHit("api-key", m.group(0)[:8] + "…", "API key"))
    # 13 digits at least (\d is any Unicode digit: a text that is not ASCII is always looked at)
    if check or (len(text) >= 13 and (not text.isascii() or len(text) - len(text.translate(_NO_DIGITS)) >= 13)):
        for m in _CARD.finditer(text):
            digits = re.sub(r"[ -]", "", m.group(0))
            # Card numbers start with an issuer digit 2–6 (Mastercard 2/5, Amex/JCB/Diners 3, Visa 4,
            # Discover/UnionPay 6): 19-digit nanosecond timestamps (1…) pass Luhn one time in ten.
            if 13 <= len(digits) <= 19 and digits[0] in "23456" and _luhn(digits) and len(set(digits)) > 1:
                hits.append(PiiHit("card-number", digits[:4] + "…" + digits[-4:], "payment card number"))
    if key and text and len(text) >= 6 and not hits and _secret_key(key):
        hits.append(PiiHit("token", text[:4] + "…", f"secret in a field named {key!r}"))
    return hits
