"""Costs an attacker controls are bounded: each hostile input ends as a finding or a one-line
error (exit 2), never a traceback, a hang, or the loss of the rest of the capture.

Caps are tested by what they prevent (no decryption attempted, the key not tried), not by how
long something took; the linear-time tests run inputs that took seconds to minutes before,
under a generous pytest timeout.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import re._constants as sre_constants
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from jwcrypto import jwe, jwk

from inspector.capture.load import CaptureError, load_capture
from inspector.cli.main import cli
from inspector.core import decode as decode_module
from inspector.core import discover, pii
from inspector.core import policy as policy_module
from inspector.core.decode import Budget, Decoder, Limits
from inspector.core.keys import KeyLoadError, Keyring, LoadedKey, load_key_file
from inspector.core.observation import Observation
from inspector.core.pipeline import Pipeline
from inspector.core.policy import Catalogue, PolicyError, parse_policy_text, path_matches

re_parser = pytest.importorskip("re._parser")

PAYLOAD = b'{"event": "x", "n": 1}'

GOOD_POLICY = """\
id: demo
vendor: V
product: P
source: {document: d}
match:
  hosts: [telemetry.example]
  paths: ["re:/v[0-9]+/t"]
payload: {location: body, encoding: [json]}
declared:
  event: {type: string}
  n: {type: integer}
"""

LAUGHS = 'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{','.join([f'*{chr(97 + i)}'] * 9)}]\n" for i in range(8))


# ---------------------------------------------------------------- helpers

def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI in-process; an exception other than SystemExit (exit 3 from main) fails."""
    result = CliRunner().invoke(cli, list(args), env=env or {"TELEMETRY_INSPECTOR_KEYS": ""})
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


def error_line(result: Result) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def rsa_key(kid: str = "k") -> jwk.JWK:
    return jwk.JWK.generate(kty="RSA", size=2048, kid=kid)


@pytest.fixture(scope="module")
def key() -> jwk.JWK:
    return rsa_key("mine")


@pytest.fixture
def key_file(tmp_path: Path, key: jwk.JWK) -> Path:
    path = tmp_path / "mine.json"
    path.write_text(key.export_private())
    return path


class Counting:
    """Counts calls of jwcrypto's JWE.decrypt (every attempt with one key goes through it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        original = jwe.JWE.decrypt

        def counted(token: jwe.JWE, *args: Any, **kwargs: Any) -> Any:
            self.calls += 1
            return original(token, *args, **kwargs)

        monkeypatch.setattr(jwe.JWE, "decrypt", counted)


def general_jwe(recipient_key: jwk.JWK, extra_recipients: int) -> dict[str, Any]:
    """A general-form JWE: `extra_recipients` that no key opens, then one for `recipient_key`."""
    token = jwe.JWE(PAYLOAD, json.dumps({"enc": "A256GCM"}), algs=["RSA-OAEP-256", "A256GCM"])
    token.add_recipient(recipient_key, json.dumps({"alg": "RSA-OAEP-256", "kid": "mine"}))
    token.add_recipient(recipient_key, json.dumps({"alg": "RSA-OAEP-256", "kid": "mine"}))
    data = json.loads(token.serialize())
    filler = {"encrypted_key": base64.urlsafe_b64encode(b"\0" * 256).rstrip(b"=").decode(),
              "header": {"alg": "RSA-OAEP-256"}}
    data["recipients"] = [filler] * extra_recipients + data["recipients"][:1]
    return data


class FakeClock:
    """A clock that moves `step` seconds each time it is read."""

    def __init__(self, step: float) -> None:
        self.now = 0.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now


# ---------------------------------------------------------------- 1. JWE caps and the decode budget

@pytest.mark.slow
def test_a_jwe_with_40000_recipients_is_refused_without_a_decryption(key, key_file, monkeypatch):
    counting = Counting(monkeypatch)
    token = general_jwe(key, extra_recipients=40_000)
    decoded = Decoder(Keyring.from_paths([key_file])).decode(json.dumps(token).encode())
    assert counting.calls == 0
    assert decoded.value is None
    assert [i.code for i in decoded.issues] == ["decode-error"]
    assert "40001 recipients, more than the 8 allowed" in decoded.issues[0].message
    assert decoded.jwe == {"enc": "A256GCM"}  # the header is still shown


def test_a_jwe_at_the_recipient_cap_still_opens(key, key_file):
    token = general_jwe(key, extra_recipients=7)  # 8 in all, ours last
    decoded = Decoder(Keyring.from_paths([key_file])).decode(json.dumps(token).encode())
    assert decoded.value == json.loads(PAYLOAD)
    refused = Decoder(Keyring.from_paths([key_file]), Limits(max_jwe_recipients=7)).decode(
        json.dumps(token).encode())
    assert refused.value is None and "more than the 7 allowed" in refused.issues[0].message


def pbes2_token(password: jwk.JWK, p2c: Any) -> str:
    header = {"alg": "PBES2-HS256+A128KW", "enc": "A128GCM", "p2c": p2c, "kid": "pw"}
    token = jwe.JWE(PAYLOAD, json.dumps(header), algs=["PBES2-HS256+A128KW", "A128GCM"])
    token.add_recipient(password)
    return token.serialize(compact=True)


@pytest.fixture
def password_ring(tmp_path: Path) -> tuple[jwk.JWK, Keyring]:
    password = jwk.JWK.generate(kty="oct", size=256, kid="pw")
    (tmp_path / "pw.json").write_text(password.export())
    return password, Keyring.from_paths([tmp_path / "pw.json"])


def test_pbes2_iteration_counts_above_the_cap_are_refused_untried(password_ring, monkeypatch):
    password, ring = password_ring
    counting = Counting(monkeypatch)
    decoded = Decoder(ring).decode(pbes2_token(password, 16_000).encode())  # jwcrypto's own cap: 16384
    assert counting.calls == 0
    assert [i.code for i in decoded.issues] == ["decode-error"]
    assert "16000 PBKDF2 iterations (p2c), more than the 10000 allowed" in decoded.issues[0].message
    # a forged header with a count that is no integer is refused too
    head, rest = pbes2_token(password, 1000).split(".", 1)
    forged = json.loads(base64.urlsafe_b64decode(head + "=="))
    forged["p2c"] = 1e30
    forged_head = base64.urlsafe_b64encode(json.dumps(forged).encode()).rstrip(b"=").decode()
    decoded = Decoder(ring).decode(f"{forged_head}.{rest}".encode())
    assert counting.calls == 0 and "invalid iteration count" in decoded.issues[0].message


def test_pbes2_below_the_cap_still_opens(password_ring):
    password, ring = password_ring
    assert Decoder(ring).decode(pbes2_token(password, 1000).encode()).value == json.loads(PAYLOAD)


def test_the_decode_budget_stops_between_layers():
    data = PAYLOAD
    for _ in range(5):
        data = base64.b64encode(data)
    assert Decoder().decode(data).value == json.loads(PAYLOAD)
    # each look at the clock costs 1 s of a 2.5 s budget: the third layer is not started
    decoded = Decoder().decode(data, budget=Budget(2.5, clock=FakeClock(1.0)))
    assert decoded.value is None
    assert [i.code for i in decoded.issues] == ["decode-error"]
    assert "budget of 2.5 s" in decoded.issues[0].message
    assert len(decoded.layers) == 3  # body + the two base64 layers peeled in time


def test_the_decode_budget_stops_between_key_attempts(key, tmp_path, monkeypatch):
    for i in range(6):
        (tmp_path / f"other{i}.json").write_text(jwk.JWK.generate(kty="EC", crv="P-256", kid=f"e{i}").export_private())
    ring = Keyring.from_paths([tmp_path])
    assert len(ring) == 6
    token = jwe.JWE(PAYLOAD, json.dumps({"alg": "RSA-OAEP-256", "enc": "A256GCM"}), algs=["RSA-OAEP-256", "A256GCM"])
    token.add_recipient(key)
    compact = token.serialize(compact=True).encode()
    counting = Counting(monkeypatch)
    assert [i.code for i in Decoder(ring).decode(compact).issues] == ["unverifiable-encrypted"]
    assert counting.calls == 6  # without a deadline every key is tried
    counting.calls = 0
    decoded = Decoder(ring).decode(compact, budget=Budget(4.5, clock=FakeClock(1.0)))
    assert 0 < counting.calls < 6
    assert [i.code for i in decoded.issues] == ["decode-error"]
    assert "time budget exceeded after trying" in decoded.issues[0].message


def test_the_default_budget_comes_from_the_limits():
    decoded = Decoder(limits=Limits(max_decode_seconds=-1.0)).decode(base64.b64encode(PAYLOAD))
    assert "budget of -1 s" in decoded.issues[0].message


# ---------------------------------------------------------------- 2. linear built-in patterns

ANY_CHAR = frozenset(range(257))  # 0–255, and 256 for "any character above U+00FF"


def _category_chars(category: Any) -> frozenset[int]:
    probe = {sre_constants.CATEGORY_DIGIT: r"\d", sre_constants.CATEGORY_NOT_DIGIT: r"\D",
             sre_constants.CATEGORY_SPACE: r"\s", sre_constants.CATEGORY_NOT_SPACE: r"\S",
             sre_constants.CATEGORY_WORD: r"\w", sre_constants.CATEGORY_NOT_WORD: r"\W"}.get(category)
    if probe is None:
        return ANY_CHAR
    chars = {c for c in range(256) if re.match(probe, chr(c))}
    return frozenset(chars | {256})  # each of them also matches characters beyond Latin-1


def _item_chars(op: Any, arg: Any) -> frozenset[int] | None:
    """The characters one single-character item can match (None: not a single-character item)."""
    if op is sre_constants.LITERAL:
        return frozenset({min(arg, 256)})
    if op is sre_constants.NOT_LITERAL or op is sre_constants.ANY:
        return ANY_CHAR
    if op is sre_constants.IN:
        chars: set[int] = set()
        negate = False
        for sub_op, sub_arg in arg:
            if sub_op is sre_constants.NEGATE:
                negate = True
            elif sub_op is sre_constants.LITERAL:
                chars.add(min(sub_arg, 256))
            elif sub_op is sre_constants.RANGE:
                low, high = sub_arg
                chars.update(range(min(low, 256), min(high, 256) + 1))
            elif sub_op is sre_constants.CATEGORY:
                chars |= _category_chars(sub_arg)
            else:
                return ANY_CHAR
        return ANY_CHAR - chars | {256} if negate else frozenset(chars)
    return None


def _chars(items: Any) -> frozenset[int]:
    chars: set[int] = set()
    for op, arg in items:
        single = _item_chars(op, arg)
        if single is not None:
            chars |= single
        elif op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            chars |= _chars(arg[2])
        elif op is sre_constants.SUBPATTERN:
            chars |= _chars(arg[-1])
        elif op is sre_constants.BRANCH:
            for branch in arg[1]:
                chars |= _chars(branch)
        elif op is sre_constants.ATOMIC_GROUP:
            chars |= _chars(arg)
    return frozenset(chars)


def _delimited(body: Any) -> bool:
    r"""True when each iteration of a repeated `body` can be told from the next: its first or its
    last item is a single character that nothing else in the body matches (the `.` of
    `(?:\.[a-z]+)*`). Unwraps groups."""
    items = [item for item in body if item[0] not in (sre_constants.AT, sre_constants.ASSERT,
                                                       sre_constants.ASSERT_NOT)]
    while len(items) == 1 and items[0][0] is sre_constants.SUBPATTERN:
        items = list(items[0][1][-1])
    for index in (0, len(items) - 1):
        if not items:
            break
        edge = _item_chars(*items[index])
        if edge is not None and not edge & _chars([item for i, item in enumerate(items) if i != index]):
            return True
    return False


def nested_quantifier_problems(items: Any) -> list[str]:
    r"""Unbounded repeats whose iterations can be split more than one way: `(a+)+`, `(a|aa)+`,
    `(\w+\.?)+` — exponential on a near-match. An unbounded repeat's body must have a fixed
    width or be delimited (see `_delimited`)."""
    problems = []
    for op, arg in items:
        if op in (sre_constants.MAX_REPEAT, sre_constants.MIN_REPEAT, sre_constants.POSSESSIVE_REPEAT):
            _low, high, body = arg
            fixed = body.getwidth()[0] == body.getwidth()[1]
            if high == sre_constants.MAXREPEAT and not fixed and not _delimited(body):
                problems.append(f"unbounded repeat whose iterations can be split several ways: {body}")
            problems.extend(nested_quantifier_problems(body))
        elif op is sre_constants.SUBPATTERN:
            problems.extend(nested_quantifier_problems(arg[-1]))
        elif op is sre_constants.BRANCH:
            for branch in arg[1]:
                problems.extend(nested_quantifier_problems(branch))
        elif op in (sre_constants.ASSERT, sre_constants.ASSERT_NOT):
            problems.extend(nested_quantifier_problems(arg[1]))
        elif op is sre_constants.ATOMIC_GROUP:
            problems.extend(nested_quantifier_problems(arg))
    return problems


def builtin_patterns() -> dict[str, re.Pattern[str]]:
    found: dict[str, re.Pattern[str]] = {}
    for module in (pii, decode_module, discover, policy_module):
        for name, value in vars(module).items():
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found[f"{module.__name__}.{name}"] = value
    for name, value in policy_module._FORMAT_PATTERNS.items():
        found[f"policy format {name}"] = value
    return found


def test_the_structure_check_finds_nested_quantifiers():
    for bad in [r"(a|aa)+x", r"(\w+\.?)+$", r"(?:[a-z]+[0-9]*)*!", r"(x+x+)+y", r"^(a+)+$", r"(?:a*)*b",
                r"(?:[a-z]+\w)+!"]:
        assert nested_quantifier_problems(re_parser.parse(bad)), bad
    for fine in [r"(?:\.[a-z]+)*", r"(?:[a-z]+\.)+com", r"(?:\d{1,3}\.){3}\d", r"hasura( [a-z][a-z0-9-]*)*",
                 r"(?:ab)*", r"[a-z]+@[a-z]+"]:
        assert not nested_quantifier_problems(re_parser.parse(fine)), fine


def test_no_builtin_pattern_nests_quantifiers_over_overlapping_characters():
    patterns = builtin_patterns()
    assert len([n for n in patterns if n.startswith("inspector.core.pii.")]) >= 12
    for name, pattern in patterns.items():
        assert not nested_quantifier_problems(re_parser.parse(pattern.pattern, pattern.flags)), name


ADVERSARIAL = [
    "eyJ-" * 25_000,            # every "eyJ" a JWT start inside one run: was 21 s per MB
    "%a" * 50_000 + "@",        # every letter an e-mail start inside one local part
    "eyJaaaaaaaa." * 8_000 + "eyJ-" * 2_000,
    "a." * 50_000 + "_",        # a host name that never ends in a known TLD
    "1.1.1.1" + "a" * 90_000,
    "1 " * 50_000,
    "Bearer" + " " * 90_000,
    "xoxb-" * 20_000,
    "glpat-" * 16_000 + "!",
]


@pytest.mark.timeout(30)
def test_pii_patterns_are_linear_on_adversarial_text():
    for text in ADVERSARIAL:
        for prefilter in (True, False):
            assert isinstance(pii.scan_text(text, "value", prefilter=prefilter), list)


@pytest.mark.timeout(20)
def test_a_1mb_adversarial_body_is_audited():
    # each value is scanned up to 100,000 characters; these two kinds took 3–5 s per value
    body = json.dumps({"payload": [ADVERSARIAL[0], ADVERSARIAL[1]] * 6 + ["jane@corp.example.com"]}).encode()
    assert len(body) > 1_000_000
    pipeline = Pipeline(Catalogue.load())
    event = pipeline.process(Observation("POST", "https://unknown.example/v1/track", body=body))
    assert event.structured
    assert [(f.code, f.path) for f in event.findings if f.code == "pii"] == [("pii", "payload[12]")]


@pytest.mark.timeout(60)
def test_the_email_format_check_is_linear():
    check = policy_module._FORMAT_PATTERNS["email"]
    assert check.match("a@" + "." * 100_000 + "@") is None  # was quadratic: minutes
    # the same answers as the former `^[^@\s]+@[^@\s]+\.[^@\s]+$`
    former = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    for value in ["a@b.c", "a@.b.c", "a@b.", "a@b..", "a@bc.", "a@.b", "a@b", "a.b@c.d.e", "@b.c", "a@b.c d",
                  "a@b@c.d", "a@x.y.", "a@..", "a@b.c.", "é@ü.ö"]:
        assert bool(check.match(value)) == bool(former.match(value)), value


def test_the_patterns_still_find_what_they_found():
    hits = {(h.kind, h.value) for h in pii.scan_text(
        "mail jane.doe+x@corp.example.com, Bearer abcdefghijklmnop, token=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.c2lnbmF0dXJlLXg, "
        "key ghp_" + "a" * 36 + " and 100%off@shop.io")}
    kinds = {kind for kind, _ in hits}
    assert {"email", "token", "jwt", "api-key"} <= kinds
    assert ("email", "jane.doe+x@corp.example.com") in hits
    assert ("email", "100%off@shop.io") in hits


# ---------------------------------------------------------------- 3. YAML aliases

def test_a_billion_laughs_policy_is_refused_at_its_alias():
    with pytest.raises(PolicyError) as info:
        parse_policy_text(LAUGHS, "laughs.yaml")
    assert info.value.lines() == ["laughs.yaml:2: YAML aliases are not allowed (*a)"]


@pytest.mark.timeout(30)
def test_a_valid_policy_with_a_bomb_in_its_sinkhole_body_is_refused(tmp_path):
    text = GOOD_POLICY + "sinkhole:\n  body:\n" + "".join(f"    {line}\n" for line in LAUGHS.splitlines())
    path = tmp_path / "bomb.yaml"
    path.write_text(text)
    result = invoke("policies", "check", str(path))
    assert result.exit_code == 1
    assert result.stdout.strip() == f"{path}:15: YAML aliases are not allowed (*a)"


def test_merge_keys_are_aliases_too_and_plain_policies_still_load():
    text = GOOD_POLICY.replace("declared:\n", "envelope:\n  shared: &s {type: string}\ndeclared:\n  other: *s\n")
    with pytest.raises(PolicyError, match="aliases are not allowed"):
        parse_policy_text(text, "merge.yaml")
    assert parse_policy_text(GOOD_POLICY, "good.yaml").id == "demo"
    if hasattr(yaml, "CSafeLoader"):
        assert policy_module._Loader is yaml.CSafeLoader  # libyaml's speed is kept


@pytest.mark.slow
def test_deeply_nested_yaml_is_a_policy_problem_not_a_crash(tmp_path):
    # libyaml's composer recurses in C: 100,000 levels overflowed the stack (a segfault)
    flow, block = tmp_path / "flow.yaml", tmp_path / "block.yaml"
    flow.write_text("[" * 100_000 + "]" * 100_000)
    block.write_text("- " * 100_000 + "x\n")
    result = subprocess.run([sys.executable, "-m", "inspector", "policies", "check", str(flow), str(block)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert result.stdout.splitlines() == [f"{flow}:1: YAML nested deeper than 64 levels",
                                          f"{block}:1: YAML nested deeper than 64 levels"]


def test_unconvertible_yaml_scalars_are_policy_problems():
    for text, word in [(GOOD_POLICY.replace("match:", "match:\n  priority: " + "1" * 5000), "digits"),
                       (GOOD_POLICY.replace("source: {document: d}", "source: {document: d, version: 2020-13-45}"),
                        "month")]:
        with pytest.raises(PolicyError) as info:
            parse_policy_text(text, "x.yaml")
        assert word in info.value.lines()[0]


# ---------------------------------------------------------------- 4. user regexes: RE2

@pytest.mark.timeout(20)
def test_re_paths_are_matched_in_linear_time():
    assert path_matches("re:/(a|aa)+x", "/aaax")
    # Python's backtracking engine: ~2^(n/1.4) steps — 42 characters took about a minute
    assert not path_matches("re:/(a|aa)+x", "/" + "a" * 42)
    for _ in range(200):
        assert not path_matches("re:/(a|aa)+x", "/" + "a" * 10_000)
    assert path_matches("re:/v[0-9]+/t", "/v12/t") and not path_matches("re:/v[0-9]+/t", "/v12/tx")


def test_policies_check_refuses_what_re2_cannot_run(tmp_path):
    backref = tmp_path / "backref.yaml"
    backref.write_text(GOOD_POLICY.replace("re:/v[0-9]+/t", r"re:/(a)\\1"))
    lookahead = tmp_path / "lookahead.yaml"
    lookahead.write_text(GOOD_POLICY.replace("event: {type: string}", 'event: {type: string, pattern: "^(?!x)"}'))
    result = invoke("policies", "check", str(backref), str(lookahead))
    assert result.exit_code == 1
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].startswith(f"{backref}:7: match.paths.0: regular expression not supported by the "
                               "linear-time engine (RE2)")
    assert lines[1].startswith(f"{lookahead}:10: declared.event.pattern: regular expression not supported")
    assert "backreferences and lookaround are not allowed" in lines[0]


def test_a_bad_claim_pattern_is_a_problem_not_a_crash():
    text = GOOD_POLICY + 'claims:\n  - {check: anonymised-values, path: event, pattern: "([unclosed"}\n'
    with pytest.raises(PolicyError, match="bad regular expression"):
        parse_policy_text(text, "claim.yaml")


# ---------------------------------------------------------------- 5. FIFOs and devices

@pytest.fixture
def fifo(tmp_path: Path):
    def make(name: str) -> Path:
        path = tmp_path / name
        os.mkfifo(path)
        return path
    return make


@pytest.mark.timeout(20)
def test_a_fifo_in_a_policy_directory_is_skipped_and_the_rest_load(tmp_path, fifo):
    folder = tmp_path / "policies"
    folder.mkdir()
    (folder / "good.yaml").write_text(GOOD_POLICY)
    pipe = fifo("policies/pipe.yaml")
    catalogue = Catalogue.load(builtin=False, paths=[folder])
    assert [p.id for p in catalogue.policies] == ["demo"]
    assert [p.lines() for p in catalogue.problems] == [[f"{pipe}: cannot read: a FIFO (named pipe), not a regular file"]]
    result = invoke("policies", "list", "--policies", str(folder))
    assert result.exit_code == 0 and "demo" in result.stdout
    assert "warning: policy not loaded" in result.stderr and "FIFO" in result.stderr
    result = invoke("policies", "check", str(pipe))
    assert result.exit_code == 1 and result.stdout.strip().endswith("a FIFO (named pipe), not a regular file")


@pytest.mark.timeout(20)
def test_fifo_and_device_captures_are_refused(fifo):
    for path in (fifo("capture.har"), fifo("capture.bin"), Path("/dev/null")):
        with pytest.raises(CaptureError, match="not a regular file"):
            list(load_capture(path))
        result = invoke("audit", str(path))
        assert result.exit_code == 2
        assert error_line(result) == f"error: {path}: {'a character device' if path.name == 'null' else 'a FIFO (named pipe)'}, not a regular file; not read"


@pytest.mark.timeout(20)
def test_fifo_key_files_are_refused_and_skipped_in_a_key_directory(tmp_path, fifo, key):
    pipe = fifo("pipe.json")
    with pytest.raises(KeyLoadError, match="FIFO"):
        load_key_file(pipe)
    result = invoke("keys", "--key", str(pipe))
    assert result.exit_code == 2
    assert error_line(result) == f"error: cannot read key file {pipe}: a FIFO (named pipe), not a regular file"
    (tmp_path / "real.json").write_text(key.export_private())
    assert len(Keyring.from_paths([tmp_path])) == 1  # the FIFO beside it is skipped, not waited on


@pytest.mark.timeout(20)
def test_a_fifo_decode_input_is_refused(fifo):
    result = invoke("decode", str(fifo("payload.bin")))
    assert result.exit_code == 2 and error_line(result).startswith("error: ")


# ---------------------------------------------------------------- 6. hostile values

def test_over_long_integers_and_infinite_floats_are_kept_as_text():
    big = "9" * 5000
    decoded = Decoder().decode(f'{{"a": [1, {big}], "b": {{"c": 1e999, "d": -1e400}}, "e": NaN}}'.encode())
    assert decoded.value == {"a": [1, big], "b": {"c": "1e999", "d": "-1e400"}, "e": "NaN"}
    assert type(decoded.value["a"][1]) is str
    found = {(i.code, i.path) for i in decoded.issues}
    assert found == {("number-out-of-range", "a[1]"), ("number-out-of-range", "b.c"),
                     ("number-out-of-range", "b.d"), ("number-out-of-range", "e")}
    json.dumps(decoded.value, allow_nan=False)  # strict JSON: no Infinity
    bare = Decoder().decode(big.encode())
    assert bare.value == big and [i.code for i in bare.issues] == ["number-out-of-range"]
    assert Decoder().decode(b"1e999").value == "1e999"
    nested = Decoder().decode(json.dumps({"properties": json.dumps({"x": [0, 1e308]}).replace("1e+308", "1e999")}).encode())
    assert nested.value == {"properties": {"x": [0, "1e999"]}}
    assert [(i.code, i.path) for i in nested.issues] == [("number-out-of-range", "properties.x[1]")]


def test_the_audit_reports_out_of_range_numbers_as_warnings():
    pipeline = Pipeline(Catalogue.load())
    event = pipeline.process(Observation("POST", "https://api.segment.io/v1/track",
                                         body=b'{"userId": "u", "n": ' + b"1" * 5000 + b"}"))
    findings = [f for f in event.findings if f.code == "number-out-of-range"]
    assert [(f.severity, f.path) for f in findings] == [("warning", "n")]
    json.dumps(event.to_dict(), allow_nan=False)


def test_lone_surrogates_are_replaced_and_everything_downstream_copes():
    pipeline = Pipeline(Catalogue.load())
    for body in [b'{"name": "a\\ud800b", "\\udc00key": 1}', b'"\\ud800abc"', b'["\\udfff"]']:
        event = pipeline.process(Observation("POST", "https://api.segment.io/v1/track", body=body))
        assert "internal error" not in " ".join(f.message for f in event.findings)
        assert any("lone surrogate" in f.message for f in event.findings), body
        stored = json.dumps(event.to_dict(), ensure_ascii=False)
        stored.encode("utf-8")  # a store or report writing UTF-8 must not fail
        assert "\ud800" not in stored and "\ufffd" in stored
    decoded = Decoder().decode(b'{"name": "a\\ud800b", "ok": "\\ud83d\\ude00"}')
    assert decoded.value == {"name": "a\ufffdb", "ok": "\U0001f600"}  # a proper pair is kept
    form = Decoder().decode(b"a=%ff&b=x", content_type="application/x-www-form-urlencoded")
    assert form.value == {"a": "\ufffd", "b": "x"}
    json.dumps(form.value, ensure_ascii=False).encode("utf-8")


def write_har(path: Path, entries: list[str]) -> Path:
    path.write_text('{"log": {"version": "1.2", "entries": [' + ",".join(entries) + "]}}")
    return path


def har_entry(url: str, body: str = "", extra: str = "") -> str:
    post = f', "postData": {{"mimeType": "application/json", "text": {json.dumps(body)}}}' if body else ""
    return f'{{"request": {{"method": "POST", "url": {json.dumps(url)}, "headers": []{post}}}{extra}}}'


def test_a_har_entry_with_an_unparsable_url_is_a_problem_and_the_others_are_audited(tmp_path):
    har = write_har(tmp_path / "cap.har", [
        har_entry("https://api.segment.io/v1/track", '{"a": 1}'),
        har_entry("https://a[/b]x/p", '{"a": 2}'),
        har_entry("https://api.segment.io:99999/v1/track", '{"a": 3}'),
        '"not an entry"',
        har_entry("https://api.segment.io/v1/batch", '{"a": 4}'),
    ])
    problems: list[str] = []
    sources = [obs.source for obs in load_capture(har, on_problem=problems.append)]
    assert sources == ["cap.har#0", "cap.har#4"]
    assert problems == ["cap.har#1: URL does not parse (Invalid IPv6 URL); entry skipped",
                        "cap.har#2: URL does not parse (Port out of range 0-65535); entry skipped",
                        "cap.har#3: not a HAR entry (no request object); skipped"]
    result = invoke("audit", str(har), "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0
    assert len(json.loads(result.stdout)["events"]) == 2
    assert result.stderr.splitlines()[0] == "warning: cap.har#1: URL does not parse (Invalid IPv6 URL); entry skipped"


def test_hostile_numbers_and_surrogates_in_a_har_lose_no_entry(tmp_path):
    big = "7" * 5000
    har = write_har(tmp_path / "numbers.har", [
        har_entry("https://api.segment.io/v1/track", '{"n": ' + big + "}",
                  ', "response": {"status": ' + big + '}, "startedDateTime": 1e999'),
        har_entry("https://api.segment.io/v1/track", '{"s": "\\ud800"}',
                  ', "response": {"status": 1e999, "headers": [{"name": "X\\ud800", "value": 2}]}'),
        har_entry("https://api.segment.io/v1/t\\udc80rack", '{"c": 3}'),
    ])
    observations = list(load_capture(har))
    assert len(observations) == 3
    assert [o.response_status for o in observations] == [None, None, None]
    result = invoke("audit", str(har), "--format", "json", "--fail-on", "never")
    assert result.exit_code == 0
    events = json.loads(result.stdout)["events"]
    assert len(events) == 3
    codes = [{f["code"] for f in e["findings"]} for e in events]
    assert "number-out-of-range" in codes[0]


def test_a_deeply_nested_key_file_is_one_line_exit_2(tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(KeyLoadError, match="nested too deeply"):
        load_key_file(deep)
    result = invoke("keys", "--key", str(deep))
    assert result.exit_code == 2
    assert error_line(result) == (f"error: {deep}: not a readable JWK, JWK Set or PEM private key "
                                  "(nested too deeply)")
    audit = invoke("audit", "--key", str(deep), str(deep))
    assert audit.exit_code == 2 and "nested too deeply" in error_line(audit)


def test_cli_decode_of_hostile_values_never_crashes(tmp_path):
    for name, data in [("big.txt", b"1" * 5000), ("inf.json", b'{"x": 1e999}'), ("sur.json", b'"\\ud800"'),
                       ("nan.json", b"[NaN, -Infinity]")]:
        path = tmp_path / name
        path.write_bytes(data)
        for extra in ((), ("--json",)):
            result = invoke("decode", str(path), *extra)
            assert result.exit_code == 0, (name, result.output)
            assert "Infinity" not in result.stdout.replace("-Infinity", "").replace('"Infinity"', "") or name == "nan.json"
            assert "number-out-of-range" in result.stdout or "lone surrogate" in result.stdout


# ---------------------------------------------------------------- 7. symmetric key tags

def test_symmetric_keys_are_never_shown_by_a_plain_hash_of_their_secret(tmp_path):
    secret = jwk.JWK.generate(kty="oct", size=256)  # no kid: identified by the tag alone
    (tmp_path / "sym.json").write_text(secret.export())
    ring = Keyring.from_paths([tmp_path / "sym.json"])
    plain = secret.thumbprint()  # RFC 7638: SHA-256 over {"k": <secret>, "kty": "oct"}
    material = json.loads(secret.export())["k"]
    described = ring.describe()[0]
    shown = described["thumbprint"]
    assert shown.startswith("salted:") and len(shown) == len("salted:") + 16
    assert plain not in json.dumps(described) and material not in json.dumps(described)
    assert plain[:8] not in repr(ring)
    assert hashlib.sha256(base64.urlsafe_b64decode(material + "==")).hexdigest()[:16] not in shown
    assert shown == Keyring.from_paths([tmp_path / "sym.json"]).describe()[0]["thumbprint"]  # stable in a run
    result = invoke("keys", "--key", str(tmp_path / "sym.json"))
    assert result.exit_code == 0 and plain not in result.stdout and material not in result.stdout
    # the key that opened a payload is recorded by the same tag
    token = jwe.JWE(PAYLOAD, json.dumps({"alg": "A256KW", "enc": "A128CBC-HS256"}), algs=["A256KW", "A128CBC-HS256"])
    token.add_recipient(secret)
    decoded = Decoder(ring).decode(token.serialize(compact=True).encode())
    assert decoded.layers[1].detail["key"] == shown
    # asymmetric keys keep their RFC 7638 thumbprint (a hash of public values)
    rsa = LoadedKey(rsa_key(), "x")
    assert rsa.describe()["thumbprint"] == rsa.key.thumbprint()


def test_the_salt_differs_between_processes(tmp_path):
    secret = jwk.JWK.generate(kty="oct", size=256)
    (tmp_path / "sym.json").write_text(secret.export())
    code = ("import sys; from pathlib import Path; from inspector.core.keys import Keyring; "
            "print(Keyring.from_paths([Path(sys.argv[1])]).describe()[0]['thumbprint'])")
    tags = {subprocess.run([sys.executable, "-c", code, str(tmp_path / "sym.json")], capture_output=True,
                           text=True, timeout=60, check=True).stdout.strip() for _ in range(2)}
    assert len(tags) == 2
