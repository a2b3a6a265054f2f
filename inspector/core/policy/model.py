"""The policy model: a loaded policy, its shape conditions and claims, and how it matches a request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from jsonschema import Draft202012Validator, ValidationError, validators

from inspector.core.claims import ClaimSpec
from inspector.core.fastcheck import compile_errors
from inspector.core.findings import Citation
from inspector.core.linear_regex import linear
from inspector.core.observation import Observation
from inspector.core.policy.paths import MISSING, host_matches, path_matches, resolve
from inspector.core.policy.schema import FORMAT_CHECKER, compile_policy_schema


def _linear_pattern(validator: Any, pattern: str, instance: Any, schema: dict[str, Any]) -> Any:
    """jsonschema's `pattern`, matched by RE2 (its own uses `re`: backtracking on captured text)."""
    if validator.is_type(instance, "string") and not linear(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


LinearValidator = validators.extend(  # type: ignore[no-untyped-call]  # (untyped in types-jsonschema)
    Draft202012Validator, {"pattern": _linear_pattern})


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
    collector: str | None = None  # the collector profile it sends through: its envelope is known
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
            self._validator = LinearValidator(self.schema, format_checker=FORMAT_CHECKER)
        return self._validator

    def schema_errors(self, value: Any) -> list[Any]:
        """The schema's errors for `value`, as jsonschema reports them (compiled; see
        core/fastcheck), or jsonschema's own if the schema could not be compiled."""
        if self._fast is False:
            self._fast = compile_errors(self.schema, FORMAT_CHECKER.conforms)
        if self._fast is None:
            return list(self.validator.iter_errors(value))
        errors: list[Any] = self._fast(value)
        return errors

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

    def container_paths(self) -> dict[str, str]:
        """The payload paths that hold the declared fields instead of being fields: `items:`
        (a batch of events) and `root:`, and the objects above them → "items" or "root"."""
        out: dict[str, str] = {}
        for kind, base in (("items", self.items), ("root", self.root)):
            parts = base.split(".") if base else []
            for k in range(1, len(parts) + 1):
                out.setdefault(".".join(parts[:k]), kind)
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
            if isinstance(items, dict) and isinstance(items.get("fields"), dict):
                _walk_tree(items["fields"], f"{path}[]", out)
            values = spec.get("values")
            if isinstance(values, dict) and isinstance(values.get("fields"), dict):
                _walk_tree(values["fields"], f"{path}.*", out)

