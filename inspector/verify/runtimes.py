"""Runtimes known to ignore proxy variables: warned about before the command runs."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

NODE_COMMANDS = frozenset({"node", "nodejs", "npm", "npx", "pnpm", "pnpx", "yarn", "corepack", "tsx", "ts-node"})
JVM_COMMANDS = frozenset({"java", "gradle", "gradlew", "mvn", "mvnw", "sbt", "kotlin"})
_VERSION = re.compile(r"v?(\d+)\.(\d+)\.(\d+)")


def node_honours_proxy(version: tuple[int, int, int]) -> bool:
    """NODE_USE_ENV_PROXY (fetch() through HTTP(S)_PROXY) exists from Node 24.0 and 22.21."""
    major, minor, _patch = version
    return major >= 24 or (major == 22 and minor >= 21)


def node_version(env: dict[str, str]) -> tuple[int, int, int] | None:
    node = shutil.which("node", path=env.get("PATH"))
    if node is None:
        return None
    try:
        done = subprocess.run([node, "--version"], capture_output=True, text=True, timeout=10, env=env, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    match = _VERSION.match(done.stdout.strip())
    return (int(match[1]), int(match[2]), int(match[3])) if match else None


def _interpreter(command: list[str], env: dict[str, str]) -> str:
    """The program's name, or the interpreter its #! line names (a script run directly)."""
    name = Path(command[0]).name
    path = shutil.which(command[0], path=env.get("PATH"))
    if path:
        try:
            with open(path, "rb") as handle:
                first = handle.read(128)
        except OSError:
            return name
        if first.startswith(b"#!"):
            words = first[2:].split(b"\n", 1)[0].decode("latin-1").split()
            if words:
                name = Path(words[-1] if Path(words[0]).name == "env" and len(words) > 1 else words[0]).name
    return name


def warnings(command: list[str], env: dict[str, str], isolated: bool) -> list[str]:
    """One line per runtime in `command` that ignores HTTP(S)_PROXY, and what that means here."""
    name = _interpreter(command, env)
    consequence = ("the namespace intercepts it anyway" if isolated else
                   "its connections go around the proxy; they are detected and reported (bypass), "
                   "not intercepted")
    out = []
    if name in NODE_COMMANDS or name == "node":
        version = node_version(env)
        if version is not None and not node_honours_proxy(version):
            out.append(f"Node v{'.'.join(map(str, version))}: its built-in fetch() ignores HTTP(S)_PROXY "
                       f"(NODE_USE_ENV_PROXY, set here, needs Node 22.21 or 24); {consequence}")
    elif name in JVM_COMMANDS:
        out.append(f"{name}: the JVM ignores HTTP(S)_PROXY (it wants -Dhttps.proxyHost/-Dhttps.proxyPort); "
                   f"{consequence}")
    return out
