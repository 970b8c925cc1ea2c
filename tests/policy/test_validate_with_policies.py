"""The issue's story on the real example: a weak gate fails, a waiver counts, expiry brings it back."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from datetime import date, timedelta
from pathlib import Path

import pytest
from fork_counter import count_forks

from controller.api.findings import Severity
from controller.loading import load
from controller.policy.embedded import EmbeddedEngine
from controller.policy.evaluate import Context, PolicyOutcome, digest, evaluate, input_for
from controller.policy.opa import OpaServerEngine
from controller.policy.sources import PolicyFile
from controller.policy.waivers import WaiverRules

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
  approvedAt: APPROVED
  expires: EXPIRES
"""
TODAY = date.today()  # the subprocesses judge with the real date
APPROVED, IN_FORCE = str(TODAY - timedelta(days=30)), str(TODAY + timedelta(days=30))


def waiver_text(expires: str = IN_FORCE, approved: str = APPROVED) -> str:
    return WAIVER.replace("APPROVED", approved).replace("EXPIRES", expires)


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
    assert finding == (
        f"{MODEL}:{line}:1: error [models.medical_min_auc] Model/breast-cancer-classifier: "
        "Model breast-cancer-classifier is labelled domain=medical but its roc_auc gate is >= 0.8; "
        'medical models need roc_auc >= 0.92 (operator ">=" or ">")'
    )


def test_waiver_turns_failure_into_counted_exception_until_it_expires(platform: Path) -> None:
    weaken_gate(platform)
    waiver = platform / "specs" / "exceptions" / "auc-waiver.yaml"
    waiver.write_text(waiver_text())
    out = validate(platform, "--format", "json")
    assert out.returncode == 0, out.stdout
    doc = json.loads(out.stdout)
    assert doc["summary"]["waived"] == 2 and doc["summary"]["errors"] == 0
    waived = [f for f in doc["findings"] if f["rule"] == "models.medical_min_auc"]
    assert waived[0]["waived_by"].startswith("PolicyException/auc-waiver (approved by chief-medical-officer")

    yesterday = str(TODAY - timedelta(days=1))
    waiver.write_text(waiver_text(expires=yesterday))
    out = validate(platform)
    assert out.returncode == 1
    assert "error [models.medical_min_auc]" in out.stdout
    assert (
        f"warning [waiver-expired] PolicyException/auc-waiver: expired on {yesterday}; it no longer waives "
        "models.medical_min_auc for Model/breast-cancer-classifier"
    ) in out.stdout


def test_waiver_for_an_unknown_rule_is_reported(platform: Path) -> None:
    waiver = platform / "specs" / "exceptions" / "typo.yaml"
    waiver.write_text(waiver_text().replace("models.medical_min_auc", "models.medical_min_acu"))
    out = validate(platform)
    assert out.returncode == 0
    assert "warning [waiver-unknown-rule] PolicyException/auc-waiver: waives 'models.medical_min_acu'" in out.stdout
    assert validate(platform, "--fail-on-warn").returncode == 1


@pytest.mark.parametrize(
    ("empty", "reason"),
    [
        (False, "policy directory 'policies' does not exist"),
        (True, "no policies found in 'policies' (expected *.rego files)"),
    ],
    ids=["missing-directory", "empty-directory"],
)
def test_no_policies_is_a_usage_error(empty: bool, reason: str, platform: Path) -> None:
    shutil.rmtree(platform / "policies")
    if empty:
        (platform / "policies").mkdir()
    out = validate(platform, "--policies", "policies")
    assert (out.returncode, out.stdout) == (2, "")
    assert out.stderr == f"modelplane: {reason} (use --no-policy to skip policies)\n"
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
    assert finding.waived_by == "exception rule in package labels, without an approver"
    assert outcome.exit_code() == 0 and len(outcome.exceptions) == 1
    (unapproved,) = [f for f in outcome.findings if f.rule == "waiver-without-approver"]
    assert unapproved.severity == Severity.WARNING and unapproved.resource == "Dataset/breast-cancer"
    assert unapproved.location == finding.location

    strict = evaluate(
        EmbeddedEngine([policy]), result.resources, today=date(2026, 11, 22), waiver_rules=WaiverRules(strict=True)
    )
    (finding,) = [f for f in strict.findings if f.rule == "labels.team"]
    assert finding.waived_by is None and finding.severity == Severity.ERROR
    assert "names no approver: strict waivers accept only a PolicyException" in finding.message
    assert strict.exit_code() == 1


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


# One rule per kind that only a resource of that kind can break, and an edit that breaks it.
KIND_RULES = {
    "Dataset": ("specs/datasets/breast-cancer.yaml", "pii: false", "pii: true", "datasets.pii_consent_basis"),
    "Model": (str(MODEL), "threshold: 0.92", "threshold: 0.8", "models.medical_min_auc"),
    "InferenceService": (
        "specs/services/breast-cancer-api.yaml",
        "steps: [10, 50, 100]",
        "steps: [10, 50]",
        "services.canary_ends_at_100",
    ),
    "ChaosExperiment": (
        "chaos/breast-cancer-api-replica-kill.yaml",
        '    modelplane.io/allow-production: "true"\n',
        "",
        "chaos.non_production_target",
    ),
}


def test_the_judged_kinds_are_the_example_kinds_but_waivers() -> None:
    """A PolicyException is checked as a waiver (expiry, unknown rules), not by Rego rules."""
    kinds = {r.resource.kind for r in load(["specs", "chaos"]).resources}
    assert set(KIND_RULES) == kinds - {"PolicyException"}


@pytest.mark.parametrize("kind", sorted(KIND_RULES))
def test_every_example_kind_is_judged(kind: str, library: list[PolicyFile], platform: Path) -> None:
    """Every resource gets a 'pass' decision for every rule, so a decision proves nothing on its
    own: the rule must turn to deny when that kind's resource breaks it, and only for it."""
    path, before, after, rule = KIND_RULES[kind]
    example = load([str(platform / "specs"), str(platform / "chaos")])
    (resource,) = [r.ref for r in example.resources if r.resource.kind == kind]
    outcome = evaluate(EmbeddedEngine(library), example.resources, today=date(2026, 11, 22))
    assert [d.result for d in outcome.decisions if (d.rule, d.resource) == (rule, resource)] == ["pass"]
    assert all(f.severity != Severity.ERROR or f.waived_by for f in outcome.findings)

    target = platform / path
    assert before in target.read_text()
    target.write_text(target.read_text().replace(before, after))
    broken = load([str(platform / "specs"), str(platform / "chaos")])
    assert broken.findings == []
    outcome = evaluate(EmbeddedEngine(library), broken.resources, today=date(2026, 11, 22))
    assert {f.resource for f in outcome.failures} == {resource}
    assert rule in {f.rule for f in outcome.failures}
    assert [d.result for d in outcome.decisions if (d.rule, d.resource) == (rule, resource)] == ["deny"]


# Where a policy finding with a field points: at the field as written, from the
# positions the loader recorded (no YAML parsed again), however the load kept it.
FIELDS_POLICY = PolicyFile(
    "fields.rego",
    """package fields

violation_where contains {"msg": sprintf("at %s", [f]), "field": f} if {
    input.kind == "Model"
    some f in [
        "spec.gates[0].threshold",
        "spec.gates[1]",
        "metadata.name",
        "spec.search.space.max_depth.high",
        "spec.nope.deeper",
        "spec.gates[7]",
        "spec.dataset.below",
    ]
}
""",
)


def _written_at(lines: list[str], line_text: str, token: str) -> tuple[int, int]:
    """1-based line and column of ``token`` on the first line starting with ``line_text`` (stripped)."""
    number = next(i for i, text in enumerate(lines, 1) if text.strip().startswith(line_text))
    return number, lines[number - 1].index(token) + 1


@pytest.mark.parametrize("keep", ["resources", "data"])
def test_policy_findings_point_at_the_field_as_written(keep: str) -> None:
    lines = MODEL.read_text().splitlines()
    expected = {
        "spec.gates[0].threshold": _written_at(lines, "threshold: 0.92", "0.92"),
        "spec.gates[1]": _written_at(lines, "- metric: recall", "metric"),
        "metadata.name": _written_at(lines, "name: breast-cancer-classifier", "breast-cancer-classifier"),
        "spec.search.space.max_depth.high": _written_at(lines, "max_depth: {type: int", "4}"),
        "spec.nope.deeper": _written_at(lines, "spec:", "spec"),  # the closest parent's key
        "spec.gates[7]": _written_at(lines, "gates:", "gates"),
        "spec.dataset.below": _written_at(lines, "dataset: breast-cancer", "dataset"),
    }
    result = load(["specs"], keep=keep)
    outcome = evaluate(EmbeddedEngine([FIELDS_POLICY]), result.resources, today=date(2026, 11, 22))
    found = {
        f.field: (f.location.file, f.location.line, f.location.column)
        for f in outcome.findings
        if f.rule == "fields.where"
    }
    assert found == {field: (str(MODEL), line, column) for field, (line, column) in expected.items()}


def _without_time(outcome: PolicyOutcome) -> list[tuple[object, ...]]:
    return [(d.policy, d.rule, d.resource, d.result, d.message, d.input_digest) for d in outcome.decisions]


def test_decisions_are_recorded_per_rule_and_resource_with_the_digest_of_the_input(library: list[PolicyFile]) -> None:
    result = load(["specs", "chaos"], keep="data")
    outcome = evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22))
    rules = [r for r in EmbeddedEngine(library).rules() if r.is_finding]
    assert len(outcome.decisions) == len(rules) * len(result.resources)
    by_resource = {item.ref: digest(input_for(item)) for item in result.resources}
    assert {d.resource: d.input_digest for d in outcome.decisions} == by_resource
    waived = [d for d in outcome.decisions if d.result == "waived"]
    assert [(d.rule, d.resource) for d in waived] == [("datasets.retention_required", "Dataset/breast-cancer")]
    first = outcome.decisions
    assert outcome.decisions is first  # built once, on first read, then kept


def test_forked_deciders_decide_as_one_process(
    library: list[PolicyFile], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import gc

    from controller.policy import evaluate as evaluation

    for name in ("specs", "chaos"):
        shutil.copytree(name, tmp_path / name)
    weaken_gate(tmp_path)
    result = load([str(tmp_path / "specs"), str(tmp_path / "chaos")], keep="data")
    serial = evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22))
    assert serial.failures, "the weakened gate must fail, so that findings travel back from a child"
    monkeypatch.setattr(evaluation, "PARALLEL_MIN_RESOURCES", 2)
    # The test runner (pytest-xdist) keeps idle threads of its own, which `may_fork` refuses
    # to fork beside; the test's main thread is the one that matters here.
    monkeypatch.setattr(evaluation, "may_fork", lambda: threading.current_thread() is threading.main_thread())
    forks = count_forks(monkeypatch)
    calls: list[str] = []
    for name in ("disable", "enable", "freeze", "collect"):
        monkeypatch.setattr(gc, name, lambda *args, name=name: calls.append(name))
    forked = evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22), workers=3)
    assert len(forks) == 3 and calls == []  # supervised deciders: the parent only watches them
    assert forked.findings == serial.findings
    assert _without_time(forked) == _without_time(serial)
    assert forked.evaluated == serial.evaluated == len(result.resources)
    with evaluation.parallel(2):  # how the CLI asks, through judge()
        evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22))
    assert len(forks) == 5


def test_deciders_are_never_forked_from_a_thread(library: list[PolicyFile], monkeypatch: pytest.MonkeyPatch) -> None:
    from concurrent.futures import ThreadPoolExecutor

    from controller.policy import evaluate as evaluation

    result = load(["specs", "chaos"], keep="data")
    monkeypatch.setattr(evaluation, "PARALLEL_MIN_RESOURCES", 2)
    # The test runner (pytest-xdist) keeps idle threads of its own, which `may_fork` refuses
    # to fork beside; the test's main thread is the one that matters here.
    monkeypatch.setattr(evaluation, "may_fork", lambda: threading.current_thread() is threading.main_thread())
    forks = count_forks(monkeypatch)

    def in_thread() -> PolicyOutcome:
        return evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22), workers=2)

    with ThreadPoolExecutor(1) as pool:
        outcome = pool.submit(in_thread).result()
    assert forks == []
    assert outcome.evaluated == len(result.resources) and len(outcome.exceptions) == 1


def test_a_decider_that_dies_is_never_replaced_by_deciding_here(
    library: list[PolicyFile], monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import pickle

    from controller.policy import evaluate as evaluation
    from controller.policy import supervised

    result = load(["specs", "chaos"], keep="data")
    serial = evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22))
    parent = os.getpid()
    real_dumps = pickle.dumps

    def dumps(value: object, *args: object) -> bytes:
        if os.getpid() != parent:
            raise RuntimeError("a child that dies before it answers")
        return real_dumps(value, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(evaluation, "PARALLEL_MIN_RESOURCES", 2)
    monkeypatch.setattr(supervised.pickle, "dumps", dumps)
    monkeypatch.setattr(evaluation, "may_fork", lambda: threading.current_thread() is threading.main_thread())
    forked = evaluate(EmbeddedEngine(library), result.resources, today=date(2026, 11, 22), workers=2)
    # Deciding here could not be stopped: each resource whose decider died is denied,
    # and after three (or as many as were running then) the rest are denied undecided.
    rules = [f.rule for f in forked.findings if f.rule.startswith("policy-")]
    assert 3 <= rules.count("policy-memory") < len(result.resources)
    assert len(rules) == len(result.resources) and set(rules) == {"policy-memory", "policy-not-decided"}
    assert {f.resource for f in forked.findings if f.rule.startswith("policy-")} == {r.ref for r in result.resources}
    assert serial.findings and not any(f.rule.startswith("policy-") for f in serial.findings)


@pytest.mark.parametrize("enabled", [True, False], ids=["gc-on", "gc-off"])
def test_validate_command_leaves_the_collector_as_it_found_it(enabled: bool) -> None:
    """The command switches the collector off for its own run only (the library never touches it)."""
    import gc

    from controller.cli import main

    was = gc.isenabled()
    try:
        gc.enable() if enabled else gc.disable()
        assert main(["validate", "--no-policy", "specs"]) == 0
        assert gc.isenabled() == enabled
    finally:
        gc.enable() if was else gc.disable()


@pytest.mark.parametrize("keep", ["resources", "data"])
def test_the_json_handed_to_the_engine_is_the_data_and_input_as_values(keep: str) -> None:
    from controller.policy import evaluate as evaluation
    from controller.policy.evaluate import data_for

    resources = load(["specs", "chaos", "tests/invalid/duplicate-name.yaml"], keep=keep).resources
    context = Context(revision="abc", changed_files=("specs/x.yaml",))
    assert json.loads(evaluation._data_json(resources, context)) == {"modelplane": data_for(resources, context)}
    for item in resources:
        text = evaluation._input_json(item)
        assert json.loads(text) == input_for(item)
        assert text == json.dumps(input_for(item), sort_keys=True, separators=(",", ":"))
