"""Draft a policy from observed traffic (`policies infer CAPTURE`).

The draft describes what was *seen*; a reviewer then replaces it with what the vendor's
document *declares*, citing it. Formats are guessed from every observed value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from inspector.core.audit import type_name
from inspector.core.decode import Decoded
from inspector.core.observation import Observation
from inspector.core.policy.schema import _FORMAT_PATTERNS, _is_ip

_FORMAT_ORDER = ("uuid", "sha256-hex", "date-time", "semver", "email")


def guess_format(values: list[Any]) -> str | None:
    strings = [v for v in values if isinstance(v, str)]
    if not strings or len(strings) != len([v for v in values if v is not None]):
        return None
    for name in _FORMAT_ORDER:
        if all(_FORMAT_PATTERNS[name].match(s) for s in strings):
            return name
    if all(_is_ip(s, 4) for s in strings):
        return "ipv4"
    return None


@dataclass
class _Node:
    values: list[Any] = field(default_factory=list)
    present: int = 0
    children: dict[str, _Node] = field(default_factory=dict)
    items: _Node | None = None
    objects: int = 0  # how many of the values were objects


def _feed(node: _Node, value: Any) -> None:
    node.present += 1
    if isinstance(value, dict):
        node.objects += 1
        for key, child in value.items():
            sub = node.children.setdefault(str(key), _Node())
            _feed(sub, child)
    elif isinstance(value, list):
        node.values.append([])
        if node.items is None:
            node.items = _Node()
        for item in value[:200]:
            _feed(node.items, item)
    else:
        if len(node.values) < 500:
            node.values.append(value)


def _spec(node: _Node) -> dict[str, Any]:
    types = sorted({type_name(v) for v in node.values if not isinstance(v, list)} - {"null"})
    if node.children:
        types = sorted(set(types) | {"object"})
    if node.items is not None:
        types = sorted(set(types) | {"array"})
    nullable = any(v is None for v in node.values)
    if set(types) == {"integer", "number"}:
        types = ["number"]
    spec: dict[str, Any] = {}
    if types:
        spec["type"] = types[0] if len(types) == 1 else types
    if nullable:
        if types:
            spec["nullable"] = True
        else:
            spec = {"type": "null"}
    fmt = guess_format([v for v in node.values if not isinstance(v, list)])
    if fmt and types == ["string"]:
        spec["format"] = fmt
    if node.children:
        spec["fields"] = {name: _field(child, node.objects) for name, child in sorted(node.children.items())}
    if node.items is not None and node.items.present:
        spec["items"] = _spec(node.items)
    return spec


def _field(node: _Node, parents: int) -> dict[str, Any]:
    spec = _spec(node)
    if node.present < parents:
        spec["optional"] = True
    spec["note"] = f"seen in {node.present} of {max(parents, node.present)} payloads"
    return spec


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "endpoint"


@dataclass
class Endpoint:
    host: str
    method: str
    path: str
    transport: str
    location: str
    encoding: list[str]
    root: _Node = field(default_factory=_Node)
    count: int = 0


def infer_policies(samples: list[tuple[Observation, Decoded]], source: str) -> list[dict[str, Any]]:
    """Group observations by endpoint and draft one policy per endpoint."""
    endpoints: dict[tuple[str, str, str, str], Endpoint] = {}
    for obs, decoded in samples:
        key = (obs.host, obs.method if obs.transport == "http" else "", obs.path, obs.transport)
        endpoint = endpoints.get(key)
        if endpoint is None:
            location = decoded.layers[0].name if decoded.layers else "body"
            encoding = [layer.name for layer in decoded.layers[1:]
                        if not layer.name.startswith("json@") and layer.detail.get("via") != "content-encoding"]
            endpoint = endpoints[key] = Endpoint(obs.host, obs.method, obs.path, obs.transport, location, encoding)
        endpoint.count += 1
        if decoded.structured and isinstance(decoded.value, dict):
            _feed(endpoint.root, decoded.value)
    drafts = []
    for endpoint in endpoints.values():
        match: dict[str, Any] = {"hosts": [endpoint.host], "paths": [endpoint.path]}
        if endpoint.transport == "websocket":
            match = {"transport": "websocket", **match}
        else:
            match["methods"] = [endpoint.method]
        declared = {name: _field(child, endpoint.root.objects)
                    for name, child in sorted(endpoint.root.children.items())}
        drafts.append({
            "id": _slug(f"{endpoint.host}-{endpoint.path}"),
            "vendor": endpoint.host,
            "product": f"{endpoint.method if endpoint.transport == 'http' else 'WebSocket'} {endpoint.path} "
                       f"(inferred from {endpoint.count} observation(s))",
            "source": {"document": f"observed traffic: {source}",
                       "title": "DRAFT inferred by telemetry-inspector: replace with the vendor's document"},
            "match": match,
            "payload": {"location": "ws-message" if endpoint.transport == "websocket" else endpoint.location,
                        "encoding": endpoint.encoding or ["json"]},
            "declared": declared,
            "claims": [],
        })
    return drafts


def dump_drafts(drafts: list[dict[str, Any]]) -> str:
    header = ("# Draft policies inferred from observed traffic. They describe what was SEEN;\n"
              "# edit each to what the vendor's document DECLARES, with cite: {section, quote}.\n")
    docs = [yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=100) for d in drafts]
    return header + "---\n".join(docs)
