"""no-cookies: the vendor says the channel uses no cookies."""

from __future__ import annotations

from inspector.core.claims.base import ClaimCheck
from inspector.core.claims.registry import register


@register
class NoCookies(ClaimCheck):
    """A cookie sent or set (the auditor reports every one, as info) becomes a violation."""

    name = "no-cookies"
    description = "the channel sends and sets no cookies"
    codes = {"cookie": "a cookie sent or set, against a no-cookies claim"}
    escalates = ("cookie",)
