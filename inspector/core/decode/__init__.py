"""Layered, bounded decoding: bytes on the wire → plain JSON, with the path taken recorded.

Each layer the decoder peels off is recorded (`query:payload → base64 → json`,
`body → gzip → json`, `body → jwe(RSA-OAEP-256, A256GCM) → json`). Every step is bounded
(input size, decompressed size, nesting depth, layer count): past a bound the result
carries a `decode-error` issue, never an exception or a hang.

- `model`: `Limits`, `Budget`, `Layer`, `Issue`, `Decoded`;
- `registry`: the layers (`DecodeLayer`), one module each in `layers/` (gzip/deflate/br, jwe,
  json, base64, form), tried in order by the decoder's loop; the encodings a policy may name;
- `decoder`: `Decoder` and `inflate` (a Content-Encoding undone);
- `jsontext`, `sniff`, `query`: JSON text bounded, what bytes look like, raw query strings.

Everything used outside the package is re-exported here: import from `inspector.core.decode`.
"""

from inspector.core.decode import registry as _registry
from inspector.core.decode.decoder import Decoder, inflate
from inspector.core.decode.jsontext import _LONE_SURROGATE as _LONE_SURROGATE
from inspector.core.decode.jsontext import _SURROGATE_ESCAPE as _SURROGATE_ESCAPE
from inspector.core.decode.jsontext import load_json, load_json_at, parse_json
from inspector.core.decode.layers.form import _FORM_RE as _FORM_RE
from inspector.core.decode.layers.json import _NUMBER_START as _NUMBER_START
from inspector.core.decode.model import DEFAULT_LIMITS, Budget, Decoded, Issue, Layer, Limits, Stop
from inspector.core.decode.query import raw_query_param, raw_query_params
from inspector.core.decode.registry import DONE, DecodeLayer, Round, all_layers, encodings, register, unregister
from inspector.core.decode.sniff import _B64_RE as _B64_RE
from inspector.core.decode.sniff import JWE_COMPACT_RE as JWE_COMPACT_RE

_registry.load()  # every layer registered before anyone decodes or asks for a step's label

# The decoder's regular expressions stay reachable here (`_B64_RE`, `_FORM_RE`, …):
# tests/test_budgets.py checks every pattern of this package for linear-time matching.
__all__ = [
    "DEFAULT_LIMITS", "DONE", "Budget", "DecodeLayer", "Decoded", "Decoder", "Issue", "Layer", "Limits", "Round",
    "Stop", "all_layers", "encodings", "inflate", "load_json", "load_json_at", "parse_json", "raw_query_param",
    "raw_query_params",
    "register", "unregister",
]
