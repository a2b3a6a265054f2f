"""Schema errors from a policy's JSON Schema, by compiled closures instead of jsonschema's walk.

jsonschema's ``iter_errors`` walks the schema generically, keyword by keyword, and was 45 % of an
event's audit. The schemas `compile_policy_schema` writes use a small keyword set; `compile_errors`
turns one into nested closures that report the same errors, with the fields the auditor reads
(keyword, its value, the instance, the schema, the path), in jsonschema's order: the schema's
keywords in turn, then the payload's keys in their order (where jsonschema goes through a set for
the keys an ``additionalProperties`` schema checks, so its order there changes from run to run). The semantics are
jsonschema's Draft 2020-12 validator's (bool is not a number, 1.0 is an integer, enum compares
without bool/int confusion); tests/test_robustness.py holds the two to the same errors on the wire
payloads and on thousands of mutations of them. A schema with any other keyword is not compiled
(None): the auditor then uses jsonschema itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from inspector.core.linear_regex import linear


class SchemaError(NamedTuple):
    """The fields of a jsonschema ``ValidationError`` the auditor uses."""

    validator: str
    validator_value: Any
    instance: Any
    schema: dict[str, Any]
    absolute_path: tuple[Any, ...]
    message: str


Walk = Callable[[Any, tuple[Any, ...], list[SchemaError]], None]  # (value, path, errors out)
Errors = Callable[[Any], list[SchemaError]]
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


TYPES: dict[str, Callable[[Any], bool]] = {
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


def compile_errors(schema: Any, formats: Callable[[Any, str], bool]) -> Errors | None:
    """A function listing the errors of a value against `schema`; None if the schema uses a
    keyword this compiler does not know. `formats(value, name)`: the format checker."""
    try:
        walk = _compile(schema, formats)
    except Unsupported:
        return None

    def errors(value: Any) -> list[SchemaError]:
        out: list[SchemaError] = []
        walk(value, (), out)
        return out

    return errors


def _compile(schema: Any, formats: Callable[[Any, str], bool]) -> Walk:
    if schema is True:
        return lambda v, path, out: None
    if type(schema) is not dict or set(schema) - KNOWN:
        raise Unsupported(schema)
    steps: list[Walk] = []
    for keyword, value in schema.items():  # jsonschema's order: the schema's keywords in turn
        step = _keyword(keyword, value, schema, formats)
        if step is not None:
            steps.append(step)
    if len(steps) == 1:
        return steps[0]

    def walk(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
        for step in steps:
            step(v, path, out)

    return walk


def _keyword(keyword: str, value: Any, schema: dict[str, Any], formats: Callable[[Any, str], bool]) -> Walk | None:
    def fail(v: Any, path: tuple[Any, ...], out: list[SchemaError], message: str) -> None:
        out.append(SchemaError(keyword, value, v, schema, path, message))

    if keyword == "type":
        names = value if isinstance(value, list) else [value]
        if any(n not in TYPES for n in names):
            raise Unsupported(names)
        tests = tuple(TYPES[n] for n in names)

        def type_(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            for test in tests:
                if test(v):
                    return
            fail(v, path, out, f"{v!r} is not of type {', '.join(map(repr, names))}")
        return type_
    if keyword == "enum":
        options = list(value)

        def enum(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            for option in options:
                if _equal(v, option):
                    return
            fail(v, path, out, f"{v!r} is not one of {options!r}")
        return enum
    if keyword == "format":
        def format_(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if not formats(v, value):
                fail(v, path, out, f"{v!r} is not a {value!r}")
        return format_
    if keyword == "pattern":
        search = linear(value).search  # an author's pattern on captured text: linear time

        def pattern(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if type(v) is str and search(v) is None:
                fail(v, path, out, f"{v!r} does not match {value!r}")
        return pattern
    if keyword in ("minimum", "maximum"):
        low = keyword == "minimum"

        def bound(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if _is_number(v) and (v < value if low else v > value):
                fail(v, path, out, f"{v!r} is {'less' if low else 'greater'} than the {keyword} of {value!r}")
        return bound
    if keyword == "items":
        item = _compile(value, formats)

        def items(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if type(v) is list:
                for i, child in enumerate(v):
                    item(child, (*path, i), out)
        return items
    if keyword == "properties":
        props = [(name, _compile(sub, formats)) for name, sub in value.items()]

        def properties(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if type(v) is dict:
                for name, sub in props:
                    if name in v:
                        sub(v[name], (*path, name), out)
        return properties
    if keyword == "required":
        names = list(value)

        def required(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if type(v) is dict:
                for name in names:
                    if name not in v:
                        fail(v, path, out, f"{name!r} is a required property")
        return required
    if keyword == "additionalProperties":
        declared = set(schema.get("properties") or ())
        if value is False:
            def closed(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
                if type(v) is dict and any(k not in declared for k in v):
                    extra = ", ".join(repr(k) for k in v if k not in declared)
                    fail(v, path, out, f"Additional properties are not allowed ({extra} unexpected)")
            return closed
        if value is True:
            return None
        sub = _compile(value, formats)

        def additional(v: Any, path: tuple[Any, ...], out: list[SchemaError]) -> None:
            if type(v) is dict:
                for k, child in v.items():
                    if k not in declared:
                        sub(child, (*path, k), out)
        return additional
    return None  # "$schema": an annotation
