"""HAR 1.2 → Observations (one per request, one per client-sent WebSocket message).

A HAR file is written by a browser from what a page sent: any value in it may be hostile.
Numbers Python cannot hold and lone surrogates do not stop the read (core.decode.load_json);
an entry that cannot be audited (no request object, a URL that does not parse) is reported to
the caller's problem sink with the file and the entry's index, and the other entries are read.

The file is read as a stream, one entry at a time (`_entries`): memory holds a block of the
file and the entry being read, whatever the number of entries. Each entry is parsed by the
json module's own scanner (`load_json_at`), so a value reads exactly as a whole-file
`json.loads` read it. (ijson's C backend was measured too: it crashes the interpreter on an
integer of more than 4,300 digits, a value a hostile HAR may hold; see docs/performance.md.)
"""

from __future__ import annotations

import base64
import binascii
import codecs
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from inspector.core.decode import load_json_at
from inspector.core.files import open_regular
from inspector.core.observation import Observation

MAX_VALUE = 1024 * 1024 * 1024  # characters: one entry (or other value) longer than this is refused
BLOCK = 1 << 20  # bytes read at a time
_WS = " \t\n\r"


class HarError(ValueError):
    pass


def _timestamp(text: Any) -> float:
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        try:
            value = float(text)
        except OverflowError:  # an integer too large for a float
            return 0.0
        return value if math.isfinite(value) else 0.0
    if isinstance(text, str):
        try:
            return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
        except (ValueError, OverflowError, OSError):
            pass
    return 0.0


def _headers(items: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(items, list):
        return ()
    return tuple((str(h.get("name", "")), str(h.get("value", ""))) for h in items if isinstance(h, dict))


def _body(post: Any) -> bytes:
    if not isinstance(post, dict):
        return b""
    text = post.get("text")
    if not isinstance(text, str):
        return b""
    if post.get("encoding") == "base64":
        try:
            return base64.b64decode(text, validate=False)
        except (binascii.Error, ValueError):
            return text.encode("utf-8", "surrogateescape")
    return text.encode("utf-8", "surrogateescape")


def _url_problem(url: str) -> str:
    """Why `url` cannot be audited (urllib cannot split it, or its host or port), else ""."""
    try:
        parts = urlsplit(url)
        parts.hostname  # noqa: B018 - each raises ValueError for a malformed authority
        parts.port  # noqa: B018
    except ValueError as exc:
        return f"URL does not parse ({str(exc)[:80]})"
    return ""


def _status(value: Any) -> int | None:
    # an HTTP status has three digits; anything else (a 5,000-digit integer…) is no status
    return value if isinstance(value, int) and not isinstance(value, bool) and 100 <= value <= 999 else None


class _Stream:
    """The decoded text of a file, a window at a time: `text[pos:]` is what is not yet read."""

    def __init__(self, path: Path, handle: Any) -> None:
        self.path = path
        self.handle = handle
        head = handle.read(4)
        # (json.loads' own choice of encoding: UTF-8 with or without a BOM, UTF-16, UTF-32)
        self.decoder = codecs.getincrementaldecoder(json.detect_encoding(head))()
        self.text = ""
        self.pos = 0
        self.dropped = 0  # characters of the file before `text`
        self.eof = False
        self._feed(head)

    def _feed(self, data: bytes) -> None:
        try:
            self.text += self.decoder.decode(data, final=not data)
        except UnicodeDecodeError as exc:
            raise HarError(f"{self.path}: not valid JSON ({str(exc)[:80]})") from None

    def more(self, size: int = BLOCK) -> bool:
        """Read `size` bytes more; False at the end of the file."""
        if self.eof:
            return False
        if self.pos > BLOCK:  # what was read is dropped: memory holds a block and the current value
            self.dropped += self.pos
            self.text = self.text[self.pos:]
            self.pos = 0
        data = self.handle.read(size)
        self.eof = not data
        self._feed(data)
        return True

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), left unread."""
        while True:
            text, pos = self.text, self.pos
            while pos < len(text) and text[pos] in _WS:
                pos += 1
            self.pos = pos
            if pos < len(text):
                return text[pos]
            if not self.more():
                return ""

    def expect(self, chars: str) -> str:
        """Read one of `chars` (after white space); HarError otherwise."""
        char = self.peek()
        if not char or char not in chars:
            found = f"{char!r}" if char else "the end of the file"
            raise HarError(f"{self.path}: not valid JSON (expecting {' or '.join(map(repr, chars))}, "
                           f"found {found} at character {self.dropped + self.pos})")
        self.pos += 1
        return char

    def value(self, what: str) -> Any:
        """The JSON value that starts here, read whole (a window grown until it holds it)."""
        self.peek()
        while True:
            start = self.pos
            try:
                value, end, _issues = load_json_at(self.text, start)
            except RecursionError:
                raise HarError(f"{self.path}: not valid JSON ({what} nested too deeply)") from None
            except json.JSONDecodeError as exc:
                # Cut off by the window's end (an unterminated string reports where it starts),
                # or an error in the text itself: only the end of the file tells them apart.
                near_end = exc.pos >= len(self.text) - 16 or exc.msg.startswith("Unterminated string")
                if not near_end or not self._grow(start, what):
                    raise HarError(f"{self.path}: not valid JSON ({exc.msg} at character "
                                   f"{self.dropped + exc.pos})") from None
                continue
            except ValueError as exc:
                raise HarError(f"{self.path}: not valid JSON ({str(exc)[:80]})") from None
            if end >= len(self.text) and self._grow(start, what):
                continue  # a number may go on in the next block
            self.pos = end
            return value

    def _grow(self, start: int, what: str) -> bool:
        """Read more for the value at `start` (as much again as it has: a long value is parsed
        a few times, not once per block); False at the end of the file."""
        have = len(self.text) - start
        if have > MAX_VALUE:
            raise HarError(f"{self.path}: {what} is longer than {MAX_VALUE} characters; not read")
        return self.more(max(BLOCK, have))

    def end(self) -> None:
        """Nothing but white space is left; HarError otherwise."""
        if self.peek():
            raise HarError(f"{self.path}: not valid JSON (text after the document at character "
                           f"{self.dropped + self.pos})")


def _entries(path: Path) -> Iterator[Any]:
    """The values of `log.entries`, one at a time; HarError for a file that is no HAR.

    Any other member (`pages`, `creator`, …) is read and dropped. Every `entries` array of every
    `log` object is read, in file order (json.loads kept only the last of duplicate names)."""
    with open_regular(path) as handle:
        stream = _Stream(path, handle)
        found = False
        if stream.peek() != "{":
            stream.value("the document")  # JSON, but not an object: no HAR
            stream.end()
            raise HarError(f"{path}: not a HAR file (no log.entries)")
        for key in _members(stream, "the document"):
            if key != "log" or stream.peek() != "{":
                stream.value(f"member {key[:40]!r}")
                continue
            for name in _members(stream, "log"):
                if name != "entries" or stream.peek() != "[":
                    stream.value(f"log member {name[:40]!r}")
                    continue
                found = True
                stream.expect("[")
                if stream.peek() == "]":
                    stream.pos += 1
                    continue
                index = 0
                while True:
                    yield stream.value(f"entry #{index}")
                    index += 1
                    if stream.expect(",]") == "]":
                        break
        stream.end()
        if not found:
            raise HarError(f"{path}: not a HAR file (no log.entries)")


def _members(stream: _Stream, what: str) -> Iterator[str]:
    """The member names of the object that starts here, each followed by its unread value."""
    stream.expect("{")
    if stream.peek() == "}":
        stream.pos += 1
        return
    while True:
        if stream.peek() != '"':
            stream.expect('"')
        key = stream.value(f"a member name of {what}")
        stream.expect(":")
        yield key
        if stream.expect(",}") == "}":
            return


def read_har(path: Path, session: str, on_problem: Callable[[str], None] | None = None) -> Iterator[Observation]:
    """The requests and client WebSocket messages of a HAR file, read as a stream; `on_problem`
    hears of each entry skipped (default: skipped silently)."""
    for index, entry in enumerate(_entries(path)):
        if not isinstance(entry, dict) or not isinstance(entry.get("request"), dict):
            if on_problem is not None:
                on_problem(f"{path.name}#{index}: not a HAR entry (no request object); skipped")
            continue
        request = entry["request"]
        given = entry.get("response")
        response: dict[str, Any] = given if isinstance(given, dict) else {}
        url = str(request.get("url", ""))
        problem = _url_problem(url)
        if problem:
            if on_problem is not None:
                on_problem(f"{path.name}#{index}: {problem}; entry skipped")
            continue
        headers = _headers(request.get("headers"))
        started = _timestamp(entry.get("startedDateTime"))
        messages = entry.get("_webSocketMessages")
        if isinstance(messages, list):
            ws_url = url.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
            for i, message in enumerate(messages):
                if not isinstance(message, dict) or message.get("type") != "send":
                    continue  # server-to-client messages are not telemetry
                data_field = message.get("data", "")
                body = data_field.encode("utf-8", "surrogateescape") if isinstance(data_field, str) else b""
                if message.get("opcode") == 2 and isinstance(data_field, str):
                    try:
                        body = base64.b64decode(data_field)
                    except (binascii.Error, ValueError):
                        pass
                yield Observation(
                    method="WS", url=ws_url, headers=headers, body=body, transport="websocket",
                    timestamp=_timestamp(message.get("time")) or started, ws_index=i,
                    session=session, source=f"{path.name}#{index}.{i}")
            continue
        yield Observation(
            method=str(request.get("method", "GET")).upper(), url=url, headers=headers,
            body=_body(request.get("postData")), timestamp=started,
            response_status=_status(response.get("status")),
            response_headers=_headers(response.get("headers")),
            session=session, source=f"{path.name}#{index}", content_decoded=True)
