"""Shared by the profiles whose bodies are newline-delimited JSON (Datadog's browser intake,
Microsoft's OneCollector): bounded inflation and one JSON value per line. Not a profile.

The generic decoder reads one JSON document per payload; these collectors send one per line,
and Datadog compresses without a Content-Encoding header (its query says `dd-evp-encoding`).
Everything here is bounded by the pipeline's `Limits` and linear in the body's size.
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

from inspector.core.decode import Budget, Decoded, Issue, Layer
from inspector.core.observation import Observation

if TYPE_CHECKING:
    from inspector.core.decode import Limits
    from inspector.core.pipeline import Pipeline

MAX_LINES = 10_000  # records per request; past it the rest is reported, not decoded
_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "raw-deflate": -zlib.MAX_WBITS}


class InflateError(ValueError):
    """A compressed body that cannot be inflated (within the limits)."""


def inflate(data: bytes, coding: str, limits: Limits) -> tuple[bytes, str | None]:
    """`data` inflated (gzip, deflate — zlib-wrapped or raw — or br), at most
    `limits.max_decompressed` bytes: (bytes, a note when the stream was cut short).
    InflateError when it is not that coding or grows past the limit."""
    coding = {"x-gzip": "gzip"}.get(coding, coding)
    if coding == "br":
        # the generic decoder owns brotli; a whole-body decode through it keeps one implementation
        raise InflateError("br is decoded by the generic decoder")
    if coding == "deflate":
        try:
            return _inflate(data, "deflate", limits)
        except InflateError as exc:
            if "exceeds" in str(exc):
                raise
            return _inflate(data, "raw-deflate", limits)  # many clients send raw deflate as "deflate"
    if coding not in _WBITS:
        raise InflateError(f"unsupported encoding: {coding[:40]}")
    return _inflate(data, coding, limits)


def _inflate(data: bytes, kind: str, limits: Limits) -> tuple[bytes, str | None]:
    limit = limits.max_decompressed
    parts: list[bytes] = []
    total = 0
    try:
        decompressor = zlib.decompressobj(_WBITS[kind])
        pending = data
        while True:
            chunk = decompressor.decompress(pending, 1024 * 1024)
            total += len(chunk)
            if total > limit:
                raise InflateError(f"{kind}: decompressed size exceeds the limit of {limit} bytes")
            parts.append(chunk)
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                rest = decompressor.unused_data
                if kind == "gzip" and rest[:2] == b"\x1f\x8b":  # gzip members back to back
                    decompressor, pending = zlib.decompressobj(_WBITS[kind]), rest
                    continue
                return b"".join(parts), None
            if not pending:
                # A sync-flushed stream without its end (a page closed mid-batch): keep what came.
                tail = decompressor.flush()
                if total + len(tail) > limit:
                    raise InflateError(f"{kind}: decompressed size exceeds the limit of {limit} bytes")
                parts.append(tail)
                if not total and not tail:
                    raise InflateError(f"{kind}: no data")
                return b"".join(parts), f"{kind}: truncated stream; decoded what it held"
    except zlib.error as exc:
        raise InflateError(f"{kind}: {exc}") from None


def body_bytes(obs: Observation, pipeline: Pipeline, layers: list[Layer], issues: list[Issue],
               extra: tuple[str, str] | None = None) -> bytes | None:
    """The request body with its Content-Encoding undone (unless the capture already did) and
    then `extra` = (coding, where it was declared) — None when it cannot be decoded."""
    limits = pipeline.limits
    data = obs.body
    if len(data) > limits.max_body:
        issues.append(Issue("decode-error", f"payload of {len(data)} bytes exceeds the limit of {limits.max_body} bytes"))
        return None
    codings: list[tuple[str, dict[str, Any]]] = []
    header = obs.header("content-encoding")
    for coding in reversed([c.strip().lower() for c in (header or "").split(",") if c.strip()]):
        if coding != "identity":
            codings.append((coding, {"via": "content-encoding"}))
    if obs.content_decoded:  # the capture tool undid it: record it, do not redo it
        layers.extend(Layer(c, {**d, "by": "capture"}) for c, d in codings)
        codings = []
    if extra is not None:
        codings.append((extra[0], {"via": extra[1]}))
    for coding, detail in codings:
        try:
            data, note = inflate(data, coding, limits)
        except InflateError as exc:
            issues.append(Issue("decode-error", str(exc)))
            return None
        layers.append(Layer(coding, detail))
        if note:
            issues.append(Issue("decode-error", note))
    return data


def looks_zlib(data: bytes) -> bool:
    """Whether `data` starts with a zlib header (deflate, FCHECK valid)."""
    return len(data) >= 2 and data[0] & 0x0F == 8 and data[0] >> 4 <= 7 and (data[0] << 8 | data[1]) % 31 == 0


def decode_lines(data: bytes, pipeline: Pipeline, layers: list[Layer], issues: list[Issue]) -> Decoded:
    """One value per non-blank line (through the generic decoder, so nested JSON and encodings
    in a line are read too): a list; structured when a line was JSON."""
    budget = Budget(pipeline.limits.max_decode_seconds)
    lines = [line for line in (raw.strip() for raw in data.split(b"\n")) if line]
    if 0 < len(lines) <= MAX_LINES:
        # The fast way: all lines as one JSON array, one parse. Taken only when it yields exactly
        # one element per line (a line holding `a, b` or half a value does not).
        whole = pipeline.decoder.decode(b"[" + b",".join(lines) + b"]", "body", budget=budget)
        if whole.structured and isinstance(whole.value, list) and len(whole.value) == len(lines):
            issues.extend(whole.issues)
            layers.extend(layer for layer in whole.layers[1:] if layer.name.startswith("json@"))
            layers.append(Layer("ndjson", {"lines": len(lines)}))
            return Decoded(value=whole.value, layers=layers, issues=issues, structured=True)
    return _line_by_line(data, pipeline, layers, issues, budget)


def _line_by_line(data: bytes, pipeline: Pipeline, layers: list[Layer], issues: list[Issue],
                  budget: Budget) -> Decoded:
    """Each line through the generic decoder on its own (a line that is not JSON kept as text)."""
    values: list[Any] = []
    structured = False
    start, size = 0, len(data)
    while start < size:
        end = data.find(b"\n", start)
        if end < 0:
            end = size
        line = data[start:end].strip()
        start = end + 1
        if not line:
            continue
        where = f"[{len(values)}]"
        if len(values) >= MAX_LINES:
            issues.append(Issue("decode-error", f"more than {MAX_LINES} lines; the rest was not decoded"))
            break
        if budget.exceeded():
            issues.append(Issue("decode-error", "decoding time budget exceeded; the remaining lines were not decoded", where))
            break
        decoded = pipeline.decoder.decode(line, "body", budget=budget)
        issues.extend(Issue(i.code, i.message, where + ("." + i.path if i.path and not i.path.startswith("[") else i.path))
                      for i in decoded.issues)
        if decoded.structured:
            structured = True
            values.append(decoded.value)
        else:
            values.append(decoded.value if isinstance(decoded.value, str) else line.decode("utf-8", "replace"))
            if not decoded.issues:
                issues.append(Issue("decode-error", "line is not JSON", where))
    layers.append(Layer("ndjson", {"lines": len(values)}))
    return Decoded(value=values, layers=layers, issues=issues, structured=structured)


def count_lines(obs: Observation, limits: Limits) -> int:
    """How many records a request holds (non-blank lines), for answers that say so; 0 when the
    body cannot be read."""
    data = obs.body
    header = (obs.header("content-encoding") or "").strip().lower()
    if header in ("gzip", "x-gzip", "deflate") and not obs.content_decoded:
        try:
            data, _note = inflate(data, header, limits)
        except InflateError:
            return 0
    return sum(1 for line in data.split(b"\n") if line.strip())
