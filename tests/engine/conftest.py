"""A scratch platform repo for the reconcile loop: the example, trained quickly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from loop_helpers import MODEL, git, modelplane


def make_repo(root: Path, *, served: bool) -> Path:
    """The example platform as a git repo in ``root``, with a 2-trial search so that training
    takes seconds; its InferenceService (and the chaos experiment that targets it) only when
    ``served``: serving starts a KServe server, seconds of CPU that other tests do not need."""
    here = Path(__file__).resolve().parents[2]
    for name in ("specs", "chaos", "policies", "data"):
        shutil.copytree(here / name, root / name)
    if not served:
        shutil.rmtree(root / "specs" / "services")
        shutil.rmtree(root / "chaos")
    model = root / MODEL
    model.write_text(
        model.read_text().replace("trials: 8", "trials: 2").replace("n_estimators: 100", "n_estimators: 40")
    )
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "platform")
    return root


@pytest.fixture
def repo(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """The example platform as a git repo (see :func:`make_repo`); served for tests marked ``served``."""
    return make_repo(tmp_path, served=request.node.get_closest_marker("served") is not None)


@pytest.fixture(scope="session")
def approved_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The served example trained once per session: v1 in Staging with its two approvals."""
    root = make_repo(tmp_path_factory.mktemp("approved"), served=True)
    out = modelplane(root, "apply")
    assert out.returncode == 0, out.stdout + out.stderr
    for who in ("alice", "bob"):
        assert modelplane(root, "approve", "breast-cancer-classifier", "Staging", "--as", who).returncode == 0
    return root


@pytest.fixture
def approved_repo(approved_template: Path, tmp_path: Path) -> Path:
    """A copy of :func:`approved_template`: the next apply promotes v1 and serves it."""
    return Path(shutil.copytree(approved_template, tmp_path / "repo", symlinks=True))
