"""Claim checks (no-cookies, max-requests, no-pii, hashed, …): one module each, on a registry."""

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import (
    ClaimPlan,
    checks,
    escalating,
    get,
    names,
    params,
    plan,
    register,
    unregister,
    version,
)

__all__ = ["ClaimCheck", "ClaimContext", "ClaimPlan", "ClaimSpec", "Param", "checks", "escalating", "get", "names",
           "params", "plan", "register", "unregister", "version"]
