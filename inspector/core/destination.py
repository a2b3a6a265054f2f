"""Host names and paths in the one form rules and policies are matched on.

A client chooses how it spells a destination: `Telemetry.Refine.Dev.`, `telemetry.refine.dev:443`,
`[::1]`, `bücher.de` or its punycode, `/%73end`, `//send`, `/send/.`. Each spelling reaches the
same server, so every one of them must meet the same rule. Events keep the raw form; only
matching uses these.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket

# What may stand in a host name once normalised (letters, digits, hyphen, underscore, dots);
# anything else (spaces, `[v]x`, `@`, `/`) is not a name a client could connect to.
_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
_NUMERIC = re.compile(r"[0-9a-fx.]+")  # inet_aton accepts 0x7f.1, 2130706433, 127.1
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_SLASHES = re.compile(r"/{2,}")
MAX_HOST = 1024


# Memoised: the proxy asks for every name of every request (a few per request, on its event
# loop), and a connection's names repeat. Bounded: a client inventing names only evicts.
@functools.lru_cache(maxsize=4096)
def normalize_host(raw: str | None) -> str | None:
    """Lower case, no port, no brackets, no trailing dots, IDNA as punycode, IPs canonical.

    None when `raw` cannot name a host (empty, malformed, too long)."""
    if not raw:
        return None
    host = raw.strip()
    if len(host) > MAX_HOST:
        return None
    if host.startswith("["):  # [v6] or [v6]:port
        end = host.find("]")
        if end < 0 or (host[end + 1:] and not _is_port(host[end + 1:])):
            return None
        return _ip(host[1:end])
    if host.count(":") == 1:  # name:port (more than one colon: a bare IPv6 address)
        host, _, port = host.partition(":")
        if not _is_port(":" + port):
            return None
    elif host.count(":") > 1:
        return _ip(host)
    host = host.rstrip(".")
    if not host or ".." in host:
        return None
    if not host.isascii():
        try:  # IDNA 2003, as the resolver would encode it (ideographic full stops included)
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return None
        host = host.rstrip(".")
    host = host.lower()
    if _NUMERIC.fullmatch(host) and any(c.isdigit() for c in host):
        try:
            return socket.inet_ntoa(socket.inet_aton(host))
        except OSError:
            pass
    if not _NAME.fullmatch(host):
        return None
    return host


def _is_port(text: str) -> bool:
    return text in ("", ":") or (text.startswith(":") and text[1:].isdigit() and len(text) <= 6)


def _ip(text: str) -> str | None:
    text = text.split("%", 1)[0]  # a zone id does not change the address matched on
    try:
        return ipaddress.ip_address(text).compressed
    except ValueError:
        return None


def normalize_path(raw: str) -> str:
    """The path as a server resolves it: unreserved characters decoded, repeated slashes
    folded, dot segments removed (RFC 3986, 5.2.4). The query is not part of it."""
    path = raw.split("?", 1)[0].split("#", 1)[0]
    if "%" in path:
        path = _PERCENT.sub(_unreserved, path)
    if "//" in path:
        path = _SLASHES.sub("/", path)
    if "." in path and ("/." in path or path.startswith(".")):
        path = _remove_dot_segments(path)
    if not path.startswith("/"):
        path = "/" + path
    return path


def _unreserved(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def _remove_dot_segments(path: str) -> str:
    output: list[str] = []
    segments = path.split("/")
    for i, segment in enumerate(segments):
        last = i == len(segments) - 1
        if segment == ".":
            if last:
                output.append("")
        elif segment == "..":
            if len(output) > 1:
                output.pop()
            if last:
                output.append("")
        else:
            output.append(segment)
    result = "/".join(output)
    return result if result.startswith("/") else "/" + result
