"""A yes/no validity check compiled from a policy's JSON Schema, for the common clean case.

jsonschema's ``iter_errors`` walks the schema generically and builds error objects: it was 45 %
of an event's audit. Most payloads are valid, and a valid payload has no errors to describe.
`compile_check` turns the schemas `compile_policy_schema` writes (a small keyword set) into
nested closures that only answer "valid?"; the auditor asks it first and runs jsonschema only
for the payloads that fail, so findings are exactly jsonschema's. The semantics follow
jsonschema's Draft 2020-12 validator (bool is not a number, 1.0 is an integer, enum compares
without bool/int confusion); tests/test_robustness.py checks both agree on arbitrary JSON.
A schema with any other keyword gets no check (None): the auditor then always validates fully.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

Check = Callable[[Any], bool]
KNOWN = {"$schema", "type", "properties", "required", "additionalProperties", "items", "enum", "format",
         "pattern", "minimum", "maximum"}


class Unsupported(Exception):
    pass


def _is_integer(v: Any) -> bool:
    t = type(v)
    return t is int or (t is float and v.is_integer())


def _is_number(v: Any) -> bool:
    t = type(v)
    return t is int or t is float


TYPES: dict[str, Check] = {
    "object": lambda v: type(v) is dict,
    "array": lambda v: type(v) is list,
    "string": lambda v: type(v) is str,
    "integer": _is_integer,
    "number": _is_number,
    "boolean": lambda v: type(v) is bool,
    "null": lambda v: v is None,
}


def _equal(a: Any, b: Any) -> bool:
    """jsonschema's `equal`: JSON equality where True is not 1 (also inside arrays/objects)."""
    if a is b:
        return True
    if type(a) is bool or type(b) is bool:
        return False
    if type(a) is list and type(b) is list:
        return len(a) == len(b) and all(map(_equal, a, b))
    if type(a) is dict and type(b) is dict:
        return len(a) == len(b) and all(k in b and _equal(v, b[k]) for k, v in a.items())
    if type(a) in (list, dict) or type(b) in (list, dict):
        return False
    return bool(a == b)


def compile_check(schema: Any, formats: Callable[[Any, str], bool]) -> Check | None:
    """A function telling whether a value is valid against `schema`; None if the schema uses a
    keyword this compiler does not know. `formats(value, name)`: the format checker."""
    try:
        return _compile(schema, formats)
    except Unsupported:
        return None


def _compile(schema: Any, formats: Callable[[Any, str], bool]) -> Check:
    if schema is True or schema == {}:
        return lambda v: True
    if schema is False:
        return lambda v: False
    if type(schema) is not dict or set(schema) - KNOWN:
        raise Unsupported(schema)
    checks: list[Check] = []
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if any(n not in TYPES for n in names):
            raise Unsupported(names)
        tests = [TYPES[n] for n in names]
        checks.append(tests[0] if len(tests) == 1 else (lambda v, ts=tuple(tests): any(t(v) for t in ts)))
    if "enum" in schema:
        options = list(schema["enum"])
        checks.append(lambda v: any(_equal(v, o) for o in options))
    if "format" in schema:
        name = schema["format"]
        checks.append(lambda v: formats(v, name))
    if "pattern" in schema:
        search = re.compile(schema["pattern"]).search
        checks.append(lambda v: type(v) is not str or search(v) is not None)
    if "minimum" in schema:
        low = schema["minimum"]
        checks.append(lambda v: not _is_number(v) or v >= low)
    if "maximum" in schema:
        high = schema["maximum"]
        checks.append(lambda v: not _is_number(v) or v <= high)
    if "items" in schema:
        item = _compile(schema["items"], formats)
        checks.append(lambda v: type(v) is not list or all(map(item, v)))
    object_check = _compile_object(schema, formats)
    if object_check is not None:
        checks.append(object_check)
    if len(checks) == 1:
        return checks[0]
    return lambda v: all(c(v) for c in checks)


def _compile_object(schema: dict[str, Any], formats: Callable[[Any, str], bool]) -> Check | None:
    props = {name: _compile(sub, formats) for name, sub in (schema.get("properties") or {}).items()}
    required = tuple(schema.get("required") or ())
    extra = schema.get("additionalProperties", True)
    if not props and not required and extra is True:
        return None
    extra_check = None if extra is True or extra is False else _compile(extra, formats)

    def check(v: Any) -> bool:
        if type(v) is not dict:
            return True
        for name in required:
            if name not in v:
                return False
        for key, value in v.items():
            sub = props.get(key)
            if sub is not None:
                if not sub(value):
                    return False
            elif extra is False:
                return False
            elif extra_check is not None and not extra_check(value):
                return False
        return True

    return check
