"""Claim checks (no-cookies, max-requests, no-pii, hashed, …): one module each, on a registry."""

from inspector.core.claims.base import ClaimCheck, ClaimContext, ClaimSpec, Param
from inspector.core.claims.registry import checks, escalating, get, names, params, register, unregister

__all__ = ["ClaimCheck", "ClaimContext", "ClaimSpec", "Param", "checks", "escalating", "get", "names", "params",
           "register", "unregister"]
