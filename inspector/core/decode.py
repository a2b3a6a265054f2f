"""Layered, bounded decoding: bytes on the wire → plain JSON, with the path taken recorded.

Each layer the decoder peels off is recorded (`query:payload → base64 → json`,
`body → gzip → json`, `body → jwe(RSA-OAEP-256, A256GCM) → json`). Every step is bounded
(input size, decompressed size, nesting depth, layer count): past a bound the result
carries a `decode-error` issue, never an exception or a hang.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, unquote_to_bytes

from inspector.core.keys import WEAK_ALGORITHMS, Keyring

try:  # brotli is a dependency, but a broken install must not break every other layer
    import brotli as _brotli
except ImportError:  # pragma: no cover
    _brotli = None


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety bounds for decoding. Past one, the event gets a `decode-error` finding."""

    max_body: int = 16 * 1024 * 1024
    max_decompressed: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_layers: int = 8
    max_nested_json: int = 64  # how many string fields may themselves be decoded as JSON


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class Layer:
    """One decoding step."""

    name: str  # body, query:<n>, form:<n>, ws-message, gzip, deflate, br, base64, jwe, json, form, json@<path>
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        if self.name == "jwe":
            parts = [str(self.detail[k]) for k in ("alg", "enc") if self.detail.get(k)]
            if self.detail.get("kid"):
                parts.append(f"kid={self.detail['kid']}")
            if self.detail.get("status") and self.detail["status"] != "ok":
                parts.append(self.detail["status"])
            return f"jwe({', '.join(parts)})"
        if self.name == "base64" and str(self.detail.get("variant", "")).startswith("url-safe"):
            return "base64url"
        return self.name

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.name, "label": self.label, **({"detail": self.detail} if self.detail else {})}


@dataclass(frozen=True, slots=True)
class Issue:
    """Something the decoder could not do. `code` is a finding code."""

    code: str  # decode-error, unverifiable-encrypted, weak-algorithm
    message: str
    path: str = ""


@dataclass(slots=True)
class Decoded:
    """The result of decoding one payload."""

    value: Any = None
    layers: list[Layer] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    jwe: dict[str, Any] | None = None  # the JWE header, when one was met
    structured: bool = False  # True when the value is JSON (or form) data

    @property
    def path_labels(self) -> list[str]:
        return [layer.label for layer in self.layers]

    @property
    def encodings(self) -> list[str]:
        """The layer names after the location, comparable to a policy's `encoding` list."""
        return [
            layer.name for layer in self.layers[1:] if not layer.name.startswith("json@")
        ]


class _Stop(Exception):
    """Decoding cannot go on; carries the issue to record."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.issue = Issue(code, message)


_B64_RE = re.compile(rb"^[A-Za-z0-9+/_\-]+={0,2}$")
_JWE_COMPACT_RE = re.compile(
    r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$"
)
_FORM_RE = re.compile(r"^[^=&\s{}\[\]\"]+=[^&\s]*(?:&[^=&\s]+=[^&\s]*)*$")


# ---------------------------------------------------------------- raw parameter access

def raw_query_params(query: str) -> list[tuple[str, str]]:
    """Parse a query string without turning `+` into a space.

    refine's client puts standard Base64 (with `+`, `/`, `=`) into the query unescaped;
    `urllib.parse.parse_qs` would corrupt it.
    """
    params: list[tuple[str, str]] = []
    for part in query.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        params.append((unquote(name), unquote_to_bytes(value).decode("utf-8", "surrogateescape")))
    return params


def raw_query_param(query: str, name: str) -> str | None:
    for key, value in raw_query_params(query):
        if key == name:
            return value
    return None


# ---------------------------------------------------------------- bounded primitives

def _decompress(data: bytes, kind: str, limits: Limits) -> bytes:
    limit = limits.max_decompressed
    if kind == "br":
        if _brotli is None:  # pragma: no cover
            raise _Stop("decode-error", "brotli support is not installed")
        try:
            decompressor = _brotli.Decompressor()
            out = decompressor.process(data, output_buffer_limit=limit + 1)
            if len(out) > limit or not decompressor.is_finished():
                if len(out) > limit:
                    raise _Stop("decode-error", f"br: decompressed size exceeds the limit of {limit} bytes")
                raise _Stop("decode-error", "br: truncated stream")
            return bytes(out)
        except _brotli.error as exc:
            raise _Stop("decode-error", f"br: {exc}") from None
    wbits = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS}[kind]
    out_parts: list[bytes] = []
    total = 0
    try:
        decompressor = zlib.decompressobj(wbits)
        pending = data
        while True:
            chunk = decompressor.decompress(pending, 1024 * 1024)
            total += len(chunk)
            if total > limit:
                raise _Stop("decode-error",
                            f"{kind}: decompressed size exceeds the limit of {limit} bytes")
            out_parts.append(chunk)
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                # gzip allows several members back to back
                rest = decompressor.unused_data
                if kind == "gzip" and rest[:2] == b"\x1f\x8b":
                    decompressor = zlib.decompressobj(wbits)
                    pending = rest
                    continue
                break
            if not pending:
                raise _Stop("decode-error", f"{kind}: truncated stream")
    except zlib.error as exc:
        raise _Stop("decode-error", f"{kind}: {exc}") from None
    return b"".join(out_parts)


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, (dict, list)):
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
            children = node.values() if isinstance(node, dict) else node
            stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return deepest


def parse_json(text: str, limits: Limits) -> Any:
    """json.loads, bounded in nesting depth."""
    # Deeply nested input makes the C scanner recurse; count brackets cheaply first
    # when the text is large enough for that to matter.
    try:
        value = json.loads(text)
    except RecursionError:
        raise _Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels") from None
    except ValueError as exc:
        raise _Stop("decode-error", f"json: {exc}") from None
    if _depth(value, limits.max_depth) > limits.max_depth:
        raise _Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels")
    return value


def _b64decode(data: bytes) -> tuple[bytes, str] | None:
    compact = re.sub(rb"\s+", b"", data)
    if len(compact) < 4 or not _B64_RE.match(compact):
        return None
    url_safe = b"-" in compact or b"_" in compact
    if url_safe and (b"+" in compact or b"/" in compact):
        return None
    stripped = compact.rstrip(b"=")
    if len(stripped) % 4 == 1:
        return None
    padded = stripped + b"=" * (-len(stripped) % 4)
    try:
        if url_safe:
            out = base64.urlsafe_b64decode(padded)
        else:
            out = base64.b64decode(padded, validate=True)
    except (binascii.Error, ValueError):
        return None
    variant = ("url-safe" if url_safe else "standard") + ("" if compact.endswith(b"=") or len(stripped) % 4 == 0 else ", unpadded")
    return out, variant


def _looks_like_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isprintable():  # the common case, at C speed
        return text or None
    printable = sum(1 for ch in text if ch.isprintable() or ch in "\r\n\t")
    return text if text and printable / len(text) > 0.95 else None


def _jwe_json_like(value: Any) -> bool:
    return isinstance(value, dict) and "ciphertext" in value and (
        "protected" in value or "recipients" in value or "encrypted_key" in value or "header" in value
    )


def _jwe_compact_header(text: str) -> dict[str, Any] | None:
    head = text.split(".", 1)[0]
    if not head.startswith("eyJ"):
        return None
    try:
        header = json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))
    except (ValueError, binascii.Error):
        return None
    return header if isinstance(header, dict) and "enc" in header else None


# ---------------------------------------------------------------- the decoder

class Decoder:
    """Peels layers off a payload until it reaches JSON (or cannot go on)."""

    def __init__(self, keyring: Keyring | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.keyring = keyring if keyring is not None else Keyring()
        self.limits = limits

    def decode(self, data: bytes, location: str = "body",
               content_encoding: str | None = None, content_type: str | None = None) -> Decoded:
        """Decode `data` found at `location` (already extracted from the request)."""
        result = Decoded(layers=[Layer(location)])
        try:
            if len(data) > self.limits.max_body:
                raise _Stop("decode-error",
                            f"payload of {len(data)} bytes exceeds the limit of {self.limits.max_body} bytes")
            if content_encoding:
                for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
                    if coding in ("identity", ""):
                        continue
                    if coding in ("x-gzip",):
                        coding = "gzip"
                    if coding not in ("gzip", "deflate", "br"):
                        raise _Stop("decode-error", f"unsupported Content-Encoding: {coding}")
                    data = self._inflate(data, coding)
                    result.layers.append(Layer(coding, {"via": "content-encoding"}))
            self._peel(data, result, form_hint=bool(content_type and "x-www-form-urlencoded" in content_type.lower()))
        except _Stop as stop:
            result.issues.append(stop.issue)
        except RecursionError:
            result.issues.append(Issue("decode-error", "payload nested too deeply"))
        except MemoryError:
            result.issues.append(Issue("decode-error", "payload too large to decode in memory"))
        return result

    def _inflate(self, data: bytes, coding: str) -> bytes:
        if coding == "deflate":
            # "deflate" in HTTP is zlib-wrapped, but many clients send raw deflate.
            try:
                return _decompress(data, "deflate", self.limits)
            except _Stop as stop:
                if "exceeds" in str(stop):
                    raise
                return _decompress(data, "raw-deflate", self.limits)
        return _decompress(data, coding, self.limits)

    def _peel(self, data: bytes, result: Decoded, form_hint: bool = False) -> None:
        for _ in range(self.limits.max_layers + 1):
            if len(result.layers) > self.limits.max_layers + 1:
                raise _Stop("decode-error", f"more than {self.limits.max_layers} encoding layers")
            if len(data) > self.limits.max_decompressed:
                raise _Stop("decode-error", f"decoded size exceeds the limit of {self.limits.max_decompressed} bytes")
            stripped = data.strip()
            if not stripped:
                result.value = "" if not data else data.decode("utf-8", "replace")
                return
            if stripped[:2] == b"\x1f\x8b":
                data = _decompress(stripped, "gzip", self.limits)
                result.layers.append(Layer("gzip"))
                continue
            text = _looks_like_text(stripped)
            if text is None:
                try:
                    stripped.decode("utf-8")
                except UnicodeDecodeError as exc:
                    if stripped[:1] not in (b"{", b"["):
                        raise _Stop("decode-error", f"not valid UTF-8 text at byte {exc.start}") from None
                    # JSON with a bad byte: keep going with U+FFFD so the rest can be audited.
                    result.issues.append(Issue(
                        "decode-error", f"invalid UTF-8 at byte {exc.start}; replaced with U+FFFD"))
                    text = stripped.decode("utf-8", "replace")
                else:
                    raise _Stop("decode-error", "binary data (control characters), not a known encoding")
            first = text[0]
            if first in "{[\"" or text in ("true", "false", "null") or re.match(r"^-?\d", text) and _is_json_number(text):
                if first in "{[" or first == '"':
                    value = parse_json(text, self.limits)
                else:
                    value = json.loads(text)
                if _jwe_json_like(value):
                    data = self._open_jwe(value, result)
                    if data is None:
                        return
                    continue
                result.layers.append(Layer("json"))
                if isinstance(value, str) and len(result.layers) <= self.limits.max_layers:
                    # a JSON string holding another encoding (seen: JSON-quoted Base64)
                    inner = value.encode("utf-8")
                    if _b64decode(inner) or _JWE_COMPACT_RE.match(value):
                        data = inner
                        continue
                result.value = self._expand_nested(value, result)
                result.structured = True
                return
            if _JWE_COMPACT_RE.match(text) and _jwe_compact_header(text) is not None:
                data = self._open_jwe(text, result)
                if data is None:
                    return
                continue
            if text.count(".") >= 1 and _jwe_compact_header(text) is not None:
                parts = text.count(".") + 1
                result.jwe = _jwe_compact_header(text)
                raise _Stop("decode-error", f"truncated or malformed JWE: {parts} parts, a compact JWE has 5")
            decoded = _b64decode(stripped)
            if decoded is not None and self._worth_following(decoded[0]):
                data = decoded[0]
                result.layers.append(Layer("base64", {"variant": decoded[1]}))
                continue
            if (form_hint or len(result.layers) > 1) and _FORM_RE.match(text):
                params = raw_query_params(text)
                result.layers.append(Layer("form"))
                value = {}
                for key, raw in params:
                    value[key] = self._decode_field(raw, key, result)
                result.value = value
                result.structured = True
                return
            result.value = text
            return
        raise _Stop("decode-error", f"more than {self.limits.max_layers} encoding layers")

    def _worth_following(self, data: bytes, depth: int = 0) -> bool:
        """Base64 is only a layer when what it hides is itself something we recognise."""
        stripped = data.strip()
        if stripped[:2] == b"\x1f\x8b":
            return True
        text = _looks_like_text(stripped)
        if text is None:
            return False
        if text[:1] in "{[":
            return True
        if _JWE_COMPACT_RE.match(text):
            return True
        if depth > self.limits.max_layers:
            return True  # let the layer bound report it
        inner = _b64decode(stripped) if len(stripped) >= 8 else None
        return inner is not None and self._worth_following(inner[0], depth + 1)

    def _open_jwe(self, raw: str | dict[str, Any], result: Decoded) -> bytes | None:
        opened = self.keyring.open(raw, max_plaintext=self.limits.max_decompressed)
        detail: dict[str, Any] = dict(opened.header)
        detail["serialization"] = opened.serialization
        detail["status"] = opened.status
        if opened.kid:
            detail["key"] = opened.kid
        result.jwe = dict(opened.header)
        result.layers.append(Layer("jwe", detail))
        alg = opened.header.get("alg")
        if alg in WEAK_ALGORITHMS:
            result.issues.append(Issue("weak-algorithm", f"JWE uses the legacy key-management algorithm {alg}"))
        if opened.status == "ok":
            return opened.plaintext
        if opened.status == "no-key":
            hdr = ", ".join(f"{k}={opened.header[k]}" for k in ("alg", "enc", "kid") if k in opened.header)
            result.issues.append(Issue(
                "unverifiable-encrypted",
                f"encrypted ({hdr or 'no header'}): contents not verifiable without the key; {opened.message}",
            ))
            result.value = None
            return None
        raise _Stop("decode-error", f"JWE: {opened.message}")

    def _decode_field(self, raw: str, name: str, result: Decoded) -> Any:
        """A form field's value: decoded further when it hides JSON/Base64, else kept as text."""
        sub = Decoded(layers=[Layer(f"form:{name}")])
        try:
            self._peel(raw.encode("utf-8", "surrogateescape"), sub)
        except _Stop:
            return raw
        if sub.structured:
            result.layers.extend(Layer(f"{layer.name}@{name}" if layer.name in ("json",) else layer.name,
                                       layer.detail) for layer in sub.layers[1:] if layer.name != "json")
            result.layers.append(Layer(f"json@{name}"))
            return sub.value
        return raw

    def _expand_nested(self, value: Any, result: Decoded) -> Any:
        """Decode JSON nested in string fields (e.g. `"payload": "{\\"a\\":1}"`), in place."""
        budget = self.limits.max_nested_json
        stack: list[tuple[Any, str]] = [(value, "")]
        while stack:
            node, path = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, child in list(items):
                child_path = f"{path}.{key}" if isinstance(key, str) else f"{path}[{key}]"
                child_path = child_path.lstrip(".")
                if isinstance(child, (dict, list)):
                    stack.append((child, child_path))
                elif isinstance(child, str) and len(child) >= 2 and child[0] in "{[" and child[-1] in "}]":
                    if budget <= 0:
                        continue
                    budget -= 1
                    try:
                        parsed = parse_json(child, self.limits)
                    except _Stop:
                        continue
                    if isinstance(parsed, (dict, list)):
                        node[key] = parsed
                        result.layers.append(Layer(f"json@{child_path}"))
                        stack.append((parsed, child_path))
        if _depth(value, self.limits.max_depth) > self.limits.max_depth:
            raise _Stop("decode-error", f"json: nesting deeper than {self.limits.max_depth} levels")
        return value


def _is_json_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", text))
