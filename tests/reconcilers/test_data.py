"""The example data file is scikit-learn's bundled data; the data layer reads and hashes it."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from sklearn.datasets import load_breast_cancer

from controller.loading import load
from reconcilers import data


def test_example_csv_is_the_bundled_breast_cancer_data() -> None:
    bundled = load_breast_cancer(as_frame=True).frame
    exported = pd.read_csv("data/breast-cancer.csv")
    pd.testing.assert_frame_equal(exported, bundled, check_dtype=False)


def _datasets() -> dict:
    return {r.resource.name: r.resource for r in load(["specs"]).by_kind("Dataset")}


def test_content_hash_changes_with_the_file(tmp_path: Path) -> None:
    datasets = _datasets()
    (tmp_path / "data").mkdir()
    target = tmp_path / "data" / "breast-cancer.csv"
    target.write_bytes(Path("data/breast-cancer.csv").read_bytes())
    before = data.content_hash(datasets["breast-cancer"], datasets, tmp_path)
    assert before == data.load(datasets["breast-cancer"], datasets, tmp_path).content_hash
    target.write_text(target.read_text().replace("17.99", "18.00", 1))
    assert data.content_hash(datasets["breast-cancer"], datasets, tmp_path) != before


def test_missing_and_broken_files_are_clear_errors(tmp_path: Path) -> None:
    datasets = _datasets()
    with pytest.raises(data.DataError, match=r"data file '.*breast-cancer\.csv' does not exist"):
        data.load(datasets["breast-cancer"], datasets, tmp_path)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "breast-cancer.csv").write_bytes(b'mean radius,target\n"17.99,0\n')
    with pytest.raises(data.DataError, match=r"as csv: Error tokenizing data\. C error: EOF inside string"):
        data.load(datasets["breast-cancer"], datasets, tmp_path)
    (tmp_path / "data" / "breast-cancer.csv").write_bytes(b"")
    with pytest.raises(data.DataError, match="No columns to parse"):
        data.load(datasets["breast-cancer"], datasets, tmp_path)


def test_a_symlink_out_of_the_repo_is_refused_when_read(tmp_path: Path) -> None:
    """Attack: a data path inside the repo that is a link to a file outside it."""
    datasets = _datasets()
    outside = tmp_path / "outside.csv"
    outside.write_bytes(Path("data/breast-cancer.csv").read_bytes())
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "breast-cancer.csv").symlink_to(outside)
    with pytest.raises(data.DataError, match=r"leads outside the repo \(to .*outside.csv\) through a symlink"):
        data.content_hash(datasets["breast-cancer"], datasets, repo)
    with pytest.raises(data.DataError, match="through a symlink"):
        data.load(datasets["breast-cancer"], datasets, repo)


def test_a_data_root_in_the_project_file_allows_links_into_that_mount_only(tmp_path: Path) -> None:
    """A platform's read-only data mount is listed in modelplane.yaml; a link elsewhere is still refused."""
    datasets = _datasets()
    mount, elsewhere = tmp_path / "mnt" / "datasets", tmp_path / "home"
    for directory in (mount, elsewhere):
        directory.mkdir(parents=True)
        (directory / "bc.csv").write_bytes(Path("data/breast-cancer.csv").read_bytes())
    repo = tmp_path / "repo"
    (repo / "data").mkdir(parents=True)
    (repo / "data" / "breast-cancer.csv").symlink_to(mount / "bc.csv")
    project = "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: p}\nspec:\n  dataRoots: [ROOTS]\n"
    (repo / "modelplane.yaml").write_text(project.replace("ROOTS", str(mount)))
    loaded = data.load(datasets["breast-cancer"], datasets, repo)
    assert loaded.content_hash == data.content_hash(datasets["breast-cancer"], datasets, repo)
    assert len(loaded.frame) == 569
    (repo / "data" / "breast-cancer.csv").unlink()
    (repo / "data" / "breast-cancer.csv").symlink_to(elsewhere / "bc.csv")
    with pytest.raises(
        data.DataError, match=r"outside the repo or the data roots of modelplane.yaml \(.*mnt/datasets\)"
    ):
        data.load(datasets["breast-cancer"], datasets, repo)
    # The project file is read again once it changes (it is remembered per version of the file).
    (repo / "modelplane.yaml").write_text(project.replace("ROOTS", f"{mount}, {elsewhere}"))
    assert len(data.load(datasets["breast-cancer"], datasets, repo).frame) == 569


@pytest.mark.parametrize(
    ("roots", "message"),
    [
        ("/", "would allow every file on the machine"),
        ("data", "must be an absolute path"),
        ("/mnt/../etc", "without '..'"),
    ],
)
def test_data_roots_are_absolute_named_mounts(tmp_path: Path, roots: str, message: str) -> None:
    from controller.loading.project import ProjectError, read_project

    (tmp_path / "modelplane.yaml").write_text(
        f"apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {{name: p}}\nspec:\n  dataRoots: ['{roots}']\n"
    )
    with pytest.raises(ProjectError, match=message):
        read_project(tmp_path)


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("path: /etc/passwd", "'/etc/passwd' is absolute: data paths are relative to the repo root"),
        ("path: data/../../secrets.csv", "leaves the repo through '..'"),
        ("uri: file:///etc/passwd", "reads a local file outside the repo: use 'path'"),
        ("path: file:///etc/passwd", "is a URI, not a path"),
    ],
    ids=["absolute", "dot-dot", "file-uri", "uri-as-path"],
)
def test_data_paths_outside_the_repo_are_refused_at_validation(source: str, message: str) -> None:
    from controller.loading import load_text

    text = (
        "apiVersion: modelplane.io/v1alpha1\nkind: Dataset\nmetadata:\n  name: d\n"
        f"spec:\n  source:\n    {source}\n    format: csv\n  target: t\n"
    )
    (finding,) = load_text(text, "d.yaml").findings
    assert (finding.location.line, finding.field) == (7, f"spec.source.{source.split(':')[0]}")
    assert message in finding.message
