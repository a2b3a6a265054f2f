"""Loading policies: YAML with line numbers (aliases and deep nesting refused), the format's
schema and semantic checks, line-numbered problems, and the built-in policies."""

from __future__ import annotations

import re
from collections.abc import Iterable
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from inspector.core import claims as claim_checks
from inspector.core.claims import ClaimSpec
from inspector.core.files import read_regular
from inspector.core.findings import Citation
from inspector.core.policy import metaschema
from inspector.core.policy.model import Policy, ShapeCondition
from inspector.core.policy.paths import UnsafeRegex, compile_user_regex
from inspector.core.policy.schema import TYPES

BUILTIN_PACKAGE = "inspector.policies"


# ---------------------------------------------------------------- errors

class PolicyError(Exception):
    """A policy file that cannot be used. `problems` are `(line, message)` pairs."""

    def __init__(self, origin: str, problems: list[tuple[int | None, str]]) -> None:
        self.origin = origin
        self.problems = problems
        super().__init__(self.lines()[0] if problems else origin)

    def lines(self) -> list[str]:
        return [f"{self.origin}:{line}: {msg}" if line else f"{self.origin}: {msg}"
                for line, msg in self.problems]





# ---------------------------------------------------------------- loading

MAX_POLICY_BYTES = 4 * 1024 * 1024  # the largest built-in policy is 20 KB
MAX_POLICY_DEPTH = 64  # nesting of YAML collections; the built-ins reach 10


class _YamlRefused(Exception):
    """A policy's YAML uses what policies may not (an alias, too deep a nesting)."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line = line


def _node_lines(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """Map each YAML path to its 1-based line number (a member's: its key's line).

    Iterative, and refuses a node met twice — an alias (`*name`): it repeats a node without
    repeating its text, so nine nested ones make a 530-byte file expand to 10⁹ nodes when
    walked (the "billion laughs") — and nesting deeper than MAX_POLICY_DEPTH."""
    out: dict[tuple[Any, ...], int] = {(): root.start_mark.line + 1}
    seen: set[int] = set()
    stack: list[tuple[yaml.Node, tuple[Any, ...], int]] = [(root, (), 1)]
    while stack:
        node, path, depth = stack.pop()
        if id(node) in seen:
            raise _YamlRefused(None, "YAML aliases are not allowed")
        seen.add(id(node))
        if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)) and depth > MAX_POLICY_DEPTH:
            raise _YamlRefused(node.start_mark.line + 1,
                               f"YAML nested deeper than {MAX_POLICY_DEPTH} levels")
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                # a complex key (`? [a, b]`) has no name; the constructor refuses it anyway
                key = key_node.value if isinstance(key_node, yaml.ScalarNode) else f"<key at line {key_node.start_mark.line + 1}>"
                out[path + (key,)] = key_node.start_mark.line + 1
                stack.append((value_node, path + (key,), depth + 1))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                out[path + (i,)] = item.start_mark.line + 1
                stack.append((item, path + (i,), depth + 1))
    return out


def _first_alias(text: str) -> tuple[int | None, str]:
    """The line and name of the first alias in `text` (for the message; parses the events again)."""
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.AliasEvent):
                assert event.start_mark is not None  # the parser marks every event
                return event.start_mark.line + 1, f" (*{str(event.anchor)[:40]})"
    except yaml.YAMLError:
        pass
    return None, ""


def _check_nesting(text: str) -> None:
    """Refuse deep nesting before libyaml composes it: its composer recurses in C, and a
    200 KB file of `[[[[…` overflows the stack (a crash, not an exception).

    Every nesting level starts with one of `[{-:?` (a flow collection, a block sequence entry,
    a block mapping's key): when the text holds few of them, it cannot nest deeply, and the
    events (a second parse) are not needed."""
    if sum(text.count(c) for c in "[{-:?") <= 2 * MAX_POLICY_DEPTH + 1000:
        return  # at most ~1,100 levels: libyaml composes that safely; _node_lines then bounds it
    depth = 0
    for event in yaml.parse(text, Loader=_Loader):
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_POLICY_DEPTH:
                assert event.start_mark is not None  # the parser marks every event
                raise _YamlRefused(event.start_mark.line + 1,
                                   f"YAML nested deeper than {MAX_POLICY_DEPTH} levels")
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1


def _line_for(lines: dict[tuple[Any, ...], int], path: Iterable[Any]) -> int | None:
    parts = tuple(path)
    while parts not in lines and parts:
        parts = parts[:-1]
    return lines.get(parts)


_Loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml: ~10× faster where installed


MAX_POLICY_DOCUMENTS = 1000  # documents in one file (`policies infer` writes one per endpoint)


def _yaml_documents(text: str, origin: str) -> list[tuple[yaml.Node, dict[tuple[Any, ...], int], Any]]:
    """Every document of `text`: its node, line numbers (absolute in the file) and data.
    Raises PolicyError for what no document of it may hold (a syntax error, an alias, …)."""
    try:
        _check_nesting(text)
        loader = _Loader(text)  # one parse gives both the node tree (for line numbers) and the data
        docs: list[tuple[yaml.Node, dict[tuple[Any, ...], int], Any]] = []
        try:
            while loader.check_node():
                node = loader.get_node()
                if node is None:
                    continue
                if len(docs) >= MAX_POLICY_DOCUMENTS:
                    raise _YamlRefused(node.start_mark.line + 1,
                                       f"more than {MAX_POLICY_DOCUMENTS} YAML documents in one file")
                # lines first: _node_lines refuses aliases before anything walks their expansion
                lines = _node_lines(node)
                docs.append((node, lines, loader.construct_document(node)))
        finally:
            loader.dispose()
    except _YamlRefused as exc:
        line, name = (exc.line, "") if exc.line is not None else _first_alias(text)
        raise PolicyError(origin, [(line, f"{exc}{name}")]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise PolicyError(origin, [(line, f"YAML syntax error: {problem}")]) from None
    except (ValueError, OverflowError) as exc:  # a scalar the constructor cannot convert (2020-13-45, a 5,000-digit int)
        raise PolicyError(origin, [(None, f"YAML value error: {str(exc).splitlines()[0][:200]}")]) from None
    except RecursionError:
        raise PolicyError(origin, [(None, f"YAML nested deeper than {MAX_POLICY_DEPTH} levels")]) from None
    if len(docs) > 1:  # an empty document (a trailing `---`) is no policy, and no problem either
        docs = [d for d in docs if not (isinstance(d[0], yaml.ScalarNode) and d[2] is None)]
    return docs


def _document_policy(data: Any, lines: dict[tuple[Any, ...], int], origin: str, builtin: bool,
                     label: str = "") -> Policy:
    """One document as a policy; PolicyError with its problems (`label` names the document)."""
    if not isinstance(data, dict):
        raise PolicyError(origin, [(lines.get(()), f"{label}a policy must be a YAML mapping (id, vendor, product, …)")])
    problems: list[tuple[int | None, str]] = []
    for error in sorted(metaschema.validator().iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
        at = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            extra = sorted(set(error.instance) - set(error.schema.get("properties", {})), key=str)
            if extra:
                at.append(extra[0])  # point at the unknown key itself
        problem = (_line_for(lines, at), f"{label}{where}: {_schema_message(error)}")
        if problem not in problems:  # one per missing key would repeat the same line
            problems.append(problem)
    if not problems:
        problems.extend((line, f"{label}{message}") for line, message in _semantic_problems(data, lines))
    if problems:
        raise PolicyError(origin, problems)
    return _build(data, origin, builtin)


def parse_policy_text(text: str, origin: str, builtin: bool = False) -> Policy:
    """Parse and validate one policy document; raises PolicyError with line-numbered problems."""
    docs = _yaml_documents(text, origin)
    if not docs:
        raise PolicyError(origin, [(1, "a policy must be a YAML mapping (id, vendor, product, …)")])
    if len(docs) > 1:
        raise PolicyError(origin, [(docs[1][1].get(()), f"{len(docs)} YAML documents where one policy was expected")])
    _node, lines, data = docs[0]
    return _document_policy(data, lines, origin, builtin)


def parse_policy_documents(text: str, origin: str, builtin: bool = False) -> tuple[list[Policy], list[PolicyError]]:
    """Each YAML document of `text` a policy (a file may hold several, as `policies infer`
    writes them): the policies that are valid, and the problems of those that are not, each
    named by its document (when there are several) and its line in the file.

    Raises PolicyError when the file as a whole cannot be read (a YAML syntax error, …)."""
    docs = _yaml_documents(text, origin)
    if not docs:
        raise PolicyError(origin, [(1, "a policy must be a YAML mapping (id, vendor, product, …)")])
    policies: list[Policy] = []
    errors: list[PolicyError] = []
    for n, (_node, lines, data) in enumerate(docs, 1):
        label = ""
        if len(docs) > 1:
            name = data.get("id") if isinstance(data, dict) and isinstance(data.get("id"), str) else None
            label = f"document {n}" + (f" ({name[:60]})" if name else "") + ": "
        try:
            policies.append(_document_policy(data, lines, origin, builtin, label))
        except PolicyError as exc:
            errors.append(exc)
    return policies, errors


def _schema_message(error: Any) -> str:
    if error.validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return f"unknown key(s): {', '.join(map(str, extra))}"
    if error.validator == "required":
        missing = [r for r in error.validator_value if r not in error.instance]
        return f"missing required key(s): {', '.join(missing)}"
    if error.validator == "enum":
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}"
    if error.validator == "anyOf" and list(error.absolute_path)[-1:] == ["type"]:
        # a field's type (one name or a list of them): which names exist, not the schema's alternatives
        given = error.instance if isinstance(error.instance, list) else [error.instance]
        bad = [t for t in given if t not in TYPES] or given
        return (f"unknown type {', '.join(repr(t) for t in bad)}; the types are "
                f"{', '.join(sorted(TYPES))} (or a list of them)")
    message: str = error.message
    return message


def _semantic_problems(data: dict[str, Any], lines: dict[tuple[Any, ...], int]
                       ) -> list[tuple[int | None, str]]:
    problems: list[tuple[int | None, str]] = []
    if isinstance(data.get("collector"), str):
        from inspector.core import collectors
        if collectors.get(data["collector"]) is None:
            known = ", ".join(c.name for c in collectors.collectors())
            problems.append((_line_for(lines, ("collector",)),
                             f"collector: unknown collector {data['collector']!r} (known: {known})"))

    def check_regex(pattern: str, path: tuple[Any, ...]) -> bool:
        """Both engines must take it: RE2 so that matching is linear in the (hostile) text,
        Python's because the audit's claim and field checks still use `re` (same syntax)."""
        where = ".".join(map(str, path))
        try:
            re.compile(pattern)
        except (re.error, OverflowError, RecursionError) as exc:
            problems.append((_line_for(lines, path), f"{where}: bad regular expression: {exc}"))
            return False
        try:
            compile_user_regex(pattern)
        except UnsafeRegex as exc:
            problems.append((_line_for(lines, path),
                             f"{where}: regular expression not supported by the linear-time engine (RE2): "
                             f"{exc}; backreferences and lookaround are not allowed"))
            return False
        return True

    for i, pattern in enumerate(data["match"].get("paths", [])):
        if pattern.startswith("re:"):
            check_regex(pattern[3:], ("match", "paths", i))
    known_params = claim_checks.params()
    for i, claim in enumerate(data.get("claims", [])):
        base = ("claims", i)
        check = claim_checks.get(claim["check"])
        if check is None:  # (the format's schema names every registered check)
            continue
        for param, spec in check.params.items():
            if spec.required and param not in claim:
                problems.append((_line_for(lines, base), f"claims.{i}: check {check.name} needs '{param}'"))
        # Any claim may carry any check's parameter: a regular expression is checked wherever it
        # is, and the check's own problems see only the expressions that compiled.
        bad = {param for param, spec in known_params.items()
               if spec.regex and param in claim and not check_regex(claim[param], base + (param,))}
        for param, message in check.problems({k: v for k, v in claim.items() if k not in bad}):
            problems.append((_line_for(lines, base + (param,)), f"claims.{i}.{param}: {message}"))

    def walk(tree: Any, path: tuple[Any, ...]) -> None:
        if not isinstance(tree, dict):
            return
        for name, spec in tree.items():
            if not isinstance(spec, dict):
                continue
            if "pattern" in spec:
                check_regex(spec["pattern"], path + (name, "pattern"))
            walk(spec.get("fields"), path + (name, "fields"))
            for sub in ("items", "values"):
                if isinstance(spec.get(sub), dict):
                    walk({"*": spec[sub]}, path + (name,))

    walk(data.get("declared"), ("declared",))
    walk(data.get("envelope"), ("envelope",))
    payload = data["payload"]
    if payload.get("root") and payload.get("items"):
        problems.append((_line_for(lines, ("payload",)), "payload: use either 'root' or 'items', not both"))
    if data["match"].get("transport") == "websocket" and payload["location"] != "ws-message":
        problems.append((_line_for(lines, ("payload", "location")),
                         "payload.location: a websocket policy reads 'ws-message'"))
    return problems


def policy_from_data(data: dict[str, Any], origin: str, builtin: bool = False) -> Policy:
    """A policy from its validated data (`Policy.raw`): how another process rebuilds a catalogue."""
    return _build(data, origin, builtin)


def _build(data: dict[str, Any], origin: str, builtin: bool) -> Policy:
    match = data["match"]
    payload = data["payload"]
    source = data["source"]
    source_citation = Citation(document=source.get("document", ""), title=source.get("title", ""),
                               url=source.get("url", ""))
    def condition(cond: dict[str, Any]) -> ShapeCondition:
        if "any" in cond:
            return ShapeCondition(path="", any_of=tuple(condition(c) for c in cond["any"]))
        return ShapeCondition(
            path=cond["path"], equals=cond.get("equals"), has_equals="equals" in cond,
            one_of=tuple(cond["in"]) if "in" in cond else None, exists=cond.get("exists"))

    shape = [condition(cond) for cond in match.get("shape", [])]
    policy = Policy(
        id=data["id"], vendor=data["vendor"], product=data["product"], source=source_citation,
        transport=match.get("transport", "http"),
        hosts=tuple(h.lower() for h in match["hosts"]),
        methods=tuple(m.upper() for m in match.get("methods", [])),
        paths=tuple(match.get("paths", [])),
        shape=tuple(shape), priority=int(match.get("priority", 0)),
        location=payload["location"], encoding=tuple(payload["encoding"]),
        encoding_citation=None, root=payload.get("root"), items=payload.get("items"),
        declared=data.get("declared") or {}, envelope=data.get("envelope"),
        additional=bool(data.get("additional", False)),
        claims=(), opt_out=tuple(data.get("opt_out", [])), notes=data.get("notes", ""),
        origin=origin, raw=data, builtin=builtin, sinkhole=data.get("sinkhole"),
        collector=data.get("collector"),
    )
    policy.encoding_citation = policy.cite(payload["encoding_cite"]) if payload.get("encoding_cite") else None
    policy.claims = tuple(
        ClaimSpec(check=c["check"], citation=policy.cite(c.get("cite")),
                  params={k: v for k, v in c.items() if k not in ("check", "cite")})
        for c in data.get("claims", [])
    )
    return policy


def _read_policy_file(path: Path) -> str:
    """A policy file's text: a regular file (a FIFO would block the read forever, a device
    never end) of at most MAX_POLICY_BYTES, UTF-8."""
    try:
        return read_regular(path, MAX_POLICY_BYTES).decode("utf-8")
    except OSError as exc:
        raise PolicyError(str(path), [(None, f"cannot read: {exc.strerror or exc}")]) from None
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [(None, f"not UTF-8 text (byte {exc.start})")]) from None


def load_policy_file(path: Path, builtin: bool = False) -> Policy:
    """Read and parse a file of one policy."""
    return parse_policy_text(_read_policy_file(path), str(path), builtin=builtin)


def load_policy_documents(path: Path, builtin: bool = False) -> tuple[list[Policy], list[PolicyError]]:
    """Read a policy file of one or more documents: its valid policies, and the problems of the
    others (see parse_policy_documents). Raises PolicyError when the file cannot be read."""
    return parse_policy_documents(_read_policy_file(path), str(path), builtin=builtin)


def builtin_policy_texts() -> list[tuple[str, str]]:
    folder = resources.files(BUILTIN_PACKAGE)
    return sorted((entry.name, entry.read_text(encoding="utf-8"))
                  for entry in folder.iterdir() if entry.name.endswith((".yaml", ".yml")))

