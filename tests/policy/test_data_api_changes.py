"""Policy writes through the Data API (no HTTP): what a write or delete must keep
working is checked before it is served, found the way Rego reads the files."""

from __future__ import annotations

import asyncio
import json

import pytest

from controller.policy.data_api import DataApi
from controller.policy.sources import PolicyFile, PolicyLoadError

HELPER = PolicyFile("h1.rego", "package helperpkg\n\nf(x) := x + 1\n")
USER = PolicyFile("h2.rego", "package userpkg\n\ny := data.helperpkg.f(1)\n")
RUNAWAY = (
    "import rego.v1\n\nx if {\n\tsome i in numbers.range(1, 100000)\n\tsome j in numbers.range(1, 100000)\n"
    "\ti == j + 1000000000\n}\n"
)


def test_deleting_a_package_another_one_calls_is_refused_at_the_call() -> None:
    async def scenario() -> None:
        with DataApi([HELPER, USER], timeout=2.0) as api:
            assert await api.query("userpkg/y") == 2
            with pytest.raises(PolicyLoadError) as raised:
                await api.delete_policy("h1.rego")
            assert (raised.value.file, raised.value.line) == ("h2.rego", 3)
            assert "calls data.helperpkg.f, which no policy defines as a function" in raised.value.message
            with pytest.raises(PolicyLoadError, match=r"h2\.rego:3"):
                await api.put_policy("h1.rego", "package helperpkg\n\ng(x) := x\n")
            assert [p.path for p in api.policies()] == ["h1.rego", "h2.rego"]
            assert await api.query("userpkg/y") == 2

    asyncio.run(scenario())


@pytest.mark.parametrize("package", ["  package slow4", 'package slow6["a"]'])
def test_a_written_package_is_checked_however_its_package_line_is_written(package: str) -> None:
    async def scenario() -> None:
        with DataApi([HELPER], timeout=1.0) as api:
            with pytest.raises(PolicyLoadError, match="policy-timeout: package slow"):
                await api.put_policy("slow.rego", f"{package}\n{RUNAWAY}")
            assert [p.path for p in api.policies()] == ["h1.rego"]

    asyncio.run(scenario())


def test_an_evaluation_error_is_one_line_at_its_place() -> None:
    async def scenario() -> None:
        with DataApi([PolicyFile("d.rego", "package d\n\nimport rego.v1\n\nz := 1 / input.n\n")]) as api:
            with pytest.raises(Exception) as raised:
                await api.query("d/z", json.loads('{"n": 0}'))
            assert "\n" not in str(raised.value) and str(raised.value).startswith("d.rego:5:")

    asyncio.run(scenario())


@pytest.mark.parametrize(
    "callers",
    [
        [
            PolicyFile("hb.rego", "package hb\n\ng(x) := data.helperpkg.f(x)\n"),
            PolicyFile("ha.rego", "package ha\n\ny := data.hb.g(1)\n"),
        ],
        [PolicyFile("he.rego", "package he\n\nimport data as d\n\ny := d.helperpkg.f(1)\n")],
    ],
    ids=["through-another-package", "through-an-import-alias"],
)
def test_a_function_called_however_indirectly_cannot_be_deleted(callers: list[PolicyFile]) -> None:
    async def scenario() -> None:
        with DataApi([HELPER, *callers], timeout=2.0) as api:
            with pytest.raises(PolicyLoadError, match=r"calls data\.helperpkg\.f, which no policy defines"):
                await api.delete_policy("h1.rego")
            assert api.policy("h1.rego") is not None

    asyncio.run(scenario())


def test_a_start_with_policies_that_load_but_do_not_evaluate_is_refused() -> None:
    clash = PolicyFile("c.rego", 'package c\n\nowner := "a"\n\nowner := "b"\n')
    with pytest.raises(PolicyLoadError, match=r"c\.rego:5:"):
        DataApi([clash], timeout=2.0, check=True)


def test_a_call_reached_only_with_some_input_is_checked_too() -> None:
    """Evaluating with no input never reaches it: the call is resolved when policies load."""
    text = "package hg\n\nimport rego.v1\nimport data.helperpkg as h\n\nz := h.f(input.q) if input.q\n"
    guarded = PolicyFile("hg.rego", text)

    async def scenario() -> None:
        with DataApi([HELPER, guarded], timeout=2.0) as api:
            assert await api.query("hg/z", {"q": 1}) == 2
            with pytest.raises(PolicyLoadError, match=r"hg\.rego:6:.*calls data\.helperpkg\.f"):
                await api.delete_policy("h1.rego")

    asyncio.run(scenario())
