"""The field paths of a decoded payload (what a report and the TUI's vendors view list as observed)."""

from __future__ import annotations

from typing import Any


def observed_paths(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every field path of a decoded value (array indexes folded to `[]`) → one example value."""
    out: dict[str, Any] = {}
    stack: list[tuple[Any, str]] = [(value, prefix)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, child in node.items():
                path = f"{where}.{key}" if where else str(key)
                out.setdefault(path, child if not isinstance(child, (dict, list)) else _shape(child))
                stack.append((child, path))
        elif isinstance(node, list):
            for child in node[:50]:
                stack.append((child, f"{where}[]"))
    return out


def _shape(value: Any) -> str:
    return "{…}" if isinstance(value, dict) else f"[{len(value)} items]"
