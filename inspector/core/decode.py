"""Layered, bounded decoding: bytes on the wire → plain JSON, with the path taken recorded.

Each layer the decoder peels off is recorded (`query:payload → base64 → json`,
`body → gzip → json`, `body → jwe(RSA-OAEP-256, A256GCM) → json`). Every step is bounded
(input size, decompressed size, nesting depth, layer count): past a bound the result
carries a `decode-error` issue, never an exception or a hang.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import math
import re
import sys
import time
import zlib
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import unquote, unquote_to_bytes

from inspector.core.keys import MAX_JWE_RECIPIENTS, MAX_PBES2_ITERATIONS, WEAK_ALGORITHMS, Keyring

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
    max_jwe_recipients: int = MAX_JWE_RECIPIENTS  # a JSON JWE naming more is refused, untried
    max_pbes2_iterations: int = MAX_PBES2_ITERATIONS  # a PBES2 `p2c` above this is refused, untried
    # Wall-clock time for one decode, checked between layers and between decryption attempts.
    # Each step is already bounded by the sizes above; this bounds how many an attacker chains.
    max_decode_seconds: float = 5.0


DEFAULT_LIMITS = Limits()


class Budget:
    """The time one payload's decoding may take, checked between layers and decryption attempts.

    Pass one to `Decoder.decode` to share it between several decodes of one event; by default
    each decode gets `Limits.max_decode_seconds` of its own."""

    __slots__ = ("seconds", "deadline", "_clock")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.deadline = clock() + seconds

    def exceeded(self) -> bool:
        """True once the deadline has passed."""
        return self._clock() > self.deadline

    def check(self, step: str) -> None:
        """Stop decoding (a decode-error issue) once the deadline has passed."""
        if self._clock() > self.deadline:
            raise _Stop("decode-error",
                        f"decoding took longer than its budget of {self.seconds:g} s; stopped before {step}")


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

    code: str  # decode-error, unverifiable-encrypted, weak-algorithm, number-out-of-range
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


# A JSON number Python cannot hold as a number — an integer with more digits than int() converts
# (sys.get_int_max_str_digits, 4300 by default), a float that overflows to infinity — and the
# NaN/Infinity literals json.loads accepts although JSON has none. Such a value is kept as its
# original text: later writers would otherwise fail on it, or write `Infinity`, which is not JSON.
class _KeptNumber(str):
    """A number's original text, until `_settle` reports it and turns it into a plain str."""

    __slots__ = ()


_KEPT = itertools.count()  # advanced for each _KeptNumber made: tells a parse whether to look


def _kept(text: str) -> _KeptNumber:
    next(_KEPT)
    return _KeptNumber(text)


def _parse_float(text: str) -> float | str:
    value = float(text)
    return _kept(text) if math.isinf(value) else value


def _parse_int(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:  # more digits than int() converts
        return _kept(text)


# The usual parse leaves integers to the C fast path; only a text with an over-long integer
# (a ValueError from that path) is parsed again with the integer hook.
_JSON = json.JSONDecoder(parse_float=_parse_float, parse_constant=_kept)
_JSON_LONG_INTS = json.JSONDecoder(parse_float=_parse_float, parse_int=_parse_int, parse_constant=_kept)
# A lone surrogate can only come from a \uD800–\uDFFF escape (the text itself is valid UTF-8).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _child(path: str, key: Any) -> str:
    """The path of a member (`a.b`) or an item (`a[3]`), as findings name it."""
    if isinstance(key, str):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def _join(base: str, relative: str) -> str:
    """A path relative to the value at `base`, made whole."""
    if not relative:
        return base
    if not base or relative.startswith("["):
        return base + relative
    return f"{base}.{relative}"


def _number_message(text: str) -> str:
    shown = text if len(text) <= 24 else f"{text[:20]}… ({len(text)} characters)"
    if text in ("NaN", "Infinity", "-Infinity"):
        why = "is not a JSON number"
    elif any(c in text for c in ".eE"):
        why = "is out of the range of a 64-bit float"
    else:
        why = f"has more digits than Python converts to an integer ({sys.get_int_max_str_digits()})"
    return f"the number {shown} {why}; kept as text"


def _clean_text(text: str, path: str, issues: list[Issue]) -> str:
    """`text` with lone surrogates (which UTF-8 cannot encode) replaced by U+FFFD, reported."""
    if text.isascii() or _LONE_SURROGATE.search(text) is None:
        return text
    issues.append(Issue("decode-error", "lone surrogate (a \\uD800–\\uDFFF escape without its pair) "
                                        "in a JSON string; replaced with U+FFFD", path))
    return _LONE_SURROGATE.sub("\ufffd", text)


def _settle_scalar(node: Any, path: str, issues: list[Issue]) -> Any:
    if type(node) is _KeptNumber:
        issues.append(Issue("number-out-of-range", _number_message(node), path))
        return str(node)  # a plain str: nothing downstream needs to know the subclass
    if isinstance(node, str):
        return _clean_text(node, path, issues)
    return node


def _settle(value: Any) -> tuple[Any, list[Issue]]:
    """Kept numbers as plain text and lone surrogates replaced, in place; an issue for each."""
    issues: list[Issue] = []
    value = _settle_scalar(value, "", issues)
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if not all(k.isascii() for k in node):
                # a key's own path would hold the surrogate: report it at its object
                items = [(_clean_text(k, path, issues), v) for k, v in node.items()]
                node.clear()
                node.update(items)
            for key, child in node.items():
                if isinstance(child, (dict, list)):
                    stack.append((child, _child(path, key)))
                else:
                    fixed = _settle_scalar(child, _child(path, key), issues)
                    if fixed is not child:
                        node[key] = fixed
        elif isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, (dict, list)):
                    stack.append((child, _child(path, index)))
                else:
                    fixed = _settle_scalar(child, _child(path, index), issues)
                    if fixed is not child:
                        node[index] = fixed
    return value, issues


def load_json(text: str) -> tuple[Any, list[Issue]]:
    """json.loads that never fails on a number nor keeps a lone surrogate.

    Numbers Python cannot hold are kept as their text (a `number-out-of-range` issue each) and
    lone surrogates replaced with U+FFFD (a `decode-error` issue each); paths are relative to
    the value. Raises ValueError for text that is not JSON, RecursionError for deep nesting."""
    before = next(_KEPT)
    try:
        value = _JSON.decode(text)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        value = _JSON_LONG_INTS.decode(text)
    kept = next(_KEPT) - before > 1  # (another thread's parse can only make this look again)
    if not kept and ("\\u" not in text or _SURROGATE_ESCAPE.search(text) is None):
        return value, []
    return _settle(value)


def parse_json(text: str, limits: Limits) -> tuple[Any, list[Issue]]:
    """`load_json`, bounded in nesting depth: the value and its issues."""
    try:
        value, issues = load_json(text)
    except RecursionError:  # the C scanner recurses per level
        raise _Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels") from None
    except ValueError as exc:
        raise _Stop("decode-error", f"json: {str(exc)[:200]}") from None
    if _depth(value, limits.max_depth) > limits.max_depth:
        raise _Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels")
    return value, issues


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


_LINE_SPACE = {ord("\r"): None, ord("\n"): None, ord("\t"): None}


def _looks_like_text(data: bytes) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if text.isprintable():  # the common case, at C speed
        return text or None
    if text.translate(_LINE_SPACE).isprintable():  # multi-line text (NDJSON, envelopes, pretty JSON), at C speed
        return text
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
               content_encoding: str | None = None, content_type: str | None = None,
               budget: Budget | None = None) -> Decoded:
        """Decode `data` found at `location` (already extracted from the request).

        `budget`: the time left for this event's decoding (default: `Limits.max_decode_seconds`)."""
        result = Decoded(layers=[Layer(location)])
        if budget is None:
            budget = Budget(self.limits.max_decode_seconds)
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
                        raise _Stop("decode-error", f"unsupported Content-Encoding: {coding[:40]}")
                    budget.check(f"{coding} (Content-Encoding)")
                    data = self._inflate(data, coding)
                    result.layers.append(Layer(coding, {"via": "content-encoding"}))
            self._peel(data, result, budget,
                       form_hint=bool(content_type and "x-www-form-urlencoded" in content_type.lower()))
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

    def _peel(self, data: bytes, result: Decoded, budget: Budget, form_hint: bool = False) -> None:
        for _ in range(self.limits.max_layers + 1):
            budget.check(f"layer {len(result.layers)}")
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
                # bare numbers too: `1e999` or 5,000 digits must become text, not inf or a ValueError
                value, issues = parse_json(text, self.limits)
                if _jwe_json_like(value):
                    data = self._open_jwe(value, result, budget)
                    if data is None:
                        return
                    continue
                result.layers.append(Layer("json"))
                if first == '"' and isinstance(value, str) and len(result.layers) <= self.limits.max_layers:
                    # a JSON string holding another encoding (seen: JSON-quoted Base64)
                    inner = value.encode("utf-8")
                    if _b64decode(inner) or _JWE_COMPACT_RE.match(value):
                        data = inner
                        continue
                result.issues.extend(issues)
                result.value = self._expand_nested(value, result, budget)
                result.structured = True
                return
            if _JWE_COMPACT_RE.match(text) and _jwe_compact_header(text) is not None:
                data = self._open_jwe(text, result, budget)
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
                    value[key] = self._decode_field(raw, key, result, budget)
                if budget.exceeded():
                    result.issues.append(Issue("decode-error", "decoding time budget exceeded; "
                                                               "the remaining form fields were kept as text"))
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

    def _open_jwe(self, raw: str | dict[str, Any], result: Decoded, budget: Budget) -> bytes | None:
        budget.check("decrypting a JWE")
        opened = self.keyring.open(raw, max_plaintext=self.limits.max_decompressed,
                                   max_recipients=self.limits.max_jwe_recipients,
                                   max_pbes2_iterations=self.limits.max_pbes2_iterations,
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
        raise _Stop("decode-error", f"JWE: {opened.message}")

    def _decode_field(self, raw: str, name: str, result: Decoded, budget: Budget) -> Any:
        """A form field's value: decoded further when it hides JSON/Base64, else kept as text."""
        if not budget.exceeded():
            sub = Decoded(layers=[Layer(f"form:{name}")])
            try:
                self._peel(raw.encode("utf-8", "surrogateescape"), sub, budget)
            except _Stop:
                pass
            else:
                if sub.structured:
                    result.layers.extend(
                        Layer(f"{layer.name}@{name}" if layer.name in ("json",) else layer.name, layer.detail)
                        for layer in sub.layers[1:] if layer.name != "json")
                    result.layers.append(Layer(f"json@{name}"))
                    result.issues.extend(Issue(i.code, i.message, _join(name, i.path)) for i in sub.issues)
                    return sub.value
        if raw.isascii():
            return raw
        # raw_query_params keeps undecodable bytes as surrogate escapes; a value is text
        text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        if text != raw:
            result.issues.append(Issue("decode-error", "invalid UTF-8 in a form field; replaced with U+FFFD", name))
        return text

    def _expand_nested(self, value: Any, result: Decoded, budget: Budget) -> Any:
        """Decode JSON nested in string fields (e.g. `"payload": "{\\"a\\":1}"`), in place."""
        remaining = self.limits.max_nested_json
        stack: list[tuple[Any, str]] = [(value, "")]
        while stack:
            node, path = stack.pop()
            items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
            for key, child in list(items):
                child_path = _child(path, key)
                if isinstance(child, (dict, list)):
                    stack.append((child, child_path))
                elif isinstance(child, str) and len(child) >= 2 and child[0] in "{[" and child[-1] in "}]":
                    if remaining <= 0:
                        continue
                    remaining -= 1
                    if budget.exceeded():
                        result.issues.append(Issue("decode-error", "decoding time budget exceeded; "
                                                                   "nested JSON left as text", child_path))
                        remaining = 0
                        continue
                    try:
                        parsed, issues = parse_json(child, self.limits)
                    except _Stop:
                        continue
                    if isinstance(parsed, (dict, list)):
                        node[key] = parsed
                        result.layers.append(Layer(f"json@{child_path}"))
                        result.issues.extend(Issue(i.code, i.message, _join(child_path, i.path)) for i in issues)
                        stack.append((parsed, child_path))
        if _depth(value, self.limits.max_depth) > self.limits.max_depth:
            raise _Stop("decode-error", f"json: nesting deeper than {self.limits.max_depth} levels")
        return value


def _is_json_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", text))


def inflate(data: bytes, content_encoding: str | None, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, list[Layer], list[Issue]]:
    """Undo a Content-Encoding (gzip, deflate, br, in the order applied), bounded by `limits`.

    For collector profiles whose bodies are not JSON once it is undone (envelopes, protobuf).
    Returns the bytes, one layer per coding undone and, when a coding is unknown, broken or
    inflates past `max_decompressed`, an issue (the bytes then are those before that coding)."""
    layers: list[Layer] = []
    if len(data) > limits.max_body:
        return data, layers, [Issue("decode-error", f"payload of {len(data)} bytes exceeds the limit of {limits.max_body} bytes")]
    for coding in reversed([c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]):
        coding = "gzip" if coding == "x-gzip" else coding
        if coding == "identity":
            continue
        try:
            if coding == "deflate":  # zlib-wrapped in HTTP, but many clients send raw deflate
                try:
                    data = _decompress(data, "deflate", limits)
                except _Stop as stop:
                    if "exceeds" in str(stop):
                        raise
                    data = _decompress(data, "raw-deflate", limits)
            elif coding in ("gzip", "br"):
                data = _decompress(data, coding, limits)
            else:
                raise _Stop("decode-error", f"unsupported Content-Encoding: {coding[:40]}")
        except _Stop as stop:
            return data, layers, [stop.issue]
        layers.append(Layer(coding, {"via": "content-encoding"}))
    return data, layers, []
