"""Each formatter on the same report: golden text, real SARIF schema, parseable JUnit."""

from __future__ import annotations

import json
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from controller.api.findings import Report
from controller.loading import load
from controller.output import FORMATTERS

GOLDEN = Path(__file__).parent / "golden"
FILES = ["tests/invalid/wrong-type.yaml", "tests/invalid/dangling-reference.yaml", "specs/datasets/breast-cancer.yaml"]


@pytest.fixture
def report() -> Report:
    return load(FILES).report()


@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_golden_output(fmt: str, report: Report) -> None:
    golden = GOLDEN / f"validate.{fmt}"
    rendered = FORMATTERS[fmt](report)
    if os.environ.get("UPDATE_GOLDEN"):
        golden.write_text(rendered)
        pytest.skip(f"rewrote {golden.name}; review the diff and run again without UPDATE_GOLDEN")
    assert rendered == golden.read_text()


def test_sarif_validates_against_the_sarif_2_1_0_schema(report: Report, upstream: Path) -> None:
    schema = json.loads((upstream / "sarif" / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(FORMATTERS["sarif"](report))
    jsonschema.validate(log, schema, cls=jsonschema.Draft7Validator)
    results = log["runs"][0]["results"]
    assert [(r["ruleId"], r["locations"][0]["physicalLocation"]["region"]) for r in results] == [
        ("dangling-reference", {"startLine": 7, "startColumn": 12}),
        ("duplicate-name", {"startLine": 15, "startColumn": 9}),
        ("wrong-type", {"startLine": 16, "startColumn": 18}),
    ]
    rules = log["runs"][0]["tool"]["driver"]["rules"]
    assert [rules[r["ruleIndex"]]["id"] for r in results] == [r["ruleId"] for r in results]
    assert results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == FILES[1]


def test_sarif_of_a_clean_run_has_no_results(upstream: Path) -> None:
    schema = json.loads((upstream / "sarif" / "sarif-schema-2.1.0.json").read_text())
    log = json.loads(FORMATTERS["sarif"](load(["specs"]).report()))
    jsonschema.validate(log, schema, cls=jsonschema.Draft7Validator)
    assert log["runs"][0]["results"] == [] and len(log["runs"][0]["artifacts"]) == 4


def test_junit_has_one_case_per_file_and_failures_for_errors(report: Report) -> None:
    root = ET.fromstring(FORMATTERS["junit"](report))
    suite = root.find("testsuite")
    assert suite is not None and suite.get("tests") == "3" and suite.get("failures") == "2"
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert set(cases) == set(FILES)
    assert cases[FILES[2]].find("failure") is None
    failure = cases[FILES[0]].find("failure")
    assert failure is not None and "16:18: [wrong-type]" in (failure.text or "")


def test_github_annotations_escape_message_and_properties() -> None:
    from controller.api.findings import Finding, Location

    report = Report(findings=[Finding("x", "50%\nof, it: broke", Location("a,b:c.yaml", 3, 4))])
    assert FORMATTERS["github"](report) == (
        "::error file=a%2Cb%3Ac.yaml,line=3,col=4,title=modelplane x::50%25%0Aof, it: broke\n"
    )


def test_json_summary_counts(report: Report) -> None:
    doc = json.loads(FORMATTERS["json"](report))
    assert doc["summary"] == {
        "files": 3,
        "resources": 4,
        "errors": 3,
        "warnings": 0,
        "waived": 0,
        "skipped": 0,
        "passed": False,
    }
