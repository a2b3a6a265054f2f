"""The claim-check registry: every check module in this package registers itself here.

Adding a check is one module in `inspector/core/claims/` with a `@register`ed `ClaimCheck`, its
codes documented in docs/findings.md (and `findings.CODES`), and a row in docs/policies.md;
the policy format, the loader's checks and the audit find it here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from inspector.core.claims.base import ClaimCheck, ClaimSpec, Param
from inspector.core.plugins import PackageModules

_REGISTRY: dict[str, ClaimCheck] = {}
_ESCALATING: dict[str, tuple[str, ...]] = {}  # asked twice per audited request: kept until the registry changes
_VERSION = [0]  # bumped when the registry changes: a plan made before is stale


def register[C: type[ClaimCheck]](cls: C) -> C:
    """Class decorator: one instance of each check, by its name."""
    if not cls.name:
        raise ValueError(f"{cls.__name__} has no name")
    if cls.name in _REGISTRY and type(_REGISTRY[cls.name]) is not cls:
        raise ValueError(f"two claim checks are named {cls.name!r}")
    _REGISTRY[cls.name] = cls()
    _ESCALATING.clear()
    _VERSION[0] += 1
    return cls


def unregister(name: str) -> None:
    """Remove a check (for tests that register one of their own)."""
    _REGISTRY.pop(name, None)
    _ESCALATING.clear()
    _VERSION[0] += 1


_MODULES = PackageModules("inspector.core.claims", skip=("base", "registry"))
_load = _MODULES.load


def checks() -> tuple[ClaimCheck, ...]:
    """Every registered check, by name."""
    _load()
    return tuple(_REGISTRY[name] for name in sorted(_REGISTRY))


def names() -> tuple[str, ...]:
    """The names a policy's `check:` may use."""
    return tuple(check.name for check in checks())


def get(name: str) -> ClaimCheck | None:
    """The check of that name, or None (a policy rebuilt without validation may name any)."""
    _load()
    return _REGISTRY.get(name)


def params() -> dict[str, Param]:
    """Every parameter any check reads. A claim may carry any of them (unused ones are ignored,
    as before checks declared their own), so one name must mean one thing across checks."""
    out: dict[str, Param] = {}
    for check in checks():
        for name, param in check.params.items():
            other = out.setdefault(name, param)
            if other.schema != param.schema or other.regex != param.regex:
                raise ValueError(f"claim parameter {name!r} means two things ({check.name} and another check)")
    return out


def escalating(code: str) -> tuple[str, ...]:
    """The checks whose claim makes the auditor's own `code` findings violations."""
    found = _ESCALATING.get(code)
    if found is None:
        found = _ESCALATING[code] = tuple(check.name for check in checks() if code in check.escalates)
    return found


def version() -> int:
    """Changes whenever a check is registered or removed (also when the checks first load)."""
    return _VERSION[0]


Hooked = tuple[tuple[ClaimCheck, ClaimSpec], ...]


@dataclass(frozen=True, slots=True)
class ClaimPlan:
    """A policy's claims by the audit hook their check implements, worked out once per policy:
    the audit then calls only the hooks that do something (it runs for every request)."""

    on_request: Hooked
    on_payload: Hooked
    exempt_paths: Hooked
    escalations: dict[str, ClaimSpec]  # an auditor's own code → the first claim making it a violation


def plan(specs: Sequence[ClaimSpec]) -> ClaimPlan:
    """The plan of these claims (in their order); a claim naming no registered check is left out."""
    hooked: dict[str, list[tuple[ClaimCheck, ClaimSpec]]] = {"on_request": [], "on_payload": [], "exempt_paths": []}
    escalations: dict[str, ClaimSpec] = {}
    for spec in specs:
        check = get(spec.check)
        if check is None:
            continue
        for hook, found in hooked.items():
            if getattr(type(check), hook) is not getattr(ClaimCheck, hook):
                found.append((check, spec))
        for code in check.escalates:
            escalations.setdefault(code, spec)
    return ClaimPlan(tuple(hooked["on_request"]), tuple(hooked["on_payload"]), tuple(hooked["exempt_paths"]),
                     escalations)
