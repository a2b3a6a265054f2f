"""Policy authors' regular expressions, run by a linear-time engine (RE2).

Claim patterns (`anonymised-values`, `no-free-text`) and field `pattern`s are matched against
captured text: with Python's backtracking `re`, `(a|aa)+x` takes seconds on a few dozen
characters. `policies check` (and loading) refuses what RE2 cannot compile; this module is
what the audit matches with. (Not in `inspector.core.policy`: the claim checks import it, and
the policy package imports the claim checks.)
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import re2

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False


@lru_cache(maxsize=1024)
def linear(pattern: str) -> Any:
    """`pattern` compiled by RE2 (the `re` API: search, fullmatch, finditer, groupindex).

    A pattern RE2 refuses never reaches here from a loaded policy; for one built by hand it
    falls back to `re` (the caller is then a test or a trusted author)."""
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error:
        return re.compile(pattern)
