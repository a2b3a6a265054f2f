"""Policies: load, validate (with line numbers), compile declared fields to JSON Schema, match.

One job per module:

- `model`: `Policy`, `ShapeCondition`, `ClaimSpec` — a loaded policy and how it matches a request;
- `schema`: declared fields → JSON Schema (`compile_field`, `compile_tree`, `compile_policy_schema`),
  the field formats and `FORMAT_CHECKER`;
- `metaschema`: the policy format as a JSON Schema, its claim checks (`inspector.core.claims`) and
  encodings (the decode layers' registry) taken from their registries;
- `loader`: YAML with line numbers (aliases and deep nesting refused), the format's schema and
  semantic checks, `parse_policy_text`, `load_policy_file`, `parse_policy_documents` and
  `load_policy_documents` (a file of several policies), the built-in policies;
- `catalogue`: `Catalogue` — the loaded policies, and the candidates for a request;
- `paths`: value paths (`resolve`, `resolve_with_paths`), host and path patterns, RE2 regexes.

Everything used outside the package is re-exported here: import from `inspector.core.policy`.
"""

from inspector.core.claims import ClaimSpec
from inspector.core.claims.max_requests import _DURATION_RE as _DURATION_RE
from inspector.core.claims.max_requests import parse_duration
from inspector.core.policy.catalogue import Catalogue
from inspector.core.policy.loader import (
    BUILTIN_PACKAGE,
    MAX_POLICY_BYTES,
    MAX_POLICY_DEPTH,
    PolicyError,
    builtin_policy_texts,
    load_policy_documents,
    load_policy_file,
    parse_policy_documents,
    parse_policy_text,
    policy_from_data,
)
from inspector.core.policy.loader import _Loader as _Loader
from inspector.core.policy.metaschema import policy_schema
from inspector.core.policy.model import Policy, ShapeCondition
from inspector.core.policy.paths import (
    MISSING,
    UnsafeRegex,
    compile_user_regex,
    host_matches,
    path_matches,
    resolve,
    resolve_with_paths,
    user_regex,
)
from inspector.core.policy.schema import (
    _FORMAT_PATTERNS as _FORMAT_PATTERNS,
)
from inspector.core.policy.schema import (
    FORMAT_CHECKER,
    FORMATS,
    TYPES,
    compile_field,
    compile_policy_schema,
    compile_tree,
)

# `_Loader`, `_FORMAT_PATTERNS` and `_DURATION_RE` stay reachable here: tests/test_budgets.py reads
# them from this package (libyaml's loader is kept; every built-in pattern is linear).
__all__ = [
    "BUILTIN_PACKAGE",
    "FORMATS",
    "FORMAT_CHECKER",
    "MAX_POLICY_BYTES",
    "MAX_POLICY_DEPTH",
    "MISSING",
    "TYPES",
    "Catalogue",
    "ClaimSpec",
    "Policy",
    "PolicyError",
    "ShapeCondition",
    "UnsafeRegex",
    "builtin_policy_texts",
    "compile_field",
    "compile_policy_schema",
    "compile_tree",
    "compile_user_regex",
    "host_matches",
    "load_policy_documents",
    "load_policy_file",
    "parse_duration",
    "parse_policy_documents",
    "parse_policy_text",
    "path_matches",
    "policy_from_data",
    "policy_schema",
    "resolve",
    "resolve_with_paths",
    "user_regex",
]
