"""Shared fixtures: paths to the repo, the example specs and the upstream reference data."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "tests" / "fixtures" / "upstream"


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test from the repo root, as a user runs the CLI."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def upstream() -> Path:
    """Real upstream formats (the SARIF schema, the Model Card Toolkit schema), copied from
    ``../shared/upstream`` into ``tests/fixtures/upstream`` so that CI needs no ``../shared``.
    ``tests/fixtures/test_upstream_fixtures.py`` keeps the copies equal to the originals."""
    return UPSTREAM
