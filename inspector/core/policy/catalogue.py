"""The catalogue: the loaded policies, and which of them may describe a request."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspector.core.destination import normalize_host, normalize_path
from inspector.core.observation import Observation
from inspector.core.policy.loader import PolicyError, builtin_policy_texts, load_policy_documents, parse_policy_text
from inspector.core.policy.model import Policy
from inspector.core.policy.paths import host_matches


@dataclass(slots=True)
class Catalogue:
    """The loaded policies, and the problems of the files that did not load."""

    policies: list[Policy] = field(default_factory=list)
    problems: list[PolicyError] = field(default_factory=list)
    # host → the policies whose host patterns match it (the proxy asks for every request)
    _host_memo: dict[str, tuple[Policy, ...]] = field(default_factory=dict, repr=False, compare=False)
    _memo_key: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)
    _request_memo: dict[tuple[str, str, str, str], tuple[Policy, ...]] = field(default_factory=dict, repr=False,
                                                                             compare=False)

    @classmethod
    def load(cls, builtin: bool = True, paths: Iterable[Path] = (), strict: bool = False) -> Catalogue:
        """Built-in policies plus files/directories; a broken file is reported, the rest load."""
        catalogue = cls()
        if builtin:
            for name, text in builtin_policy_texts():
                catalogue._add_text(text, f"builtin:{name}", builtin=True)
        for given in paths:
            path = Path(given)
            try:
                # (a FIFO or device among them is refused by load_policy_documents, without blocking)
                files = sorted(p for p in path.iterdir() if p.suffix in (".yaml", ".yml")) if path.is_dir() else [path]
            except OSError as exc:
                catalogue.problems.append(PolicyError(str(path), [(None, f"cannot list: {exc.strerror or exc}")]))
                continue
            if path.is_dir() and not files and strict:
                catalogue.problems.append(PolicyError(str(path), [(None, "no .yaml policy files in this directory")]))
            for file in files:
                try:  # a file may hold several policies, one per YAML document
                    found, errors = load_policy_documents(file)
                except PolicyError as exc:
                    catalogue.problems.append(exc)
                    continue
                for policy in found:
                    catalogue.add(policy)
                catalogue.problems.extend(errors)
        return catalogue

    def _add_text(self, text: str, origin: str, builtin: bool) -> None:
        try:
            self.add(parse_policy_text(text, origin, builtin=builtin))
        except PolicyError as exc:
            self.problems.append(exc)

    def add(self, policy: Policy) -> None:
        # A user's policy with a built-in's id replaces the built-in.
        self.policies = [p for p in self.policies if p.id != policy.id]
        self.policies.append(policy)

    def get(self, policy_id: str) -> Policy | None:
        for policy in self.policies:
            if policy.id == policy_id:
                return policy
        return None

    def candidates(self, obs: Observation) -> list[Policy]:
        """Policies matching host, method, path and transport (before decoding)."""
        return self.candidates_at(obs, obs.host, obs.path)

    def candidates_at(self, obs: Observation, host: str, path: str) -> list[Policy]:
        """The candidates for `obs` sent to `host` (any spelling of it) at `path` (raw)."""
        for_host = self._for_host(host)
        if not for_host:
            return []
        key = (host, path, obs.method, obs.transport)  # (_for_host emptied the memo if the policies changed)
        found = self._request_memo.get(key)
        if found is None:
            name, clean = normalize_host(host) or host, normalize_path(path)
            found = tuple(sorted((p for p in for_host if p.matches_request(obs, name, clean)),
                                 key=lambda p: (-p.priority, -len(p.shape))))
            if len(self._request_memo) >= 4096:  # bounded: a request's path may hold ids
                self._request_memo.clear()
            self._request_memo[key] = found
        return list(found)

    def select(self, candidates: list[Policy], value: Any) -> Policy | None:
        for policy in candidates:
            if not policy.shape or policy.matches_shape(value):
                return policy
        return None

    def is_telemetry_host(self, host: str) -> bool:
        return bool(self._for_host(host))

    def policies_for_host(self, host: str) -> tuple[Policy, ...]:
        """The policies naming `host` (any spelling of it), whatever the path."""
        return self._for_host(host)

    def _for_host(self, host: str) -> tuple[Policy, ...]:
        key = (id(self.policies), len(self.policies))
        if self._memo_key != key:  # the policies changed (add() makes a new list)
            self._host_memo, self._request_memo, self._memo_key = {}, {}, key
        hit = self._host_memo.get(host)
        if hit is None:
            name = normalize_host(host)  # None: not a name anything connects to
            hit = tuple(p for p in self.policies if any(host_matches(pattern, name) for pattern in p.hosts)) \
                if name else ()
            if len(self._host_memo) < 4096:  # bounded: hosts seen, not requests
                self._host_memo[host] = hit
        return hit

    def vendors(self) -> list[str]:
        return sorted({p.vendor for p in self.policies})
