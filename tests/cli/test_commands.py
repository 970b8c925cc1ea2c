"""The ``modelplane`` command end to end: real processes, exit codes, output."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import controller

EXE = Path(sys.executable).with_name("modelplane")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, input=stdin, timeout=60)


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"modelplane {controller.__version__}"
    out = run("--help")
    assert out.returncode == 0 and "validate" in out.stdout and "schemas" in out.stdout


def test_no_command_is_a_usage_error() -> None:
    out = run()
    assert out.returncode == 2 and "usage: modelplane" in out.stderr


def test_validate_example_exits_zero() -> None:
    out = run("validate")
    assert out.returncode == 0
    assert out.stdout.splitlines()[-1] == "OK 5 files, 5 resources: 0 errors, 0 warnings, 1 waived"
    assert run("validate", "--no-policy").stdout == "OK 5 files, 5 resources: 0 errors, 0 warnings\n"


def test_validate_invalid_example_prints_position_and_exits_one() -> None:
    out = run("validate", "--no-policy", "tests/invalid/unknown-field.yaml")
    assert out.returncode == 1
    assert out.stdout.splitlines()[0] == (
        "tests/invalid/unknown-field.yaml:9:3: error [unknown-field] Dataset/iris: "
        "spec.colums: unknown field 'colums'; did you mean 'columns'?"
    )


@pytest.mark.parametrize("fmt", ["text", "json", "sarif", "junit", "github"])
def test_every_format_keeps_the_exit_code(fmt: str) -> None:
    assert run("validate", "--format", fmt, "specs").returncode == 0
    assert run("validate", "--format", fmt, "tests/invalid/wrong-type.yaml").returncode == 1


def test_unknown_format_is_a_usage_error() -> None:
    out = run("validate", "--format", "xml", "specs")
    assert out.returncode == 2 and "invalid choice: 'xml'" in out.stderr


def test_missing_path_is_a_usage_error() -> None:
    out = run("validate", "does/not/exist")
    assert (out.returncode, out.stderr) == (2, "modelplane: does/not/exist: no such file or directory\n")


def test_directory_without_yaml_is_a_usage_error(tmp_path: Path) -> None:
    out = run("validate", str(tmp_path))
    assert out.returncode == 2 and "no .yaml or .yml files" in out.stderr


def test_validate_reads_stdin() -> None:
    text = Path("specs/datasets/breast-cancer.yaml").read_text().replace("format: csv", "format: cvs")
    out = run("validate", "--no-policy", "--format", "json", "-", stdin=text)
    assert out.returncode == 1
    (finding,) = json.loads(out.stdout)["findings"]
    assert (finding["file"], finding["line"], finding["column"], finding["rule"]) == (
        "<stdin>",
        15,
        13,
        "invalid-value",
    )
    assert "did you mean 'csv'?" in finding["message"]


def test_schemas_check_passes_on_the_committed_tree() -> None:
    out = run("schemas", "check")
    assert (out.returncode, out.stdout) == (0, "schemas and spec reference are up to date\n")


def test_schemas_check_fails_on_a_stale_tree(tmp_path: Path) -> None:
    out = run("schemas", "check", "--schemas-dir", str(tmp_path), "--reference", str(tmp_path / "ref.md"))
    assert out.returncode == 1 and "stale; run 'modelplane schemas generate'" in out.stderr
    assert (
        run("schemas", "generate", "--schemas-dir", str(tmp_path), "--reference", str(tmp_path / "r.md")).returncode
        == 0
    )
    assert sorted(p.name for p in tmp_path.iterdir())[:2] == ["chaosexperiment.schema.json", "dataset.schema.json"]
