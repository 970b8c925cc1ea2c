"""Waivers come from real people, for a bounded time; a policy's own exception rules are
waivers nobody approved. Each case is the attack: a placeholder reason, a blank or
look-alike approver, a waiver for ten years, one dated in the future, an exception rule
slipped into a policy file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest

from controller.api.findings import Severity
from controller.loading import load, load_text
from controller.policy.embedded import EmbeddedEngine
from controller.policy.evaluate import evaluate
from controller.policy.sources import PolicyFile
from controller.policy.waivers import WaiverRules

EXE = Path(sys.executable).with_name("modelplane")
TODAY = date(2026, 12, 3)
LABELS = PolicyFile(
    "labels.rego",
    """package labels

deny_team contains msg if {
    input.kind == "Dataset"
    not input.metadata.labels.team
    msg := "no team label"
}

exception contains ["team"] if input.metadata.name == "breast-cancer"
""",
)


def waiver(
    *,
    reason: str = "Public research data; teams are not assigned.",
    approved_by: str = "dpo@example.org",
    approved: date | None = TODAY - timedelta(days=10),
    expires: date = TODAY + timedelta(days=10),
    rule: str = "labels.team",
) -> str:
    approved_line = f"  approvedAt: {approved}\n" if approved else ""
    return (
        "apiVersion: modelplane.io/v1alpha1\nkind: PolicyException\nmetadata: {name: w}\nspec:\n"
        f"  rules: [{rule}]\n  resources: [{{kind: Dataset, name: breast-cancer}}]\n"
        f"  reason: {json.dumps(reason)}\n  approvedBy: {json.dumps(approved_by)}\n"
        f"{approved_line}  expires: {expires}\n"
    )


def judged(text: str, rules: WaiverRules | None = None):  # type: ignore[no-untyped-def]
    dataset = load(["specs/datasets"]).resources
    extra = load_text(text, "specs/exceptions/w.yaml")
    assert extra.findings == [], extra.findings
    return evaluate(EmbeddedEngine([LABELS]), dataset + extra.resources, today=TODAY, waiver_rules=rules)


@pytest.mark.parametrize(
    "reason",
    [
        "TODO",
        "n/a",
        "  tbd. ",
        "because",
        "-",
        "12345 67890 12",
        "ok ok",
        "TODO: TODO TODO TODO TODO",
        "n/a n/a n/a n/a n/a",
        "xxxxxxxxxxx xxxxxxxxxxxxx",
        "TODO: fill in later please ok",
        "tbd, will explain later",
        "placeholder reason here",
        "lorem ipsum dolor sit amet",
        "asdf qwerty zxcv uiop",
        "T.O.D.O. fill this in later please",
        "FIX ME write the real reason",
        "place holder reason here",
        "TBC, will explain later on",
        "\uff34\uff2f\uff24\uff2f fill this in later please",
        "T\u200bODO fill this in later please",
    ],
)
def test_a_reason_must_say_why(reason: str) -> None:
    (finding,) = load_text(waiver(reason=reason), "w.yaml").findings
    assert (finding.rule, finding.location.line, finding.location.column) == ("invalid-value", 7, 11)
    assert "say why" in finding.message


@pytest.mark.parametrize("who", ["", "   ", "Chief Medical Officer", "<script>"])
def test_an_approver_must_be_an_identity(who: str) -> None:
    (finding,) = load_text(waiver(approved_by=who), "w.yaml").findings
    assert (finding.rule, finding.location.line) == ("invalid-value", 8)
    assert "identity" in finding.message


def test_no_waiver_is_approved_in_the_controllers_name() -> None:
    (finding,) = load_text(waiver(approved_by="ModelPlane"), "w.yaml").findings
    assert (finding.rule, finding.location.line) == ("invalid-value", 8)
    assert "the controller's own name" in finding.message


@pytest.mark.parametrize("when", ["'2026-11-01T00:00:00'", "1793491200", "1793491200.0", "20261101"])
def test_approved_at_is_a_day_not_a_timestamp(when: str) -> None:
    text = waiver().replace(f"approvedAt: {TODAY - timedelta(days=10)}", f"approvedAt: {when}")
    (finding,) = load_text(text, "w.yaml").findings
    assert finding.location.line == 9 and "is not a day: write YYYY-MM-DD" in finding.message


def test_a_reason_that_merely_mentions_to_do_is_a_reason() -> None:
    assert load_text(waiver(reason="Public research data, nothing to do with patients."), "w.yaml").findings == []


def test_approver_is_normalised_as_approvals_are() -> None:
    outcome = judged(waiver(approved_by="  DPO@Example.org "))
    (finding,) = [f for f in outcome.findings if f.rule == "labels.team"]
    assert finding.waived_by == f"PolicyException/w (approved by dpo@example.org, until {TODAY + timedelta(days=10)})"


def test_approved_at_is_required() -> None:
    (finding,) = load_text(waiver(approved=None), "w.yaml").findings
    assert finding.rule == "missing-field" and "approvedAt" in finding.message


def test_an_approved_waiver_wins_over_an_exception_rule_and_nothing_is_unapproved() -> None:
    outcome = judged(waiver())
    (finding,) = [f for f in outcome.findings if f.rule == "labels.team"]
    assert finding.waived_by is not None and finding.waived_by.startswith("PolicyException/w")
    assert not [f for f in outcome.findings if f.rule.startswith("waiver-")]


@pytest.mark.parametrize(("days", "in_force"), [(180, True), (181, False), (3650, False)])
def test_default_lifetime_is_180_days(days: int, in_force: bool) -> None:
    approved = TODAY - timedelta(days=1)
    outcome = judged(waiver(approved=approved, expires=approved + timedelta(days=days)), WaiverRules(strict=True))
    (finding,) = [f for f in outcome.findings if f.rule == "labels.team"]
    assert (finding.waived_by is not None) == in_force
    too_long = [f for f in outcome.findings if f.rule == "waiver-too-long"]
    assert bool(too_long) != in_force
    if too_long:
        assert too_long[0].severity == Severity.ERROR
        assert (too_long[0].location.line, too_long[0].field) == (10, "spec.expires")
        assert f"set expires to {approved + timedelta(days=180)} or earlier" in too_long[0].message
        assert outcome.exit_code() == 1


def test_a_waiver_dated_in_the_future_waives_nothing_yet() -> None:
    outcome = judged(waiver(approved=TODAY + timedelta(days=1), expires=TODAY + timedelta(days=20)), WaiverRules())
    (early,) = [f for f in outcome.findings if f.rule == "waiver-not-yet-approved"]
    assert early.severity == Severity.ERROR and early.field == "spec.approvedAt"
    (finding,) = [f for f in outcome.findings if f.rule == "labels.team"]
    assert finding.waived_by == "exception rule in package labels, without an approver"  # not the waiver's


# Through the CLI: the project's lifetime, strict mode by flag and in CI.


@pytest.fixture
def labelled(platform: Path) -> Path:
    (platform / "policies" / "labels.rego").write_text(LABELS.text)
    return platform


def validate(cwd: Path, *args: str, ci: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run([str(EXE), "validate", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60)


def test_strict_waivers_refuse_exception_rules_by_flag_and_in_ci(labelled: Path) -> None:
    lax = validate(labelled)
    assert lax.returncode == 0, lax.stdout
    assert "waived [labels.team]" in lax.stdout and "warning [waiver-without-approver]" in lax.stdout
    assert validate(labelled, "--fail-on-warn").returncode == 1
    for strict in (validate(labelled, "--strict-waivers"), validate(labelled, ci="true")):
        assert strict.returncode == 1
        assert "error [labels.team]" in strict.stdout and "names no approver" in strict.stdout
    assert validate(labelled, "--no-strict-waivers", ci="true").returncode == 0
    assert validate(labelled, ci="false").returncode == 0


def test_project_file_sets_the_longest_waiver(platform: Path) -> None:
    (platform / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: demo}\nspec:\n  waiverMaxDays: 30\n"
    )
    out = validate(platform)  # the example's waiver runs from 2026-11-01 to 2027-04-30
    assert out.returncode == 1
    assert "error [waiver-too-long] PolicyException/breast-cancer-retention: lasts 180 days" in out.stdout
    assert "error [datasets.retention_required]" in out.stdout
    (platform / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: demo}\nspec:\n  waiverMaxDays: 0\n"
    )
    refused = validate(platform)
    assert refused.returncode == 2 and "modelplane.yaml:5:18: " in refused.stderr
