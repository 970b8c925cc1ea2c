"""``validate FILE...`` on a subset (what a pre-commit hook passes) is judged with the rest
of the repo around it: references resolve, policies see every resource, and a change that
breaks another file is still caught."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.loading import load

EXE = Path(sys.executable).with_name("modelplane")
MODEL = "specs/models/breast-cancer-classifier.yaml"
DATASET = "specs/datasets/breast-cancer.yaml"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    for name in ("specs", "chaos", "policies", "data"):
        shutil.copytree(name, tmp_path / name)
    return tmp_path


def validate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "validate", *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_loader_resolves_a_subset_against_its_context() -> None:
    alone = load([MODEL])
    assert [f.rule for f in alone.findings] == ["dangling-reference"]
    within = load([MODEL], context=["specs", "chaos"])
    assert within.findings == []
    assert [r.ref for r in within.resources] == ["Model/breast-cancer-classifier"]
    assert "Dataset/breast-cancer" in {r.ref for r in within.context}
    assert MODEL not in {r.document.file for r in within.context}  # loaded once, as the subset


def test_a_pre_commit_subset_passes_where_the_whole_repo_does(repo: Path) -> None:
    out = validate(repo, MODEL, "-o", "json")
    assert out.returncode == 0, out.stdout
    summary = json.loads(out.stdout)["summary"]
    assert (summary["files"], summary["resources"], summary["errors"]) == (1, 1, 0)
    isolated = validate(repo, "--isolated", MODEL)
    assert isolated.returncode == 1 and "error [dangling-reference]" in isolated.stdout


def test_policies_see_the_rest_of_the_repo_but_judge_only_the_subset(repo: Path) -> None:
    # The example Dataset's retention finding is waived by a PolicyException in another file:
    # judging the Dataset alone still counts that waiver.
    out = validate(repo, DATASET)
    assert out.returncode == 0, out.stdout
    assert "waived [datasets.retention_required]" in out.stdout
    assert "OK 1 file, 1 resource: 0 errors, 0 warnings, 1 waived" in out.stdout
    # The Model is not judged when only the Dataset is given.
    (repo / MODEL).write_text((repo / MODEL).read_text().replace("threshold: 0.92", "threshold: 0.5"))
    assert validate(repo, DATASET).returncode == 0
    assert "models.medical_min_auc" in validate(repo, MODEL).stdout


def test_renaming_a_dataset_in_the_subset_reports_what_it_breaks_elsewhere(repo: Path) -> None:
    path = repo / DATASET
    path.write_text(path.read_text().replace("name: breast-cancer\n", "name: breast-cancer-v2\n", 1))
    out = validate(repo, "--no-policy", DATASET)
    assert out.returncode == 1
    assert f"{MODEL}:" in out.stdout and "Dataset 'breast-cancer' does not exist" in out.stdout


def test_files_outside_the_resource_directories_are_judged_alone(repo: Path) -> None:
    shutil.copy("tests/invalid/dangling-reference.yaml", repo / "loose.yaml")
    out = validate(repo, "--no-policy", "loose.yaml")
    assert out.returncode == 1 and "error [dangling-reference]" in out.stdout


def test_a_dangling_symlink_in_specs_is_reported_not_skipped(repo: Path) -> None:
    (repo / "specs" / "models" / "gone.yaml").symlink_to("../../nowhere/model.yaml")
    out = validate(repo, "--no-policy")
    assert out.returncode == 1
    assert (
        "specs/models/gone.yaml:1:1: error [io-error] a symbolic link to '../../nowhere/model.yaml', "
        "which does not exist; fix or remove the link"
    ) in out.stdout


def test_a_reference_to_an_invalid_resource_is_not_reported_as_dangling(repo: Path) -> None:
    """The Model exists but is invalid: its own error says so, the service naming it is not
    told that it does not exist. A truly missing name is still dangling."""
    model = repo / MODEL
    model.write_text(model.read_text().replace("      n_estimators: 100", "      n_estimatorz: 100"))
    out = validate(repo, "--no-policy")
    assert out.returncode == 1
    assert "'n_estimatorz' is not a parameter" in out.stdout
    assert "dangling-reference" not in out.stdout
    model.write_text(model.read_text().replace("name: breast-cancer-classifier\n", "name: renamed\n", 1))
    out = validate(repo, "--no-policy")
    assert "Model 'breast-cancer-classifier' does not exist" in out.stdout


def test_a_spec_or_policy_linked_from_outside_the_repo_is_refused_not_read(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A pull request could link specs/app.yaml to any file the runner can read; its
    values would come back in findings (and PR annotations)."""
    outside = tmp_path_factory.mktemp("outside")
    (outside / "app.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Dataset\nmetadata: {name: x}\n"
        "spec:\n  source: {path: data/breast-cancer.csv}\n  target: SUPERSECRETPASSWORD123\n"
    )
    (repo / "specs" / "app.yaml").symlink_to(outside / "app.yaml")
    out = validate(repo, "--no-policy", "--format", "github")
    assert out.returncode == 1
    assert "SUPERSECRETPASSWORD123" not in out.stdout + out.stderr
    assert "outside the repo: spec files must live in the repo" in out.stdout
    (repo / "specs" / "app.yaml").unlink()
    (outside / "p.rego").write_text("package leaked\n\nimport rego.v1\n\ndeny contains msg if msg := 'x'\n")
    (repo / "policies").mkdir(exist_ok=True)
    (repo / "policies" / "p.rego").symlink_to(outside / "p.rego")
    out = validate(repo)
    assert out.returncode == 2 and "policies/p.rego:1:1: a symbolic link to" in out.stderr
    # A link inside the repo is read as before.
    (repo / "policies" / "p.rego").unlink()
    (repo / "specs" / "again.yaml").symlink_to(repo / "specs" / "datasets" / "breast-cancer.yaml")
    out = validate(repo, "--no-policy")
    assert "outside the repo" not in out.stdout and "duplicate" in out.stdout


def test_a_data_file_linked_from_outside_the_repo_is_refused_at_validation(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """The Dataset's path is in the repo, but a link takes it out: refused by validate at
    the path's line and column, unless the project file lists where it leads."""
    mount = tmp_path_factory.mktemp("mount")
    data = repo / "data" / "breast-cancer.csv"
    shutil.move(data, mount / "breast-cancer.csv")
    data.symlink_to(mount / "breast-cancer.csv")
    out = validate(repo, "--no-policy")
    assert out.returncode == 1
    assert out.stdout.startswith(
        "specs/datasets/breast-cancer.yaml:14:11: error [invalid-value] Dataset/breast-cancer: "
        "data file 'data/breast-cancer.csv' leads outside the repo (to "
    )
    (repo / "modelplane.yaml").write_text(
        f"apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {{name: p}}\nspec:\n  dataRoots: ['{mount}']\n"
    )
    assert validate(repo, "--no-policy").returncode == 0


def test_a_file_named_by_its_absolute_path_is_not_loaded_twice(repo: Path) -> None:
    out = validate(repo, "--no-policy", str(repo / DATASET))
    assert (out.returncode, out.stdout) == (0, "OK 1 file, 1 resource: 0 errors, 0 warnings\n"), out.stdout


def test_a_specs_or_policies_directory_linked_from_outside_is_not_read(
    repo: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("elsewhere")
    (outside / "specs").mkdir()
    (outside / "specs" / "app.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Dataset\nmetadata: {name: x}\n"
        "spec:\n  source: {path: data/breast-cancer.csv}\n  target: SUPERSECRETPASSWORD123\n"
    )
    shutil.rmtree(repo / "specs")
    (repo / "specs").symlink_to(outside / "specs")
    out = validate(repo, "--no-policy")
    assert "SUPERSECRETPASSWORD123" not in out.stdout + out.stderr
    assert "outside the repo" in out.stdout and out.returncode == 1
    (outside / "policies").mkdir()
    (outside / "policies" / "o.rego").write_text('package platform_out\n\ndeny contains "SECRETPOLICY" if true\n')
    shutil.rmtree(repo / "policies")
    (repo / "policies").symlink_to(outside / "policies")
    out = validate(repo)
    assert out.returncode == 2 and "SECRETPOLICY" not in out.stdout and "outside the repo" in out.stderr
    (outside / "mp.yaml").write_text("apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: x}\n")
    (repo / "modelplane.yaml").symlink_to(outside / "mp.yaml")
    out = validate(repo, "--no-policy")
    assert out.returncode == 2 and "the project file lives in the repo" in out.stderr
