"""Quotes as a reader sees them: where a vendor's document lost its table's cell boundaries.

Some published documents were captured with their tables flattened: a row `| providers |
boolean[] | List of providers… |` reads `providersboolean[]List of providers…`. A policy cites
the words verbatim (the test of the built-in policies finds every quote in its document), and
reports and the TUI show the cells apart. Display only: what is compared and stored stays the
verbatim quote.
"""

from __future__ import annotations

import re

# The type names such documents' field tables use (a name cell, a type cell, a description).
_TYPE = r"(?:boolean|string|number|integer|object|array|float|double|int|bool|date|datetime|timestamp|uuid)(?:\[\])?"
# field name (no space; the shortest that is followed by a type), type, then the description
# starting as a sentence does: nothing else is taken for a table row.
_ROW = re.compile(rf"(?P<name>[A-Za-z_$][\w.$-]*?)(?P<type>{_TYPE})(?P<rest>[A-Z(\"'“].*)", re.DOTALL)
CELL = " │ "


def readable_quote(quote: str) -> str:
    """`quote` with the cells of a flattened table row set apart (`providers │ boolean[] │
    List of…`); any other quote as it is."""
    match = _ROW.fullmatch(quote)
    if match is None:
        return quote
    return CELL.join((match["name"], match["type"], match["rest"]))
