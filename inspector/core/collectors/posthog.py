"""PostHog: the capture, batch, recording and feature-flag endpoints of its SDKs.

Confirmed against the SDKs' source:

* `posthog` (PyPI 7.91.1), `posthog/request.py`: DEFAULT_HOST `https://us.i.posthog.com`
  (`app.posthog.com`/`us.posthog.com` → us.i, `eu.posthog.com` → `eu.i.posthog.com`); events
  are POSTed as JSON `{batch: […], api_key, sent_at[, historical_migration]}` to `/batch/`
  (AI events to `/i/v0/ai/batch/`), gzipped with `Content-Encoding: gzip` when `gzip=True`;
  any 200 is success and the body is not read; 5xx, 408 and 429 are retried. Flags are POSTed
  to `/flags/?v=4` and the answer parsed as JSON (`flags`, `featureFlags`, `errorsWhileComputingFlags`).
  `posthog/capture_v1.py` (opt-in `capture_mode="v1"`): `/i/v1/analytics/events`, Bearer
  token, `{created_at, batch}`; a 2xx whose `results` has no entry for an event is success.
* `posthog-node` 5.70.0 with `@posthog/core` 1.67.3, `src/posthog-core-stateless.ts`: host
  `https://us.i.posthog.com`, `sendBatch` POSTs `{api_key, batch, sent_at}` to `/batch/`,
  gzipped (`Content-Encoding: gzip`) where CompressionStream exists; a 2xx is success and the
  body is never read (`successful-write`); flags from `/flags/?v=2` read as v1 or v2 responses.
* `posthog-js` 1.449.2, `lib/src/request.js`, `posthog-core.js`, `utils/request-router.js`:
  events to `/e/` (`us.i.posthog.com`, assets on `us-assets.i.posthog.com`), `?compression=gzip-js`
  with a text/plain gzip body and no Content-Encoding (sniffed by its `1f 8b`), or
  `compression=base64` with a form body `data=<Base64 JSON>`, or plain JSON; `_` is the send
  time, `ver` the library version; a 200 is success.
* Older posthog-js sent `compression=lz64` with `data=<lz-string Base64>`; decoded here by a
  bounded lz-string decompressor (checked against npm `lz-string` 1.5.0's compressToBase64).
"""

from __future__ import annotations

import time
from itertools import islice
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, unquote_plus

from inspector.core.actions import LocalAnswer
from inspector.core.collectors.base import (
    SINKHOLE_HEADERS,
    Collector,
    Endpoint,
    Item,
    ids_of,
    json_answer,
    records,
    text,
)
from inspector.core.collectors.registry import register
from inspector.core.decode import Decoded, Issue, Layer, Limits, raw_query_params
from inspector.core.destination import normalize_path
from inspector.core.observation import Observation

if TYPE_CHECKING:  # (the pipeline imports the collectors: no cycle at run time)
    from inspector.core.pipeline import Pipeline

MAX_ITEMS = 10_000  # items kept per request; a longer batch is itemised up to here (an issue says so)

_CAPTURE = ("/e/", "/i/v0/e/", "/capture/", "/track/", "/engage/", "/batch/", "/s/", "/i/v0/ai/batch/",
            "/i/v1/analytics/events")
_FLAGS = ("/decide/", "/flags/")
_LZ = {"lz64", "lz-string", "lzstring"}
# event name → item kind (every other event is a tracked event)
_KINDS = {"$pageview": "page", "$pageleave": "page", "$screen": "screen", "$identify": "identify",
          "$set": "identify", "$create_alias": "alias", "$merge_dangerously": "alias",
          "$groupidentify": "group", "$exception": "exception", "$snapshot": "session",
          "$snapshot_items": "session"}
_PROPERTY_IDS = {"distinct": "distinct_id", "anonymous": "$anon_distinct_id", "device": "$device_id",
                 "session": "$session_id", "trace": "$ai_trace_id"}
_TOP_IDS = {"distinct": "distinct_id", "session": "session_id"}
_ENGAGE_OPS = ("$set", "$set_once", "$unset", "$add", "$append", "$union", "$remove", "$delete")


@register
class PostHog(Collector):
    name = "posthog"
    title = "PostHog"
    owner = "PostHog"
    category = "analytics"
    hosts = ("us.i.posthog.com", "eu.i.posthog.com", "app.posthog.com", "us.posthog.com", "eu.posthog.com",
             "us-assets.i.posthog.com", "eu-assets.i.posthog.com")
    endpoints = (Endpoint(_CAPTURE + _FLAGS, ("POST", "GET")),)
    credential_paths = ("api_key", "token", "$token", "properties.token", "batch[].properties.token",
                        "batch[].api_key", "[].properties.token", "[].$token")
    credential_params = ("token", "api_key")
    envelope_fields = ("api_key", "batch", "sent_at", "historical_migration", "created_at", "uuid", "timestamp",
                       "token", "properties.token", "properties.$lib", "properties.$lib_version",
                       "properties.$geoip_disable", "properties.$process_person_profile", "offset")

    # ------------------------------------------------------------------ decoding
    def decode(self, obs: Observation, pipeline: Pipeline) -> Decoded:
        """JSON (plain or gzip, sniffed), a `data=` form or query field (Base64 JSON, or lz-string
        with `compression=lz64`); a form envelope is unwrapped to the payload it carries."""
        limits: Limits = pipeline.limits
        query = _first(raw_query_params(obs.raw_query))
        compression = (query.get("compression") or "").lower()
        body = obs.body
        raw, location = None, "body"
        if not body.strip():
            raw, location = query.get("data"), "query:data"
            if raw is None:
                return pipeline.decode_at(obs, "body")
        elif (not obs.header("content-encoding") and len(body) <= limits.max_body
              and (_is_form(obs) or body.lstrip()[:5] == b"data=")):
            fields = form_fields(body)
            if "data" in fields:
                raw, location = fields["data"], "form:data"
                compression = (unquote(fields.get("compression", "")) or compression).lower()
        if raw is None:
            decoded = pipeline.decode_at(obs, "body")
            return _unwrap_form(decoded)
        if compression in _LZ:
            return _lz_decoded(unquote(raw).replace(" ", "+"), location, pipeline)
        decoded = pipeline.decoder.decode(field_bytes(raw), location)
        return _bound(decoded)

    def recognises(self, value: Any) -> bool:
        if isinstance(value, dict) and not isinstance(value.get("batch"), list) and "event" not in value:
            # a flags request: who is asking, with the project token
            return (isinstance(value.get("distinct_id"), str) and ("api_key" in value or "token" in value)
                    and "properties" not in value and "mp_lib" not in value)
        found = records(value, "batch")
        return bool(found) and all(_looks_like_event(r) for _, r in found[:100])

    def items(self, value: Any, obs: Observation) -> list[Item]:
        path = normalize_path(obs.path)
        if any(path.rstrip("/") == p.rstrip("/") for p in _FLAGS):
            return _flags_item(value)
        out = []
        for where, record in records(value, "batch")[:MAX_ITEMS]:
            item = _event_item(where, record)
            if item is not None:
                out.append(item)
        return out

    # ------------------------------------------------------------------ answers
    def sinkhole(self, obs: Observation) -> LocalAnswer:
        """What each SDK takes as delivered: capture any 200 (`{"status": 1}` as PostHog answers);
        flags an empty answer in both response formats; the v1 capture an empty `results`."""
        path = normalize_path(obs.path)
        stem = path.rstrip("/")
        if any(stem == p.rstrip("/") for p in _FLAGS):
            return json_answer(b'{"flags":{},"featureFlags":{},"featureFlagPayloads":{},'
                               b'"errorsWhileComputingFlags":false,"quotaLimited":[]}')
        if stem == "/i/v1/analytics/events":
            return json_answer(b'{"results":{}}')
        if stem.endswith(".js"):  # the loader and extension scripts (assets host): an empty script
            return LocalAnswer(200, (("Content-Type", "application/javascript"), *SINKHOLE_HEADERS), b"")
        if stem.endswith("/config"):  # remote config (assets host): nothing configured
            return json_answer(b"{}")
        return json_answer(b'{"status":1}')


# --------------------------------------------------------------------------- items

def _looks_like_event(record: dict[str, Any]) -> bool:
    """A PostHog event: an `event` name, and what only PostHog sends — a top-level `uuid` or
    `distinct_id`, or `$lib` in its properties — and none of Mixpanel's or Amplitude's marks."""
    if not isinstance(record.get("event"), str) or "event_type" in record:
        return False
    props = record.get("properties")
    props = props if isinstance(props, dict) else {}
    if "mp_lib" in props or ("type" in record and ("userId" in record or "anonymousId" in record)):
        return False
    return "uuid" in record or "distinct_id" in record or "$lib" in props


def _event_item(where: str, record: dict[str, Any]) -> Item | None:
    props = record.get("properties")
    props = props if isinstance(props, dict) else None
    name = text(record.get("event"))
    if name is None:
        op = next((k for k in _ENGAGE_OPS if k in record), None)  # an /engage/ people update
        if op is None and not any(k in record for k in ("$distinct_id", "distinct_id")):
            return None
        ids = ids_of(record, {"distinct": "$distinct_id", "device": "$device_id"}) | ids_of(
            record, {"distinct": "distinct_id"})
        return Item("identify", op, where, ids, record.get(op) if op else None, _context(record, ("event",)))
    kind = _KINDS.get(name, "track")
    ids = ids_of(record, _TOP_IDS)
    if props is not None:
        for role, value in ids_of(props, _PROPERTY_IDS).items():
            ids.setdefault(role, value)
    return Item(kind, name, where, ids, props, _context(record, ("event", "properties")))


def _flags_item(value: Any) -> list[Item]:
    if not isinstance(value, dict):
        return []
    ids = ids_of(value, {"distinct": "distinct_id", "device": "$device_id", "anonymous": "$anon_distinct_id"})
    ids.update({k: v for k, v in ids_of(value, {"device": "device_id"}).items() if k not in ids})
    return [Item("flags", None, "", ids, value.get("person_properties"),
                 _context(value, ("person_properties",)))]


def _context(record: dict[str, Any], skip: tuple[str, ...]) -> dict[str, Any] | None:
    """The record's other top-level fields (uuid, timestamp, $set, …)."""
    context = {k: v for k, v in islice(record.items(), 64) if k not in skip}
    return context or None


# --------------------------------------------------------------------------- forms

def _first(params: list[tuple[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for key, value in params:
        out.setdefault(key, value)
    return out


def _is_form(obs: Observation) -> bool:
    return "x-www-form-urlencoded" in (obs.header("content-type") or "").lower()


def form_fields(body: bytes) -> dict[str, str]:
    """The raw (still percent-encoded) value of each field of a form body, the first of each name."""
    out: dict[str, str] = {}
    for part in body.decode("utf-8", "surrogateescape").split("&"):
        name, _, value = part.partition("=")
        out.setdefault(unquote_plus(name.strip()), value)
    return out


def field_bytes(raw: str) -> bytes:
    """A form field's bytes. A form encoder writes a space as `+`; a JSON field is decoded that
    way (PyPI requests does so), while Base64, whose alphabet has `+`, is kept as sent (SDKs
    put it in the body unescaped)."""
    head = raw.lstrip()[:3].lower()
    if head[:1] in ("{", "[") or head in ("%7b", "%5b"):
        return unquote_plus(raw, errors="surrogateescape").encode("utf-8", "surrogateescape")
    return unquote(raw, errors="surrogateescape").encode("utf-8", "surrogateescape")


def _unwrap_form(decoded: Decoded) -> Decoded:
    """A form body the generic decoder opened (`{data: <payload>, …}`): the payload itself."""
    value = decoded.value
    if (decoded.structured and isinstance(value, dict) and isinstance(value.get("data"), (dict, list))
            and any(layer.name == "form" for layer in decoded.layers)):
        issues = [Issue(i.code, i.message, i.path[5:] if i.path.startswith("data.") else
                        i.path[4:] if i.path.startswith("data[") else i.path) for i in decoded.issues]
        return _bound(Decoded(value["data"], decoded.layers, issues, decoded.jwe, True))
    return _bound(decoded)


def _bound(decoded: Decoded) -> Decoded:
    """An issue when the batch holds more records than are itemised."""
    value = decoded.value
    inner = value.get("batch") if isinstance(value, dict) else value
    if isinstance(inner, list) and len(inner) > MAX_ITEMS:
        decoded.issues.append(Issue("decode-error", f"{len(inner)} events in one request; only the first "
                                                    f"{MAX_ITEMS} are itemised"))
    return decoded


# --------------------------------------------------------------------------- lz-string

_LZ_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
_LZ_BITS = str.maketrans({c: format(i, "06b") for i, c in enumerate(_LZ_CHARS)})
_LZ_VALID = str.maketrans("", "", _LZ_CHARS)   # deletes the alphabet: what is left is not lz-string
_LZ_SPACES = str.maketrans("", "", " \r\n\t")


class LZError(ValueError):
    """An lz-string payload that cannot be decompressed within the bounds."""


def lz_decompress_base64(data: str, max_chars: int, seconds: float = 5.0) -> str:
    """lz-string's `decompressFromBase64`, bounded: at most `max_chars` characters out, at most
    `seconds` of work; LZError for anything malformed. Linear in its output."""
    chars = data.translate(_LZ_SPACES)
    bad = chars.translate(_LZ_VALID)
    if bad:
        raise LZError(f"not lz-string Base64 (character {bad[0]!r})")
    if not chars:
        return ""
    # every character's 6 bits, most significant first, as text: a read of n bits is one slice
    # (past the end a reader gets zeros, as lz-string's does, until the padding runs out)
    stream = chars.translate(_LZ_BITS) + "0" * 64
    limit = 6 * len(chars)
    deadline = time.monotonic() + seconds
    at = 0

    def bits(count: int) -> int:
        nonlocal at
        chunk = stream[at:at + count]
        at += count
        if len(chunk) < count:
            raise LZError("lz-string: truncated data")
        return int(chunk[::-1], 2)  # lz-string packs each value least significant bit first

    dictionary: list[str] = ["0", "1", "2"]  # codes 0-2 are control codes, never looked up
    first = bits(2)
    if first == 2:
        return ""
    if first not in (0, 1):
        raise LZError("lz-string: bad first code")
    w = chr(bits(8 if first == 0 else 16))
    dictionary.append(w)
    result = [w]
    total = 1
    enlarge_in, num_bits, steps = 4, 3, 0
    while True:
        if at >= limit:
            raise LZError("lz-string: truncated data")
        steps += 1
        if steps & 0x3FF == 0 and time.monotonic() > deadline:
            raise LZError(f"lz-string: decompressing took longer than {seconds:g} s")
        if at + num_bits > len(stream):
            raise LZError("lz-string: truncated data")
        code = int(stream[at:at + num_bits][::-1], 2)  # (bits() inlined: the hot path)
        at += num_bits
        if code == 2:
            break
        if code in (0, 1):
            dictionary.append(chr(bits(8 if code == 0 else 16)))
            code = len(dictionary) - 1
            enlarge_in -= 1
            if enlarge_in == 0:
                enlarge_in = 1 << num_bits
                num_bits += 1
        if code < len(dictionary) and code > 2:
            entry = dictionary[code]
        elif code == len(dictionary):
            entry = w + w[0]
        else:
            raise LZError("lz-string: a code that names no entry")
        total += len(entry)
        if total > max_chars:
            raise LZError(f"lz-string: decompressed size exceeds the limit of {max_chars} characters")
        result.append(entry)
        dictionary.append(w + entry[0])
        enlarge_in -= 1
        w = entry
        if enlarge_in == 0:
            enlarge_in = 1 << num_bits
            num_bits += 1
        if num_bits > 32:
            raise LZError("lz-string: dictionary too large")
    # JavaScript strings are UTF-16 code units: pair the surrogates
    return "".join(result).encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def _lz_decoded(raw: str, location: str, pipeline: Pipeline) -> Decoded:
    limits: Limits = pipeline.limits
    if len(raw) > limits.max_body:
        return Decoded(layers=[Layer(location)], issues=[Issue(
            "decode-error", f"payload of {len(raw)} characters exceeds the limit of {limits.max_body}")])
    try:
        plain = lz_decompress_base64(raw, limits.max_decompressed, limits.max_decode_seconds)
    except LZError as exc:
        return Decoded(value=raw[:300], layers=[Layer(location)], issues=[Issue("decode-error", str(exc))])
    decoded = pipeline.decoder.decode(plain.encode("utf-8"), location)
    decoded.layers.insert(1, Layer("lz-string", {"variant": "base64"}))
    return _bound(decoded)
