"""Model cards from a real training run of the example: the Model Card Toolkit JSON validates
against the MCT schema, Markdown and HTML carry the gates with their observed values, the
stage and the approvals, and the HTML escapes whatever the spec says."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from controller.api import Model
from reconcilers import data, metricgate, modelcard, train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(model_variant, datasets) -> dict[str, Any]:
    """A run record as the store keeps it (JSON round trip), gates decided: the example's
    estimator without its search (the search is tested in test_train.py)."""
    model = model_variant(search=None)
    loaded = data.load(datasets["breast-cancer"], datasets, ROOT)
    trained = train.train(model, loaded.frame, "target")
    fairness = metricgate.evaluate_fairness(model, trained.test_frame, trained.y_test, trained.y_pred, trained.y_score)
    outcome = metricgate.decide(model, trained.metrics, fairness)
    record = {
        "id": "3f2a9c1d0b7e",
        "model": model.name,
        "status": "passed" if outcome.passed else "gate-failed",
        "dataset_hash": loaded.content_hash,
        "params": trained.params,
        "metrics": trained.metrics,
        "gates": outcome.gates,
        "fairness": outcome.fairness,
        "artifact_digest": "sha256:" + "ab" * 32,
    }
    return json.loads(json.dumps(record))


def _card(model: Model, run: dict[str, Any], **changes: Any) -> modelcard.CardInput:
    fields: dict[str, Any] = {
        "model": model,
        "version": 3,
        "stage": "Production",
        "run": run,
        "dataset": "breast-cancer",
        "data_check": {"success": 1, "gx_run_id": "gx-run-42"},
        "approvals": ["alice", "bob"],
        "policy": [{"rule": "models.medical_min_auc", "result": "pass"}],
        "revision": "0123456789abcdef0123456789abcdef01234567",
        "date": "2026-11-22T09:30:00.000+00:00",
    }
    return modelcard.CardInput(**{**fields, **changes})


@pytest.fixture(scope="module")
def card(model_variant, run) -> modelcard.CardInput:
    return _card(model_variant(search=None), run)


def test_the_run_passed_its_gates(run: dict[str, Any]) -> None:
    assert run["status"] == "passed"
    assert [(g["metric"], g["passed"]) for g in run["gates"]] == [("roc_auc", True), ("recall", True)]


@pytest.mark.parametrize("date", ["2026-11-22T09:30:00.000+00:00", ""], ids=["dated", "undated"])
def test_mct_json_validates_against_the_model_card_toolkit_schema(
    date: str, model_variant, run, upstream: Path
) -> None:
    schema = json.loads((upstream / "model-card-toolkit" / "model_card.schema.v0.0.2.json").read_text())
    doc = modelcard.to_mct(_card(model_variant(search=None), run, date=date))
    validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER)
    assert [e.message for e in validator.iter_errors(doc)] == []
    assert doc["model_details"]["version"].get("date") == (date[:10] or None)


def test_mct_json_carries_metrics_slices_and_provenance(card: modelcard.CardInput, run: dict[str, Any]) -> None:
    doc = modelcard.to_mct(card)
    metrics = doc["quantitative_analysis"]["performance_metrics"]
    overall = {m["type"]: m["value"] for m in metrics if "slice" not in m}
    assert overall == {k: str(v) for k, v in run["metrics"].items()}
    (s,) = run["fairness"]["slices"]
    sliced = {m["slice"]: m["value"] for m in metrics if "slice" in m}
    assert sliced == {f"mean radius in {group}": str(g["value"]) for group, g in s["groups"].items()}
    assert len(sliced) == 3
    documentation = doc["model_details"]["documentation"].splitlines()
    assert "approvals: alice, bob" in documentation and "stage: Production" in documentation
    assert f"dataset: breast-cancer @ {run['dataset_hash']}" in documentation
    assert "data contract: passed (GX run gx-run-42)" in documentation
    assert "policy decisions: models.medical_min_auc=pass" in documentation
    assert doc["model_details"]["version"]["name"] == "v3"
    assert doc["considerations"]["use_cases"] == [{"description": card.model.spec.card.intendedUse}]


def _front_matter(markdown: str) -> dict[str, Any]:
    assert markdown.startswith("---\n")
    return yaml.safe_load(markdown.split("---\n", 2)[1])


def test_markdown_has_gates_with_observed_values_stage_and_approvals(card: modelcard.CardInput, run) -> None:
    markdown = modelcard.to_markdown(card)
    front = _front_matter(markdown)
    (result,) = front["model-index"][0]["results"]
    assert {m["type"]: m["value"] for m in result["metrics"]} == run["metrics"]
    assert result["dataset"]["revision"] == run["dataset_hash"]
    assert front["license"] == "bsd-3-clause" and "tabular-classification" in front["tags"]
    lines = markdown.splitlines()
    assert f"| roc_auc | {run['metrics']['roc_auc']} | >= 0.92 ✅ |" in lines
    assert f"| recall | {run['metrics']['recall']} | >= 0.9 ✅ |" in lines
    assert f"| accuracy | {run['metrics']['accuracy']} |  |" in lines  # measured, not gated
    assert "| stage | `Production` |" in lines and "| approvals | `alice, bob` |" in lines
    assert lines.count("# breast-cancer-classifier v3") == 1


def test_a_failed_gate_is_marked_in_markdown_and_html(card: modelcard.CardInput, run: dict[str, Any]) -> None:
    gates = [{**run["gates"][0], "threshold": 0.999, "passed": False}, run["gates"][1]]
    failed = _card(card.model, {**run, "gates": gates})
    observed = run["metrics"]["roc_auc"]
    assert f"| roc_auc | {observed} | >= 0.999 ❌ |" in modelcard.to_markdown(failed).splitlines()
    page = modelcard.to_html(failed)
    assert f"<tr><th>roc_auc</th><td>{observed} &gt;= 0.999</td><td>FAILED</td></tr>" in page


def test_html_has_gates_with_observed_values_stage_and_approvals(card: modelcard.CardInput, run) -> None:
    page = modelcard.to_html(card)
    for gate in run["gates"]:
        row = f"<tr><th>{gate['metric']}</th><td>{gate['observed']} &gt;= {gate['threshold']}</td><td>passed</td></tr>"
        assert row in page
    assert "<small>v3 · Production</small>" in page
    assert "<tr><th>approvals</th><td><code>alice, bob</code></td></tr>" in page
    assert "<tr><th>stage</th><td><code>Production</code></td></tr>" in page
    assert page.count("<svg") == 2  # the metrics, and the one fairness slice


HOSTILE = "<script>alert('card')</script>"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes |= {name for name, _ in attrs}


def test_html_escapes_hostile_text_from_the_spec_and_the_data(model_variant, run: dict[str, Any]) -> None:
    text = {
        "description": '"><img src=x onerror=alert(1)>',
        "intendedUse": HOSTILE,
        "limitations": ["</li><iframe src=//evil.example>"],
        "ethicalConsiderations": ["<a href='javascript:alert(1)'>x</a>"],
        "owners": [{"name": "<b onmouseover=alert(1)>Eve</b>", "contact": "eve@example.org"}],
        "license": "MIT\nmalicious: true",
    }
    model = model_variant(search=None, card=text)
    (s,) = run["fairness"]["slices"]
    groups = {HOSTILE: next(iter(s["groups"].values()))}  # a slice group named by a data value
    fairness = {**run["fairness"], "slices": [{**s, "column": "<svg onload=alert(1)>", "groups": groups}]}
    hostile = _card(model, {**run, "fairness": fairness}, approvals=["<script>x</script>"])
    page = modelcard.to_html(hostile)
    parser = _Tags()
    parser.feed(page)
    allowed = {"html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "small", "p", "table", "tr", "th"}
    assert parser.tags <= allowed | {"td", "ul", "li", "code", "svg", "text", "rect"}
    assert not {a for a in parser.attributes if a.startswith("on") or a in ("src", "href")}
    assert "&lt;script&gt;alert(&#x27;card&#x27;)&lt;/script&gt;" in page
    assert "&lt;iframe src=//evil.example&gt;" in page
    # The Markdown front matter stays YAML with one license value, whatever the spec holds.
    front = _front_matter(modelcard.to_markdown(hostile))
    assert front["license"] == "mit\nmalicious: true" and "malicious" not in front


def test_write_puts_three_files_named_by_model_and_version(card: modelcard.CardInput, tmp_path: Path) -> None:
    paths = modelcard.write(card, tmp_path / "cards")
    stem = tmp_path / "cards" / "breast-cancer-classifier-v3"
    assert paths == {"json": f"{stem}.json", "markdown": f"{stem}.md", "html": f"{stem}.html"}
    assert json.loads(Path(paths["json"]).read_text()) == modelcard.to_mct(card)
    assert Path(paths["markdown"]).read_text() == modelcard.to_markdown(card)
    assert Path(paths["html"]).read_text() == modelcard.to_html(card)
