"""Paths: dotted value paths (`batch[].userId`), host and request-path patterns, policy regexes (RE2)."""

from __future__ import annotations

import fnmatch
import functools
from collections.abc import Iterable
from typing import Any

import re2


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def resolve(value: Any, path: str) -> Iterable[Any]:
    """All values at a dotted path; `[]` fans out over array items. Yields MISSING if absent."""
    nodes = [value]
    for part in _split_path(path):
        next_nodes: list[Any] = []
        for node in nodes:
            if part == "[]":
                if isinstance(node, list):
                    next_nodes.extend(node)
                else:
                    next_nodes.append(MISSING)
            elif isinstance(node, dict) and part in node:
                next_nodes.append(node[part])
            else:
                next_nodes.append(MISSING)
        nodes = next_nodes
    return nodes


def resolve_with_paths(value: Any, path: str) -> list[tuple[str, Any]]:
    """Like `resolve`, with each value's concrete path (`batch[2].userId`); skips absent ones."""
    nodes: list[tuple[str, Any]] = [("", value)]
    for part in _split_path(path):
        next_nodes: list[tuple[str, Any]] = []
        for where, node in nodes:
            if part == "[]":
                if isinstance(node, list):
                    next_nodes.extend((f"{where}[{i}]", item) for i, item in enumerate(node))
            elif isinstance(node, dict) and part in node:
                next_nodes.append((f"{where}.{part}" if where else part, node[part]))
        nodes = next_nodes
    return nodes


def _split_path(path: str) -> list[str]:
    parts: list[str] = []
    for piece in path.split("."):
        chunk = piece
        if not chunk:
            continue
        while chunk.endswith("[]"):
            chunk = chunk[:-2]
            if chunk:
                parts.append(chunk)
            chunk = ""
            parts.append("[]")
        if chunk:
            parts.append(chunk)
    return parts


def host_matches(pattern: str, host: str) -> bool:
    return fnmatch.fnmatchcase(host.lower(), pattern.lower())


def path_matches(pattern: str, path: str) -> bool:
    """`re:REGEX` (whole path, RE2: linear time) or a glob."""
    if pattern.startswith("re:"):
        compiled = user_regex(pattern[3:])
        return compiled is not None and compiled.fullmatch(path) is not None
    return fnmatch.fnmatchcase(path, pattern) or fnmatch.fnmatchcase(path.rstrip("/"), pattern.rstrip("/"))


# A policy's regular expressions are matched against what a client sends. Python's engine
# backtracks: `(a|aa)+x` takes seconds on a 40-character path. RE2 runs in time linear in the
# text, and refuses what it cannot do so (backreferences, lookaround).
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported as a policy problem, not on stderr


class UnsafeRegex(ValueError):
    """A pattern the linear-time engine (RE2) cannot compile."""


@functools.lru_cache(maxsize=1024)
def _compile_re2(pattern: str) -> tuple[Any, str]:
    """(compiled, "") or (None, why RE2 refuses it); a refusal is cached too."""
    try:
        return re2.compile(pattern, _RE2_OPTIONS), ""
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        return None, reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)


def compile_user_regex(pattern: str) -> Any:
    """A policy author's regex compiled with RE2 (`search`, `fullmatch`, `finditer`, `groupindex`
    like `re`); raises UnsafeRegex for what RE2 cannot run in linear time."""
    compiled, reason = _compile_re2(pattern)
    if compiled is None:
        raise UnsafeRegex(reason)
    return compiled


def user_regex(pattern: str) -> Any | None:
    """`compile_user_regex`, or None for a pattern RE2 refuses (it then matches nothing)."""
    return _compile_re2(pattern)[0]

