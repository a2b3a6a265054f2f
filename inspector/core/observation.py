"""What was seen on the wire, independent of where it was seen (live flow, HAR, .mitm, file)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from operator import attrgetter
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True, slots=True)
class Observation:
    """One HTTP request or one WebSocket message, as plain data."""

    method: str
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    transport: str = "http"  # "http" or "websocket"
    timestamp: float = field(default_factory=time.time)
    # For WebSocket messages: the direction ("client" sent it or "server" did) and its index.
    ws_from_client: bool = True
    ws_index: int | None = None
    response_status: int | None = None
    response_headers: tuple[tuple[str, str], ...] = ()
    # The response's first bytes (a preview, at most event.RESPONSE_PREVIEW), its size, and
    # whether the inspector gave it (a blocked or sinkholed request's local answer).
    response_body: bytes = b""
    response_size: int | None = None
    response_local: bool = False
    session: str = "default"
    source: str = ""  # where it came from, e.g. "capture.har#12"
    # True when the capture tool already removed the Content-Encoding (HAR text bodies).
    content_decoded: bool = False
    # Live flows: every name of the destination, raw ((role, name): "destination" — where the
    # proxy connects —, "sni", "host"), for the rules and the host-mismatch finding.
    names: tuple[tuple[str, str], ...] = ()

    @property
    def host(self) -> str:
        try:
            return (urlsplit(self.url).hostname or "").lower()
        except ValueError:  # a captured URL such as https://a[/b]x/p names no host
            return ""

    @property
    def path(self) -> str:
        try:
            return urlsplit(self.url).path or "/"
        except ValueError:
            return "/"

    @property
    def raw_query(self) -> str:
        try:
            return urlsplit(self.url).query
        except ValueError:
            return ""

    def header(self, name: str) -> str | None:
        """First value of a request header, case-insensitively."""
        lname = name.lower()
        for key, value in self.headers:
            if key.lower() == lname:
                return value
        return None

    def header_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.headers if key.lower() == lname]

    def response_header_values(self, name: str) -> list[str]:
        lname = name.lower()
        return [value for key, value in self.response_headers if key.lower() == lname]

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled for the audit process, one per request: the fields as one tuple (read in C)
        # instead of dataclasses' state functions, which list the fields again for each one.
        return (Observation, _field_values(self))


_field_values = attrgetter(*(f.name for f in fields(Observation)))


# A response as the proxy holds it: (status, header fields as bytes, the body's first bytes, its
# size, whether the inspector gave it). The hooks take it as it is; `response_fields` decodes it.
RawResponse = tuple[int, tuple[tuple[bytes, bytes], ...], bytes, int, bool]


def response_fields(raw: RawResponse | None) -> dict[str, Any]:
    """The Observation fields of a raw response (none for no response)."""
    if raw is None:
        return {}
    status, headers, preview, size, local = raw
    return {"response_status": status, "response_body": preview, "response_size": size, "response_local": local,
            "response_headers": tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)}
