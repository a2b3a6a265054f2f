"""A collector profile: how one third-party collector's requests look, decode and split into items.

Most apps phone home through a handful of collectors (Segment, PostHog, Sentry, OTLP, …). A
profile says where a collector listens (its SDKs' default hosts and its endpoints), how its
bodies decode beyond what the generic decoder does (envelopes, NDJSON, protobuf, a `data=`
field), how one request splits into *items* — one per tracked event, span, log or exception —
which of its fields are the collector's own credentials (write keys, project tokens), and the
local answer its SDKs accept without retrying. One module per collector, registered with
`@register` (see `registry.py`); the pipeline never names a collector.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from inspector.core.actions import LocalAnswer
from inspector.core.observation import Observation

if TYPE_CHECKING:  # (the pipeline imports the collectors: no cycle at run time)
    from inspector.core.decode import Decoded
    from inspector.core.pipeline import Pipeline

# What an item is. Collectors map their own words onto these.
KINDS = ("track", "identify", "page", "screen", "group", "alias", "span", "log", "metric", "exception",
         "transaction", "session", "event", "attachment", "report", "flags", "other")
# Which identifiers an item carries, by what they identify.
ID_ROLES = ("user", "anonymous", "device", "distinct", "session", "trace", "install")

SINKHOLE_HEADERS = (("X-Telemetry-Inspector", "sinkhole"), ("Cache-Control", "no-store"))


@dataclass(slots=True)
class Item:
    """One tracked event, span, log, metric or exception inside a collector request."""

    kind: str
    name: str | None
    path: str                                   # where it is in the decoded payload, e.g. "batch[2]"
    ids: dict[str, str] = field(default_factory=dict)
    properties: Any = None
    context: Any = None

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "path": self.path, "ids": dict(self.ids),
                "properties": self.properties, "context": self.context}


def item_from_dict(data: dict[str, Any]) -> Item:
    ids = data.get("ids")
    return Item(kind=str(data.get("kind") or "other"), name=data.get("name") if isinstance(data.get("name"), str) else None,
                path=str(data.get("path") or ""),
                ids={str(k): str(v) for k, v in ids.items()} if isinstance(ids, dict) else {},
                properties=data.get("properties"), context=data.get("context"))


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Paths (globs, as in policies) and methods a collector receives on."""

    paths: tuple[str, ...]
    methods: tuple[str, ...] = ("POST",)

    def matches(self, method: str, path: str) -> bool:
        if self.methods and method.upper() not in self.methods:
            return False
        return any(fnmatch.fnmatchcase(path, p) or fnmatch.fnmatchcase(path.rstrip("/"), p.rstrip("/"))
                   for p in self.paths)


class Collector:
    """The base of every profile. Subclasses set the class attributes and override what differs."""

    name: ClassVar[str] = ""          # the id rules and events use: "segment"
    title: ClassVar[str] = ""         # "Segment"
    owner: ClassVar[str] = ""         # the company: "Twilio"
    category: ClassVar[str] = "analytics"  # analytics, error-reporting, observability, product-telemetry
    hosts: ClassVar[tuple[str, ...]] = ()  # the SDKs' default hosts (wildcards allowed)
    endpoints: ClassVar[tuple[Endpoint, ...]] = ()
    # Where the collector's own credentials are: JSON paths in the decoded payload (`[]` any
    # index, `*` any key), query parameters and headers. Labelled as credentials, never PII.
    credential_paths: ClassVar[tuple[str, ...]] = ()
    credential_params: ClassVar[tuple[str, ...]] = ()
    credential_headers: ClassVar[tuple[str, ...]] = ("authorization",)
    # The collector's envelope: fields every request of it carries, whichever app sends it
    # (a vendor policy on the collector declares only its own fields).
    envelope_fields: ClassVar[tuple[str, ...]] = ()

    # --- where it listens
    def serves(self, host: str) -> bool:
        """Whether `host` (normalised) is one of the collector's own hosts."""
        return any(fnmatch.fnmatchcase(host, pattern) for pattern in self.hosts)

    def endpoint(self, method: str, path: str) -> bool:
        """Whether method and path (normalised) are one of the collector's endpoints."""
        return any(e.matches(method, path) for e in self.endpoints)

    # --- what it carries
    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """The decoded payload. Default: the body, by the generic decoder."""
        return pipeline.decode_at(obs, "body")

    def recognises(self, value: Any) -> bool:
        """Whether a decoded payload has this collector's shape (to recognise it on any host)."""
        return False

    def items(self, value: Any, obs: Observation) -> list[Item]:
        """The items of a decoded payload (empty when it has none this profile knows)."""
        return []

    # --- what to answer
    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """A success answer its SDKs accept without retrying."""
        return json_answer(b'{"success":true}')


def json_answer(body: bytes, status: int = 200) -> LocalAnswer:
    return LocalAnswer(status, (("Content-Type", "application/json"), *SINKHOLE_HEADERS), body)


# --------------------------------------------------------------------------- helpers for profiles

def text(value: Any) -> str | None:
    """A string field, or None."""
    return value if isinstance(value, str) and value else None


def ids_of(record: dict[str, Any], mapping: dict[str, str]) -> dict[str, str]:
    """{role: value} for each `role: key` in `mapping` whose key holds a scalar (dotted keys
    reach into objects)."""
    out: dict[str, str] = {}
    for role, key in mapping.items():
        value: Any = record
        for part in key.split("."):
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
            out.setdefault(role, str(value))
    return out


def records(value: Any, *keys: str) -> list[tuple[str, dict[str, Any]]]:
    """(path, record) of the objects of a payload: the list under the first of `keys` present,
    a top-level list, or the payload itself."""
    if isinstance(value, dict):
        for key in keys:
            inner = value.get(key)
            if isinstance(inner, list):
                return [(f"{key}[{i}]", r) for i, r in enumerate(inner) if isinstance(r, dict)]
        return [("", value)]
    if isinstance(value, list):
        return [(f"[{i}]", r) for i, r in enumerate(value) if isinstance(r, dict)]
    return []
