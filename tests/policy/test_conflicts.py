"""Rules that cannot stand together are refused when policies load, at the later
definition, as OPA refuses them (regorus alone would accept them and fail, or answer
one of them, when queried)."""

from __future__ import annotations

import pytest

from controller.policy.embedded import EmbeddedEngine
from controller.policy.sources import BUILTIN, PolicyFile, PolicyLoadError, discover

H = "package x\n\nimport rego.v1\n\n"


@pytest.mark.parametrize(
    ("first", "second", "message"),
    [
        ("default allow := true\n", "default allow := false\n", "multiple default rules for data.x.allow"),
        ("allow := true\n", 'allow contains "a"\n', "defined as a set (contains) here and as a single value"),
        ('o[k] := 1 if k := "a"\n', "o := 1\n", "defined as a single value here and as an object"),
        ("f(a) := a\n", "f := 1\n", "defined as a single value here and as a function of 1 argument"),
        ("f(a) := a\n", "f(a, b) := a\n", "function of 2 argument(s) here and as a function of 1"),
        ("p := 1\n", "p.q.r := 1\n", "rule data.x.p (a.rego:5:1) conflicts with rule data.x.p.q.r"),
    ],
    ids=["two-defaults", "value-and-set", "object-and-value", "function-and-value", "arities", "extended-rule"],
)
def test_conflicting_definitions_are_refused_at_the_later_one(first: str, second: str, message: str) -> None:
    with pytest.raises(PolicyLoadError) as raised:
        EmbeddedEngine([PolicyFile("a.rego", H + first), PolicyFile("b.rego", H + second)])
    assert (raised.value.file, raised.value.line, raised.value.column) == ("b.rego", 5, 1)
    assert message in raised.value.message


def test_a_rule_that_a_package_extends_is_refused() -> None:
    with pytest.raises(PolicyLoadError, match=r"rule data\.x\.y conflicts with package x\.y") as raised:
        EmbeddedEngine([PolicyFile("a.rego", H + "y := 1\n"), PolicyFile("b.rego", "package x.y\n")])
    assert (raised.value.file, raised.value.line) == ("a.rego", 5)


@pytest.mark.parametrize(
    "rules",
    [
        "allow := true if input.a\nallow := false if input.b\ndefault allow := false\n",  # one rule, many definitions
        "p.q.r := 1\np.q.s := 2\n",  # rules adding keys to one object
        'o[k] := 1 if k := "a"\no.z := 2\n',
        "f(a) := 1 if a > 0\nf(a) := 2 if a <= 0\ndefault f(_) := 0\n",
        "s contains 1\ns contains 2\n",
        "a := 1 if input.x\nelse := 2\n",
    ],
    ids=["incremental", "ref-heads", "object-and-key", "function-clauses", "set", "else"],
)
def test_rules_that_stand_together_load(rules: str) -> None:
    EmbeddedEngine([PolicyFile("a.rego", H + rules)])


def test_the_library_and_this_repos_policies_load() -> None:
    engine = EmbeddedEngine(discover([BUILTIN, "policies"]))
    assert {r.package for r in engine.rules()} >= {"models", "common", "platform"}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("x := " + "[" * 30 + "1" + "]" * 30 + "\n", (5, 18)),
        ("x := " + '{"a": ' * 20 + "1" + "}" * 20 + "\n", (5, 78)),
    ],
    ids=["arrays", "objects"],
)
def test_deep_nesting_is_refused_before_it_is_parsed(text: str, where: tuple[int, int]) -> None:
    """regorus parses nested brackets in time doubling per level (30 deep: hours): the
    text is refused at the bracket, in no time."""
    import time

    started = time.monotonic()
    with pytest.raises(PolicyLoadError, match="nested more than 12 deep") as raised:
        EmbeddedEngine([PolicyFile("deep.rego", H + text)])
    assert (raised.value.line, raised.value.column) == where
    assert time.monotonic() - started < 1


def test_brackets_in_strings_and_comments_do_not_count() -> None:
    EmbeddedEngine([PolicyFile("ok.rego", H + "# " + "[" * 40 + '\nx := "' + "{" * 40 + '"\n')])


def test_many_deep_groups_side_by_side_are_refused_too() -> None:
    """Each 11 deep (under the depth limit), but parsing cost grows with their number."""
    inner = "[" * 11 + "1" + "]" * 11
    many = "".join(f"x{i} := {inner}\n" for i in range(40))
    with pytest.raises(PolicyLoadError, match="too many deeply nested brackets to parse in time"):
        EmbeddedEngine([PolicyFile("many.rego", H + many)])
    EmbeddedEngine([PolicyFile("few.rego", H + "".join(f"x{i} := {inner}\n" for i in range(4)))])
