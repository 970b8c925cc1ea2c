"""A scratch platform repo for the reconcile loop: the example, trained quickly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loop_helpers import MODEL, git


@pytest.fixture
def repo(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The example platform as a git repo, with a 2-trial search so that training takes seconds.
    Its InferenceService (and the chaos experiment that targets it) only for tests marked
    ``served``: serving starts a KServe server, seconds of CPU that other tests do not need."""
    root = Path(__file__).resolve().parents[2]
    for name in ("specs", "chaos", "policies", "data"):
        shutil.copytree(root / name, tmp_path / name)
    if request.node.get_closest_marker("served") is None:
        shutil.rmtree(tmp_path / "specs" / "services")
        shutil.rmtree(tmp_path / "chaos")
    model = tmp_path / MODEL
    model.write_text(
        model.read_text().replace("trials: 8", "trials: 2").replace("n_estimators: 100", "n_estimators: 40")
    )
    git(tmp_path, "init", "-q", "-b", "main")
    git(tmp_path, "add", "-A")
    git(tmp_path, "commit", "-q", "-m", "platform")
    return tmp_path
