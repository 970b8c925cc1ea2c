"""Shared fixtures: paths to the repo, the example specs and shared/ upstream data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "upstream"


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test from the repo root, as a user runs the CLI."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def upstream() -> Path:
    """``../shared/upstream``: real formats (SARIF schema, KServe CRDs, webhooks)."""
    if not SHARED.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{SHARED} is missing; CI provides shared/ beside the clone")
        pytest.skip(f"{SHARED} is not present on this machine")
    return SHARED
