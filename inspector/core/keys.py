"""Keyring: private keys for opening JWE payloads (JWK, JWK Set, PEM).

Private key material never leaves this module: keys are described by kid, type and a tag
(the RFC 7638 thumbprint of a public key; for a symmetric key, whose thumbprint is a plain
hash of the secret, a salted tag instead), and error messages name the file, never its contents.

Opening a JWE costs what its sender chooses (how many recipients to try, how many PBES2
iterations), so both are capped before any decryption is attempted, and a caller's deadline
is checked between attempts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

from inspector.core.files import FileTooLarge, is_regular, read_regular

# Every algorithm jwcrypto implements, including legacy RSA1_5 (refused by jwcrypto's
# defaults): an auditor must open what vendors really send, then report it as weak.
JWE_ALGORITHMS = [*jwe.default_allowed_algs, "RSA1_5"]
WEAK_ALGORITHMS = {"RSA1_5"}
KEY_FILE_SUFFIXES = {".json", ".jwk", ".jwks", ".pem", ".key"}

MAX_KEY_FILE = 1_000_000
# A JSON-serialised JWE names its recipients; jwcrypto tries every key on every one of them.
MAX_JWE_RECIPIENTS = 8
# PBES2 runs p2c rounds of PBKDF2 per attempt; jwcrypto's own ceiling is 16384.
MAX_PBES2_ITERATIONS = 10_000
# An RSA modulus above 16384 bits is no real key; validating a huge one is slow.
MAX_RSA_BITS = 16384

# Symmetric keys are told apart by an HMAC under this per-process salt: the tag identifies a
# key within one run, and cannot confirm a guessed secret (a plain hash could).
_TAG_SALT = secrets.token_bytes(32)


class KeyLoadError(Exception):
    """A key file that cannot be used; the message is one line and holds no key material."""


class Deadline(Protocol):
    """What `Keyring.open` needs of a time budget (core.decode.Budget)."""

    def exceeded(self) -> bool: ...


def key_tag(key: jwk.JWK) -> str:
    """A printable identifier that reveals nothing about a secret: the RFC 7638 thumbprint of an
    asymmetric key (a hash of public values), a salted truncated HMAC of a symmetric one."""
    if key.get("kty") == "oct":
        digest = hmac.new(_TAG_SALT, key.thumbprint().encode("ascii"), hashlib.sha256).hexdigest()
        return f"salted:{digest[:16]}"
    thumbprint: str = key.thumbprint()
    return thumbprint


@dataclass(frozen=True, slots=True)
class LoadedKey:
    key: jwk.JWK
    origin: str

    @property
    def kid(self) -> str | None:
        kid = self.key.get("kid")
        return str(kid) if kid is not None else None

    @property
    def tag(self) -> str:
        """The kid, else `key_tag` (safe to print and store)."""
        return self.kid or key_tag(self.key)

    def describe(self) -> dict[str, Any]:
        """Public facts about the key: safe to print and store."""
        return {
            "kid": self.kid,
            "kty": self.key.get("kty"),
            "alg": self.key.get("alg"),
            "thumbprint": key_tag(self.key),
            "origin": self.origin,
        }

    def __repr__(self) -> str:  # never the key itself
        return f"LoadedKey(kid={self.kid!r}, kty={self.key.get('kty')!r}, origin={self.origin!r})"


@dataclass(frozen=True, slots=True)
class JweResult:
    """The outcome of opening one JWE."""

    status: str  # "ok", "no-key" (no key opened it), "failed" (malformed, tampered, or refused)
    header: dict[str, Any]
    plaintext: bytes | None = None
    kid: str | None = None  # kid (or tag) of the key that opened it
    message: str = ""
    serialization: str = "compact"


def _is_private(key: jwk.JWK) -> bool:
    kty = key.get("kty")
    if kty == "oct":
        return True
    return bool(key.has_private)


def _check_rsa_size(entry: dict[str, Any], origin: str) -> None:
    modulus = entry.get("n") if entry.get("kty") == "RSA" else None
    # base64url: 6 bits per character
    if isinstance(modulus, str) and len(modulus) * 6 > MAX_RSA_BITS + 8:
        raise KeyLoadError(f"{origin}: RSA key larger than {MAX_RSA_BITS} bits")


def _keys_from_json(data: Any, origin: str) -> list[LoadedKey]:
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        entries = data["keys"]
    elif isinstance(data, dict) and "kty" in data:
        entries = [data]
    else:
        raise KeyLoadError(f"{origin}: not a JWK or JWK Set (no 'kty' or 'keys')")
    keys = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise KeyLoadError(f"{origin}: a JWK Set entry is not an object")
        _check_rsa_size(entry, origin)
        keys.append(jwk.JWK(**entry))
    return [LoadedKey(k, origin) for k in keys]


def load_key_file(path: Path) -> list[LoadedKey]:
    """Load the private keys in one file (JWK, JWK Set or PEM)."""
    origin = path.name
    try:
        raw = read_regular(path, MAX_KEY_FILE)  # never blocks on a FIFO, never reads a device
    except FileTooLarge:
        raise KeyLoadError(f"{path}: too large to be a key file") from None
    except OSError as exc:
        raise KeyLoadError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    text = raw.lstrip()
    try:
        if text.startswith(b"-----BEGIN"):
            if b"ENCRYPTED" in text.split(b"\n", 1)[0]:
                raise KeyLoadError(f"{path}: encrypted PEM keys are not supported; decrypt it first")
            keys = [LoadedKey(jwk.JWK.from_pem(raw), origin)]
        else:
            keys = _keys_from_json(json.loads(raw), origin)
    except KeyLoadError:
        raise
    except RecursionError:
        raise KeyLoadError(f"{path}: not a readable JWK, JWK Set or PEM private key (nested too deeply)") from None
    except (ValueError, TypeError, JWException) as exc:
        # The exception text of a parser can quote the input: name the kind of problem only.
        kind = type(exc).__name__
        raise KeyLoadError(f"{path}: not a readable JWK, JWK Set or PEM private key ({kind})") from None
    public = [k for k in keys if not _is_private(k.key)]
    if public and len(public) == len(keys):
        raise KeyLoadError(f"{path}: holds only public keys; decrypting needs the private key")
    return [k for k in keys if _is_private(k.key)]


class Keyring:
    """The private keys supplied by the user, chosen by kid or tried in turn."""

    def __init__(self, keys: list[LoadedKey] | None = None) -> None:
        self._keys: list[LoadedKey] = list(keys or [])

    @classmethod
    def from_paths(cls, paths: list[Path] | tuple[Path, ...]) -> Keyring:
        ring = cls()
        for path in paths:
            ring.add_path(Path(path))
        return ring

    def add_path(self, path: Path) -> int:
        """Add a key file, or every key file in a directory; returns how many keys were added."""
        if path.is_dir():
            added = 0
            for child in sorted(path.iterdir()):
                # FIFOs and devices are skipped like any other non-key entry (is_regular never opens)
                if child.suffix.lower() in KEY_FILE_SUFFIXES and is_regular(child):
                    try:
                        added += self.add_path(child)
                    except KeyLoadError:
                        continue  # a directory may hold public keys or notes beside private keys
            return added
        if not path.exists():
            raise KeyLoadError(f"key file not found: {path}")
        loaded = load_key_file(path)
        self._keys.extend(loaded)
        return len(loaded)

    def add(self, keys: Iterable[LoadedKey]) -> int:
        """Add keys already loaded (another process's, sent to the audit process); how many."""
        before = len(self._keys)
        self._keys.extend(keys)
        return len(self._keys) - before

    def __iter__(self) -> Iterator[LoadedKey]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({[k.tag[:16] for k in self._keys]})"

    def describe(self) -> list[dict[str, Any]]:
        return [k.describe() for k in self._keys]

    def _candidates(self, kid: str | None) -> list[LoadedKey]:
        if kid is not None:
            chosen = [k for k in self._keys if k.kid == kid]
            if chosen:
                return chosen
        return list(self._keys)

    def open(self, raw: str | dict[str, Any], max_plaintext: int, *,
             max_recipients: int = MAX_JWE_RECIPIENTS, max_pbes2_iterations: int = MAX_PBES2_ITERATIONS,
             deadline: Deadline | None = None) -> JweResult:
        """Open a JWE (compact string, or a flattened/general JSON serialisation).

        Refused without any decryption attempt: more than `max_recipients` recipients, or a
        PBES2 recipient asking for more than `max_pbes2_iterations`. `deadline` is checked
        before each key is tried."""
        serialization = "compact" if isinstance(raw, str) else (
            "json-general" if "recipients" in raw else "json-flattened")
        if isinstance(raw, dict):
            recipients = raw.get("recipients")
            if isinstance(recipients, list) and len(recipients) > max_recipients:
                return JweResult("failed", _raw_header(raw),
                                 message=f"{len(recipients)} recipients, more than the {max_recipients} "
                                         "allowed; not decrypted", serialization=serialization)
        token = jwe.JWE(algs=JWE_ALGORITHMS)
        try:
            token.deserialize(raw if isinstance(raw, str) else json.dumps(raw))
            header = jwe_header(token)
            refusal = _pbes2_refusal(token, max_pbes2_iterations)
        except RecursionError:
            return JweResult("failed", {}, message="malformed JWE: header nested too deeply",
                             serialization=serialization)
        except (JWException, ValueError, TypeError, KeyError, AttributeError) as exc:
            return JweResult("failed", {}, message=f"malformed JWE: {_reason(exc)}",
                             serialization=serialization)
        if refusal:
            return JweResult("failed", header, message=refusal, serialization=serialization)
        kid = header.get("kid")
        candidates = self._candidates(str(kid) if kid is not None else None)
        if not candidates:
            return JweResult("no-key", header, message="no key supplied", serialization=serialization)
        failures = []
        for tried, candidate in enumerate(candidates):
            if deadline is not None and deadline.exceeded():
                return JweResult("failed", header, serialization=serialization,
                                 message=f"decoding time budget exceeded after trying {tried} of "
                                         f"{len(candidates)} key(s)")
            try:
                token.decrypt(candidate.key, max_plaintext=max_plaintext)
            except (JWException, ValueError, TypeError, KeyError) as exc:
                failures.append(_reason(exc))
                continue
            plaintext = token.plaintext
            if plaintext is None:
                failures.append("no plaintext")
                continue
            return JweResult("ok", header, plaintext=bytes(plaintext), kid=candidate.tag,
                             serialization=serialization)
        kid_matched = kid is not None and any(c.kid == kid for c in candidates)
        if kid_matched:
            # The right key by kid failed: the token was tampered with or truncated.
            return JweResult("failed", header,
                             message=f"the key with kid={str(kid)[:80]} did not open it (tampered or truncated?)",
                             serialization=serialization)
        if any("exceeds maximum" in f for f in failures):
            return JweResult("failed", header, message="decompressed plaintext exceeds the size limit",
                             serialization=serialization)
        return JweResult("no-key", header, message=f"none of {len(candidates)} supplied key(s) opened it",
                         serialization=serialization)


def _json_object(value: Any) -> dict[str, Any]:
    """A header member as a dict: jwcrypto keeps them as JSON text; anything else counts as empty."""
    if isinstance(value, str):
        value = json.loads(value)
    return value if isinstance(value, dict) else {}


def _recipient_headers(token: jwe.JWE) -> list[dict[str, Any]]:
    """Each recipient's whole JOSE header (protected + shared unprotected + its own)."""
    objects = token.objects
    shared: dict[str, Any] = {}
    if objects.get("protected"):
        shared.update(_json_object(objects["protected"]))
    shared.update(_json_object(objects.get("unprotected")))
    recipients = objects.get("recipients")
    own = [r.get("header") for r in recipients if isinstance(r, dict)] if isinstance(recipients, list) \
        else [objects.get("header")]
    return [{**shared, **_json_object(h)} for h in own] or [shared]


def _pbes2_refusal(token: jwe.JWE, limit: int) -> str:
    """Why the token's PBES2 parameters are refused (empty when they are not)."""
    for header in _recipient_headers(token):
        alg = header.get("alg")
        if not (isinstance(alg, str) and alg.startswith("PBES2")):
            continue
        count = header.get("p2c")
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            return f"{alg} with an invalid iteration count p2c={str(count)[:40]}; not decrypted"
        if count > limit:
            return f"{alg} asks for {count} PBKDF2 iterations (p2c), more than the {limit} allowed; not decrypted"
    return ""


def _raw_header(raw: dict[str, Any]) -> dict[str, Any]:
    """The public header of a JSON-serialised JWE that is not deserialised (best effort)."""
    header: dict[str, Any] = {}
    try:
        protected = raw.get("protected")
        if isinstance(protected, str) and len(protected) < 65536:
            decoded = base64.urlsafe_b64decode(protected + "=" * (-len(protected) % 4))
            header.update(_json_object(decoded.decode("utf-8")))
        header.update(_json_object(raw.get("unprotected")))
    except (ValueError, TypeError, binascii.Error, RecursionError):  # (UnicodeDecodeError is a ValueError)
        return {}
    return {k: header[k] for k in ("alg", "enc", "kid", "zip", "typ", "cty") if k in header}


def jwe_header(token: jwe.JWE) -> dict[str, Any]:
    """The JOSE header (protected + shared unprotected + first recipient's), public data only."""
    header: dict[str, Any] = {}
    objects = token.objects
    protected = objects.get("protected")
    if protected:
        try:
            header.update(_json_object(protected))
        except ValueError:
            pass
    header.update(_json_object(objects.get("unprotected")))
    recipients = objects.get("recipients")
    first = recipients[0] if isinstance(recipients, list) and recipients else objects
    if isinstance(first, dict):
        header.update(_json_object(first.get("header")))
    # Keep only the fields an auditor needs; drop embedded keys (jwk, epk are public anyway).
    return {k: header[k] for k in ("alg", "enc", "kid", "zip", "typ", "cty") if k in header}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
