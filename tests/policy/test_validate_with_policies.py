"""The issue's story on the real example: a weak gate fails, a waiver counts, expiry brings it back."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from controller.api.findings import Severity
from controller.loading import load
from controller.policy.embedded import EmbeddedEngine
from controller.policy.evaluate import Context, evaluate
from controller.policy.opa import OpaServerEngine
from controller.policy.sources import PolicyFile

EXE = Path(sys.executable).with_name("modelplane")
MODEL = Path("specs/models/breast-cancer-classifier.yaml")
WAIVER = """\
apiVersion: modelplane.io/v1alpha1
kind: PolicyException
metadata:
  name: auc-waiver
  labels: {owner: ml-platform}
spec:
  rules: [models.medical_min_auc]
  resources:
    - {kind: Model, name: breast-cancer-classifier}
  reason: Retrospective study model; a clinician reviews every prediction.
  approvedBy: chief-medical-officer
  approvedAt: 2026-11-01
  expires: EXPIRES
"""


def validate(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), "validate", *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def weaken_gate(platform: Path) -> int:
    model = platform / MODEL
    text = model.read_text()
    model.write_text(text.replace("threshold: 0.92", "threshold: 0.80"))
    return next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("apiVersion:"))


def test_example_passes_with_its_waiver_counted(platform: Path) -> None:
    out = validate(platform, "--format", "json")
    assert out.returncode == 0, out.stdout
    summary = json.loads(out.stdout)["summary"]
    assert (summary["errors"], summary["warnings"], summary["waived"]) == (0, 0, 1)


def test_weak_gate_fails_with_rule_message_at_model_file(platform: Path) -> None:
    line = weaken_gate(platform)
    out = validate(platform)
    assert out.returncode == 1
    (finding,) = [ln for ln in out.stdout.splitlines() if "[models.medical_min_auc]" in ln]
    assert finding.startswith(f"{MODEL}:{line}:1: error [models.medical_min_auc] Model/breast-cancer-classifier: ")
    assert "0.92" in finding and "0.8" in finding


def test_waiver_turns_failure_into_counted_exception_until_it_expires(platform: Path) -> None:
    weaken_gate(platform)
    waiver = platform / "specs" / "exceptions" / "auc-waiver.yaml"
    waiver.write_text(WAIVER.replace("EXPIRES", "2999-12-31"))
    out = validate(platform, "--format", "json")
    assert out.returncode == 0, out.stdout
    doc = json.loads(out.stdout)
    assert doc["summary"]["waived"] == 2 and doc["summary"]["errors"] == 0
    waived = [f for f in doc["findings"] if f["rule"] == "models.medical_min_auc"]
    assert waived[0]["waived_by"].startswith("PolicyException/auc-waiver (approved by chief-medical-officer")

    waiver.write_text(WAIVER.replace("EXPIRES", "2026-11-02"))
    out = validate(platform)
    assert out.returncode == 1
    assert "error [models.medical_min_auc]" in out.stdout
    assert (
        "warning [waiver-expired] PolicyException/auc-waiver: expired on 2026-11-02; it no longer waives "
        "models.medical_min_auc for Model/breast-cancer-classifier"
    ) in out.stdout


def test_waiver_for_an_unknown_rule_is_reported(platform: Path) -> None:
    waiver = platform / "specs" / "exceptions" / "typo.yaml"
    waiver.write_text(
        WAIVER.replace("EXPIRES", "2999-12-31").replace("models.medical_min_auc", "models.medical_min_acu")
    )
    out = validate(platform)
    assert out.returncode == 0
    assert "warning [waiver-unknown-rule] PolicyException/auc-waiver: waives 'models.medical_min_acu'" in out.stdout
    assert validate(platform, "--fail-on-warn").returncode == 1


def test_no_policy_directory_is_a_usage_error(platform: Path) -> None:
    import shutil

    shutil.rmtree(platform / "policies")
    out = validate(platform)
    assert (out.returncode == 2 and "no policies" in out.stderr) or "does not exist" in out.stderr
    assert validate(platform, "--no-policy").returncode == 0


def test_engine_failure_denies(library: list[PolicyFile]) -> None:
    """An unreachable OPA server: every resource is denied, nothing passes silently."""
    result = load(["specs", "chaos"])
    engine = OpaServerEngine("http://127.0.0.1:9", timeout=0.5)
    outcome = evaluate(engine, result.resources, context=Context(), today=date(2026, 11, 22))
    assert outcome.exit_code() == 1
    assert {f.rule for f in outcome.findings} == {"policy-engine-error"}
    assert len(outcome.failures) == len(result.resources)
    assert "fails closed" in outcome.failures[0].message


def test_conftest_style_exception_rule_waives(tmp_path: Path) -> None:
    policy = PolicyFile(
        "p.rego",
        """package labels

deny_team contains msg if {
    input.kind == "Dataset"
    not input.metadata.labels.team
    msg := "no team"
}

exception contains rules if {
    input.metadata.name == "breast-cancer"
    rules := ["team"]
}
""",
    )
    result = load(["specs"])
    outcome = evaluate(EmbeddedEngine([policy]), result.resources, today=date(2026, 11, 22))
    (finding,) = [f for f in outcome.findings if f.rule == "labels.team"]
    assert finding.waived_by == "exception rule in package labels"
    assert outcome.exit_code() == 0 and len(outcome.exceptions) == 1


def test_secrets_never_reach_messages_or_the_decision_log(tmp_path: Path) -> None:
    from controller.policy import decision_log

    policy = PolicyFile(
        "p.rego",
        """package leaky

deny_token contains msg if {
    input.kind == "Dataset"
    msg := sprintf("token is %s", [input.metadata.annotations["api-token"]])
}
""",
    )
    text = Path("specs/datasets/breast-cancer.yaml").read_text()
    secret = "ghp_" + "a1B2c3D4e5" * 4
    (tmp_path / "d.yaml").write_text(
        text.replace("  labels:\n", f"  annotations:\n    api-token: {secret}\n  labels:\n", 1)
    )
    result = load([str(tmp_path)])
    outcome = evaluate(EmbeddedEngine([policy]), result.resources, context=Context(revision="abc123"))
    (finding,) = [f for f in outcome.findings if f.rule == "leaky.token"]
    assert finding.message == "token is ***"
    log = tmp_path / "decisions.jsonl"
    decision_log.append(log, outcome.decisions)
    assert secret not in log.read_text()
    (decision,) = decision_log.read(log)
    assert (decision.rule, decision.result, decision.revision, decision.resource) == (
        "leaky.token",
        "deny",
        "abc123",
        "Dataset/breast-cancer",
    )
    assert decision.input_digest.startswith("sha256:")


@pytest.mark.parametrize("kind", ["Model", "InferenceService", "ChaosExperiment", "Dataset"])
def test_every_example_kind_is_judged(kind: str, library: list[PolicyFile]) -> None:
    result = load(["specs", "chaos"])
    outcome = evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22))
    judged = {d.resource.split("/")[0] for d in outcome.decisions}
    assert kind in judged
    assert all(f.severity != Severity.ERROR or f.waived_by for f in outcome.findings)
