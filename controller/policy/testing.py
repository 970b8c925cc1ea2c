"""``modelplane policy test``: run ``test_*`` rules like ``opa test``.

A test passes when its rule evaluates to true; false, undefined or an error
fails it. Coverage comes from regorus' line coverage of the policy files.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from controller.policy.embedded import EmbeddedEngine
from controller.policy.engine import EngineError
from controller.policy.sources import PolicyFile


@dataclass(frozen=True)
class TestResult:
    package: str
    name: str
    file: str
    line: int
    passed: bool
    duration_ms: float
    error: str | None = None


@dataclass
class TestRun:
    results: list[TestResult] = field(default_factory=list)
    coverage: dict[str, tuple[int, int]] = field(default_factory=dict)  # file -> (covered, total lines)

    @property
    def failed(self) -> list[TestResult]:
        return [r for r in self.results if not r.passed]

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or not self.results else 0

    def coverage_percent(self) -> float | None:
        covered = sum(c for c, _ in self.coverage.values())
        total = sum(t for _, t in self.coverage.values())
        return 100.0 * covered / total if total else None


def run_tests(files: list[PolicyFile], *, run: str | None = None, coverage: bool = True) -> TestRun:
    """Run every ``test_*`` rule (those whose name contains ``run``, if given)."""
    engine = EmbeddedEngine(files, coverage=coverage)
    outcome = TestRun()
    for rule in engine.rules():
        if not rule.is_test or (run and run not in f"{rule.package}.{rule.name}"):
            continue
        start = time.perf_counter()
        error = None
        try:
            passed = engine.eval_rule(f"data.{rule.package}.{rule.name}") is True
        except EngineError as exc:
            passed, error = False, str(exc)
        elapsed = (time.perf_counter() - start) * 1000
        outcome.results.append(TestResult(rule.package, rule.name, rule.file, rule.line, passed, elapsed, error))
    if coverage:
        outcome.coverage = _coverage(engine.coverage(), {f.path for f in files if not f.is_test})
    return outcome


def _coverage(report: dict[str, Any], policy_files: set[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for entry in report.get("files", []):
        if entry["path"] in policy_files:
            covered, missed = len(entry.get("covered", [])), len(entry.get("not_covered", []))
            out[entry["path"]] = (covered, covered + missed)
    return out
