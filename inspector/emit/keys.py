"""TEST keys for the emitters' JWE samples (never a vendor's key).

`write_test_keys(directory)` writes the files described in fixtures/README.md: the refine
test key pair (private JWK, PEM, public JWK), a JWK Set with an extra EC key, and the public
half of a key whose private half is thrown away (for the "unverifiable" sample).
"""

from __future__ import annotations

import json
from pathlib import Path

from jwcrypto import jwk

REFINE_TEST_KID = "refine-test-rsa-1"
EC_TEST_KID = "test-ec-1"
OTHER_KID = "other-rsa-1"

PRIVATE_JWK = "refine-test-rsa.jwk"
PRIVATE_PEM = "refine-test-rsa.pem"
PUBLIC_JWK = "refine-test-public.jwk"
JWKS = "test-keys.jwks"
OTHER_PUBLIC_JWK = "other-rsa.jwk"


def _write(path: Path, text: str, private: bool) -> None:
    path.write_text(text)
    if private:
        path.chmod(0o600)


def write_test_keys(directory: Path) -> jwk.JWK:
    """Generate fresh test keys into `directory`; return the refine test private key."""
    directory.mkdir(parents=True, exist_ok=True)
    private = jwk.JWK.generate(kty="RSA", size=2048, kid=REFINE_TEST_KID, alg="RSA-OAEP-256", use="enc")
    ec_key = jwk.JWK.generate(kty="EC", crv="P-256", kid=EC_TEST_KID, alg="ECDH-ES", use="enc")
    other = jwk.JWK.generate(kty="RSA", size=2048, kid=OTHER_KID, alg="RSA-OAEP-256", use="enc")
    _write(directory / PRIVATE_JWK, json.dumps(private.export(private_key=True, as_dict=True), indent=2) + "\n", True)
    _write(directory / PRIVATE_PEM, private.export_to_pem(private_key=True, password=None).decode("ascii"), True)
    _write(directory / PUBLIC_JWK, json.dumps(private.export(private_key=False, as_dict=True), indent=2) + "\n", False)
    keyset = {"keys": [private.export(private_key=True, as_dict=True), ec_key.export(private_key=True, as_dict=True)]}
    _write(directory / JWKS, json.dumps(keyset, indent=2) + "\n", True)
    # Only the public half is kept: nobody can open what is encrypted to it.
    _write(directory / OTHER_PUBLIC_JWK, json.dumps(other.export(private_key=False, as_dict=True), indent=2) + "\n", False)
    return private


def load_public_keys(directory: Path) -> tuple[jwk.JWK, jwk.JWK]:
    """(refine test public key, the other public key) from a directory written by write_test_keys."""
    refine = jwk.JWK(**json.loads((directory / PUBLIC_JWK).read_text()))
    other = jwk.JWK(**json.loads((directory / OTHER_PUBLIC_JWK).read_text()))
    return refine, other
