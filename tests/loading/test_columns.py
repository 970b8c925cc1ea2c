"""Columns across resources: what a Model names must be what its Dataset declares.

Checked where references are resolved (controller/loading/references.py), from facts every
loaded resource keeps, so a load that keeps only references finds the same.
"""

from __future__ import annotations

import textwrap

import pytest

from controller.loading import load
from controller.loading.loader import load_text

MODEL = """\
apiVersion: modelplane.io/v1alpha1
kind: Model
metadata:
  name: m
spec:
  dataset: {dataset}
{extra}
  estimator:
    framework: sklearn
    class: sklearn.naive_bayes.GaussianNB
"""
DATASET = """\
apiVersion: modelplane.io/v1alpha1
kind: Dataset
metadata:
  name: {name}
spec:
{body}
"""
DECLARED = """\
  source: {path: data/flowers.csv}
  target: species
  columns:
    - {name: petal length, type: float}
    - {name: petal width, type: float}
    - {name: colour, type: category}
    - {name: species, type: category}"""


def _text(model_extra: str, *datasets: tuple[str, str], dataset: str = "flowers") -> str:
    docs = [MODEL.format(dataset=dataset, extra=textwrap.indent(model_extra, "  ") if model_extra else "")]
    docs += [DATASET.format(name=name, body=body) for name, body in datasets]
    return "---\n".join(docs)


def _findings(text: str) -> list[tuple[int, int, str | None, str]]:
    result = load_text(text, "platform.yaml")
    assert result.rejected == 0, result.findings
    from controller.loading.references import check_references

    return [(f.location.line, f.location.column, f.field, f.message) for f in check_references(result.resources)]


def test_declared_columns_pass() -> None:
    text = _text(
        "features: [petal length, petal width]\nfairness:\n  maxGap: 0.2\n  slices: [{name: c, column: colour}]",
        ("flowers", DECLARED),
    )
    assert _findings(text) == []


def test_an_undeclared_feature_target_or_slice_column_is_reported_at_the_model_s_field() -> None:
    extra = (
        "target: kind\nfeatures: [petal length, petal widht]\n"
        "fairness:\n  maxGap: 0.2\n  slices: [{name: c, column: color}]"
    )
    found = _findings(_text(extra, ("flowers", DECLARED)))
    assert found == [
        (
            8,
            28,
            "spec.features[1]",
            "spec.features[1]: column 'petal widht' is not declared by Dataset 'flowers'; did you mean 'petal width'?",
        ),
        (7, 11, "spec.target", "spec.target: column 'kind' is not declared by Dataset 'flowers'"),
        (
            11,
            32,
            "spec.fairness.slices[0].column",
            "spec.fairness.slices[0].column: column 'color' is not declared by Dataset 'flowers'; "
            "did you mean 'colour'?",
        ),
    ]


def test_the_dataset_s_target_is_no_feature() -> None:
    found = _findings(_text("features: [petal length, species]", ("flowers", DECLARED)))
    assert found == [
        (
            7,
            28,
            "spec.features[1]",
            "spec.features[1]: 'species' is the target of Dataset 'flowers'; remove it from the features",
        )
    ]


def test_the_model_s_own_target_lets_the_dataset_s_target_be_a_feature() -> None:
    assert _findings(_text("target: colour\nfeatures: [petal length, species]", ("flowers", DECLARED))) == []


def test_a_dataset_without_declared_columns_is_not_checked() -> None:
    """Its columns are known only when its data is read: the train step checks them then."""
    body = "  source: {path: data/flowers.csv}\n  target: species"
    assert _findings(_text("features: [anything, at all]", ("flowers", body))) == []


def test_no_target_anywhere_is_reported_at_the_dataset_reference() -> None:
    body = "  source: {sklearn: iris}"
    assert _findings(_text("", ("flowers", body))) == [
        (
            6,
            12,
            "spec.dataset",
            "spec.dataset: no target column: Dataset 'flowers' names none; set spec.target here or on the Dataset",
        )
    ]
    assert _findings(_text("target: target", ("flowers", body))) == []


def test_a_derived_dataset_has_the_columns_it_selects_or_its_parent_s() -> None:
    selected = "  source:\n    derivedFrom: {dataset: flowers, columns: [petal length, species]}\n  target: species"
    inherited = "  source:\n    derivedFrom: {dataset: flowers}\n  target: species"
    text = _text("features: [petal width]", ("petals", selected), ("flowers", DECLARED), dataset="petals")
    assert [f[3] for f in _findings(text)] == [
        "spec.features[0]: column 'petal width' is not declared by Dataset 'petals'; did you mean 'petal length'?"
    ]
    text = _text("features: [petal width]", ("petals", inherited), ("flowers", DECLARED), dataset="petals")
    assert _findings(text) == []
    text = _text("features: [petal widht]", ("petals", inherited), ("flowers", DECLARED), dataset="petals")
    assert [f[3] for f in _findings(text)] == [
        "spec.features[0]: column 'petal widht' is not declared by Dataset 'petals'; did you mean 'petal width'?"
    ]


def test_a_dangling_dataset_or_a_cycle_reports_no_column_finding() -> None:
    assert [f[3] for f in _findings(_text("features: [x]", ("other", DECLARED)))] == [
        "spec.dataset: Dataset 'flowers' does not exist; define it or fix the name"
    ]
    a = "  source:\n    derivedFrom: {dataset: b}"
    b = "  source:\n    derivedFrom: {dataset: a}"
    found = _findings(_text("features: [x]\ntarget: y", ("a", a), ("b", b), dataset="a"))
    assert [f[3].split(":")[0] for f in found] == ["reference cycle"]


@pytest.mark.parametrize("keep", ["resources", "data", "references"])
def test_every_load_finds_the_column_errors(keep: str, tmp_path) -> None:
    path = tmp_path / "platform.yaml"
    path.write_text(_text("features: [petal length, petal widht]", ("flowers", DECLARED)))
    findings = load([str(path)], keep=keep).findings  # type: ignore[arg-type]
    assert [(f.location.line, f.location.column, f.field) for f in findings] == [(7, 28, "spec.features[1]")]
