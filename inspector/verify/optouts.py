"""Every known telemetry opt-out, as environment variables for `exec --opt-out`.

Three sources: ``DO_NOT_TRACK=1`` (the cross-vendor convention, read e.g. by @nuxt/telemetry),
the opt-outs the loaded policies declare (``opt_out: [{kind: env, name, value}]``), and the
catalogue shipped in data/opt-outs.tsv (see its header for origin, licence and the status of
each row). Rows marked ``excluded`` are never set: they change more than telemetry (``CI``,
update checks), have generic names other programs may read differently, or no opt-out value.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from typing import Any

DO_NOT_TRACK = ("DO_NOT_TRACK", "1")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class OptOut:
    """One variable to set, and whose it is."""

    variable: str
    value: str
    tool: str        # the tool or policy it is for ("" for DO_NOT_TRACK)
    source: str      # "convention", "policy ID" or "catalogue"
    status: str      # "confirmed: …", "unconfirmed", "declared by the policy"

    def to_dict(self) -> dict[str, str]:
        return {"variable": self.variable, "value": self.value, "tool": self.tool, "source": self.source,
                "status": self.status}


@dataclass(frozen=True)
class CatalogueRow:
    tool_id: str
    tool: str
    channel: str
    variable: str
    value: str
    status: str
    url: str

    @property
    def excluded(self) -> bool:
        return self.status.startswith("excluded")


def catalogue_rows(text: str | None = None) -> list[CatalogueRow]:
    """The shipped catalogue (or `text` in its format); malformed rows are skipped."""
    if text is None:
        text = resources.files("inspector.verify").joinpath("data/opt-outs.tsv").read_text("utf-8")
    rows = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        parts = line.split("\t")
        if len(parts) < 6 or not _NAME.match(parts[3]):
            continue
        rows.append(CatalogueRow(parts[0], parts[1], parts[2], parts[3], parts[4], parts[5],
                                 parts[6] if len(parts) > 6 else ""))
    return rows


def policy_opt_outs(policies: Iterable[Any]) -> list[OptOut]:
    """The environment opt-outs the policies declare."""
    found = []
    for policy in policies:
        for entry in getattr(policy, "opt_out", ()) or ():
            if not isinstance(entry, dict) or entry.get("kind") != "env":
                continue
            name, value = str(entry.get("name", "")), entry.get("value")
            if _NAME.match(name) and value is not None:
                found.append(OptOut(name, str(value), policy.id, f"policy {policy.id}", "declared by the policy"))
    return found


def all_opt_outs(policies: Iterable[Any]) -> list[OptOut]:
    """DO_NOT_TRACK, the policies' opt-outs, then the catalogue's (not excluded)."""
    out = [OptOut(*DO_NOT_TRACK, "", "convention", "confirmed: read by @nuxt/telemetry 2.9.1 and others")]
    out += policy_opt_outs(policies)
    out += [OptOut(r.variable, r.value, r.tool, "catalogue", r.status) for r in catalogue_rows() if not r.excluded]
    return out


def environment(opt_outs: Iterable[OptOut]) -> dict[str, str]:
    """The variables to set; the first source of a variable wins (policy before catalogue)."""
    env: dict[str, str] = {}
    for item in opt_outs:
        env.setdefault(item.variable, item.value)
    return env


def _words(text: str) -> set[str]:
    return {w for w in re.split(r"[^a-z0-9]+", text.lower()) if len(w) > 2}


def for_channel(opt_outs: list[OptOut], policy: Any | None) -> list[OptOut]:
    """The opt-outs set that concern a channel: DO_NOT_TRACK, its policy's own, and the
    catalogue's rows for a tool named like the policy's vendor."""
    chosen = [o for o in opt_outs if o.source == "convention"]
    if policy is None:
        return chosen
    vendor = _words(getattr(policy, "vendor", "") or "")
    for item in opt_outs:
        if item.source == f"policy {policy.id}" or (item.source == "catalogue" and vendor and vendor & _words(item.tool)):
            chosen.append(item)
    unique: dict[str, OptOut] = {}
    for item in chosen:
        unique.setdefault(item.variable, item)
    return list(unique.values())
