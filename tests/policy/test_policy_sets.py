"""Policy sets: the built-in library by reference, the repo's own policies beside it.

The example platform's Model is edited to break one rule of each source (no
``owner`` label: ``common.owner_label`` from the library; no owner contact on its
card: ``platform.card_owner_contact`` from ``policies/``), so the rules that fire
say which sources were loaded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from controller.policy.sources import BUILTIN, LIBRARY, PolicyLoadError, default_sources, discover

EXE = Path(sys.executable).with_name("modelplane")
MODEL = Path("specs/models/breast-cancer-classifier.yaml")
LIBRARY_RULE, PLATFORM_RULE = "common.owner_label", "platform.card_owner_contact"


def modelplane(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def fired(cwd: Path, *args: str) -> set[str]:
    out = modelplane(cwd, "validate", "-o", "json", *args)
    assert out.returncode in (0, 1), out.stderr
    return {f["rule"] for f in json.loads(out.stdout)["findings"]} & {LIBRARY_RULE, PLATFORM_RULE}


@pytest.fixture
def breaking(platform: Path) -> Path:
    model = platform / MODEL
    text = model.read_text().replace("    owner: ml-platform\n", "", 1)
    model.write_text(text.replace("        contact: ml-platform@example.org\n", "", 1))
    return platform


def test_default_set_is_the_library_and_the_repos_policies(breaking: Path) -> None:
    assert default_sources(breaking) == [BUILTIN, "policies"]
    assert fired(breaking) == {LIBRARY_RULE, PLATFORM_RULE}
    shutil.rmtree(breaking / "policies")
    assert default_sources(breaking) == [BUILTIN]
    assert fired(breaking) == {LIBRARY_RULE}


@pytest.mark.parametrize(
    ("flags", "rules"),
    [
        (["--policies", "policies"], {PLATFORM_RULE}),
        (["--policies", "builtin"], {LIBRARY_RULE}),
        (["--policies", "builtin", "--policies", "policies"], {LIBRARY_RULE, PLATFORM_RULE}),
    ],
    ids=["own-only", "builtin-only", "repeated"],
)
def test_policies_flag_replaces_the_default_and_repeats(breaking: Path, flags: list[str], rules: set[str]) -> None:
    assert fired(breaking, *flags) == rules


def test_project_file_sets_the_policy_set_and_a_flag_overrides_it(breaking: Path) -> None:
    (breaking / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: demo}\nspec:\n  policies: [builtin]\n"
    )
    assert fired(breaking) == {LIBRARY_RULE}
    # from below the root: the root is found, and a path typed on the command line is taken from here
    assert fired(breaking / "specs", "--policies", "../policies") == {PLATFORM_RULE}
    (breaking / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: demo}\nspec:\n  policies: []\n"
    )
    out = modelplane(breaking, "validate")
    assert out.returncode == 2
    assert "modelplane.yaml:5:13: " in out.stderr and "an empty policy set would judge nothing" in out.stderr


def test_a_repo_copy_of_a_library_package_is_refused_at_its_package_line(platform: Path) -> None:
    """Rego would merge the two definitions silently (duplicate findings, or a conflict
    at evaluation): the clash is named before anything is decided."""
    shutil.copy(LIBRARY / "models.rego", platform / "policies" / "models.rego")
    out = modelplane(platform, "validate")
    assert out.returncode == 2
    line = 1 + (LIBRARY / "models.rego").read_text().split("\npackage models\n")[0].count("\n") + 1
    assert out.stderr.startswith(f"modelplane: policies/models.rego:{line}:1: package models is the built-in library's")
    assert "leave 'builtin' out of the policy set" in out.stderr
    assert modelplane(platform, "validate", "--policies", "policies").returncode == 0  # the copy alone is fine


def test_policy_test_runs_the_whole_set_and_names_library_files_builtin(platform: Path) -> None:
    out = modelplane(platform, "policy", "test", "-v")
    assert out.returncode == 0, out.stderr
    assert "builtin/models_test.rego:" in out.stdout and "policies/platform_test.rego:" in out.stdout
    assert str(LIBRARY) not in out.stdout  # where the package is installed is nobody's business


def test_builtin_at_a_revision_is_the_installed_library(platform: Path) -> None:
    subprocess.run(["git", "init", "-q"], cwd=platform, check=True)
    subprocess.run(["git", "add", "-A"], cwd=platform, check=True)
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-qm", "x"], cwd=platform, check=True
    )
    out = modelplane(platform, "audit", "--revision", "HEAD", "-o", "json", "--decision-log", str(platform / "d.jsonl"))
    assert out.returncode == 0, out.stderr
    rules = {json.loads(line)["rule"] for line in (platform / "d.jsonl").read_text().splitlines()}
    assert any(r.startswith("models.") for r in rules) and PLATFORM_RULE in rules


def test_discover_names_every_source_it_found_empty(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(PolicyLoadError, match=r"no policies found in '.*a', '.*b'"):
        discover([tmp_path / "a", tmp_path / "b"])
    assert next(f.path for f in discover([BUILTIN]) if not f.is_test).startswith("builtin/")


def test_a_sub_package_inside_the_librarys_namespace_is_refused(platform: Path) -> None:
    """Attack: ``package datasets.sub`` would report findings that look like the library's."""
    (platform / "policies" / "sneaky.rego").write_text('package datasets.sub\n\ndeny_foo contains "x" if true\n')
    out = modelplane(platform, "validate")
    assert out.returncode == 2
    assert out.stderr.startswith("modelplane: policies/sneaky.rego:1:1: package datasets.sub is the built-in library's")


@pytest.mark.parametrize("source", ["/tmp/outside", "../outside", "policies/../../x"])
def test_the_project_file_names_only_policy_directories_of_the_repo(platform: Path, source: str) -> None:
    (platform / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: demo}\n"
        f"spec:\n  policies: ['{source}']\n"
    )
    out = modelplane(platform, "validate")
    assert out.returncode == 2 and f"policy source '{source}' leaves the repo" in out.stderr


@pytest.mark.parametrize(
    "declaration", ["  package models", "package models.sub", 'package models["sub"]', "\n\n\tpackage  models"]
)
def test_a_library_package_is_recognised_however_it_is_written(tmp_path: Path, declaration: str) -> None:
    """An indented package line, or a path with string keys, is the package Rego reads:
    a helper overriding one of the library's rules cannot slip in by formatting."""
    (tmp_path / "helpers.rego").write_text(f"{declaration}\n\nhas_strong_auc_gate if true\n")
    with pytest.raises(PolicyLoadError, match="is the built-in library's") as raised:
        discover([BUILTIN, str(tmp_path)])
    assert raised.value.file == str(tmp_path / "helpers.rego")
    assert raised.value.line == 1 + declaration.count("\n")


def test_a_repo_policy_cannot_add_to_the_data_modelplane_writes(tmp_path: Path) -> None:
    """Rules in package modelplane.* would be merged into data.modelplane, which the
    library reads (a storage allow-list, resources): refused at the package line."""
    (tmp_path / "cfg.rego").write_text('package modelplane.config.storage\n\nallowed_prefixes := {"production": []}\n')
    with pytest.raises(PolicyLoadError, match=r"is inside data\.modelplane") as raised:
        discover([BUILTIN, str(tmp_path)])
    assert (raised.value.file, raised.value.line) == (str(tmp_path / "cfg.rego"), 1)
