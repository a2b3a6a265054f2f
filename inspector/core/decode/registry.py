"""The decode-layer registry: every layer module in `inspector/core/decode/layers/` registers here.

A layer is a `DecodeLayer`: its name (what a policy's `payload.encoding` and the recorded path
say), a `peel` function the decoder's loop tries in `order`, whether a policy may name it, and,
for a compression, how to undo it as a Content-Encoding. Adding one is one module in `layers/`
calling `register`; the decoder, `inflate` and the policy format (its `encoding` names) find it here.

The loop tries the layers in `order` on each round's bytes; the first whose `peel` recognises
them wins, so the order is part of the result (e.g. JWE before JSON: a JSON-serialised JWE is
an object too). Layers that read bytes (`text=False`, gzip's magic number) come first: before
the first layer that reads text, the loop turns the bytes into text, or stops at binary data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from inspector.core.decode.jsontext import parse_json
from inspector.core.decode.model import LABELS, Budget, Decoded, Issue, Limits
from inspector.core.keys import Keyring
from inspector.core.plugins import PackageModules


class Decoder(Protocol):
    """What a layer uses of the decoder (`decoder.Decoder`, which imports this module)."""

    keyring: Keyring
    limits: Limits

    def peel(self, data: bytes, result: Decoded, budget: Budget, form_hint: bool = False) -> None:
        """Decode `data` further into `result` (a form field's value)."""


class _Done:
    """What `peel` returns when decoding is finished (the result's value is set)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "DONE"


DONE: Any = _Done()


class Round:
    """One turn of the peeling loop: the payload as it stands, and what the layers share."""

    __slots__ = ("_json", "budget", "data", "decoder", "form_hint", "limits", "result", "text")

    def __init__(self, decoder: Decoder, result: Decoded, budget: Budget, data: bytes, form_hint: bool) -> None:
        self.decoder = decoder
        self.limits: Limits = decoder.limits
        self.result = result  # the layers so far, issues, value: a layer appends its own step
        self.budget = budget
        self.data = data  # stripped of surrounding white space
        self.text: str | None = None  # set by the loop before the first layer that reads text
        self.form_hint = form_hint  # the request said x-www-form-urlencoded
        self._json: tuple[Any, list[Issue]] | None = None

    def json(self) -> tuple[Any, list[Issue]]:
        """The text parsed as JSON (once per round, whichever layer asks first); Stop if it is not."""
        if self._json is None:
            assert self.text is not None
            self._json = parse_json(self.text, self.limits)
        return self._json


# The bytes to peel next, DONE, or None: not this layer.
Peel = Callable[[Round], "bytes | _Done | None"]


@dataclass(frozen=True, slots=True)
class DecodeLayer:
    """One kind of layer the decoder can take off a payload."""

    name: str
    peel: Peel | None = field(default=None, repr=False)  # None: only ever a Content-Encoding
    order: int = 100  # the loop tries lower first
    text: bool = True  # `peel` reads `Round.text` (False: only the bytes)
    policy: bool = True  # a policy may name it in `payload.encoding`
    inflate: Callable[[bytes, Limits], bytes] | None = field(default=None, repr=False)  # undo as Content-Encoding
    aliases: tuple[str, ...] = ()  # other Content-Encoding names (x-gzip)
    label: Callable[[dict[str, Any]], str] | None = field(default=None, repr=False)  # a step as shown
    description: str = ""


_REGISTRY: dict[str, DecodeLayer] = {}
_PEELERS: list[tuple[DecodeLayer, ...]] = []  # the loop's layers in order, kept until the registry changes
_CODINGS: dict[str, DecodeLayer] = {}  # Content-Encoding name or alias → its layer


def register(layer: DecodeLayer) -> DecodeLayer:
    """Add a layer; names and Content-Encoding aliases are unique."""
    old = _REGISTRY.get(layer.name)
    if old is not None and old.peel is not layer.peel:
        raise ValueError(f"two decode layers are named {layer.name!r}")
    for alias in layer.aliases:
        other = _CODINGS.get(alias)
        if other is not None and other.name != layer.name:
            raise ValueError(f"decode layers {other.name!r} and {layer.name!r} both answer to {alias!r}")
    _REGISTRY[layer.name] = layer
    _changed()
    return layer


def unregister(name: str) -> None:
    """Remove a layer (for tests that register one of their own)."""
    _REGISTRY.pop(name, None)
    _changed()


def _changed() -> None:
    _PEELERS.clear()
    _CODINGS.clear()
    LABELS.clear()
    for layer in _REGISTRY.values():
        if layer.inflate is not None:
            for name in (layer.name, *layer.aliases):
                _CODINGS[name] = layer
        if layer.label is not None:
            LABELS[layer.name] = layer.label


_MODULES = PackageModules("inspector.core.decode.layers")
load = _MODULES.load  # import every module of `layers/` (once): each registers its layers


def all_layers() -> tuple[DecodeLayer, ...]:
    """Every registered layer, by name."""
    load()
    return tuple(_REGISTRY[name] for name in sorted(_REGISTRY))


def peelers() -> tuple[DecodeLayer, ...]:
    """The layers the loop tries, in order."""
    if _PEELERS:  # (asked once per payload peeled: the cached order, without more calls)
        return _PEELERS[0]
    load()
    if not _PEELERS:
        _PEELERS.append(tuple(sorted((layer for layer in _REGISTRY.values() if layer.peel is not None),
                                     key=lambda layer: (layer.order, layer.name))))
    return _PEELERS[0]


def content_coding(name: str) -> DecodeLayer | None:
    """The layer that undoes Content-Encoding `name` (lower case), or None: unsupported."""
    load()
    return _CODINGS.get(name)


def encodings() -> tuple[str, ...]:
    """The layer names a policy's `payload.encoding` may use."""
    return tuple(layer.name for layer in all_layers() if layer.policy)
