"""Canaries: unique fake values planted in a command's environment, found again in its traffic.

`plant()` makes the values (user and login name, host name, home and working directory,
git author/committer name and e-mail, an e-mail, an API-key-shaped token) and the
environment that carries them. `CanarySearch` finds them in every part of a request that
the inspector decoded — the decoded value (keys and string values), the raw body, the query
string, the headers and the URL path — also when they were encoded or transformed: Base64
(standard or URL-safe, padded or not, at any byte offset inside a longer Base64 text),
percent-encoding, hex, upper or lower case, and SHA-256, SHA-1 and MD5 digests (hex, and the
digest in Base64). Every form of every value is precomputed into one alternation of
literal strings, matched once over each text, lowercased (hex and case are then one form;
Base64 matched without case is a superset, and the values are random enough that a chance
match is not a concern). Pure Python: no framework.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, quote_plus, urlsplit

from inspector.core.findings import VIOLATION, WARNING, Claim, Finding

MIN_FORM = 8            # shorter encoded fragments would match by chance
MAX_TEXT = 1_000_000    # characters searched per text (captured data is bounded before this anyway)
MAX_HITS = 200          # findings per event
ANONYMITY_CLAIMS = ("no-pii", "anonymised-values")


@dataclass(frozen=True)
class Planted:
    """One planted value: what it stands for, where it was put, and the value."""

    what: str                 # "user name", "host name", …
    variables: tuple[str, ...]
    value: str

    def to_dict(self) -> dict[str, Any]:
        return {"what": self.what, "variables": list(self.variables), "value": self.value}


@dataclass
class Canaries:
    """The planted values, the environment that carries them, and their temporary directories."""

    values: list[Planted]
    env: dict[str, str]
    hostname: str
    cwd: str | None = None
    _dirs: list[tempfile.TemporaryDirectory[str]] = field(default_factory=list, repr=False)

    def cleanup(self) -> None:
        for directory in self._dirs:
            directory.cleanup()


def _token(n: int = 5) -> str:
    return secrets.token_hex(n)


def plant(cwd: bool = False) -> Canaries:
    """Fresh canary values (different every run) and the environment to run the command with."""
    user = f"cu{_token()}"
    host = f"ch{_token()}"
    home_dir = tempfile.TemporaryDirectory(prefix=f"ti-home-{_token()}-")
    dirs = [home_dir]
    git_name = f"Canary Gitname{_token(3)}"
    git_email = f"cg{_token()}@canary.invalid"
    email = f"ce{_token()}@canary.invalid"
    key = f"tik_{secrets.token_urlsafe(24).replace('-', 'x').replace('_', 'y')}"
    values = [
        Planted("user name", ("USER", "LOGNAME"), user),
        Planted("host name", ("HOSTNAME",), host),
        Planted("home directory", ("HOME",), home_dir.name),
        Planted("git author name", ("GIT_AUTHOR_NAME", "GIT_COMMITTER_NAME"), git_name),
        Planted("git e-mail", ("GIT_AUTHOR_EMAIL", "GIT_COMMITTER_EMAIL"), git_email),
        Planted("e-mail", ("EMAIL",), email),
        Planted("API key", ("TI_CANARY_API_KEY",), key),
    ]
    work = None
    if cwd:
        work_dir = tempfile.TemporaryDirectory(prefix=f"ti-cwd-{_token()}-")
        dirs.append(work_dir)
        work = work_dir.name
        values.append(Planted("working directory", ("PWD",), work))
    env = {name: item.value for item in values for name in item.variables}
    return Canaries(values, env, host, work, dirs)


# ---------------------------------------------------------------------- forms

def _b64_inner(data: bytes) -> set[str]:
    """The Base64 text of `data` that appears whatever the offset of `data` in a longer input:
    for each of the 3 alignments, the characters that hold only bits of `data`."""
    forms = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode("ascii").rstrip("=")
        start = (0, 2, 3)[offset]  # characters mixed with the prefix's bits
        total = offset + len(data)
        end = len(encoded) - (1 if total % 3 else 0)  # the last character mixes with the padding
        inner = encoded[start:end]
        if len(inner) >= MIN_FORM:
            forms.add(inner)
            forms.add(inner.replace("+", "-").replace("/", "_"))
    return forms


def forms_of(value: str) -> dict[str, str]:
    """Each encoded or transformed form of `value` (lowercased) → how it was transformed."""
    out: dict[str, str] = {}

    def add(text: str, form: str) -> None:
        text = text.lower()
        if len(text) >= MIN_FORM:
            out.setdefault(text, form)

    add(value, "plain")
    for variant, case in ((value, ""), (value.lower(), "lowercase "), (value.upper(), "uppercase ")):
        raw = variant.encode("utf-8")
        for name in ("sha256", "sha1", "md5"):
            digest = hashlib.new(name, raw).digest()
            add(digest.hex(), f"{name}({case}")
            add(base64.b64encode(digest).decode().rstrip("="), f"base64 {name}({case}")
            add(base64.urlsafe_b64encode(digest).decode().rstrip("="), f"base64 {name}({case}")
    raw = value.encode("utf-8")
    for text in _b64_inner(raw):
        add(text, "base64(")
    add(raw.hex(), "hex(")
    add(quote(value, safe=""), "percent-encoded(")
    add(quote_plus(value, safe=""), "percent-encoded(")
    return out


def describe(form: str, what: str) -> str:
    """'sha256(' + 'user name' → 'sha256(user name)'; 'plain' → 'user name'."""
    return what if form == "plain" else f"{form}{what})"


@dataclass(frozen=True)
class Hit:
    """One planted value found: which, in what form, where."""

    planted: Planted
    form: str
    where: str
    text: str

    @property
    def label(self) -> str:
        return f"{describe(self.form, self.planted.what)} at {self.where}"


class CanarySearch:
    """Finds planted values in events (see the module doc)."""

    def __init__(self, planted: Iterable[Planted]) -> None:
        self.planted = list(planted)
        self.forms: dict[str, tuple[Planted, str]] = {}
        for item in self.planted:
            for text, form in forms_of(item.value).items():
                self.forms.setdefault(text, (item, form))
        # the longest first: a home path wins over the user name inside it at the same place
        alternatives = sorted(self.forms, key=len, reverse=True)
        self.pattern = re.compile("|".join(map(re.escape, alternatives))) if alternatives else None

    def search_text(self, text: str, where: str) -> list[Hit]:
        if self.pattern is None or not text:
            return []
        text = text[:MAX_TEXT]
        lowered = text.lower()
        same = len(lowered) == len(text)  # (lowercasing a few non-ASCII letters changes the length)
        found = []
        for match in self.pattern.finditer(lowered):
            planted, form = self.forms[match.group()]
            found.append(Hit(planted, form, where, text[match.start():match.end()] if same else match.group()))
        return found

    def search_event(self, event: dict[str, Any]) -> list[Hit]:
        """Every hit in one event (as `Event.to_dict()` has it), one per (value, form, place).
        The decoded payload is searched first; a raw part (body, query) reports only what its
        decoded form did not already show, with the path in the payload."""
        decoded: list[Hit] = []
        for where, text in _strings(event.get("decoded")):
            decoded += self.search_text(text, where or "decoded payload")
        shown = {(hit.planted.value, hit.form) for hit in decoded}
        raw: list[Hit] = []
        url = str(event.get("url") or "")
        try:
            parts = urlsplit(url)
            path, query = parts.path, parts.query
        except ValueError:
            path, query = url, ""
        raw += self.search_text(path, "URL path")
        raw += self.search_text(query, "query string")
        request = event.get("request") or {}
        for pair in request.get("headers") or []:
            if isinstance(pair, (list, tuple)) and len(pair) == 2:
                raw += self.search_text(f"{pair[0]}: {pair[1]}", f"header {str(pair[0])[:60]}")
        body = request.get("body_text")
        if isinstance(body, str):
            raw += self.search_text(body, "body")
        elif isinstance(request.get("body_base64"), str):
            try:
                raw += self.search_text(base64.b64decode(request["body_base64"]).decode("latin-1"), "body")
            except ValueError:
                pass
        # the payload is decoded from the body or the query: what it shows, they need not repeat
        raw = [hit for hit in raw if hit.where not in ("body", "query string")
               or (hit.planted.value, hit.form) not in shown]
        return _unique(decoded + raw)

    def search_names(self, names: Iterable[str], where: str) -> list[Hit]:
        """Hits in host names (DNS look-ups, tunnel targets): data can leave in a name too."""
        hits: list[Hit] = []
        for name in names:
            hits += self.search_text(name, f"{where} {name[:80]}")
        return _unique(hits)


def _unique(hits: list[Hit]) -> list[Hit]:
    seen: dict[tuple[str, str, str], Hit] = {}
    for hit in hits:
        seen.setdefault((hit.planted.value, hit.form, hit.where), hit)
    return list(seen.values())[:MAX_HITS]


def _strings(value: Any) -> Iterable[tuple[str, str]]:
    """(path, text) for every key and string value of a decoded payload, iteratively."""
    stack: list[tuple[Any, str]] = [(value, "")]
    budget = 100_000
    while stack and budget > 0:
        budget -= 1
        node, where = stack.pop()
        if isinstance(node, str):
            yield where, node
        elif isinstance(node, dict):
            for key, child in node.items():
                path = f"{where}.{key}" if where else str(key)
                yield path, str(key)
                stack.append((child, path))
        elif isinstance(node, list):
            for index, child in enumerate(node):
                stack.append((child, f"{where}[{index}]"))


def finding(hit: Hit, policy: Any | None) -> Finding:
    """The `canary` finding for a hit, held against the matched policy's claims: violation when
    the policy claims no personal data or anonymised values (a hashed user name is still an
    identifier), warning otherwise."""
    spec = None
    if policy is not None:
        for check in ANONYMITY_CLAIMS:
            spec = policy.claim(check)
            if spec is not None:
                break
    hashed = policy is not None and bool(policy.claims_of("hashed")) and hit.form.removeprefix("base64 ").startswith(
        ("sha256", "sha1", "md5"))
    severity = VIOLATION if spec is not None else WARNING
    message = f"planted {hit.label}"
    if spec is not None:
        message += f": the vendor claims {spec.check}"
        if hashed:
            message += " (hashing keeps it an identifier: the same input always gives the same digest)"
    return Finding("canary", severity, hit.where, message, evidence=hit.text[:120],
                   claim=Claim(spec.check, spec.citation) if spec is not None else None)
