"""The policy format as a JSON Schema: its claim checks and encodings taken from their registries."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator

from inspector.core import claims, decode
from inspector.core.claims import Param
from inspector.core.policy.schema import FORMATS, TYPES

_SHAPE_CONDITION = {
    "type": "object", "required": ["path"], "additionalProperties": False,
    "properties": {"path": {"type": "string"}, "equals": {}, "in": {"type": "array"},
                   "exists": {"type": "boolean"}}}

_CITE = {
    "type": "object",
    "properties": {"section": {"type": "string"}, "quote": {"type": "string"},
                   "document": {"type": "string"}, "url": {"type": "string"}},
    "additionalProperties": False,
}
_FIELD_KEYS = {
    "type": {"anyOf": [{"enum": sorted(TYPES)}, {"type": "array", "items": {"enum": sorted(TYPES)}}]},
    "format": {"enum": FORMATS},
    "enum": {"type": "array"},
    "pattern": {"type": "string"},
    "minimum": {"type": "number"},
    "maximum": {"type": "number"},
    "nullable": {"type": "boolean"},
    "optional": {"type": "boolean"},
    "fields": {"$ref": "#/$defs/tree"},
    "additional": {"type": "boolean"},
    "values": {"$ref": "#/$defs/field"},
    "items": {"$ref": "#/$defs/field"},
    "pii": {"type": "string"},
    "cite": _CITE,
    "note": {"type": "string"},
}


def policy_schema(checks: tuple[str, ...], params: dict[str, Param], encodings: tuple[str, ...]) -> dict[str, Any]:
    """The schema of a policy document naming these claim checks (with their parameters) and encodings."""
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "required": ["id", "vendor", "product", "source", "match", "payload", "declared"],
        "additionalProperties": False,
        "$defs": {
            "field": {"type": "object", "properties": _FIELD_KEYS, "additionalProperties": False},
            "tree": {"type": "object", "additionalProperties": {"$ref": "#/$defs/field"}},
            "cite": _CITE,
        },
        "properties": {
            "id": {"type": "string", "pattern": "^[a-z0-9][a-z0-9-]*$"},
            "vendor": {"type": "string", "minLength": 1},
            # the collector profile the vendor sends through (inspector/core/collectors/)
            "collector": {"type": "string", "minLength": 1},
            "product": {"type": "string", "minLength": 1},
            "source": {
                "type": "object", "required": ["document"],
                "properties": {"document": {"type": "string"}, "title": {"type": "string"},
                               "url": {"type": "string"}, "version": {"type": "string"}},
                "additionalProperties": False,
            },
            "match": {
                "type": "object", "required": ["hosts"], "additionalProperties": False,
                "properties": {
                    "transport": {"enum": ["http", "websocket"]},
                    "hosts": {"type": "array", "minItems": 1, "items": {"type": "string"}},
                    "methods": {"type": "array", "items": {"type": "string"}},
                    "paths": {"type": "array", "items": {"type": "string"}},
                    "shape": {"type": "array", "items": {"oneOf": [_SHAPE_CONDITION, {
                        # either of several conditions (e.g. two wire shapes of one channel)
                        "type": "object", "required": ["any"], "additionalProperties": False,
                        "properties": {"any": {"type": "array", "minItems": 1, "items": _SHAPE_CONDITION}}}]}},
                    "priority": {"type": "integer"},
                },
            },
            "payload": {
                "type": "object", "required": ["location", "encoding"], "additionalProperties": False,
                "properties": {
                    "location": {"type": "string", "pattern": "^(body|ws-message|query:.+|form:.+)$"},
                    "encoding": {"type": "array", "items": {"enum": sorted(encodings)}},
                    "encoding_cite": _CITE,
                    "root": {"type": "string"},
                    "items": {"type": "string"},
                },
            },
            "declared": {"$ref": "#/$defs/tree"},
            "additional": {"type": "boolean"},
            "envelope": {"$ref": "#/$defs/tree"},
            "claims": {"type": "array", "items": {
                "type": "object", "required": ["check"],
                "properties": {"check": {"enum": sorted(checks)}, "cite": _CITE,
                               **{name: param.schema for name, param in params.items()},
                               "note": {"type": "string"}},
                "additionalProperties": False}},
            "opt_out": {"type": "array", "items": {
                "type": "object", "required": ["kind"],
                "properties": {"kind": {"enum": ["env", "flag", "config", "prop", "prompt", "other"]},
                               "name": {"type": "string"}, "value": {}, "how": {"type": "string"},
                               "cite": _CITE, "note": {"type": "string"}},
                "additionalProperties": False}},
            "notes": {"type": "string"},
            "sinkhole": {
                "type": "object", "additionalProperties": False,
                "properties": {"status": {"type": "integer", "minimum": 100, "maximum": 599},
                               "content_type": {"type": "string"}, "body": {}},
            },
        },
    }


_VALIDATOR: tuple[tuple[Any, ...], Draft202012Validator] | None = None


def current_encodings() -> tuple[str, ...]:
    """The encodings a policy's `payload.encoding` may name: the decode layers a policy may name."""
    return tuple(sorted(decode.encodings()))


def validator() -> Draft202012Validator:
    """A validator of the format as the registries stand (rebuilt when a check or layer is added)."""
    global _VALIDATOR
    checks, encodings = claims.names(), current_encodings()
    key = (checks, encodings, tuple(claims.params()))
    if _VALIDATOR is None or _VALIDATOR[0] != key:
        _VALIDATOR = (key, Draft202012Validator(policy_schema(checks, claims.params(), encodings)))
    return _VALIDATOR[1]
