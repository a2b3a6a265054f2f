"""Homebrew: `brew`'s analytics, InfluxDB line protocol written to InfluxDB Cloud.

Homebrew is Ruby and on neither PyPI nor npm, so its source could not be read here: the format
is the documented one (Homebrew's analytics documentation and InfluxDB's v2 write API). `brew`
runs `curl --max-time 3 --header "Authorization: Token <Homebrew's write token>" --header
"Content-Type: text/plain; charset=utf-8" --header "Accept: application/json" --data-binary
"<measurement>,<tags> <fields> <unix seconds>"` against
`https://eu-central-1-1.aws.cloud2.influxdata.com/api/v2/write?bucket=analytics&precision=s`
in the background and never reads the answer. One point per line; measurements such as
`command_run`, `install`, `cask_install`, `build_error`; tags (`os`, `arch`, `ci`, `developer`,
`default_prefix`, `command`, …) and fields (`package`, `options`, `on_request`, …). Opt-out:
`HOMEBREW_NO_ANALYTICS=1`, `brew analytics off`.

The line protocol parser is InfluxDB's grammar, bounded: `measurement[,k=v…] f=v[,f=v…] [time]`;
`\\,` and `\\ ` escaped in measurements, `\\,` `\\=` `\\ ` in tag keys, tag values and field keys,
`\\"` and `\\\\` in string field values; integers `12i`, unsigned `12u`, floats, booleans
(`t`, `true`, `F`, …); `#` comments. Checked against the serialiser of `influxdb-client`
(PyPI 1.50.0, `influxdb_client/client/write/point.py`). A line that does not parse is kept as
text (`{"unparsed": …}`, a decode-error issue) so what it carries is still audited.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import SINKHOLE_HEADERS, Collector, Endpoint, Item
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer
from inspector.core.observation import Observation

if TYPE_CHECKING:
    from inspector.core.pipeline import Pipeline

MAX_LINES = 10_000
MAX_ISSUES = 20  # decode-error issues kept per request (one per bad line would flood the event)
MEASUREMENTS = {"install", "install_on_request", "formula_install", "formula_install_on_request", "cask_install",
                "build_error", "command_run", "brew_command_run", "command_run_options", "test_bot_test"}
# tags or fields only brew's points carry (a point names the command or package and the prefix)
_MARKS = {"default_prefix", "developer", "devcmdrun", "os_name_and_version", "package", "command", "tap_name"}
_MEASUREMENT_ESCAPES = ",  "
_KEY_ESCAPES = ", ="
_TRUE = {"t", "T", "true", "True", "TRUE"}
_FALSE = {"f", "F", "false", "False", "FALSE"}


class LineError(ValueError):
    """A line that is not line protocol."""


@register
class Homebrew(Collector):
    name = "homebrew"
    title = "Homebrew"
    owner = "Homebrew"
    category = "product-telemetry"
    hosts = ("eu-central-1-1.aws.cloud2.influxdata.com",)
    endpoints = (Endpoint(("/api/v2/write",)),)
    envelope_fields = ("[].timestamp", "[].measurement")

    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """The body (Content-Encoding undone by the generic decoder), one point per line."""
        coding = None if obs.content_decoded else obs.header("content-encoding")
        decoded = pipeline.decoder.decode(obs.body, "body", content_encoding=coding)
        if not isinstance(decoded.value, str) or decoded.structured:
            if decoded.value is not None and decoded.value != "":
                decoded.issues.append(Issue("decode-error", "an InfluxDB write is line protocol; this body is not"))
            return decoded
        points, issues = parse_lines(decoded.value)
        decoded.value = points
        decoded.structured = True
        decoded.issues.extend(issues)
        decoded.layers.append(Layer("line-protocol", {"points": len(points)}))
        return decoded

    def recognises(self, value: Any) -> bool:
        return (isinstance(value, list) and bool(value)
                and all(isinstance(p, dict) and p.get("measurement") in MEASUREMENTS
                        and isinstance(p.get("tags"), dict) and isinstance(p.get("fields"), dict)
                        and bool(_MARKS & (set(p["tags"]) | set(p["fields"]))) for p in value[:100]))

    def items(self, value: Any, obs: Observation) -> list[Item]:
        if not isinstance(value, list):
            return []
        out = []
        for index, point in enumerate(value[:MAX_LINES]):
            if not isinstance(point, dict) or not isinstance(point.get("measurement"), str):
                continue
            given_tags, given_fields = point.get("tags"), point.get("fields")
            tags: dict[str, Any] = given_tags if isinstance(given_tags, dict) else {}
            fields: dict[str, Any] = given_fields if isinstance(given_fields, dict) else {}
            context = {"timestamp": point["timestamp"]} if point.get("timestamp") is not None else None
            out.append(Item("event", point["measurement"] or None, f"[{index}]", {}, {**tags, **fields} or None,
                            context))
        return out

    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """204 No Content, as InfluxDB answers a write (curl's answer is never read)."""
        return LocalAnswer(204, SINKHOLE_HEADERS, b"")


# --------------------------------------------------------------------------- line protocol

def parse_lines(body: str) -> tuple[list[dict[str, Any]], list[Issue]]:
    """Every point of a line-protocol body, at most MAX_LINES; bad lines kept as text."""
    points: list[dict[str, Any]] = []
    issues: list[Issue] = []
    bad = 0
    for number, raw in enumerate(body.split("\n"), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if len(points) >= MAX_LINES:
            issues.append(Issue("decode-error", f"more than {MAX_LINES} points; the rest were not read"))
            break
        try:
            points.append(parse_line(line))
        except LineError as exc:
            points.append({"unparsed": line})
            bad += 1
            if bad <= MAX_ISSUES:
                issues.append(Issue("decode-error", f"line {number} is not line protocol: {exc}",
                                    f"[{len(points) - 1}]"))
    if bad > MAX_ISSUES:
        issues.append(Issue("decode-error", f"{bad} lines in all are not line protocol"))
    return points, issues


def parse_line(line: str) -> dict[str, Any]:
    """One point: {measurement, tags, fields, timestamp}."""
    measurement, i = _token(line, 0, ", ", _MEASUREMENT_ESCAPES)
    if not measurement:
        raise LineError("no measurement")
    tags: dict[str, str] = {}
    while i < len(line) and line[i] == ",":
        key, i = _token(line, i + 1, "=, ", _KEY_ESCAPES)
        if i >= len(line) or line[i] != "=" or not key:
            raise LineError(f"tag {key!r} has no value")
        tags[key], i = _token(line, i + 1, ", ", _KEY_ESCAPES)
    if i >= len(line) or line[i] != " ":
        raise LineError("no field set")
    while i < len(line) and line[i] == " ":
        i += 1
    fields: dict[str, Any] = {}
    while True:
        key, i = _token(line, i, "=, ", _KEY_ESCAPES)
        if i >= len(line) or line[i] != "=" or not key:
            raise LineError(f"field {key!r} has no value")
        i += 1
        if i < len(line) and line[i] == '"':
            fields[key], i = _string(line, i + 1)
        else:
            raw, i = _token(line, i, ", ", "")
            fields[key] = _scalar(raw)
        if i < len(line) and line[i] == ",":
            i += 1
            continue
        break
    rest = line[i:].strip()
    timestamp: int | None = None
    if rest:
        if not (rest.isascii() and rest.lstrip("-").isdigit() and len(rest) <= 20):
            raise LineError(f"bad timestamp {rest[:40]!r}")
        timestamp = int(rest)
    return {"measurement": measurement, "tags": tags, "fields": fields, "timestamp": timestamp}


def _token(line: str, i: int, stops: str, escapes: str) -> tuple[str, int]:
    """Characters from `i` up to an unescaped stop; `\\x` is x for x in `escapes`."""
    out: list[str] = []
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in escapes:
            out.append(line[i + 1])
            i += 2
            continue
        if ch in stops:
            break
        out.append(ch)
        i += 1
    return "".join(out), i


def _string(line: str, i: int) -> tuple[str, int]:
    """A string field value after its opening quote: up to the closing one."""
    out: list[str] = []
    n = len(line)
    while i < n:
        ch = line[i]
        if ch == "\\" and i + 1 < n and line[i + 1] in '"\\':
            out.append(line[i + 1])
            i += 2
            continue
        if ch == '"':
            return "".join(out), i + 1
        out.append(ch)
        i += 1
    raise LineError("unterminated string field")


def _scalar(raw: str) -> Any:
    if not raw:
        raise LineError("empty field value")
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    body = raw[:-1] if raw[-1] in "iu" else None
    if body is not None and body.isascii() and body.lstrip("-").isdigit() and len(body) <= 20:
        return int(body)
    try:
        value = float(raw)
    except ValueError:
        raise LineError(f"bad field value {raw[:40]!r}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise LineError(f"bad field value {raw[:40]!r}")  # no NaN/Infinity in JSON
    return value
