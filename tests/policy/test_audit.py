"""``modelplane audit``: every policy over the repo, at a revision, with a decision log."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import jsonschema

from controller.policy import decision_log

EXE = Path(sys.executable).with_name("modelplane")


def modelplane(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def git(cwd: Path, *args: str) -> str:
    env_args = ["-c", "user.name=Ada Lovelace", "-c", "user.email=ada@example.org"]
    return subprocess.run(["git", *env_args, *args], cwd=cwd, capture_output=True, text=True, check=True).stdout


def test_audit_sarif_validates_against_the_schema(platform: Path, upstream: Path) -> None:
    out = modelplane(platform, "audit", "--format", "sarif")
    assert out.returncode == 0, out.stderr
    log = json.loads(out.stdout)
    schema = json.loads((upstream / "sarif" / "sarif-schema-2.1.0.json").read_text())
    jsonschema.validate(log, schema, cls=jsonschema.Draft7Validator)
    (result,) = log["runs"][0]["results"]
    assert result["ruleId"] == "datasets.retention_required"
    assert result["suppressions"][0]["kind"] == "external"
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert rules[result["ruleIndex"]]["help"]["text"].startswith("Defined at builtin/datasets.rego:")


def test_audit_writes_every_decision_to_the_log(platform: Path) -> None:
    out = modelplane(platform, "audit", "--format", "json", "--decision-log", "audit/decisions.jsonl")
    assert out.returncode == 0
    decisions = decision_log.read(platform / "audit" / "decisions.jsonl")
    resources = {d.resource for d in decisions}
    assert len(resources) == 5
    results = {(d.rule, d.resource): d.result for d in decisions}
    assert results[("datasets.retention_required", "Dataset/breast-cancer")] == "waived"
    assert results[("models.medical_min_auc", "Model/breast-cancer-classifier")] == "pass"
    assert all(d.input_digest.startswith("sha256:") and d.engine == "regorus" for d in decisions)
    # appending: a second audit adds as many lines again
    modelplane(platform, "audit", "--decision-log", "audit/decisions.jsonl")
    assert len(decision_log.read(platform / "audit" / "decisions.jsonl")) == 2 * len(decisions)


def test_audit_at_a_revision_reads_git_not_the_work_tree(platform: Path) -> None:
    git(platform, "init", "-q", "-b", "main")
    git(platform, "add", "-A")
    git(platform, "commit", "-q", "-m", "platform")
    first = git(platform, "rev-parse", "HEAD").strip()
    model = platform / "specs" / "models" / "breast-cancer-classifier.yaml"
    model.write_text(model.read_text().replace("threshold: 0.92", "threshold: 0.80"))
    git(platform, "commit", "-q", "-am", "weaker gate")

    # The work tree is the weak gate; the first commit is not.
    assert modelplane(platform, "audit").returncode == 1
    out = modelplane(platform, "audit", "--revision", first, "--format", "markdown", "--output", "report.md")
    assert out.returncode == 0, out.stderr
    report = (platform / "report.md").read_text()
    assert report.startswith("### modelplane: ✅ passed")
    assert "`datasets.retention_required`" in report

    bad = modelplane(platform, "audit", "--revision", "HEAD")
    assert bad.returncode == 1
    assert "specs/models/breast-cancer-classifier.yaml:4:1: error [models.medical_min_auc]" in bad.stdout

    decisions = decision_log.read(platform / ".modelplane" / "decisions.jsonl")
    assert {d.revision for d in decisions} >= {first}


def test_audit_of_an_unknown_revision_is_a_usage_error(platform: Path) -> None:
    git(platform, "init", "-q")
    out = modelplane(platform, "audit", "--revision", "no-such-rev")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr.startswith("modelplane: ") and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr


def test_a_revision_that_is_no_commit_is_named_and_never_taken_for_an_option(platform: Path) -> None:
    git(platform, "init", "-q", "-b", "main")
    git(platform, "add", "-A")
    git(platform, "commit", "-q", "-m", "platform")
    out = modelplane(platform, "audit", "--revision", "no-such-rev")
    assert out.returncode == 2
    assert out.stderr == (
        f"modelplane: 'no-such-rev' is not a commit of the git repository at {platform.resolve()} "
        "(a branch, tag or commit id; check 'git log')\n"
    )
    leak = platform / "leak"
    out = modelplane(platform, "audit", f"--revision=--output={leak}")
    assert (out.returncode, out.stderr) == (2, f"modelplane: '--output={leak}' is not a revision\n")
    assert not leak.exists()
