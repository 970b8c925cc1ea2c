"""Fixtures for policy tests: a copy of the example platform to edit, and the library."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from controller.policy.sources import PolicyFile, library


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    """A scratch copy of specs/, chaos/ and policies/ (the platform's own) that a test may edit."""
    for name in ("specs", "chaos", "policies"):
        shutil.copytree(name, tmp_path / name)
    return tmp_path


@pytest.fixture(scope="session", name="library")
def library_files() -> list[PolicyFile]:
    """The built-in library (no tests: they are not decided)."""
    return library()
