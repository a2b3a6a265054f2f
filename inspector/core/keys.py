"""Keyring: private keys for opening JWE payloads (JWK, JWK Set, PEM).

Private key material never leaves this module: keys are described by kid, type and
thumbprint only, and error messages name the file, never its contents.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jwcrypto import jwe, jwk
from jwcrypto.common import JWException

# Every algorithm jwcrypto implements, including legacy RSA1_5 (refused by jwcrypto's
# defaults): an auditor must open what vendors really send, then report it as weak.
JWE_ALGORITHMS = [*jwe.default_allowed_algs, "RSA1_5"]
WEAK_ALGORITHMS = {"RSA1_5"}
KEY_FILE_SUFFIXES = {".json", ".jwk", ".jwks", ".pem", ".key"}


class KeyLoadError(Exception):
    """A key file that cannot be used; the message is one line and holds no key material."""


@dataclass(frozen=True, slots=True)
class LoadedKey:
    key: jwk.JWK
    origin: str

    @property
    def kid(self) -> str | None:
        kid = self.key.get("kid")
        return str(kid) if kid is not None else None

    def describe(self) -> dict[str, Any]:
        """Public facts about the key: safe to print and store."""
        return {
            "kid": self.kid,
            "kty": self.key.get("kty"),
            "alg": self.key.get("alg"),
            "thumbprint": self.key.thumbprint(),
            "origin": self.origin,
        }

    def __repr__(self) -> str:  # never the key itself
        return f"LoadedKey(kid={self.kid!r}, kty={self.key.get('kty')!r}, origin={self.origin!r})"


@dataclass(frozen=True, slots=True)
class JweResult:
    """The outcome of opening one JWE."""

    status: str  # "ok", "no-key" (no key opened it), "failed" (malformed or tampered)
    header: dict[str, Any]
    plaintext: bytes | None = None
    kid: str | None = None  # kid (or thumbprint) of the key that opened it
    message: str = ""
    serialization: str = "compact"


def _is_private(key: jwk.JWK) -> bool:
    kty = key.get("kty")
    if kty == "oct":
        return True
    return bool(key.has_private)


def _keys_from_json(data: Any, origin: str) -> list[LoadedKey]:
    if isinstance(data, dict) and isinstance(data.get("keys"), list):
        keys = [jwk.JWK(**k) for k in data["keys"]]
    elif isinstance(data, dict) and "kty" in data:
        keys = [jwk.JWK(**data)]
    else:
        raise KeyLoadError(f"{origin}: not a JWK or JWK Set (no 'kty' or 'keys')")
    return [LoadedKey(k, origin) for k in keys]


def load_key_file(path: Path) -> list[LoadedKey]:
    """Load the private keys in one file (JWK, JWK Set or PEM)."""
    origin = path.name
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise KeyLoadError(f"cannot read key file {path}: {exc.strerror or exc}") from None
    if len(raw) > 1_000_000:
        raise KeyLoadError(f"{path}: too large to be a key file")
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
                if child.is_file() and child.suffix.lower() in KEY_FILE_SUFFIXES:
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

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"Keyring({[k.kid or k.key.thumbprint()[:8] for k in self._keys]})"

    def describe(self) -> list[dict[str, Any]]:
        return [k.describe() for k in self._keys]

    def _candidates(self, kid: str | None) -> list[LoadedKey]:
        if kid is not None:
            chosen = [k for k in self._keys if k.kid == kid]
            if chosen:
                return chosen
        return list(self._keys)

    def open(self, raw: str | dict[str, Any], max_plaintext: int) -> JweResult:
        """Open a JWE (compact string, or a flattened/general JSON serialisation)."""
        serialization = "compact" if isinstance(raw, str) else (
            "json-general" if "recipients" in raw else "json-flattened")
        token = jwe.JWE(algs=JWE_ALGORITHMS)
        try:
            token.deserialize(raw if isinstance(raw, str) else json.dumps(raw))
        except (JWException, ValueError, TypeError, KeyError) as exc:
            return JweResult("failed", {}, message=f"malformed JWE: {_reason(exc)}",
                             serialization=serialization)
        header = jwe_header(token)
        kid = header.get("kid")
        candidates = self._candidates(str(kid) if kid is not None else None)
        if not candidates:
            return JweResult("no-key", header, message="no key supplied", serialization=serialization)
        failures = []
        for candidate in candidates:
            try:
                token.decrypt(candidate.key, max_plaintext=max_plaintext)
            except (JWException, ValueError, TypeError, KeyError) as exc:
                failures.append(_reason(exc))
                continue
            plaintext = token.plaintext
            if plaintext is None:
                failures.append("no plaintext")
                continue
            return JweResult("ok", header, plaintext=bytes(plaintext),
                             kid=candidate.kid or candidate.key.thumbprint(),
                             serialization=serialization)
        kid_matched = kid is not None and any(c.kid == kid for c in candidates)
        if kid_matched:
            # The right key by kid failed: the token was tampered with or truncated.
            return JweResult("failed", header,
                             message=f"the key with kid={kid} did not open it (tampered or truncated?)",
                             serialization=serialization)
        if any("exceeds maximum" in f for f in failures):
            return JweResult("failed", header, message="decompressed plaintext exceeds the size limit",
                             serialization=serialization)
        return JweResult("no-key", header, message=f"none of {len(candidates)} supplied key(s) opened it",
                         serialization=serialization)


def jwe_header(token: jwe.JWE) -> dict[str, Any]:
    """The JOSE header (protected + shared unprotected + first recipient's), public data only."""
    header: dict[str, Any] = {}
    objects = token.objects
    protected = objects.get("protected")
    if protected:
        try:
            header.update(json.loads(protected))
        except ValueError:
            pass
    if isinstance(objects.get("unprotected"), (str, dict)):
        unprotected = objects["unprotected"]
        header.update(json.loads(unprotected) if isinstance(unprotected, str) else unprotected)
    recipients = objects.get("recipients")
    first = recipients[0] if isinstance(recipients, list) and recipients else objects
    rec_header = first.get("header") if isinstance(first, dict) else None
    if isinstance(rec_header, (str, dict)):
        header.update(json.loads(rec_header) if isinstance(rec_header, str) else rec_header)
    # Keep only the fields an auditor needs; drop embedded keys (jwk, epk are public anyway).
    return {k: header[k] for k in ("alg", "enc", "kid", "zip", "typ", "cty") if k in header}


def _reason(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]
