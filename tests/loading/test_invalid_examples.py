"""One invalid example per error message: the exact message at the exact position.

Each file in tests/invalid/ starts with ``# expect: LINE:COL RULE MESSAGE``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.loading import load

INVALID = sorted((Path(__file__).resolve().parents[1] / "invalid").glob("*.yaml"))


def _expectation(path: Path) -> tuple[int, int, str, str]:
    first = path.read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("# expect: "), f"{path} must start with '# expect: LINE:COL RULE MESSAGE'"
    position, rule, message = first.removeprefix("# expect: ").split(" ", 2)
    line, col = position.split(":")
    return int(line), int(col), rule, message


def test_every_rule_has_an_invalid_example() -> None:
    from controller.api.findings import RULES

    covered = {_expectation(p)[2] for p in INVALID}
    # io-error and file-too-large need conditions a committed file cannot have (see test_loader.py);
    # the policy rules are exercised in tests/policy.
    policy = {
        "policy-engine-error",
        "policy-timeout",
        "policy-memory",
        "policy-not-decided",
        "waiver-expired",
        "waiver-unknown-rule",
        "waiver-too-long",
        "waiver-not-yet-approved",
        "waiver-without-approver",
    }
    assert set(RULES) - covered == {"io-error", "file-too-large", *policy}


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_example_reports_exact_message_and_position(path: Path) -> None:
    line, col, rule, message = _expectation(path)
    relative = path.relative_to(Path.cwd())
    result = load([str(relative)])
    found = [(f.location.line, f.location.column, f.rule, f.message) for f in result.findings]
    assert (line, col, rule, message) in found, f"got {found}"
    assert all(f.location.file == str(relative) for f in result.findings)
