"""``modelplane policy test``: the library's own tests pass; a broken one fails."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from controller.policy.sources import PolicyFile
from controller.policy.testing import run_tests

EXE = Path(sys.executable).with_name("modelplane")


def test_library_tests_all_pass_with_full_coverage(library: list[PolicyFile]) -> None:
    run = run_tests(library)
    assert len(run.results) >= 50
    assert run.failed == []
    assert run.exit_code == 0
    assert run.coverage_percent() is not None and run.coverage_percent() >= 95


def test_a_broken_policy_test_fails_the_run(platform: Path) -> None:
    broken = platform / "policies" / "platform_test.rego"
    broken.write_text(
        broken.read_text() + "\ntest_deliberately_broken if { count(platform.violation_card_owner_contact) == 99 }\n"
    )
    out = subprocess.run([str(EXE), "policy", "test", str(platform / "policies")], capture_output=True, text=True)
    assert out.returncode == 1
    assert "FAIL: data.platform_test.test_deliberately_broken" in out.stdout
    assert "PASS: 4/5  FAIL: 1" in out.stdout


def test_run_filter_and_verbose_listing() -> None:
    out = subprocess.run([str(EXE), "policy", "test", "-v", "--run", "medical"], capture_output=True, text=True)
    assert out.returncode == 0
    listed = [line for line in out.stdout.splitlines() if ": PASS: " in line]
    assert listed and all("medical" in line for line in listed)


def test_no_policies_exits_two(tmp_path: Path) -> None:
    out = subprocess.run([str(EXE), "policy", "test", str(tmp_path)], capture_output=True, text=True)
    assert out.returncode == 2 and "no policies found" in out.stderr
