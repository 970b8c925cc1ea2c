"""Fixtures for policy tests: a copy of the example platform to edit, and the library."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.policy.sources import PolicyFile, discover


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    """A scratch copy of specs/, chaos/ and policies/ that a test may edit."""
    for name in ("specs", "chaos", "policies"):
        shutil.copytree(name, tmp_path / name)
    return tmp_path


@pytest.fixture(scope="session")
def library() -> list[PolicyFile]:
    return discover(Path(__file__).resolve().parents[2] / "policies")
