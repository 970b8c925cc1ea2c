"""``-C DIR``, finding the root from a subdirectory, and the project file ``modelplane.yaml``."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("modelplane")
ROOT = Path(__file__).resolve().parents[2]


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture
def platform(tmp_path: Path) -> Path:
    repo = tmp_path / "platform"
    for name in ("specs", "chaos", "policies", "data"):
        shutil.copytree(ROOT / name, repo / name)
    return repo


def test_the_root_is_found_from_a_subdirectory_and_paths_stay_the_users(platform: Path) -> None:
    at_root = run(platform, "validate", "--no-policy")
    inside = run(platform / "specs" / "models", "validate", "--no-policy")
    assert (inside.returncode, inside.stdout) == (at_root.returncode, at_root.stdout) == (0, at_root.stdout)
    (platform / "specs" / "models" / "broken.yaml").write_text((ROOT / "tests/invalid/unknown-field.yaml").read_text())
    one = run(platform / "specs" / "models", "validate", "--no-policy", "broken.yaml")
    assert one.returncode == 1 and one.stdout.startswith("specs/models/broken.yaml:9:3: error [unknown-field]")


def test_dash_C_runs_against_another_repo(platform: Path, tmp_path: Path) -> None:
    plan = run(tmp_path, "-C", str(platform), "plan", "--no-policy")
    assert plan.returncode == 0, plan.stderr
    assert "1. data-gate breast-cancer: first check of content" in plan.stdout  # data/ found from the root
    assert run(tmp_path, "-C", "platform/specs", "status").stdout == "No status yet: run 'modelplane apply'.\n"
    assert (platform / ".modelplane" / "state.db").exists() and not (tmp_path / ".modelplane").exists()
    missing = run(tmp_path, "-C", "nowhere", "status")
    assert (missing.returncode, missing.stderr) == (2, "modelplane: -C nowhere: no such directory\n")


def test_the_project_file_sets_the_state_dir_and_who_may_approve(platform: Path) -> None:
    (platform / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata:\n  name: platform\n"
        "spec:\n  stateDir: state\n  approvers: [Alice, bob@example.org]\n"
    )
    assert run(platform / "specs", "status").returncode == 0
    assert (platform / "state" / "state.db").exists() and not (platform / ".modelplane").exists()
    refused = run(platform, "approve", "m", "Staging", "--as", "mallory")
    assert (refused.returncode, refused.stderr) == (
        2,
        "modelplane: mallory may not approve: the project file lists who may (2 people)\n",
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: p}\nspec:\n  stateDri: x\n",
            "modelplane: modelplane.yaml:5:3: spec.stateDri: unknown field 'stateDri'; did you mean 'stateDir'?\n",
        ),
        (
            "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: p}\nspec:\n  approvers: []\n",
            "modelplane: modelplane.yaml:5:14: spec.approvers: an empty approver list would let nobody approve: "
            "remove the key to allow anyone\n",
        ),
    ],
    ids=["unknown-field", "empty-approvers"],
)
def test_a_wrong_project_file_is_named_at_its_line(platform: Path, text: str, message: str) -> None:
    (platform / "modelplane.yaml").write_text(text)
    out = run(platform, "status")
    assert (out.returncode, out.stderr) == (2, message)
