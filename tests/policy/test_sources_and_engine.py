"""Loading policies fails loudly; the embedded engine finds every rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.policy.embedded import EmbeddedEngine
from controller.policy.sources import PolicyFile, PolicyLoadError, discover


def test_no_policies_is_an_error_not_a_pass(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="no policies found in"):
        discover(tmp_path)
    (tmp_path / "only_test.rego").write_text("package x_test\n\ntest_a if { true }\n")
    with pytest.raises(PolicyLoadError, match="no policies found in"):
        discover(tmp_path)


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyLoadError, match="does not exist"):
        discover(tmp_path / "nope")


def test_syntax_error_names_file_line_and_column() -> None:
    bad = PolicyFile("policies/broken.rego", "package broken\n\ndeny_x contains msg if {\n  msg := \n}\n")
    with pytest.raises(PolicyLoadError) as info:
        EmbeddedEngine([bad])
    assert (info.value.file, info.value.line, info.value.column) == ("policies/broken.rego", 4, 7)
    assert str(info.value).startswith("policies/broken.rego:4:7: ")
    assert "Stack backtrace" not in str(info.value)


def test_library_rules_are_discovered_with_ids(library: list[PolicyFile]) -> None:
    rules = EmbeddedEngine(library).rules()
    findings = {r.rule_id for r in rules if r.is_finding}
    assert len(findings) >= 12
    assert {
        "models.gates_required",
        "models.medical_min_auc",
        "models.medical_two_approvals",
        "common.owner_label",
        "datasets.pii_consent_basis",
        "datasets.pii_retention",
        "storage.allowed_prefix",
        "services.slo_no_scale_to_zero",
        "services.canary_ends_at_100",
        "services.canary_analysis_required",
        "chaos.blast_radius_required",
        "chaos.steady_state_required",
        "chaos.rollbacks_required",
        "chaos.non_production_target",
    } <= findings
    assert any(r.is_test for r in rules)


def test_json_text_and_values_decide_alike(library: list[PolicyFile]) -> None:
    """evaluate() hands the embedded engine JSON text it already holds; the answers are the same."""
    import json

    from controller.loading import load
    from controller.policy.evaluate import Context, data_for, input_for

    resources = load(["specs", "chaos"], keep="data").resources
    by_values, by_text = EmbeddedEngine([f for f in library if not f.is_test]), EmbeddedEngine(library)
    data = data_for(resources, Context(revision="abc"))
    by_values.set_data(data)
    by_text.set_data_json(json.dumps({"modelplane": data}, sort_keys=True))
    decided = [by_values.decide(input_for(item)) for item in resources]
    assert decided == [by_text.decide_json(json.dumps(input_for(item))) for item in resources]
    assert any(result.get("datasets", {}).get("deny_retention_required") for result in decided)
