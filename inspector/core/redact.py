"""Redaction: mask personal data in events before they are shown, exported or stored (--redact)."""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from typing import Any

from inspector.core.event import Event

MASK = "«redacted»"
_INDEX = re.compile(r"\[(\d+)\]")


def _parts(path: str) -> list[Any]:
    parts: list[Any] = []
    for chunk in path.split("."):
        if not chunk:
            continue
        head = chunk.split("[", 1)[0]
        if head:
            parts.append(head)
        parts.extend(int(i) for i in _INDEX.findall(chunk))
    return parts


def _mask_at(value: Any, path: str) -> None:
    parts = _parts(path)
    if not parts:
        return
    node = value
    for part in parts[:-1]:
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            return
    last = parts[-1]
    try:
        if isinstance(node[last], str):
            node[last] = MASK
    except (KeyError, IndexError, TypeError):
        return


def _under(path: str, roots: set[str]) -> bool:
    return any(path == r or path.startswith((r + ".", r + "[")) for r in roots)


def redact_url(url: str) -> str:
    """Mask every query value: payloads and identifiers often ride in the query."""
    base, sep, query = url.partition("?")
    if not sep:
        return url
    parts = [p.split("=", 1)[0] + ("=" + MASK if "=" in p else "") for p in query.split("&")]
    return base + "?" + "&".join(parts)


SENSITIVE_CODES = ("pii", "not-hashed", "not-anonymised", "free-text", "optional-field", "cookie")


def redact_event(event: Event) -> Event:
    """A copy of the event with PII values masked in the decoded payload, evidence and raw request."""
    decoded = copy.deepcopy(event.decoded)
    roots = {f.path for f in event.findings if f.code in SENSITIVE_CODES and f.path}
    for path in roots:
        if decoded is not None:
            _mask_at(decoded, path)
    findings = []
    for finding in event.findings:
        sensitive = finding.code in SENSITIVE_CODES or (finding.path and _under(finding.path, roots))
        if sensitive and finding.evidence not in (None, ""):
            findings.append(replace(finding, evidence=MASK))
        else:
            findings.append(finding)
    request = dict(event.request)
    request["headers"] = [[k, MASK if k.lower() in ("cookie", "authorization") else v]
                          for k, v in request.get("headers", [])]
    request["cookies"] = [MASK for _ in request.get("cookies", [])]
    request.pop("body_text", None)
    request.pop("body_base64", None)
    request["body_redacted"] = True
    response = dict(event.response) if event.response else None
    if response is not None:  # it may echo the request, or set an identifier
        response["headers"] = [[k, MASK if str(k).lower() in ("set-cookie", "authorization") else v]
                               for k, v in response.get("headers", [])]
        response.pop("body_text", None)
        response.pop("body_base64", None)
        response["body_redacted"] = True
    return replace(event, decoded=decoded, findings=findings, request=request, response=response,
                   url=redact_url(event.url))
