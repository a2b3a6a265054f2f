"""The decoder: peels registered layers off a payload until it reaches JSON (or cannot go on)."""

from __future__ import annotations

from typing import cast

from inspector.core.decode import registry
from inspector.core.decode.model import DEFAULT_LIMITS, Budget, Decoded, Issue, Layer, Limits, Stop
from inspector.core.decode.registry import DONE, Round
from inspector.core.decode.sniff import looks_like_text
from inspector.core.keys import Keyring


class Decoder:
    """Peels layers off a payload until it reaches JSON (or cannot go on)."""

    def __init__(self, keyring: Keyring | None = None, limits: Limits = DEFAULT_LIMITS) -> None:
        self.keyring = keyring if keyring is not None else Keyring()
        self.limits = limits
        registry.load()

    def decode(self, data: bytes, location: str = "body",
               content_encoding: str | None = None, content_type: str | None = None,
               budget: Budget | None = None) -> Decoded:
        """Decode `data` found at `location` (already extracted from the request).

        `budget`: the time left for this event's decoding (default: `Limits.max_decode_seconds`)."""
        result = Decoded(layers=[Layer(location)])
        if budget is None:
            budget = Budget(self.limits.max_decode_seconds)
        try:
            if len(data) > self.limits.max_body:
                raise Stop("decode-error",
                           f"payload of {len(data)} bytes exceeds the limit of {self.limits.max_body} bytes")
            if content_encoding:
                for coding in reversed([c.strip().lower() for c in content_encoding.split(",") if c.strip()]):
                    if coding in ("identity", ""):
                        continue
                    layer = registry.content_coding(coding)
                    if layer is None or layer.inflate is None:
                        raise Stop("decode-error", f"unsupported Content-Encoding: {coding[:40]}")
                    budget.check(f"{layer.name} (Content-Encoding)")
                    data = layer.inflate(data, self.limits)
                    result.layers.append(Layer(layer.name, {"via": "content-encoding"}))
            self.peel(data, result, budget,
                      form_hint=bool(content_type and "x-www-form-urlencoded" in content_type.lower()))
        except Stop as stop:
            result.issues.append(stop.issue)
        except RecursionError:
            result.issues.append(Issue("decode-error", "payload nested too deeply"))
        except MemoryError:
            result.issues.append(Issue("decode-error", "payload too large to decode in memory"))
        return result

    def peel(self, data: bytes, result: Decoded, budget: Budget, form_hint: bool = False) -> None:
        """Take layers off `data` into `result`, each round trying the registered layers in order."""
        peelers = registry.peelers()
        for _ in range(self.limits.max_layers + 1):
            budget.check(f"layer {len(result.layers)}")
            if len(result.layers) > self.limits.max_layers + 1:
                raise Stop("decode-error", f"more than {self.limits.max_layers} encoding layers")
            if len(data) > self.limits.max_decompressed:
                raise Stop("decode-error", f"decoded size exceeds the limit of {self.limits.max_decompressed} bytes")
            stripped = data.strip()
            if not stripped:
                result.value = "" if not data else data.decode("utf-8", "replace")
                return
            round_ = Round(self, result, budget, stripped, form_hint)
            for layer in peelers:
                if layer.text and round_.text is None:
                    round_.text = _text(stripped, result)
                assert layer.peel is not None
                peeled = layer.peel(round_)
                if peeled is None:
                    continue
                if peeled is DONE:
                    return
                data = cast(bytes, peeled)  # neither None nor DONE
                break
            else:  # no layer recognised it: it is text
                result.value = round_.text if round_.text is not None else _text(stripped, result)
                return
        raise Stop("decode-error", f"more than {self.limits.max_layers} encoding layers")


def _text(data: bytes, result: Decoded) -> str:
    """`data` as text; Stop for binary data or invalid UTF-8 (but JSON with a bad byte goes on)."""
    text = looks_like_text(data)
    if text is not None:
        return text
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if data[:1] not in (b"{", b"["):
            raise Stop("decode-error", f"not valid UTF-8 text at byte {exc.start}") from None
        # JSON with a bad byte: keep going with U+FFFD so the rest can be audited.
        result.issues.append(Issue("decode-error", f"invalid UTF-8 at byte {exc.start}; replaced with U+FFFD"))
        return data.decode("utf-8", "replace")
    raise Stop("decode-error", "binary data (control characters), not a known encoding")


def inflate(data: bytes, content_encoding: str | None, limits: Limits = DEFAULT_LIMITS) -> tuple[bytes, list[Layer], list[Issue]]:
    """Undo a Content-Encoding (gzip, deflate, br, in the order applied), bounded by `limits`.

    For collector profiles whose bodies are not JSON once it is undone (envelopes, protobuf).
    Returns the bytes, one layer per coding undone and, when a coding is unknown, broken or
    inflates past `max_decompressed`, an issue (the bytes then are those before that coding)."""
    layers: list[Layer] = []
    if len(data) > limits.max_body:
        return data, layers, [Issue("decode-error", f"payload of {len(data)} bytes exceeds the limit of {limits.max_body} bytes")]
    for coding in reversed([c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]):
        if coding == "identity":
            continue
        layer = registry.content_coding(coding)
        try:
            if layer is None or layer.inflate is None:
                raise Stop("decode-error", f"unsupported Content-Encoding: {coding[:40]}")
            data = layer.inflate(data, limits)
        except Stop as stop:
            return data, layers, [stop.issue]
        layers.append(Layer(layer.name, {"via": "content-encoding"}))
    return data, layers, []
