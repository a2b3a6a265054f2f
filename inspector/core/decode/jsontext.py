"""JSON text → values, bounded: numbers Python cannot hold kept as text, lone surrogates replaced."""

from __future__ import annotations

import itertools
import json
import math
import re
import sys
from typing import Any

from inspector.core.decode.model import Issue, Limits, Stop


def nesting_depth(value: Any, limit: int) -> int:
    """Nesting depth of a JSON value, without recursion."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(value, 1)]
    pop, push = stack.pop, stack.append
    containers = (dict, list)
    while stack:
        node, depth = pop()
        if isinstance(node, containers):
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return deepest
            below = depth + 1
            for child in node.values() if isinstance(node, dict) else node:
                if isinstance(child, containers):  # (a loop, not a generator per node: this runs per event)
                    push((child, below))
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


def child_path(path: str, key: Any) -> str:
    """The path of a member (`a.b`) or an item (`a[3]`), as findings name it."""
    if isinstance(key, str):
        return f"{path}.{key}" if path else key
    return f"{path}[{key}]"


def join_path(base: str, relative: str) -> str:
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
                    stack.append((child, child_path(path, key)))
                else:
                    fixed = _settle_scalar(child, child_path(path, key), issues)
                    if fixed is not child:
                        node[key] = fixed
        elif isinstance(node, list):
            for index, child in enumerate(node):
                if isinstance(child, (dict, list)):
                    stack.append((child, child_path(path, index)))
                else:
                    fixed = _settle_scalar(child, child_path(path, index), issues)
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


def load_json_at(text: str, start: int = 0) -> tuple[Any, int, list[Issue]]:
    """`load_json` of the value that starts at `text[start]` and is followed by more text: the
    value, the index just past it, its issues (a streamed file read one value at a time).
    Raises json.JSONDecodeError (a ValueError) for text that is not JSON there, RecursionError
    for deep nesting."""
    before = next(_KEPT)
    try:
        value, end = _JSON.raw_decode(text, start)
    except ValueError as exc:
        if "integer string conversion" not in str(exc):
            raise
        value, end = _JSON_LONG_INTS.raw_decode(text, start)
    kept = next(_KEPT) - before > 1
    if not kept and (text.find("\\u", start, end) < 0 or _SURROGATE_ESCAPE.search(text, start, end) is None):
        return value, end, []
    value, issues = _settle(value)
    return value, end, issues


def parse_json(text: str, limits: Limits) -> tuple[Any, list[Issue]]:
    """`load_json`, bounded in nesting depth: the value and its issues."""
    try:
        value, issues = load_json(text)
    except RecursionError:  # the C scanner recurses per level
        raise Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels") from None
    except ValueError as exc:
        raise Stop("decode-error", f"json: {str(exc)[:200]}") from None
    if nesting_depth(value, limits.max_depth) > limits.max_depth:
        raise Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels")
    return value, issues


def is_json_number(text: str) -> bool:
    return bool(re.fullmatch(r"-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?", text))
