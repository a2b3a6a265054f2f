"""JSON: the layer most payloads end in; JSON nested in string fields is decoded too."""

from __future__ import annotations

import re
from typing import Any

from inspector.core.decode.jsontext import child_path, is_json_number, join_path, nesting_depth, parse_json
from inspector.core.decode.model import Decoded, Issue, Layer, Stop
from inspector.core.decode.registry import DONE, DecodeLayer, Round, register
from inspector.core.decode.sniff import JWE_COMPACT_RE, b64decode

_NUMBER_START = re.compile(r"-?\d")


def _peel(rnd: Round) -> Any:
    text = rnd.text
    assert text is not None
    first = text[0]
    # bare numbers too: `1e999` or 5,000 digits must become text, not inf or a ValueError
    if not (first in "{[\"" or text in ("true", "false", "null")
            or (_NUMBER_START.match(text) and is_json_number(text))):
        return None
    value, issues = rnd.json()
    result = rnd.result
    result.layers.append(Layer("json"))
    if first == '"' and isinstance(value, str) and len(result.layers) <= rnd.limits.max_layers:
        # a JSON string holding another encoding (seen: JSON-quoted Base64)
        inner = value.encode("utf-8")
        if b64decode(inner) or JWE_COMPACT_RE.match(value):
            return inner
    result.issues.extend(issues)
    result.value = expand_nested(value, rnd)
    result.structured = True
    return DONE


def expand_nested(value: Any, rnd: Round) -> Any:
    """Decode JSON nested in string fields (e.g. `"payload": "{\\"a\\":1}"`), in place."""
    result: Decoded = rnd.result
    limits = rnd.limits
    remaining = limits.max_nested_json
    expanded = False
    stack: list[tuple[Any, str]] = [(value, "")]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in list(items):
            if isinstance(child, (dict, list)):
                stack.append((child, child_path(path, key)))
            elif isinstance(child, str) and len(child) >= 2 and child[0] in "{[" and child[-1] in "}]":
                if remaining <= 0:
                    continue
                where = child_path(path, key)  # (a path only for what may be JSON: most strings are not)
                remaining -= 1
                if rnd.budget.exceeded():
                    result.issues.append(Issue("decode-error", "decoding time budget exceeded; "
                                                               "nested JSON left as text", where))
                    remaining = 0
                    continue
                try:
                    parsed, issues = parse_json(child, limits)
                except Stop:
                    continue
                if isinstance(parsed, (dict, list)):
                    node[key] = parsed
                    expanded = True
                    result.layers.append(Layer(f"json@{where}"))
                    result.issues.extend(Issue(i.code, i.message, join_path(where, i.path)) for i in issues)
                    stack.append((parsed, where))
    # parse_json measured the value as parsed: only JSON put into it since can have deepened it
    if expanded and nesting_depth(value, limits.max_depth) > limits.max_depth:
        raise Stop("decode-error", f"json: nesting deeper than {limits.max_depth} levels")
    return value


register(DecodeLayer("json", _peel, order=30, description="JSON text (and JSON nested in its string fields)"))
