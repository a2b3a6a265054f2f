"""The decode-layer registry: each layer a registered entry, tried in order; the policy format's
encodings, the Content-Encodings undone and the layers' labels come from it."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest

from inspector.core import decode
from inspector.core.decode import DecodeLayer, Decoder, Layer, Round, inflate
from inspector.core.policy import PolicyError, parse_policy_text

ROOT = Path(__file__).resolve().parents[1]
POLICY = textwrap.dedent("""\
    id: demo
    vendor: Demo
    product: Demo CLI
    source: {document: "demo.md"}
    match: {hosts: ["t.demo.example"]}
    payload: {location: body, encoding: ENCODING}
    declared: {}
""")


def test_the_built_in_layers_in_the_order_the_loop_tries_them():
    assert [layer.name for layer in decode._registry.peelers()] == ["gzip", "jwe", "json", "base64", "form"]
    assert set(decode.encodings()) == {"gzip", "deflate", "br", "base64", "jwe", "json", "form"}
    for name, layer in [("gzip", "gzip"), ("x-gzip", "gzip"), ("deflate", "deflate"), ("br", "br")]:
        assert decode._registry.content_coding(name).name == layer
    assert decode._registry.content_coding("zstd") is None
    for layer in decode.all_layers():
        assert layer.description, layer.name
        # a layer that reads bytes only must come before every layer that reads text
        if layer.peel is not None and not layer.text:
            assert all(layer.order < other.order for other in decode._registry.peelers() if other.text)


def test_labels_come_from_the_layers():
    assert Layer("base64", {"variant": "url-safe, unpadded"}).label == "base64url"
    assert Layer("base64", {"variant": "standard"}).label == "base64"
    assert Layer("jwe", {"alg": "RSA-OAEP-256", "enc": "A256GCM", "status": "no-key"}).label == \
        "jwe(RSA-OAEP-256, A256GCM, no-key)"
    assert Layer("ndjson", {"lines": 2}).label == "ndjson"  # a collector's own step: its name


def test_the_policy_format_takes_its_encodings_from_the_registry():
    assert parse_policy_text(POLICY.replace("ENCODING", "[gzip, base64, json]"), "p.yaml").encoding == \
        ("gzip", "base64", "json")
    with pytest.raises(PolicyError) as info:
        parse_policy_text(POLICY.replace("ENCODING", "[jsn]"), "p.yaml")
    assert info.value.lines() == [f"p.yaml:6: payload.encoding.0: 'jsn' is not one of "
                                  f"{', '.join(sorted(decode.encodings()))}"]


def test_the_policy_docs_list_every_encoding():
    doc = (ROOT / "docs" / "policies.md").read_text(encoding="utf-8")
    row = re.search(r"^\| `encoding` \|(.*)$", doc, re.M).group(1)
    for name in decode.encodings():
        assert f"`{name}`" in row, f"docs/policies.md's encoding row does not name {name}"


_HEX = re.compile(r"(?:[0-9a-f]{2}){4,}")


def _peel_hex(rnd: Round) -> bytes | None:
    assert rnd.text is not None
    if not _HEX.fullmatch(rnd.text):
        return None
    rnd.result.layers.append(Layer("hex"))
    return bytes.fromhex(rnd.text)


def test_adding_a_layer_is_registering_it():
    decode.register(DecodeLayer("hex", _peel_hex, order=45, description="hexadecimal text"))
    decode.register(DecodeLayer("x-reverse", inflate=lambda data, limits: data[::-1], policy=False,
                                description="a test Content-Encoding"))
    try:
        decoded = Decoder().decode(b"7b2261223a317d")  # {"a":1}
        assert decoded.path_labels == ["body", "hex", "json"] and decoded.value == {"a": 1}
        # after Base64 (order 40), which passes over hex text: what it would hide is not recognised
        assert Decoder().decode(b"7b2261223a317d0a").path_labels[:2] == ["body", "hex"]
        assert parse_policy_text(POLICY.replace("ENCODING", "[hex, json]"), "p.yaml").encoding == ("hex", "json")
        with pytest.raises(PolicyError, match="'x-reverse' is not one of"):  # not a policy's to name
            parse_policy_text(POLICY.replace("ENCODING", "[x-reverse]"), "p.yaml")
        reversed_body = Decoder().decode(b'}1:"a"{', content_encoding="x-reverse")
        assert reversed_body.path_labels == ["body", "x-reverse", "json"] and reversed_body.value == {"a": 1}
        assert inflate(b"cba", "x-reverse")[0] == b"abc"
    finally:
        decode.unregister("hex")
        decode.unregister("x-reverse")
    assert Decoder().decode(b"7b2261223a317d").path_labels == ["body"]
    assert "unsupported Content-Encoding: x-reverse" in Decoder().decode(b"x", content_encoding="x-reverse").issues[0].message


def test_two_layers_may_not_share_a_name_or_a_content_encoding():
    with pytest.raises(ValueError, match="two decode layers are named 'json'"):
        decode.register(DecodeLayer("json", _peel_hex))
    with pytest.raises(ValueError, match="both answer to 'x-gzip'"):
        decode.register(DecodeLayer("gzip2", inflate=lambda data, limits: data, aliases=("x-gzip",)))
