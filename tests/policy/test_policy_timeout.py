"""A runaway policy is stopped at its time limit and the resource is denied (fails closed).

regorus holds the GIL while it evaluates, so the limit is enforced by deciding in
supervised forked processes; these tests run the CLI in a subprocess (pytest-xdist
workers run threads, where forking is refused)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).with_name("modelplane")
# 9 million iterations for a Model (seconds in regorus); nothing for other kinds.
RUNAWAY = """package runaway

deny_spin contains msg if {
    input.kind == "Model"
    some i in numbers.range(1, 3000)
    some j in numbers.range(1, 3000)
    i * j == -1
    msg := "never"
}
"""


@pytest.fixture
def runaway(platform: Path) -> Path:
    (platform / "policies" / "runaway.rego").write_text(RUNAWAY)
    return platform


def run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(EXE), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def test_a_runaway_rule_is_stopped_and_its_resource_denied_naming_the_package(runaway: Path) -> None:
    log = runaway / "decisions.jsonl"
    out = run(runaway, "validate", "--policy-timeout", "0.5", "-o", "json", "--decision-log", str(log))
    assert out.returncode == 1, out.stderr
    findings = json.loads(out.stdout)["findings"]
    (timeout,) = [f for f in findings if f["rule"] == "policy-timeout"]
    assert timeout["resource"] == "Model/breast-cancer-classifier"
    assert timeout["severity"] == "error"
    assert timeout["message"].startswith(
        "policy package runaway did not decide Model/breast-cancer-classifier within 0.5 s; denied"
    )
    # The other resources were decided as usual: the example's waived finding is still there.
    assert [f["rule"] for f in findings if f["waived_by"]] == ["datasets.retention_required"]
    decisions = [json.loads(line) for line in log.read_text().splitlines()]
    model = [d for d in decisions if d["resource"] == "Model/breast-cancer-classifier"]
    assert model and all(d["result"] == "error" for d in model)
    assert model[0]["message"] == "policy-timeout: package runaway did not decide within 0.5 s"


def test_the_limit_comes_from_the_project_file_and_a_generous_limit_lets_it_finish(runaway: Path) -> None:
    (runaway / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: demo}\n"
        "spec:\n  policyTimeoutSeconds: 0.5\n"
    )
    out = run(runaway, "validate")
    assert out.returncode == 1 and "error [policy-timeout]" in out.stdout
    (runaway / "policies" / "runaway.rego").write_text(RUNAWAY.replace("3000", "30"))
    out = run(runaway, "validate")
    assert out.returncode == 0, out.stdout


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan", "99999"])
def test_a_nonsense_limit_is_a_usage_error(platform: Path, value: str) -> None:
    out = run(platform, "validate", "--policy-timeout", value)
    assert out.returncode == 2
    assert "is not a number of seconds between 0 and 3600" in out.stderr


def test_a_rule_that_allocates_without_end_is_stopped_and_the_rest_not_decided(platform: Path) -> None:
    """A pushed rule asking for ~24 GB per resource dies in its decider, never in the
    validating process; after three such stops the rest are denied undecided."""
    (platform / "policies" / "hog.rego").write_text(
        'package hog\n\nimport rego.v1\n\ndeny_big contains "x" if count(numbers.range(1, 1000000000)) < 0\n'
    )
    out = run(platform, "validate", "-o", "json")
    assert out.returncode == 1, out.stderr
    findings = json.loads(out.stdout)["findings"]
    rules = [f["rule"] for f in findings if f["rule"].startswith("policy-")]
    assert rules.count("policy-memory") == 3 and set(rules) == {"policy-memory", "policy-not-decided"}
    memory = next(f for f in findings if f["rule"] == "policy-memory")
    assert "policy package hog went over its memory limit of 4096 MB" in memory["message"]


def test_a_rule_that_floods_findings_is_capped(platform: Path) -> None:
    (platform / "policies" / "flood.rego").write_text(
        "package flood\n\nimport rego.v1\n\n"
        'long := concat("", ["a" | some _ in numbers.range(1, 3000)])\n\n'
        'deny_many contains sprintf("%s %d", [long, i]) if {\n'
        "\tsome i in numbers.range(1, 2000)\n}\n"
    )
    out = run(platform, "validate", "-o", "json")
    findings = [f for f in json.loads(out.stdout)["findings"] if f["rule"] == "flood.many"]
    per_resource: dict[str, int] = {}
    for f in findings:
        per_resource[f["resource"]] = per_resource.get(f["resource"], 0) + 1
        assert len(f["message"]) <= 1010
    assert set(per_resource.values()) == {51}
    assert sum(f["message"] == "... and 1950 more findings of this rule (not shown)" for f in findings) == len(
        per_resource
    )


def test_many_rules_flooding_one_resource_are_capped_in_total(platform: Path) -> None:
    rules = "".join(
        f'deny_r{r} contains sprintf("r{r} %d", [i]) if {{\n\tsome i in numbers.range(1, 60)\n}}\n\n' for r in range(20)
    )
    (platform / "policies" / "flood.rego").write_text("package flood\n\nimport rego.v1\n\n" + rules)
    out = run(platform, "validate", "-o", "json")
    findings = json.loads(out.stdout)["findings"]
    model = [f for f in findings if f["resource"] == "Model/breast-cancer-classifier"]
    assert len(model) <= 501 + 5  # the cap, its summary, and the library's own few
    assert any("more policy findings for Model/breast-cancer-classifier" in f["message"] for f in model)
