"""Declared fields → JSON Schema: the compiler, the field formats and their checker."""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Protocol

from jsonschema import FormatChecker

TYPES = {"string", "integer", "number", "boolean", "object", "array", "null"}

# ---------------------------------------------------------------- formats

_FORMAT_PATTERNS = {
    "uuid": re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"),
    "date-time": re.compile(
        r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:?\d{2})?$"),
    "semver": re.compile(r"^v?\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$"),
    "sha256-hex": re.compile(r"^[0-9a-f]{64}$"),
    # (the domain's first dot after its first character: `[^@\s]+\.[^@\s]+` would rescan the
    # rest of the value at every dot, quadratic in a hostile value)
    "email": re.compile(r"^[^@\s]+@[^@\s][^@\s.]*\.[^@\s]+$"),
    "hostname": re.compile(r"^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"),
}


def _is_ip(value: str, version: int | None = None) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return version is None or address.version == version


FORMATS = sorted([*_FORMAT_PATTERNS, "ipv4", "ip"])


def _format_checker() -> FormatChecker:
    checker = FormatChecker(formats=())
    for name, pattern in _FORMAT_PATTERNS.items():
        checker.checks(name)(lambda v, p=pattern: not isinstance(v, str) or bool(p.match(v)))
    checker.checks("ipv4")(lambda v: not isinstance(v, str) or _is_ip(v, 4))
    checker.checks("ip")(lambda v: not isinstance(v, str) or _is_ip(v))
    return checker


FORMAT_CHECKER = _format_checker()


# ---------------------------------------------------------------- compile to JSON Schema

class SchemaSource(Protocol):
    """What `compile_policy_schema` reads of a policy (a `Policy`: the model imports this module)."""

    declared: dict[str, Any]
    envelope: dict[str, Any] | None
    additional: bool
    root: str | None
    items: str | None


def _collector_envelope(policy: SchemaSource) -> tuple[str, ...]:
    name = getattr(policy, "collector", None)
    if not name:
        return ()
    from inspector.core import collectors
    profile = collectors.get(name)
    return profile.envelope_fields if profile is not None else ()


def compile_field(spec: dict[str, Any]) -> dict[str, Any]:
    """One compact field spec → a JSON Schema."""
    schema: dict[str, Any] = {}
    types = spec.get("type")
    if types is not None:
        type_list = [types] if isinstance(types, str) else list(types)
        if spec.get("nullable") and "null" not in type_list:
            type_list.append("null")
        schema["type"] = type_list[0] if len(type_list) == 1 else type_list
    if "format" in spec:
        schema["format"] = spec["format"]
    if "enum" in spec:
        schema["enum"] = list(spec["enum"]) + ([None] if spec.get("nullable") and None not in spec["enum"] else [])
    if "pattern" in spec:
        schema["pattern"] = spec["pattern"]
    for bound in ("minimum", "maximum"):
        if bound in spec:
            schema[bound] = spec[bound]
    is_object = "fields" in spec or "values" in spec or types == "object" or (
        isinstance(types, list) and "object" in types)
    if is_object:
        fields = spec.get("fields") or {}
        if fields or "values" in spec or not spec.get("additional", False):
            schema.update(compile_tree(fields, additional=spec.get("additional", False),
                                       values=spec.get("values")))
            if types is None:
                schema["type"] = "object" if not spec.get("nullable") else ["object", "null"]
    if "items" in spec:
        schema["items"] = compile_field(spec["items"])
    return schema


def compile_tree(tree: dict[str, Any], additional: bool = False,
                 values: dict[str, Any] | None = None) -> dict[str, Any]:
    properties = {name: compile_field(spec or {}) for name, spec in tree.items()}
    required = [name for name, spec in tree.items() if not (spec or {}).get("optional")]
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        schema["required"] = required
    if values is not None:
        schema["additionalProperties"] = compile_field(values)
    elif not additional:
        schema["additionalProperties"] = False
    return schema


def _known_envelope(schema: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """`schema` with a collector's envelope fields (dotted paths) allowed where not declared:
    every request through the collector carries them, whichever app sends it, so they are
    not the vendor's undeclared fields."""
    for dotted in fields:
        node = schema
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            if node.get("type") != "object" and "properties" not in node:
                break  # declared as something else: its own declaration decides
            props = node.setdefault("properties", {})
            if part not in props:
                props[part] = {} if i == len(parts) - 1 else {"type": "object"}
                if i < len(parts) - 1:
                    break  # an undeclared object: allowed whole
            node = props[part]
    return schema


def compile_policy_schema(policy: SchemaSource) -> dict[str, Any]:
    """The schema of the whole decoded payload: envelope + declared tree at root/items."""
    inner = compile_tree(policy.declared, additional=policy.additional)
    envelope_fields = _collector_envelope(policy)
    if envelope_fields:
        inner = _known_envelope(inner, envelope_fields)
    anchor = policy.root or policy.items
    if not anchor:
        schema = inner
    else:
        if policy.items:
            inner = {"type": "array", "items": inner}
        envelope = dict(policy.envelope or {})
        outer = compile_tree(envelope)
        if envelope_fields:
            outer = _known_envelope(outer, envelope_fields)
        # place `inner` at the dotted anchor, creating intermediate objects
        parts = anchor.split(".")
        node = outer
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            node.setdefault("properties", {})
            node.setdefault("required", [])
            if part not in node["required"]:
                node["required"].append(part)
            if last:
                node["properties"][part] = inner
            else:
                child = node["properties"].get(part) or {"type": "object", "properties": {},
                                                          "additionalProperties": False}
                node["properties"][part] = child
                node = child
        schema = outer
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}

