"""Policies: load, validate (with line numbers), compile declared fields to JSON Schema, match."""

from __future__ import annotations

import fnmatch
import functools
import ipaddress
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable

import re2
import yaml
from jsonschema import Draft202012Validator, FormatChecker

from inspector.core.fastcheck import compile_errors
from inspector.core.files import read_regular
from inspector.core.findings import Citation
from inspector.core.observation import Observation
from inspector.core.destination import normalize_host, normalize_path

BUILTIN_PACKAGE = "inspector.policies"
ENCODINGS = {"gzip", "deflate", "br", "base64", "jwe", "json", "form"}
CHECKS = {"no-cookies", "max-requests", "no-pii", "anonymised-values", "no-free-text", "hashed", "optional"}
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


# ---------------------------------------------------------------- errors

class PolicyError(Exception):
    """A policy file that cannot be used. `problems` are `(line, message)` pairs."""

    def __init__(self, origin: str, problems: list[tuple[int | None, str]]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(self.lines()[0] if problems else origin)

    def lines(self) -> list[str]:
        return [f"{self.origin}:{line}: {msg}" if line else f"{self.origin}: {msg}"
                for line, msg in self.problems]


# ---------------------------------------------------------------- the policy format, as a schema

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
POLICY_SCHEMA: dict[str, Any] = {
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
                "encoding": {"type": "array", "items": {"enum": sorted(ENCODINGS)}},
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
            "properties": {"check": {"enum": sorted(CHECKS)}, "cite": _CITE,
                           "count": {"type": "integer", "minimum": 1},
                           "per": {"type": "string"}, "path": {"type": "string"},
                           "pattern": {"type": "string"}, "note": {"type": "string"}},
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
_POLICY_VALIDATOR = Draft202012Validator(POLICY_SCHEMA)


# ---------------------------------------------------------------- model

@dataclass(frozen=True, slots=True)
class ShapeCondition:
    path: str
    equals: Any = None
    one_of: tuple[Any, ...] | None = None
    exists: bool | None = None
    has_equals: bool = False
    any_of: tuple[ShapeCondition, ...] = ()  # `{any: [...]}`: one of these must hold (path unused)

    def holds(self, value: Any) -> bool:
        if self.any_of:
            return any(condition.holds(value) for condition in self.any_of)
        found = list(resolve(value, self.path))
        if self.exists is not None:
            present = any(v is not MISSING for v in found)
            if present != self.exists:
                return False
        if self.has_equals and not any(v == self.equals for v in found):
            return False
        if self.one_of is not None and not any(v in self.one_of for v in found if _hashable(v)):
            return False
        return True


def _hashable(value: Any) -> bool:
    return not isinstance(value, (dict, list))


@dataclass(frozen=True, slots=True)
class ClaimSpec:
    check: str
    citation: Citation
    params: dict[str, Any]


@dataclass(slots=True)
class Policy:
    id: str
    vendor: str
    product: str
    source: Citation
    transport: str
    hosts: tuple[str, ...]
    methods: tuple[str, ...]
    paths: tuple[str, ...]
    shape: tuple[ShapeCondition, ...]
    priority: int
    location: str
    encoding: tuple[str, ...]
    encoding_citation: Citation | None
    root: str | None
    items: str | None
    declared: dict[str, Any]
    envelope: dict[str, Any] | None
    additional: bool
    claims: tuple[ClaimSpec, ...]
    opt_out: tuple[dict[str, Any], ...]
    notes: str
    origin: str
    raw: dict[str, Any] = field(repr=False)
    sinkhole: dict[str, Any] | None = None
    builtin: bool = False
    _validator: Draft202012Validator | None = field(default=None, repr=False)
    _fast: Any = field(default=False, repr=False, compare=False)
    _declared_paths: dict[str, dict[str, Any]] | None = field(default=None, repr=False, compare=False)

    # --- matching
    def matches_request(self, obs: Observation, host: str | None = None, path: str | None = None) -> bool:
        """Host, method, path and transport: what is known before decoding.
        (`host` and `path` of `obs`, when the caller already has them.)"""
        if obs.transport != self.transport:
            return False
        host = obs.host if host is None else host
        if not any(host_matches(pattern, host) for pattern in self.hosts):
            return False
        if self.transport == "http" and self.methods and obs.method.upper() not in self.methods:
            return False
        path = obs.path if path is None else path
        if self.paths and not any(path_matches(pattern, path) for pattern in self.paths):
            return False
        return True

    def matches_shape(self, value: Any) -> bool:
        return all(condition.holds(value) for condition in self.shape)

    # --- declared fields
    @property
    def schema(self) -> dict[str, Any]:
        return compile_policy_schema(self)

    @property
    def validator(self) -> Draft202012Validator:
        if self._validator is None:
            self._validator = Draft202012Validator(self.schema, format_checker=FORMAT_CHECKER)
        return self._validator

    def schema_errors(self, value: Any) -> list[Any]:
        """The schema's errors for `value`, as jsonschema reports them (compiled; see
        core/fastcheck), or jsonschema's own if the schema could not be compiled."""
        if self._fast is False:
            self._fast = compile_errors(self.schema, FORMAT_CHECKER.conforms)
        if self._fast is None:
            return list(self.validator.iter_errors(value))
        return self._fast(value)

    def claim(self, check: str) -> ClaimSpec | None:
        for claim in self.claims:
            if claim.check == check:
                return claim
        return None

    def claims_of(self, check: str) -> list[ClaimSpec]:
        return [c for c in self.claims if c.check == check]

    def cite(self, cite: dict[str, Any] | None) -> Citation:
        """A field's or claim's citation, completed with the policy's source."""
        cite = cite or {}
        return Citation(
            document=cite.get("document") or self.source.document,
            title=self.source.title if not cite.get("document") else "",
            section=cite.get("section", ""),
            quote=cite.get("quote", ""),
            url=cite.get("url") or self.source.url,
        )

    def declared_paths(self) -> dict[str, dict[str, Any]]:
        """Every declared field as `dotted.path` → spec, at the payload's full paths (computed once)."""
        if self._declared_paths is not None:
            return self._declared_paths
        out: dict[str, dict[str, Any]] = {}
        prefix = ""
        if self.root:
            prefix = self.root
        elif self.items:
            prefix = f"{self.items}[]"
        _walk_tree(self.declared, prefix, out)
        if self.envelope:
            _walk_tree(self.envelope, "", out)
        self._declared_paths = out
        return out

    def to_summary(self) -> dict[str, Any]:
        return {"id": self.id, "vendor": self.vendor, "product": self.product,
                "source": self.source.to_dict(), "builtin": self.builtin, "origin": self.origin}


def _walk_tree(tree: dict[str, Any], prefix: str, out: dict[str, dict[str, Any]]) -> None:
    for name, spec in tree.items():
        path = f"{prefix}.{name}" if prefix else name
        out[path] = spec
        if isinstance(spec, dict):
            if isinstance(spec.get("fields"), dict):
                _walk_tree(spec["fields"], path, out)
            items = spec.get("items")
            if isinstance(items, dict):
                if isinstance(items.get("fields"), dict):
                    _walk_tree(items["fields"], f"{path}[]", out)
            values = spec.get("values")
            if isinstance(values, dict) and isinstance(values.get("fields"), dict):
                _walk_tree(values["fields"], f"{path}.*", out)


# ---------------------------------------------------------------- compile to JSON Schema

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


def compile_policy_schema(policy: Policy) -> dict[str, Any]:
    """The schema of the whole decoded payload: envelope + declared tree at root/items."""
    inner = compile_tree(policy.declared, additional=policy.additional)
    anchor = policy.root or policy.items
    if not anchor:
        schema = inner
    else:
        if policy.items:
            inner = {"type": "array", "items": inner}
        envelope = dict(policy.envelope or {})
        outer = compile_tree(envelope)
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


# ---------------------------------------------------------------- paths

class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def resolve(value: Any, path: str) -> Iterable[Any]:
    """All values at a dotted path; `[]` fans out over array items. Yields MISSING if absent."""
    nodes = [value]
    for part in _split_path(path):
        next_nodes: list[Any] = []
        for node in nodes:
            if part == "[]":
                if isinstance(node, list):
                    next_nodes.extend(node)
                else:
                    next_nodes.append(MISSING)
            elif isinstance(node, dict) and part in node:
                next_nodes.append(node[part])
            else:
                next_nodes.append(MISSING)
        nodes = next_nodes
    return nodes


def resolve_with_paths(value: Any, path: str) -> list[tuple[str, Any]]:
    """Like `resolve`, with each value's concrete path (`batch[2].userId`); skips absent ones."""
    nodes: list[tuple[str, Any]] = [("", value)]
    for part in _split_path(path):
        next_nodes: list[tuple[str, Any]] = []
        for where, node in nodes:
            if part == "[]":
                if isinstance(node, list):
                    next_nodes.extend((f"{where}[{i}]", item) for i, item in enumerate(node))
            elif isinstance(node, dict) and part in node:
                next_nodes.append((f"{where}.{part}" if where else part, node[part]))
        nodes = next_nodes
    return nodes


def _split_path(path: str) -> list[str]:
    parts: list[str] = []
    for chunk in path.split("."):
        if not chunk:
            continue
        while chunk.endswith("[]"):
            chunk = chunk[:-2]
            if chunk:
                parts.append(chunk)
            chunk = ""
            parts.append("[]")
        if chunk:
            parts.append(chunk)
    return parts


def host_matches(pattern: str, host: str) -> bool:
    return fnmatch.fnmatchcase(host.lower(), pattern.lower())


def path_matches(pattern: str, path: str) -> bool:
    """`re:REGEX` (whole path, RE2: linear time) or a glob."""
    if pattern.startswith("re:"):
        compiled = user_regex(pattern[3:])
        return compiled is not None and compiled.fullmatch(path) is not None
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path.rstrip("/"), pattern.rstrip("/"))


# A policy's regular expressions are matched against what a client sends. Python's engine
# backtracks: `(a|aa)+x` takes seconds on a 40-character path. RE2 runs in time linear in the
# text, and refuses what it cannot do so (backreferences, lookaround).
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported as a policy problem, not on stderr


class UnsafeRegex(ValueError):
    """A pattern the linear-time engine (RE2) cannot compile."""


@functools.lru_cache(maxsize=1024)
def _compile_re2(pattern: str) -> tuple[Any, str]:
    """(compiled, "") or (None, why RE2 refuses it); a refusal is cached too."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS), ""
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return None, reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def compile_user_regex(pattern: str) -> Any:
    """A policy author's regex compiled with RE2 (`search`, `fullmatch`, `finditer`, `groupindex`
    like `re`); raises UnsafeRegex for what RE2 cannot run in linear time."""
    compiled, reason = _compile_re2(pattern)
    if compiled is None:
        raise UnsafeRegex(reason)
    return compiled


def user_regex(pattern: str) -> Any | None:
    """`compile_user_regex`, or None for a pattern RE2 refuses (it then matches nothing)."""
    return _compile_re2(pattern)[0]


_DURATION_RE = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d)$")


def parse_duration(text: str) -> float:
    """`30s`, `10m`, `6h`, `1d` → seconds."""
    match = _DURATION_RE.match(text.strip())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 30s, 10m, 6h, 1d)")
    return float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


# ---------------------------------------------------------------- loading

MAX_POLICY_BYTES = 4 * 1024 * 1024  # the largest built-in policy is 20 KB
MAX_POLICY_DEPTH = 64  # nesting of YAML collections; the built-ins reach 10


class _YamlRefused(Exception):
    """A policy's YAML uses what policies may not (an alias, too deep a nesting)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


def _node_lines(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map each YAML path to its 1-based line number (a member's: its key's line).

    Iterative, and refuses a node met twice — an alias (`*name`): it repeats a node without
    repeating its text, so nine nested ones make a 530-byte file expand to 10⁹ nodes when
    walked (the "billion laughs") — and nesting deeper than MAX_POLICY_DEPTH."""
    out: dict[tuple[Any, ...], int] = {(): root.start_mark.line + 1}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[Any, ...], int]] = [(root, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if id(node) in seen:
            raise _YamlRefused(None, "YAML aliases are not allowed")
        seen.add(id(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and depth > MAX_POLICY_DEPTH:
            raise _YamlRefused(node.start_mark.line + 1,
                               f"YAML nested deeper than {MAX_POLICY_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                # a complex key (`? [a, b]`) has no name; the constructor refuses it anyway
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else f"<key at line {key_node.start_mark.line + 1}>"
                out[path + (key,)] = key_node.start_mark.line + 1
                stack.append((value_node, path + (key,), depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[path + (i,)] = item.start_mark.line + 1
                stack.append((item, path + (i,), depth + 1))
    return out


def _first_alias(text: str) -> tuple[int | None, str]:
    """The line and name of the first alias in `text` (for the message; parses the events again)."""
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                return event.start_mark.line + 1, f" (*{str(event.anchor)[:40]})"
    except yaml.YAMLError:
        pass
    return None, ""


def _check_nesting(text: str) -> None:
    """Refuse deep nesting before libyaml composes it: its composer recurses in C, and a
    200 KB file of `[[[[…` overflows the stack (a crash, not an exception).

    Every nesting level starts with one of `[{-:?` (a flow collection, a block sequence entry,
    a block mapping's key): when the text holds few of them, it cannot nest deeply, and the
    events (a second parse) are not needed."""
    if sum(text.count(c) for c in "[{-:?") <= 2 * MAX_POLICY_DEPTH + 1000:
        return  # at most ~1,100 levels: libyaml composes that safely; _node_lines then bounds it
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_POLICY_DEPTH:
                raise _YamlRefused(event.start_mark.line + 1,
                                   f"YAML nested deeper than {MAX_POLICY_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _line_for(lines: dict[tuple[Any, ...], int], path: Iterable[Any]) -> int | None:
    parts = tuple(path)
    while parts not in lines and parts:
        parts = parts[:-1]
    return lines.get(parts)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10× faster where installed


def parse_policy_text(text: str, origin: str, builtin: bool = False) -> Policy:
    """Parse and validate one policy document; raises PolicyError with line-numbered problems."""
    try:
        _check_nesting(text)
        loader = _Loader(text)  # one parse gives both the node tree (for line numbers) and the data
        try:
            node = loader.get_single_node()
            # lines first: _node_lines refuses aliases before anything walks their expansion
            lines = _node_lines(node) if node is not None else {}
            data = loader.construct_document(node) if node is not None else None
        finally:
            loader.dispose()
    except _YamlRefused as exc:
        line, name = (exc.line, "") if exc.line is not None else _first_alias(text)
        raise PolicyError(origin, [(line, f"{exc}{name}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(origin, [(line, f"YAML syntax error: {problem}")]) from None
    except (ValueError, OverflowError) as exc:  # a scalar the constructor cannot convert (2020-13-45, a 5,000-digit int)
        raise PolicyError(origin, [(None, f"YAML value error: {str(exc).splitlines()[0][:200]}")]) from None
    except RecursionError:
        raise PolicyError(origin, [(None, f"YAML nested deeper than {MAX_POLICY_DEPTH} levels")]) from None
    if node is None or not isinstance(data, dict):
        raise PolicyError(origin, [(1, "a policy must be a YAML mapping (id, vendor, product, …)")])
    problems: list[tuple[int | None, str]] = []
    for error in sorted(_POLICY_VALIDATOR.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        at = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str)
            if extra:
                at.append(extra[0])  # point at the unknown key itself
        problems.append((_line_for(lines, at), f"{where}: {_schema_message(error)}"))
    if not problems:
        problems.extend(_semantic_problems(data, lines))
    if problems:
        raise PolicyError(origin, problems)
    return _build(data, origin, builtin)


def _schema_message(error: Any) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown key(s): {', '.join(map(str, extra))}"
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in error.instance]
        return f"missing required key(s): {', '.join(missing)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    return error.message


def _semantic_problems(data: dict[str, Any], lines: dict[tuple[Any, ...], int]
                       ) -> list[tuple[int | None, str]]:
    problems: list[tuple[int | None, str]] = []

    def check_regex(pattern: str, path: tuple[Any, ...]) -> bool:
        """Both engines must take it: RE2 so that matching is linear in the (hostile) text,
        Python's because the audit's claim and field checks still use `re` (same syntax)."""
        where = ".".join(map(str, path))
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            problems.append((_line_for(lines, path), f"{where}: bad regular expression: {exc}"))
            return False
        try:
            compile_user_regex(pattern)
        except UnsafeRegex as exc:
            problems.append((_line_for(lines, path),
                             f"{where}: regular expression not supported by the linear-time engine (RE2): "
                             f"{exc}; backreferences and lookaround are not allowed"))
            return False
        return True

    for i, pattern in enumerate(data["match"].get("paths", [])):
        if pattern.startswith("re:"):
            check_regex(pattern[3:], ("match", "paths", i))
    for i, claim in enumerate(data.get("claims", [])):
        base = ("claims", i)
        check = claim["check"]
        needs = {"max-requests": ("count", "per"), "anonymised-values": ("path", "pattern"),
                 "no-free-text": ("path", "pattern"), "hashed": ("path",), "optional": ("path",)}.get(check, ())
        for param in needs:
            if param not in claim:
                problems.append((_line_for(lines, base), f"claims.{i}: check {check} needs '{param}'"))
        if "pattern" in claim and check_regex(claim["pattern"], base + ("pattern",)):
            if check == "anonymised-values" and not re.compile(claim["pattern"]).groupindex:
                problems.append((_line_for(lines, base + ("pattern",)),
                                 f"claims.{i}.pattern: anonymised-values needs named groups, e.g. (?P<TABLE_NAME>[^/]+)"))
        if check == "max-requests" and "per" in claim and claim["per"] != "session":
            try:
                parse_duration(str(claim["per"]))
            except ValueError as exc:
                problems.append((_line_for(lines, base + ("per",)), f"claims.{i}.per: {exc}"))

    def walk(tree: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(tree, dict):
            return
        for name, spec in tree.items():
            if not isinstance(spec, dict):
                continue
            if "pattern" in spec:
                check_regex(spec["pattern"], path + (name, "pattern"))
            walk(spec.get("fields"), path + (name, "fields"))
            for sub in ("items", "values"):
                if isinstance(spec.get(sub), dict):
                    walk({"*": spec[sub]}, path + (name,))

    walk(data.get("declared"), ("declared",))
    walk(data.get("envelope"), ("envelope",))
    payload = data["payload"]
    if payload.get("root") and payload.get("items"):
        problems.append((_line_for(lines, ("payload",)), "payload: use either 'root' or 'items', not both"))
    if data["match"].get("transport") == "websocket" and payload["location"] != "ws-message":
        problems.append((_line_for(lines, ("payload", "location")),
                         "payload.location: a websocket policy reads 'ws-message'"))
    return problems


def _citation(data: dict[str, Any] | None) -> Citation | None:
    if not data:
        return None
    return Citation(document=data.get("document", ""), section=data.get("section", ""),
                    quote=data.get("quote", ""), url=data.get("url", ""))


def policy_from_data(data: dict[str, Any], origin: str, builtin: bool = False) -> Policy:
    """A policy from its validated data (`Policy.raw`): how another process rebuilds a catalogue."""
    return _build(data, origin, builtin)


def _build(data: dict[str, Any], origin: str, builtin: bool) -> Policy:
    match = data["match"]
    payload = data["payload"]
    source = data["source"]
    source_citation = Citation(document=source.get("document", ""), title=source.get("title", ""),
                               url=source.get("url", ""))
    def condition(cond: dict[str, Any]) -> ShapeCondition:
        if "any" in cond:
            return ShapeCondition(path="", any_of=tuple(condition(c) for c in cond["any"]))
        return ShapeCondition(
            path=cond["path"], equals=cond.get("equals"), has_equals="equals" in cond,
            one_of=tuple(cond["in"]) if "in" in cond else None, exists=cond.get("exists"))

    shape = [condition(cond) for cond in match.get("shape", [])]
    policy = Policy(
        id=data["id"], vendor=data["vendor"], product=data["product"], source=source_citation,
        transport=match.get("transport", "http"),
        hosts=tuple(h.lower() for h in match["hosts"]),
        methods=tuple(m.upper() for m in match.get("methods", [])),
        paths=tuple(match.get("paths", [])),
        shape=tuple(shape), priority=int(match.get("priority", 0)),
        location=payload["location"], encoding=tuple(payload["encoding"]),
        encoding_citation=None, root=payload.get("root"), items=payload.get("items"),
        declared=data.get("declared") or {}, envelope=data.get("envelope"),
        additional=bool(data.get("additional", False)),
        claims=(), opt_out=tuple(data.get("opt_out", [])), notes=data.get("notes", ""),
        origin=origin, raw=data, builtin=builtin, sinkhole=data.get("sinkhole"),
    )
    policy.encoding_citation = policy.cite(payload["encoding_cite"]) if payload.get("encoding_cite") else None
    policy.claims = tuple(
        ClaimSpec(check=c["check"], citation=policy.cite(c.get("cite")),
                  params={k: v for k, v in c.items() if k not in ("check", "cite")})
        for c in data.get("claims", [])
    )
    return policy


def load_policy_file(path: Path, builtin: bool = False) -> Policy:
    """Read and parse one policy file: a regular file (a FIFO would block the read forever, a
    device never end) of at most MAX_POLICY_BYTES."""
    try:
        text = read_regular(path, MAX_POLICY_BYTES).decode("utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [(None, f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [(None, f"not UTF-8 text (byte {exc.start})")]) from None
    return parse_policy_text(text, str(path), builtin=builtin)


def builtin_policy_texts() -> list[tuple[str, str]]:
    folder = resources.files(BUILTIN_PACKAGE)
    return sorted((entry.name, entry.read_text(encoding="utf-8"))
                  for entry in folder.iterdir() if entry.name.endswith((".yaml", ".yml")))


# ---------------------------------------------------------------- the catalogue

@dataclass(slots=True)
class Catalogue:
    """The loaded policies, and the problems of the files that did not load."""

    policies: list[Policy] = field(default_factory=list)
    problems: list[PolicyError] = field(default_factory=list)
    # host → the policies whose host patterns match it (the proxy asks for every request)
    _host_memo: dict[str, tuple[Policy, ...]] = field(default_factory=dict, repr=False, compare=False)
    _memo_key: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)
    _request_memo: dict[tuple[str, str, str, str], tuple[Policy, ...]] = field(default_factory=dict, repr=False,
                                                                             compare=False)

    @classmethod
    def load(cls, builtin: bool = True, paths: Iterable[Path] = (), strict: bool = False) -> Catalogue:
        """Built-in policies plus files/directories; a broken file is reported, the rest load."""
        catalogue = cls()
        if builtin:
            for name, text in builtin_policy_texts():
                catalogue._add_text(text, f"builtin:{name}", builtin=True)
        for path in paths:
            path = Path(path)
            try:
                # (a FIFO or device among them is refused by load_policy_file, without blocking)
                files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
            except OSError as exc:
                catalogue.problems.append(PolicyError(str(path), [(None, f"cannot list: {exc.strerror or exc}")]))
                continue
            if path.is_dir() and not files and strict:
                catalogue.problems.append(PolicyError(str(path), [(None, "no .yaml policy files in this directory")]))
            for file in files:
                try:
                    catalogue.add(load_policy_file(file))
                except PolicyError as exc:
                    catalogue.problems.append(exc)
        return catalogue

    def _add_text(self, text: str, origin: str, builtin: bool) -> None:
        try:
            self.add(parse_policy_text(text, origin, builtin=builtin))
        except PolicyError as exc:
            self.problems.append(exc)

    def add(self, policy: Policy) -> None:
        # A user's policy with a built-in's id replaces the built-in.
        self.policies = [p for p in self.policies if p.id != policy.id]
        self.policies.append(policy)

    def get(self, policy_id: str) -> Policy | None:
        for policy in self.policies:
            if policy.id == policy_id:
                return policy
        return None

    def only(self, ids: Iterable[str]) -> Catalogue:
        wanted = set(ids)
        return Catalogue([p for p in self.policies if p.id in wanted], list(self.problems))

    def candidates(self, obs: Observation) -> list[Policy]:
        """Policies matching host, method, path and transport (before decoding)."""
        return self.candidates_at(obs, obs.host, obs.path)

    def candidates_at(self, obs: Observation, host: str, path: str) -> list[Policy]:
        """The candidates for `obs` sent to `host` (any spelling of it) at `path` (raw)."""
        for_host = self._for_host(host)
        if not for_host:
            return []
        key = (host, path, obs.method, obs.transport)  # (_for_host emptied the memo if the policies changed)
        found = self._request_memo.get(key)
        if found is None:
            name, clean = normalize_host(host) or host, normalize_path(path)
            found = tuple(sorted((p for p in for_host if p.matches_request(obs, name, clean)),
                                 key=lambda p: (-p.priority, -len(p.shape))))
            if len(self._request_memo) >= 4096:  # bounded: a request's path may hold ids
                self._request_memo.clear()
            self._request_memo[key] = found
        return list(found)

    def select(self, candidates: list[Policy], value: Any) -> Policy | None:
        for policy in candidates:
            if not policy.shape or policy.matches_shape(value):
                return policy
        return None

    def is_telemetry_host(self, host: str) -> bool:
        return bool(self._for_host(host))

    def policies_for_host(self, host: str) -> tuple[Policy, ...]:
        """The policies naming `host` (any spelling of it), whatever the path."""
        return self._for_host(host)

    def _for_host(self, host: str) -> tuple[Policy, ...]:
        key = (id(self.policies), len(self.policies))
        if self._memo_key != key:  # the policies changed (add() makes a new list)
            self._host_memo, self._request_memo, self._memo_key = {}, {}, key
        hit = self._host_memo.get(host)
        if hit is None:
            name = normalize_host(host)  # None: not a name anything connects to
            hit = tuple(p for p in self.policies if any(host_matches(pattern, name) for pattern in p.hosts)) \
                if name else ()
            if len(self._host_memo) < 4096:  # bounded: hosts seen, not requests
                self._host_memo[host] = hit
        return hit

    def vendors(self) -> list[str]:
        return sorted({p.vendor for p in self.policies})
