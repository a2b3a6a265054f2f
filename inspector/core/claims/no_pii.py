"""no-pii: the vendor says the channel carries no personal data."""

from __future__ import annotations

from inspector.core.claims.base import ClaimCheck
from inspector.core.claims.registry import register


@register
class NoPii(ClaimCheck):
    """Personal data the PII scan finds (a warning without the claim) becomes a violation."""

    name = "no-pii"
    description = "the payload carries no personal data"
    codes = {"pii": "personal data (e-mail, IP, MAC, home path, hostname, token, card number)"}
    escalates = ("pii",)
