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


def redact_event(event: Event) -> Event:
    """A copy of the event with PII values masked in the decoded payload and all evidence."""
    decoded = copy.deepcopy(event.decoded)
    findings = []
    for finding in event.findings:
        if finding.code in ("pii", "not-hashed", "not-anonymised", "free-text", "optional-field", "cookie"):
            if finding.path and decoded is not None:
                _mask_at(decoded, finding.path)
            findings.append(replace(finding, evidence=MASK if finding.evidence not in (None, "") else finding.evidence))
        else:
            findings.append(finding)
    request = dict(event.request)
    request["headers"] = [[k, MASK if k.lower() in ("cookie", "authorization") else v]
                          for k, v in request.get("headers", [])]
    request["cookies"] = [MASK for _ in request.get("cookies", [])]
    request.pop("body_text", None)
    request.pop("body_base64", None)
    request["body_redacted"] = True
    return replace(event, decoded=decoded, findings=findings, request=request)
