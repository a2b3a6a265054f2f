"""Captured text made safe to show: control, bidi and line-separator characters as visible escapes.

Everything a capture holds (keys, values, headers, methods, URLs, file names in error messages)
was written by an app or a vendor and may try to drive the terminal that shows it: ESC and C1
sequences retitle the window, write the clipboard (OSC 52) or clear the screen; bidirectional
overrides make a line read differently from what it holds; a bare CR overwrites a line; a lone
surrogate cannot be encoded as UTF-8 at all. Every text that reaches a terminal, a report or a
JSON document goes through this module, which shows such characters as escapes instead:

* ``safe_line``: one line. C0 (``\\n``, ``\\r``, ``\\t``, others as ``\\x1b``), DEL and C1
  (``\\x7f``, ``\\x9b``), bidi controls and marks (``\\u202e``, ``\\u2066``…, ``\\u200e``,
  ``\\u200f``, ``\\u061c``), line/paragraph separators (``\\u2028``, ``\\u2029``) and lone
  surrogates (``\\ud800``).
* ``safe_block``: the same, but newlines stay newlines (a pretty-printed body, a decoded value).
* ``safe_json``: strict JSON (no ``NaN``/``Infinity``: non-finite floats are written as strings),
  with the characters above written as ``\\uXXXX`` escapes; the document means the same.

A backslash in the data is not doubled: an escape in the output may be the data's own text,
but a raw control character never is. Pure Python: the core imports no framework.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

# Bidirectional formatting: embeddings/overrides U+202A–U+202E, isolates U+2066–U+2069, the
# marks LRM/RLM U+200E/U+200F and ALM U+061C; and the Unicode line/paragraph separators.
_BIDI_AND_SEPARATORS = "\u061c\u200e\u200f\u2028-\u202e\u2066-\u2069"
# Lone surrogates: a Python str may hold them (JSON "\ud800"), UTF-8 cannot.
_SURROGATES = "\ud800-\udfff"

_LINE_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}{_SURROGATES}]")
_BLOCK_UNSAFE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI_AND_SEPARATORS}{_SURROGATES}]")
# json.dumps escapes C0 itself; what it leaves raw with ensure_ascii=False is escaped here.
_JSON_UNSAFE = re.compile(f"[\x7f-\x9f{_BIDI_AND_SEPARATORS}{_SURROGATES}]")

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    code = ord(ch)
    return _NAMED.get(ch) or (f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}")


def _u_escape(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04x}"


def safe_line(value: Any) -> str:
    """`value` as one line of text: every control, bidi and separator character escaped."""
    text = value if isinstance(value, str) else str(value)
    # Fast path: every character this module escapes is non-printable for str.isprintable
    # (categories Cc, Cf, Cs, Zl, Zp), which scans in C; clean text costs only that scan.
    if text.isprintable():
        return text
    return _LINE_UNSAFE.sub(_escape, text)


def safe_block(value: Any) -> str:
    """`value` as a block of text: like `safe_line`, but newlines stay newlines."""
    text = value if isinstance(value, str) else str(value)
    if text.isprintable():
        return text
    return _BLOCK_UNSAFE.sub(_escape, text)


def escape_json_text(text: str) -> str:
    """A JSON document with DEL, C1, bidi, separator and lone-surrogate characters as ``\\uXXXX``.

    Valid on any JSON text: these characters can only occur inside strings, where the escape
    means the same character.
    """
    if text.isascii() and "\x7f" not in text:
        return text
    return _JSON_UNSAFE.sub(_u_escape, text)


_NON_FINITE = {math.inf: "Infinity", -math.inf: "-Infinity"}


def finite(value: Any) -> Any:
    """`value` with non-finite floats (keys too) as strings and integers too long to print as text."""
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else _NON_FINITE[value]
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        try:
            str(value)  # past sys.get_int_max_str_digits() an int has no decimal text to write
        except ValueError:
            return f"<integer of {value.bit_length()} bits>"
        return value
    if isinstance(value, dict):
        return {(finite(k) if isinstance(k, (float, int)) and not isinstance(k, bool) else k): finite(v)
                for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def safe_json(value: Any, indent: int | None = None, sort_keys: bool = False) -> str:
    """Strict JSON (never ``NaN``/``Infinity``) that is safe to print: see the module doc."""
    try:
        text = json.dumps(value, indent=indent, sort_keys=sort_keys, ensure_ascii=False,
                          allow_nan=False, default=str)
    except ValueError:  # a non-finite float or an over-long integer: rewrite and dump again
        text = json.dumps(finite(value), indent=indent, sort_keys=sort_keys, ensure_ascii=False,
                          allow_nan=False, default=str)
    return escape_json_text(text)


__all__ = ["escape_json_text", "finite", "safe_block", "safe_json", "safe_line"]
