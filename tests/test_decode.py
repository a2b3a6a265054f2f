"""Each decoding layer, each key type, and the safety bounds."""

from __future__ import annotations

import base64
import gzip
import json
import zlib

import brotli
import pytest
from jwcrypto import jwe, jwk

from inspector.core.decode import Decoder, Limits, raw_query_param
from inspector.core.keys import KeyLoadError, Keyring, load_key_file

PAYLOAD = {"providers": {"auth": False, "router": True}, "version": "4.58.0", "resourceCount": 2}


def b64(data: bytes, urlsafe: bool = False, pad: bool = True) -> bytes:
    out = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return out if pad else out.rstrip(b"=")


def jdump(value) -> bytes:
    return json.dumps(value).encode()


def encrypt(plaintext: bytes, key: jwk.JWK, alg="RSA-OAEP-256", enc="A256GCM", kid=None, **extra) -> str:
    header = {"alg": alg, "enc": enc, **extra}
    if kid:
        header["kid"] = kid
    token = jwe.JWE(plaintext, json.dumps(header), algs=[alg, enc])
    token.add_recipient(key)
    return token.serialize(compact=True)


@pytest.fixture(scope="module")
def rsa_key() -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048, kid="test-rsa")


def test_plain_json_body():
    d = Decoder().decode(jdump(PAYLOAD))
    assert d.value == PAYLOAD and d.structured
    assert d.path_labels == ["body", "json"]


@pytest.mark.parametrize("urlsafe,pad", [(False, True), (False, False), (True, True), (True, False)])
def test_base64_variants(urlsafe, pad):
    # a payload whose encoding contains + and / (or - and _)
    value = {"projectId": "???>>>~~~", **PAYLOAD}
    d = Decoder().decode(b64(jdump(value), urlsafe, pad))
    assert d.value == value
    assert d.path_labels[1] == ("base64url" if urlsafe else "base64")
    assert d.path_labels[-1] == "json"


def test_raw_query_keeps_plus_signs():
    encoded = b64(jdump({"projectId": "???>>>", **PAYLOAD})).decode()
    assert "+" in encoded or "/" in encoded
    value = raw_query_param(f"payload={encoded}&x=1", "payload")
    assert value == encoded  # urllib's parse_qs would have turned '+' into ' '
    assert Decoder().decode(value.encode(), "query:payload").value["projectId"] == "???>>>"


@pytest.mark.parametrize("coding,compress", [
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli.compress),
])
def test_content_encodings(coding, compress):
    d = Decoder().decode(compress(jdump(PAYLOAD)), content_encoding=coding)
    assert d.value == PAYLOAD
    assert d.path_labels == ["body", coding, "json"]


def test_raw_deflate_content_encoding():
    c = zlib.compressobj(wbits=-15)
    data = c.compress(jdump(PAYLOAD)) + c.flush()
    assert Decoder().decode(data, content_encoding="deflate").value == PAYLOAD


def test_gzip_sniffed_without_header_and_base64_of_gzip():
    d = Decoder().decode(b64(gzip.compress(jdump(PAYLOAD))))
    assert d.path_labels == ["body", "base64", "gzip", "json"]
    assert d.value == PAYLOAD


def test_nested_json_in_string_field():
    d = Decoder().decode(jdump({"event": "x", "properties": json.dumps({"a": {"b": 1}})}))
    assert d.value["properties"] == {"a": {"b": 1}}
    assert "json@properties" in d.path_labels


def test_form_body():
    body = b"event=click&payload=" + b64(jdump({"a": 1}))
    d = Decoder().decode(body, content_type="application/x-www-form-urlencoded")
    assert d.value["event"] == "click"
    assert d.value["payload"] == {"a": 1}
    assert "form" in d.path_labels


def test_jwe_compact_with_rsa_jwk(rsa_key, tmp_path):
    token = encrypt(jdump(PAYLOAD), rsa_key)
    key_file = tmp_path / "k.jwk.json"
    key_file.write_text(rsa_key.export_private())
    d = Decoder(Keyring.from_paths([key_file])).decode(token.encode())
    assert d.value == PAYLOAD
    assert d.path_labels[1].startswith("jwe(RSA-OAEP-256, A256GCM")
    assert d.jwe == {"alg": "RSA-OAEP-256", "enc": "A256GCM"}


def test_jwe_chosen_by_kid_from_jwks(tmp_path):
    keys = [jwk.JWK.generate(kty="RSA", size=2048, kid=f"k{i}") for i in range(3)]
    jwks = {"keys": [json.loads(k.export_private()) for k in keys]}
    (tmp_path / "set.jwks").write_text(json.dumps(jwks))
    token = encrypt(b'{"x": 2}', keys[2], kid="k2")
    d = Decoder(Keyring.from_paths([tmp_path / "set.jwks"])).decode(token.encode())
    assert d.value == {"x": 2}
    assert d.layers[1].detail["key"] == "k2"


def test_jwe_with_pem_private_key(rsa_key, tmp_path):
    pem = rsa_key.export_to_pem(private_key=True, password=None)
    (tmp_path / "key.pem").write_bytes(pem)
    token = encrypt(jdump(PAYLOAD), rsa_key)
    assert Decoder(Keyring.from_paths([tmp_path / "key.pem"])).decode(token.encode()).value == PAYLOAD


def test_jwe_key_directory_and_ec_and_symmetric(tmp_path):
    ec = jwk.JWK.generate(kty="EC", crv="P-256", kid="ec")
    oct_key = jwk.JWK.generate(kty="oct", size=256, kid="sym")
    (tmp_path / "ec.json").write_text(ec.export_private())
    (tmp_path / "sym.json").write_text(oct_key.export())
    (tmp_path / "README.txt").write_text("not a key")
    ring = Keyring.from_paths([tmp_path])
    assert len(ring) == 2
    d1 = Decoder(ring).decode(encrypt(b'{"e": 1}', ec, alg="ECDH-ES+A256KW", enc="A256GCM").encode())
    d2 = Decoder(ring).decode(encrypt(b'{"s": 1}', oct_key, alg="A256KW", enc="A128CBC-HS256").encode())
    assert d1.value == {"e": 1} and d2.value == {"s": 1}


def test_jwe_json_serialisations(rsa_key, tmp_path):
    other = jwk.JWK.generate(kty="RSA", size=2048, kid="other")
    token = jwe.JWE(jdump(PAYLOAD), json.dumps({"enc": "A256GCM"}), algs=["RSA-OAEP-256", "A256GCM"])
    token.add_recipient(other, json.dumps({"alg": "RSA-OAEP-256", "kid": "other"}))
    token.add_recipient(rsa_key, json.dumps({"alg": "RSA-OAEP-256", "kid": "test-rsa"}))
    general = token.serialize()
    (tmp_path / "k.json").write_text(rsa_key.export_private())
    ring = Keyring.from_paths([tmp_path / "k.json"])
    d = Decoder(ring).decode(general.encode())
    assert d.value == PAYLOAD
    assert d.layers[1].detail["serialization"] == "json-general"

    flat = jwe.JWE(jdump(PAYLOAD), json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM"}),
                   algs=["RSA-OAEP-256", "A256GCM"])
    flat.add_recipient(rsa_key)
    d = Decoder(ring).decode(flat.serialize().encode())
    assert d.value == PAYLOAD
    assert d.layers[1].detail["serialization"] == "json-flattened"


def test_legacy_rsa1_5_is_opened_and_reported_weak(rsa_key, tmp_path):
    (tmp_path / "k.json").write_text(rsa_key.export_private())
    token = encrypt(b'{"legacy": true}', rsa_key, alg="RSA1_5", enc="A128CBC-HS256")
    d = Decoder(Keyring.from_paths([tmp_path / "k.json"])).decode(token.encode())
    assert d.value == {"legacy": True}
    assert [i.code for i in d.issues] == ["weak-algorithm"]


def test_jwe_without_key_is_unverifiable_with_header(rsa_key):
    d = Decoder().decode(encrypt(b"{}", rsa_key, kid="vendor-1").encode())
    assert d.value is None
    assert d.jwe == {"alg": "RSA-OAEP-256", "enc": "A256GCM", "kid": "vendor-1"}
    assert [i.code for i in d.issues] == ["unverifiable-encrypted"]
    assert "not verifiable without the key" in d.issues[0].message


def test_jwe_wrong_key_is_unverifiable(rsa_key, tmp_path):
    wrong = jwk.JWK.generate(kty="RSA", size=2048, kid="wrong")
    (tmp_path / "w.json").write_text(wrong.export_private())
    d = Decoder(Keyring.from_paths([tmp_path / "w.json"])).decode(encrypt(b"{}", rsa_key).encode())
    assert [i.code for i in d.issues] == ["unverifiable-encrypted"]


def test_tampered_jwe_is_a_decode_error(rsa_key, tmp_path):
    (tmp_path / "k.json").write_text(rsa_key.export_private())
    parts = encrypt(jdump(PAYLOAD), rsa_key, kid="test-rsa").split(".")
    parts[3] = parts[3][:-4] + ("AAAA" if parts[3][-4:] != "AAAA" else "BBBB")
    d = Decoder(Keyring.from_paths([tmp_path / "k.json"])).decode(".".join(parts).encode())
    assert d.value is None
    assert [i.code for i in d.issues] == ["decode-error"]


def test_truncated_jwe_is_a_decode_error(rsa_key):
    token = encrypt(jdump(PAYLOAD), rsa_key)
    d = Decoder().decode(".".join(token.split(".")[:4]).encode())
    assert [i.code for i in d.issues] == ["decode-error"]
    assert "4 parts" in d.issues[0].message


def test_jwe_zip_bomb_is_bounded(rsa_key, tmp_path):
    (tmp_path / "k.json").write_text(rsa_key.export_private())
    bomb = b'{"a":"' + b"0" * 50_000_000 + b'"}'
    token = jwe.JWE(bomb, json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM", "zip": "DEF"}),
                    algs=["RSA-OAEP-256", "A256GCM"])
    token.add_recipient(rsa_key)
    limits = Limits(max_decompressed=1_000_000)
    d = Decoder(Keyring.from_paths([tmp_path / "k.json"]), limits).decode(token.serialize(compact=True).encode())
    assert d.value is None
    assert d.issues and d.issues[0].code == "decode-error"


@pytest.mark.slow
def test_gzip_bomb_is_bounded():
    bomb = gzip.compress(b"\0" * 200_000_000, compresslevel=9)
    d = Decoder(limits=Limits(max_decompressed=10_000_000)).decode(bomb, content_encoding="gzip")
    assert d.value is None and "exceeds the limit" in d.issues[0].message


@pytest.mark.slow
def test_brotli_bomb_is_bounded():
    bomb = brotli.compress(b"\0" * 50_000_000)
    d = Decoder(limits=Limits(max_decompressed=1_000_000)).decode(bomb, content_encoding="br")
    assert "exceeds the limit" in d.issues[0].message


def test_body_size_limit():
    d = Decoder(limits=Limits(max_body=1000)).decode(b"{" + b" " * 2000 + b"}")
    assert "exceeds the limit" in d.issues[0].message


def test_deep_nesting_is_bounded():
    d = Decoder().decode(b"[" * 100_000 + b"]" * 100_000)
    assert d.issues[0].code == "decode-error" and "nesting" in d.issues[0].message
    d = Decoder(limits=Limits(max_depth=5)).decode(jdump({"a": {"b": {"c": {"d": {"e": {"f": 1}}}}}}))
    assert "nesting" in d.issues[0].message


def test_layer_count_is_bounded():
    data = jdump(PAYLOAD)
    for _ in range(12):
        data = base64.b64encode(data)
    d = Decoder(limits=Limits(max_layers=8)).decode(data)
    assert d.value is None or not d.structured
    assert any("layers" in i.message for i in d.issues)


def test_invalid_utf8_json_is_reported_and_kept():
    d = Decoder().decode(b'{"name": "caf\xe9", "n": 1}')
    assert d.value["n"] == 1
    assert d.issues[0].code == "decode-error" and "UTF-8" in d.issues[0].message


def test_malformed_inputs_never_raise():
    for data in [b"\xff\xfe\x00garbage", b"{not json", b"eyJhbGciOiJub25lIn0.x.y", b"!!!!", b"=" * 100,
                 b"\x1f\x8b\x08\x00broken", b"", b"   ", b"null", b"12", b'"string"']:
        d = Decoder().decode(data)
        assert isinstance(d.path_labels, list)


def test_malformed_base64_with_junk_stays_text():
    d = Decoder().decode(b"eyJhIjoxfQ==$$junk")
    assert d.value == "eyJhIjoxfQ==$$junk"
    assert not d.structured


def test_key_errors_never_print_key_material(rsa_key, tmp_path):
    secret = json.loads(rsa_key.export_private())
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({**secret, "kty": "NOPE"}))
    with pytest.raises(KeyLoadError) as info:
        load_key_file(broken)
    assert secret["d"] not in str(info.value) and secret["p"] not in str(info.value)
    public_only = tmp_path / "pub.json"
    public_only.write_text(rsa_key.export_public())
    with pytest.raises(KeyLoadError, match="only public keys"):
        load_key_file(public_only)
    ring = Keyring.from_paths([tmp_path / "pub.json"]) if False else Keyring()
    (tmp_path / "good.json").write_text(rsa_key.export_private())
    ring.add_path(tmp_path / "good.json")
    assert secret["d"] not in repr(ring) and secret["d"] not in json.dumps(ring.describe())
