"""What decoding works with and gives: its bounds and time budget, the layers taken, the issues met."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from inspector.core.keys import MAX_JWE_RECIPIENTS, MAX_PBES2_ITERATIONS

# layer name → how a step of it is labelled from its detail (`jwe(RSA-OAEP-256, A256GCM)`);
# filled by the registry as layers register (a name without one is shown as it is)
LABELS: dict[str, Callable[[dict[str, Any]], str]] = {}


@dataclass(frozen=True, slots=True)
class Limits:
    """Safety bounds for decoding. Past one, the event gets a `decode-error` finding."""

    max_body: int = 16 * 1024 * 1024
    max_decompressed: int = 16 * 1024 * 1024
    max_depth: int = 64
    max_layers: int = 8
    max_nested_json: int = 64  # how many string fields may themselves be decoded as JSON
    max_jwe_recipients: int = MAX_JWE_RECIPIENTS  # a JSON JWE naming more is refused, untried
    max_pbes2_iterations: int = MAX_PBES2_ITERATIONS  # a PBES2 `p2c` above this is refused, untried
    # Wall-clock time for one decode, checked between layers and between decryption attempts.
    # Each step is already bounded by the sizes above; this bounds how many an attacker chains.
    max_decode_seconds: float = 5.0


DEFAULT_LIMITS = Limits()


class Budget:
    """The time one payload's decoding may take, checked between layers and decryption attempts.

    Pass one to `Decoder.decode` to share it between several decodes of one event; by default
    each decode gets `Limits.max_decode_seconds` of its own."""

    __slots__ = ("_clock", "deadline", "seconds")

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self.deadline = clock() + seconds

    def exceeded(self) -> bool:
        """True once the deadline has passed."""
        return self._clock() > self.deadline

    def check(self, step: str) -> None:
        """Stop decoding (a decode-error issue) once the deadline has passed."""
        if self._clock() > self.deadline:
            raise Stop("decode-error",
                        f"decoding took longer than its budget of {self.seconds:g} s; stopped before {step}")


@dataclass(frozen=True, slots=True)
class Layer:
    """One decoding step."""

    name: str  # body, query:<n>, form:<n>, ws-message, gzip, deflate, br, base64, jwe, json, form, json@<path>
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        """How the step is shown: its name, or what its layer's `label` makes of the detail."""
        labeler = LABELS.get(self.name)
        return self.name if labeler is None else labeler(self.detail)

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.name, "label": self.label, **({"detail": self.detail} if self.detail else {})}


@dataclass(frozen=True, slots=True)
class Issue:
    """Something the decoder could not do. `code` is a finding code."""

    code: str  # decode-error, unverifiable-encrypted, weak-algorithm, number-out-of-range
    message: str
    path: str = ""


@dataclass(slots=True)
class Decoded:
    """The result of decoding one payload."""

    value: Any = None
    layers: list[Layer] = field(default_factory=list)
    issues: list[Issue] = field(default_factory=list)
    jwe: dict[str, Any] | None = None  # the JWE header, when one was met
    structured: bool = False  # True when the value is JSON (or form) data

    @property
    def path_labels(self) -> list[str]:
        return [layer.label for layer in self.layers]

    @property
    def encodings(self) -> list[str]:
        """The layer names after the location, comparable to a policy's `encoding` list."""
        return [
            layer.name for layer in self.layers[1:] if not layer.name.startswith("json@")
        ]


class Stop(Exception):
    """Decoding cannot go on; carries the issue to record."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.issue = Issue(code, message)
