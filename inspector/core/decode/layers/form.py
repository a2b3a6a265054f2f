"""Form data (`a=1&b=…`): when the request says so, or nested inside another layer."""

from __future__ import annotations

import re
from typing import Any

from inspector.core.decode.jsontext import join_path
from inspector.core.decode.model import Decoded, Issue, Layer, Stop
from inspector.core.decode.query import raw_query_params
from inspector.core.decode.registry import DONE, DecodeLayer, Round, register

_FORM_RE = re.compile(r"^[^=&\s{}\[\]\"]+=[^&\s]*(?:&[^=&\s]+=[^&\s]*)*$")


def _peel(rnd: Round) -> Any:
    text, result = rnd.text, rnd.result
    assert text is not None
    if not ((rnd.form_hint or len(result.layers) > 1) and _FORM_RE.match(text)):
        return None
    params = raw_query_params(text)
    result.layers.append(Layer("form"))
    value = {}
    for key, raw in params:
        value[key] = _field(raw, key, rnd)
    if rnd.budget.exceeded():
        result.issues.append(Issue("decode-error", "decoding time budget exceeded; "
                                                   "the remaining form fields were kept as text"))
    result.value = value
    result.structured = True
    return DONE


def _field(raw: str, name: str, rnd: Round) -> Any:
    """A form field's value: decoded further when it hides JSON/Base64, else kept as text."""
    result, budget = rnd.result, rnd.budget
    if not budget.exceeded():
        sub = Decoded(layers=[Layer(f"form:{name}")])
        try:
            rnd.decoder.peel(raw.encode("utf-8", "surrogateescape"), sub, budget)
        except Stop:
            pass
        else:
            if sub.structured:
                result.layers.extend(
                    Layer(f"{layer.name}@{name}" if layer.name in ("json",) else layer.name, layer.detail)
                    for layer in sub.layers[1:] if layer.name != "json")
                result.layers.append(Layer(f"json@{name}"))
                result.issues.extend(Issue(i.code, i.message, join_path(name, i.path)) for i in sub.issues)
                return sub.value
    if raw.isascii():
        return raw
    # raw_query_params keeps undecodable bytes as surrogate escapes; a value is text
    text = raw.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if text != raw:
        result.issues.append(Issue("decode-error", "invalid UTF-8 in a form field; replaced with U+FFFD", name))
    return text


register(DecodeLayer("form", _peel, order=50, description="form data (x-www-form-urlencoded), its fields decoded"))
