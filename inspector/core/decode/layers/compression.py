"""Compressions: gzip (also found by its magic number inside a payload), deflate and br (Content-Encoding)."""

from __future__ import annotations

import zlib

from inspector.core.decode.model import Layer, Limits, Stop
from inspector.core.decode.registry import DecodeLayer, Round, register

try:  # brotli is a dependency, but a broken install must not break every other layer
    import brotli as _brotli
except ImportError:  # pragma: no cover
    _brotli = None


def decompress(data: bytes, kind: str, limits: Limits) -> bytes:
    """`data` inflated (`gzip`, `deflate`, `raw-deflate`, `br`), at most `limits.max_decompressed` bytes."""
    limit = limits.max_decompressed
    if kind == "br":
        if _brotli is None:  # pragma: no cover
            raise Stop("decode-error", "brotli support is not installed")
        try:
            decompressor = _brotli.Decompressor()
            out = decompressor.process(data, output_buffer_limit=limit + 1)
            if len(out) > limit or not decompressor.is_finished():
                if len(out) > limit:
                    raise Stop("decode-error", f"br: decompressed size exceeds the limit of {limit} bytes")
                raise Stop("decode-error", "br: truncated stream")
            return bytes(out)
        except _brotli.error as exc:
            raise Stop("decode-error", f"br: {exc}") from None
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
                raise Stop("decode-error",
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
                raise Stop("decode-error", f"{kind}: truncated stream")
    except zlib.error as exc:
        raise Stop("decode-error", f"{kind}: {exc}") from None
    return b"".join(out_parts)


def _gzip(data: bytes, limits: Limits) -> bytes:
    return decompress(data, "gzip", limits)


def _deflate(data: bytes, limits: Limits) -> bytes:
    # "deflate" in HTTP is zlib-wrapped, but many clients send raw deflate.
    try:
        return decompress(data, "deflate", limits)
    except Stop as stop:
        if "exceeds" in str(stop):
            raise
        return decompress(data, "raw-deflate", limits)


def _br(data: bytes, limits: Limits) -> bytes:
    return decompress(data, "br", limits)


def _peel_gzip(rnd: Round) -> bytes | None:
    """A gzip member inside the payload (its magic number), whatever the headers said."""
    if rnd.data[:2] != b"\x1f\x8b":
        return None
    data = decompress(rnd.data, "gzip", rnd.limits)
    rnd.result.layers.append(Layer("gzip"))
    return data


register(DecodeLayer("gzip", _peel_gzip, order=10, text=False, inflate=_gzip, aliases=("x-gzip",),
                     description="gzip: its magic number in a payload, or a Content-Encoding"))
register(DecodeLayer("deflate", inflate=_deflate, description="deflate (zlib or raw): a Content-Encoding"))
register(DecodeLayer("br", inflate=_br, description="Brotli: a Content-Encoding"))
