"""Attacks on ``modelplane serve caller``: what a caller's groups may be.

Written to demonstrate a problem found by attacking the serving target (issue 9). It is
marked ``xfail`` (strict, on an AssertionError) while the problem is open."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.cli import main


@pytest.mark.parametrize("group", ["b\nc", "a\tb", "x" * 10_000], ids=["newline", "tab", "10000-characters"])
def test_a_group_name_that_is_not_a_name_is_refused_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], group: str
) -> None:
    """Caller names are checked (an identity: letters, digits and ``. _ @ + -``); group names
    are taken as given: a newline in one breaks ``serve caller list`` (a fake line in the
    listing) and ends up in the access policy's input and the audit log."""
    state = str(tmp_path / "state")
    code = main(["serve", "caller", "add", "mallory", "--group", group, "--state-dir", state])
    out, err = capsys.readouterr()
    assert code == 2, f"added with group {group[:20]!r}: {err}"
    assert out == "" and err.count("\n") == 1 and err.startswith("modelplane: ")
