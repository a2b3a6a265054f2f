"""The pipeline: Observation → match policy → decode → audit → Event."""

from __future__ import annotations

import re
from dataclasses import replace as _replace
from typing import Any

from inspector.core import collectors
from inspector.core.audit import Auditor
from inspector.core.collectors import Collector, Item
from inspector.core.decode import (
    DEFAULT_LIMITS,
    Decoded,
    Decoder,
    Issue,
    Layer,
    Limits,
    raw_query_param,
    raw_query_params,
)
from inspector.core.destination import normalize_host, normalize_path
from inspector.core.enforce import mismatch
from inspector.core.event import Event, request_record, response_record
from inspector.core.findings import WARNING, Finding
from inspector.core.hosts import default as host_catalogue
from inspector.core.keys import Keyring
from inspector.core.observation import Observation
from inspector.core.policy import Catalogue, Policy


class Pipeline:
    """Runs the same code for the live proxy, the offline auditor and the tests."""

    def __init__(self, catalogue: Catalogue, keyring: Keyring | None = None,
                 limits: Limits = DEFAULT_LIMITS) -> None:
        self.catalogue = catalogue
        self.keyring = keyring if keyring is not None else Keyring()
        self.limits = limits
        self.decoder = Decoder(self.keyring, limits)
        self.auditor = Auditor(catalogue)

    def process(self, obs: Observation, action: str | None = None, policy: Policy | None = None) -> Event:
        """Audit one observation. Never raises for bad input: problems become findings.

        `policy` forces a policy (for a bare payload with no URL to match on)."""
        try:
            if policy is not None:
                decoded = self.decode_at(obs, policy.location if policy.location != "ws-message" else "body")
                if policy.location.startswith("query:") and decoded.issues and not obs.raw_query:
                    decoded = self.decode_at(obs, "body")
            else:
                policy, decoded = self.match_and_decode(obs)
            collector, items = None, []
            if policy is None:
                collector, decoded = self.collector_decode(obs, decoded)
                if collector is not None:
                    items = collector.items(decoded.value, obs)
            elif policy.collector:
                collector = collectors.get(policy.collector)
                items = collector.items(decoded.value, obs) if collector is not None and decoded.structured else []
            findings = self.auditor.audit(obs, decoded, policy, collector)
            if policy is None and collector is not None and items:
                policy, findings = self._vendor_items(obs, decoded, collector, items, findings)
            if obs.names and (message := mismatch(obs.names)):
                findings.append(Finding("host-mismatch", WARNING, "", message))
        except Exception as exc:  # noqa: BLE001 - a bug must not lose the event
            policy, decoded, collector, items = None, Decoded(layers=[Layer("body")]), None, []
            findings = [Finding("decode-error", WARNING, "", f"internal error while auditing: {type(exc).__name__}: {exc}"[:300])]
        return Event(
            method=obs.method, url=obs.url, host=obs.host, path=obs.path, transport=obs.transport,
            time=obs.timestamp, session=obs.session,
            policy=policy.id if policy else None,
            vendor=policy.vendor if policy else None,
            product=policy.product if policy else None,
            decoding=decoded.path_labels,
            layers=[layer.to_dict() for layer in decoded.layers],
            decoded=decoded.value, structured=decoded.structured, jwe=decoded.jwe,
            findings=findings, request=request_record(obs.headers, obs.body),
            source=obs.source, action=action, response_status=obs.response_status,
            response=response_record(obs.response_status, obs.response_headers, obs.response_body,
                                     obs.response_size, obs.response_local),
            collector=collector.name if collector else None, items=[item.to_dict() for item in items],
            owner=_owner(obs, policy, collector),
        )

    def _vendor_items(self, obs: Observation, decoded: Decoded, collector: Collector, items: list[Item],
                      findings: list[Finding]) -> tuple[Policy | None, list[Finding]]:
        """A vendor's events on any endpoint of the collector it sends through: each item whose
        shape a policy with `collector:` describes is audited against that policy (its findings
        at the item's path); the event is attributed to the first such policy."""
        vendor = [p for p in self.catalogue.policies
                  if p.collector == collector.name and p.shape and not p.items and not p.root
                  and p.transport == obs.transport]
        if not vendor:
            return None, findings
        first: Policy | None = None
        claimed: list[str] = []
        extra: list[Finding] = []
        for item in items:
            record = _at(decoded.value, item.path)
            if not isinstance(record, dict):
                continue
            policy = next((p for p in vendor if p.matches_shape(record)), None)
            if policy is None:
                continue
            first = first or policy
            claimed.append(item.path)
            one = Decoded(value=record, layers=decoded.layers, structured=True)
            for f in self.auditor.audit(obs, one, policy):
                if f.code == "cookie" and any(g.code == "cookie" for g in findings + extra):
                    continue  # the request's cookies: said once
                path = f"{item.path}.{f.path}" if item.path and f.path else (f.path or item.path)
                extra.append(_replace(f, path=path))
        if first is None:
            return None, findings
        # the policy's own audit of its items replaces the collector-level PII scan there
        kept = [f for f in findings if not (f.code == "pii" and any(
            f.path == c or f.path.startswith(c + ".") or f.path.startswith(c + "[") for c in claimed))]
        return first, kept + extra

    def collector_decode(self, obs: Observation, decoded: Decoded) -> tuple[Collector | None, Decoded]:
        """A request no policy claims: sent to a collector's own host and endpoint, or with a
        collector's endpoint and shape on any host (a self-hosted or proxied collector)."""
        host, path = normalize_host(obs.host) or obs.host, normalize_path(obs.path)
        method = obs.method if obs.transport == "http" else obs.transport.upper()
        collector = collectors.for_request(host, method, path)
        if collector is not None:
            return collector, collector.decode(obs, self)
        for candidate in collectors.collectors():
            if candidate.endpoint(method, path):
                mine = candidate.decode(obs, self)
                if mine.structured and candidate.recognises(mine.value):
                    return candidate, mine
        return None, decoded

    def match_and_decode(self, obs: Observation) -> tuple[Policy | None, Decoded]:
        candidates = self.catalogue.candidates(obs)
        cache: dict[str, Decoded] = {}
        for policy in candidates:
            decoded = cache.get(policy.location)
            if decoded is None:
                decoded = cache[policy.location] = self.decode_at(obs, policy.location)
            if not policy.shape or policy.matches_shape(decoded.value):
                return policy, decoded
        # No candidate's shape holds: decode where the payload most likely is.
        if cache:
            return None, next(iter(cache.values()))
        if collectors.for_request(normalize_host(obs.host) or obs.host, obs.method if obs.transport == "http"
                                  else obs.transport.upper(), normalize_path(obs.path)) is not None:
            # sent to a collector's own host and endpoint: collector_decode decodes it its own way
            return None, Decoded(layers=[Layer("body")])
        return None, self.decode_auto(obs)

    def decode_at(self, obs: Observation, location: str) -> Decoded:
        content_encoding = obs.header("content-encoding") if location in ("body",) or location.startswith("form:") else None
        content_type = obs.header("content-type")
        if obs.content_decoded and content_encoding:
            # The capture tool already undid the Content-Encoding: record it, do not redo it.
            decoded = self.decoder.decode(obs.body, location, content_type=content_type)
            for coding in [c.strip().lower() for c in content_encoding.split(",") if c.strip()]:
                decoded.layers.insert(1, Layer(coding, {"via": "content-encoding", "by": "capture"}))
            return decoded
        if location in ("body", "ws-message"):
            return self.decoder.decode(obs.body, location, content_encoding=content_encoding, content_type=content_type)
        if location.startswith("query:"):
            name = location.split(":", 1)[1]
            value = raw_query_param(obs.raw_query, name)
            if value is None:
                return _missing(location, f"query parameter {name!r} is missing")
            return self.decoder.decode(value.encode("utf-8", "surrogateescape"), location)
        if location.startswith("form:"):
            name = location.split(":", 1)[1]
            body = self.decoder.decode(obs.body, "body", content_encoding=content_encoding,
                                       content_type="application/x-www-form-urlencoded")
            text = body.value if isinstance(body.value, str) else None
            if isinstance(body.value, dict) and name in body.value:
                inner = body.value[name]
                if isinstance(inner, str):
                    return self.decoder.decode(inner.encode("utf-8", "surrogateescape"), location)
                decoded = Decoded(value=inner, layers=[Layer(location), Layer("json")], structured=True)
                return decoded
            if text is not None:
                value = raw_query_param(text, name)
                if value is not None:
                    return self.decoder.decode(value.encode("utf-8", "surrogateescape"), location)
            return _missing(location, f"form field {name!r} is missing")
        return _missing(location, f"unknown payload location {location!r}")

    def decode_auto(self, obs: Observation) -> Decoded:
        """No policy says where the payload is: the body, else the query parameter that decodes."""
        if obs.transport == "websocket":
            return self.decode_at(obs, "ws-message")
        if obs.body.strip():
            return self.decode_at(obs, "body")
        best: Decoded | None = None
        for name, _value in raw_query_params(obs.raw_query):
            decoded = self.decode_at(obs, f"query:{name}")
            if decoded.structured or decoded.jwe:
                return decoded
            if best is None and len(decoded.layers) > 1:
                best = decoded
        return best or Decoded(value=None, layers=[Layer("body")])


def _at(value: Any, path: str) -> Any:
    """The value at an item's path (`batch[2]`, `events[0].x`, `""` for the whole payload)."""
    node = value
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
        if part.startswith("["):
            index = int(part[1:-1])
            node = node[index] if isinstance(node, list) and index < len(node) else None
        else:
            node = node.get(part) if isinstance(node, dict) else None
        if node is None:
            return None
    return node


def _owner(obs: Observation, policy: Policy | None, collector: Collector | None) -> str | None:
    """Who the request was sent to: the host catalogue's company, else the collector's, else the vendor."""
    entry = host_catalogue().lookup(obs.host)
    if entry is not None:
        return entry.owner
    if collector is not None:
        return collector.owner or collector.title
    return policy.vendor if policy is not None else None


def _missing(location: str, message: str) -> Decoded:
    return Decoded(layers=[Layer(location)], issues=[Issue("decode-error", message)])

