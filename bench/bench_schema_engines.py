"""Schema engines on the wire payloads: the compiled check (core/fastcheck), jsonschema, jsonschema-rs.

    .venv/bin/python bench/bench_schema_engines.py [--repeat 200] [--mutations 3000]

Times listing every error of each built-in channel's decoded wire payload against its policy's
schema (µs per payload, the median of 5 batches, engines alternated), and compares the errors
each engine reports with jsonschema's — keyword, instance path, instance — over the wire payloads
and random mutations of them: as multisets, and in order (the order the auditor's findings take).
jsonschema-rs is optional (`pip install jsonschema-rs`): without it, its columns are skipped.
It is given the policies' own format checks (Python callables) so that formats mean the same.
Reports; never fails (exit 0).
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from inspector.core.fastcheck import SchemaError, compile_errors
from inspector.core.pipeline import Pipeline
from inspector.core.policy import FORMAT_CHECKER, Catalogue
from inspector.core.policy.schema import FORMATS
from inspector.emit.channels import observation_of, wire_requests

try:
    import jsonschema_rs  # type: ignore[import-not-found]
except ImportError:  # optional: measured when installed
    jsonschema_rs = None


def per_call_us(func: Callable[[], Any], repeat: int) -> float:
    """Median of 5 batches, µs per call."""
    batches = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(repeat):
            func()
        batches.append((time.perf_counter() - started) / repeat)
    return statistics.median(batches) * 1e6


def wire_payloads(catalogue: Catalogue) -> list[tuple[str, Any]]:
    pipeline = Pipeline(catalogue)
    pairs = []
    for request in wire_requests():
        for obs in observation_of(request):
            event = pipeline.process(obs)
            if event.policy and isinstance(event.decoded, (dict, list)):
                pairs.append((event.policy, event.decoded))
    return pairs


def rs_validator(schema: dict[str, Any]) -> Any:
    """jsonschema-rs with the policies' formats (the same checks as FORMAT_CHECKER)."""
    formats = {name: (lambda value, name=name: FORMAT_CHECKER.conforms(value, name)) for name in FORMATS}
    return jsonschema_rs.Draft202012Validator(schema, formats=formats, validate_formats=True)


def rs_as_auditor_reads(validator: Any, schema: dict[str, Any]) -> Callable[[Any], list[SchemaError]]:
    """jsonschema-rs's errors with the fields the auditor reads (keyword, its value, the schema
    holding it, the instance and its path), as core/fastcheck gives them."""
    def errors(value: Any) -> list[SchemaError]:
        out = []
        for e in validator.iter_errors(value):
            node, path = schema, e.schema_path
            for part in path[:-1]:
                node = node[part]
            out.append(SchemaError(path[-1], node[path[-1]], e.instance, node, tuple(e.instance_path), e.message))
        return out
    return errors


def key_of(keyword: str, path: Any, instance: Any) -> tuple[str, str, str]:
    return keyword, repr(tuple(path)), repr(instance)


def reference_errors(validator: Any, value: Any) -> list[tuple[str, str, str]]:
    return [key_of(e.validator, e.absolute_path, e.instance) for e in validator.iter_errors(value)]


def fast_errors(errors: Callable[[Any], list[Any]], value: Any) -> list[tuple[str, str, str]]:
    return [key_of(e.validator, e.absolute_path, e.instance) for e in errors(value)]


def rs_errors(validator: Any, value: Any) -> list[tuple[str, str, str]]:
    # the keyword is the schema path's last part (`properties.a.type` → type)
    return [key_of(str(e.schema_path[-1]), e.instance_path, e.instance) for e in validator.iter_errors(value)]


def mutate(value: Any, rnd: random.Random) -> Any:
    """Add, drop or replace a member somewhere in a copy of `value`."""
    value = copy.deepcopy(value)
    nodes: list[tuple[tuple[Any, ...], Any]] = []
    stack: list[tuple[tuple[Any, ...], Any]] = [((), value)]
    while stack:
        path, node = stack.pop()
        nodes.append((path, node))
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend(((*path, k), child) for k, child in children)
    new = rnd.choice([0, 1, 1.0, -1, 1e300, True, False, None, "", "x", "2020-01-01T00:00:00Z", "a@b.c", "10.0.0.1",
                      "0" * 64, [1, "a"], {"k": 1}, 2 ** 70])
    for _ in range(rnd.randint(1, 3)):
        path, node = rnd.choice(nodes)
        op = rnd.choice(["add", "drop", "set"])
        if op == "add" and isinstance(node, dict):
            node[rnd.choice(["extra", "userId", "email", "k"])] = new
        elif op == "drop" and isinstance(node, dict) and node:
            node.pop(rnd.choice(sorted(node, key=str)))
        elif op == "set" and path:
            parent = value
            try:
                for part in path[:-1]:
                    parent = parent[part]
                parent[path[-1]] = new
            except (KeyError, IndexError, TypeError):
                pass
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=200)
    parser.add_argument("--mutations", type=int, default=3000)
    args = parser.parse_args()
    catalogue = Catalogue.load()
    pairs = wire_payloads(catalogue)
    policies = {p.id: p for p in catalogue.policies}
    fast = {pid: compile_errors(policies[pid].schema, FORMAT_CHECKER.conforms) for pid, _ in pairs}
    rs = {pid: rs_validator(policies[pid].schema) for pid, _ in pairs} if jsonschema_rs else {}
    print(f"schema engines: {len(pairs)} wire payloads of {len(fast)} policies; "
          f"jsonschema-rs {getattr(jsonschema_rs, '__version__', 'installed') if jsonschema_rs else 'not installed'}")

    engines: dict[str, Callable[[str, Any], Any]] = {
        "fastcheck": lambda pid, v: fast[pid](v),
        "jsonschema": lambda pid, v: list(policies[pid].validator.iter_errors(v)),
    }
    if rs:
        adapted = {pid: rs_as_auditor_reads(rs[pid], policies[pid].schema) for pid in rs}
        engines["jsonschema-rs"] = lambda pid, v: list(rs[pid].iter_errors(v))
        engines["jsonschema-rs as the auditor reads it"] = lambda pid, v: adapted[pid](v)
        engines["jsonschema-rs is_valid"] = lambda pid, v: rs[pid].is_valid(v)
    figures: dict[str, list[float]] = {name: [] for name in engines}
    for pid, value in pairs:
        for name, run in engines.items():
            figures[name].append(per_call_us(lambda: run(pid, value), args.repeat))  # noqa: B023 - timed here
    invalid = sum(1 for pid, value in pairs if fast[pid](value))
    print(f"schema engines: {invalid} of the {len(pairs)} wire payloads have errors")
    print("schema engines: µs per payload (every error listed), mean over the payloads: " + ", ".join(
        f"{name} {statistics.mean(v):.0f}" for name, v in figures.items()))
    base = statistics.mean(figures["fastcheck"])
    print("schema engines: ratio to fastcheck: " + ", ".join(
        f"{name} {statistics.mean(v) / base:.2f}" for name, v in figures.items()))

    rnd = random.Random(2024)
    samples = [(pid, value) for pid, value in pairs]
    samples += [(pid, mutate(value, rnd)) for pid, value in (rnd.choice(pairs) for _ in range(args.mutations))]
    tallies = {"fastcheck": [0, 0, 0], "jsonschema-rs": [0, 0, 0]}  # same multiset, same order, raised
    examples: dict[str, list[str]] = {"fastcheck": [], "jsonschema-rs": []}
    for pid, value in samples:
        want = reference_errors(policies[pid].validator, value)
        # (each called within this iteration)
        got_by = {"fastcheck": lambda: fast_errors(fast[pid], value)}  # noqa: B023
        if rs:
            got_by["jsonschema-rs"] = lambda: rs_errors(rs[pid], value)  # noqa: B023
        for name, get in got_by.items():
            try:
                got = get()
            except Exception as exc:  # noqa: BLE001 - counted: an engine that cannot take the value
                tallies[name][2] += 1
                if len(examples[name]) < 3:
                    examples[name].append(f"{pid}: raised {type(exc).__name__}: {str(exc)[:100]}")
                continue
            tallies[name][0] += sorted(got) == sorted(want)
            tallies[name][1] += got == want
            if sorted(got) != sorted(want) and len(examples[name]) < 3:
                extra, missing = sorted(set(got) - set(want)), sorted(set(want) - set(got))
                examples[name].append(f"{pid}: extra {extra[:2]}, missing {missing[:2]}"[:300])
    for name, (same, ordered, raised) in tallies.items():
        if name == "jsonschema-rs" and not rs:
            continue
        print(f"schema engines: {name}: the same errors as jsonschema on {same}/{len(samples)} payloads "
              f"(in the same order on {ordered}); raised on {raised}")
        for line in examples[name]:
            print(f"schema engines:   e.g. {line}")


if __name__ == "__main__":
    main()
