"""The metric gate: each operator at and around its threshold, and fairness slices whose
per-group values are recomputed here with scikit-learn on the same rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn import metrics as skm

from reconcilers import metricgate, train

NAIVE_BAYES = {"framework": "sklearn", "class": "sklearn.naive_bayes.GaussianNB"}
TUMOUR_SIZE = {"name": "tumour-size", "column": "mean radius", "bins": [0, 12, 16, 40]}
GROUPS = {"(-0.001, 12.0]": (0, 12), "(12.0, 16.0]": (12, 16), "(16.0, 40.0]": (16, 40)}


def _gate(op: str, threshold: float, metric: str = "roc_auc") -> dict[str, Any]:
    return {"metric": metric, "operator": op, "threshold": threshold}


@pytest.mark.parametrize(
    ("op", "observed", "threshold", "passed"),
    [
        (">=", 0.92, 0.92, True),
        (">=", 0.9199, 0.92, False),
        (">", 0.92, 0.92, False),
        (">", 0.9201, 0.92, True),
        ("<=", 0.1, 0.1, True),
        ("<=", 0.1001, 0.1, False),
        ("<", 0.1, 0.1, False),
        ("<", 0.0999, 0.1, True),
        ("==", 1.0, 1.0, True),
        ("==", 0.9999, 1.0, False),
    ],
    ids=["ge-equal", "ge-below", "gt-equal", "gt-above", "le-equal", "le-above", "lt-equal", "lt-below", "eq", "ne"],
)
def test_gate_operator(op: str, observed: float, threshold: float, passed: bool, model_variant) -> None:
    model = model_variant(gates=[_gate(op, threshold)], fairness=None)
    outcome = metricgate.decide(model, {"roc_auc": observed, "recall": 0.5}, {})
    assert outcome.gates == [
        {"metric": "roc_auc", "operator": op, "threshold": threshold, "observed": observed, "passed": passed}
    ]
    assert outcome.passed is passed
    expected = "1 gate(s) passed" if passed else f"roc_auc {observed} {op} {threshold} is false"
    assert outcome.summary() == expected


def test_a_gate_on_a_metric_that_was_not_measured_fails(model_variant) -> None:
    model = model_variant(gates=[_gate(">=", 0.5), _gate(">=", 0.5, "recall")], fairness=None)
    outcome = metricgate.decide(model, {"roc_auc": 0.99}, {})
    assert [(g["metric"], g["observed"], g["passed"]) for g in outcome.gates] == [
        ("roc_auc", 0.99, True),
        ("recall", None, False),
    ]
    assert not outcome.passed and outcome.summary() == "recall None >= 0.5 is false"


def test_every_gate_must_pass(model_variant) -> None:
    model = model_variant(gates=[_gate(">=", 0.9), _gate(">=", 0.9, "recall"), _gate("<=", 0.3, "log_loss")])
    outcome = metricgate.decide(model, {"roc_auc": 0.95, "recall": 0.85, "log_loss": 0.2}, {})
    assert [g["passed"] for g in outcome.gates] == [True, False, True]
    assert not outcome.passed and outcome.summary() == "recall 0.85 >= 0.9 is false"


def test_no_gates_pass_trivially_but_fairness_still_counts(model_variant) -> None:
    model = model_variant(gates=[], fairness=None)
    assert metricgate.decide(model, {}, {}).passed
    failing = {"metric": "accuracy", "maxGap": 0.1, "slices": [{"name": "s", "passed": False, "gap": 0.2}]}
    outcome = metricgate.decide(model, {}, failing)
    assert not outcome.passed and outcome.summary() == "fairness slice s: accuracy gap 0.2 > 0.1"


# --- fairness on the example ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def breast_cancer_run(model_variant, frames) -> train.Trained:
    model = model_variant(estimator=NAIVE_BAYES, search=None)
    return train.train(model, frames["breast-cancer"], "target")


def _fairness(model_variant, metric: str, max_gap: float, *slices: dict[str, Any], dataset: str = "breast-cancer"):
    fairness = {"metric": metric, "maxGap": max_gap, "slices": list(slices)}
    if dataset == "breast-cancer":
        return model_variant(estimator=NAIVE_BAYES, search=None, fairness=fairness)
    return model_variant(
        dataset=dataset, estimator=NAIVE_BAYES, search=None, fairness=fairness, metrics=["accuracy"], gates=[]
    )


BINARY_REFERENCE = {
    "accuracy": lambda t, p, s: skm.accuracy_score(t, p),
    "f1": lambda t, p, s: skm.f1_score(t, p, zero_division=0),
    "precision": lambda t, p, s: skm.precision_score(t, p, zero_division=0),
    "recall": lambda t, p, s: skm.recall_score(t, p, zero_division=0),
    "roc_auc": lambda t, p, s: skm.roc_auc_score(t, s[:, 1]),
    "log_loss": lambda t, p, s: skm.log_loss(t, s, labels=[0, 1]),
}


@pytest.mark.parametrize("metric", sorted(BINARY_REFERENCE))
def test_binned_slice_values_equal_scikit_learn_on_the_same_rows(
    metric: str, breast_cancer_run: train.Trained, model_variant
) -> None:
    run = breast_cancer_run
    model = _fairness(model_variant, metric, 1.0, TUMOUR_SIZE)
    result = metricgate.evaluate_fairness(model, run.test_frame, run.y_test, run.y_pred, run.y_score)
    (s,) = result["slices"]
    radius = run.test_frame["mean radius"].to_numpy()
    y_true, y_pred = np.asarray(run.y_test), np.asarray(run.y_pred)
    expected = {}
    for name, (low, high) in GROUPS.items():
        rows = (radius > low) & (radius <= high)
        if len(set(y_true[rows])) < 2 and metric == "roc_auc":
            continue  # undefined on one class: checked below
        value = BINARY_REFERENCE[metric](y_true[rows], y_pred[rows], run.y_score[rows])
        expected[name] = {"value": pytest.approx(value, abs=1e-6), "rows": int(rows.sum())}
    assert s["groups"] == expected
    assert sum(g["rows"] for g in s["groups"].values()) + _undefined_rows(s, radius) == len(run.test_frame)
    values = [g["value"] for g in s["groups"].values()]
    assert s["gap"] == pytest.approx(max(values) - min(values), abs=1e-6)
    assert s["passed"] is True and result["metric"] == metric and result["maxGap"] == 1.0


def _undefined_rows(s: dict[str, Any], radius: np.ndarray) -> int:
    return sum(int(((radius > GROUPS[g][0]) & (radius <= GROUPS[g][1])).sum()) for g in s.get("undefined", []))


def test_the_slices_are_not_trivial(breast_cancer_run: train.Trained) -> None:
    """Three groups with rows in each, and accuracy that differs between them."""
    run = breast_cancer_run
    radius = run.test_frame["mean radius"]
    ok = np.asarray(run.y_test) == np.asarray(run.y_pred)
    accuracy = [ok[(radius > lo) & (radius <= hi)].mean() for lo, hi in GROUPS.values()]
    assert all(((radius > lo) & (radius <= hi)).sum() >= 10 for lo, hi in GROUPS.values())
    assert max(accuracy) - min(accuracy) > 0.01


def test_a_categorical_slice_groups_by_value(breast_cancer_run: train.Trained, model_variant) -> None:
    """Sliced by the true class, accuracy per group is the recall of that class."""
    run = breast_cancer_run
    model = _fairness(model_variant, "accuracy", 1.0, {"name": "by-class", "column": "target"})
    (s,) = metricgate.evaluate_fairness(model, run.test_frame, run.y_test, run.y_pred, run.y_score)["slices"]
    y_true, y_pred = np.asarray(run.y_test), np.asarray(run.y_pred)
    assert s["groups"] == {
        "0": {"value": pytest.approx(skm.recall_score(y_true, y_pred, pos_label=0)), "rows": int((y_true == 0).sum())},
        "1": {"value": pytest.approx(skm.recall_score(y_true, y_pred, pos_label=1)), "rows": int((y_true == 1).sum())},
    }


def test_a_gap_above_the_allowed_gap_fails_the_gate(breast_cancer_run: train.Trained, model_variant) -> None:
    run = breast_cancer_run
    probe = _fairness(model_variant, "accuracy", 1.0, TUMOUR_SIZE)
    gap = metricgate.evaluate_fairness(probe, run.test_frame, run.y_test, run.y_pred, run.y_score)["slices"][0]["gap"]
    assert gap > 0

    at_gap = _fairness(model_variant, "accuracy", gap, TUMOUR_SIZE)
    fairness = metricgate.evaluate_fairness(at_gap, run.test_frame, run.y_test, run.y_pred, run.y_score)
    assert fairness["slices"][0]["passed"] is True
    assert metricgate.decide(at_gap, {"roc_auc": 0.99, "recall": 0.99}, fairness).passed

    below = round(gap - 0.001, 6)
    tight = _fairness(model_variant, "accuracy", below, TUMOUR_SIZE)
    fairness = metricgate.evaluate_fairness(tight, run.test_frame, run.y_test, run.y_pred, run.y_score)
    assert fairness["slices"][0]["passed"] is False
    outcome = metricgate.decide(tight, {"roc_auc": 0.99, "recall": 0.99}, fairness)
    assert all(g["passed"] for g in outcome.gates) and outcome.passed is False
    assert outcome.summary() == f"fairness slice tumour-size: accuracy gap {gap} > {below}"


def test_a_slice_on_a_missing_column_fails_with_the_reason(breast_cancer_run: train.Trained, model_variant) -> None:
    run = breast_cancer_run
    model = _fairness(model_variant, "accuracy", 1.0, {"name": "age", "column": "age", "bins": [0, 50, 120]})
    (s,) = metricgate.evaluate_fairness(model, run.test_frame, run.y_test, run.y_pred, run.y_score)["slices"]
    assert (s["passed"], s["gap"], s["groups"], s["error"]) == (False, None, {}, "column 'age' is not in the data")


def test_no_fairness_declared_is_empty(breast_cancer_run: train.Trained, model_variant) -> None:
    run = breast_cancer_run
    model = model_variant(estimator=NAIVE_BAYES, search=None, fairness=None)
    assert metricgate.evaluate_fairness(model, run.test_frame, run.y_test, run.y_pred, run.y_score) == {}


# --- fairness on multi-class data ----------------------------------------------------------------


ALCOHOL = {"name": "alcohol", "column": "alcohol", "bins": [0, 12.5, 13.5, 20]}


@pytest.fixture(scope="module")
def wine_run(model_variant, frames) -> train.Trained:
    model = _fairness(model_variant, "accuracy", 1.0, ALCOHOL, dataset="wine")
    return train.train(model, frames["wine"], "target")


MULTICLASS_REFERENCE = {
    "accuracy": lambda t, p, s: skm.accuracy_score(t, p),
    "f1": lambda t, p, s: skm.f1_score(t, p, average="macro", zero_division=0),
    "recall": lambda t, p, s: skm.recall_score(t, p, average="macro", zero_division=0),
    "roc_auc": lambda t, p, s: skm.roc_auc_score(t, s, multi_class="ovr"),
}


@pytest.mark.parametrize("metric", sorted(MULTICLASS_REFERENCE))
def test_multiclass_slice_values_equal_scikit_learn(metric: str, wine_run: train.Trained, model_variant) -> None:
    """The first alcohol bin holds one class only: ROC-AUC is undefined there and left out of
    the gap (listed as undefined), not NaN; the averaged metrics stay macro averages."""
    run = wine_run
    model = _fairness(model_variant, metric, 1.0, ALCOHOL, dataset="wine")
    (s,) = metricgate.evaluate_fairness(model, run.test_frame, run.y_test, run.y_pred, run.y_score)["slices"]
    alcohol = run.test_frame["alcohol"].to_numpy()
    y_true, y_pred = np.asarray(run.y_test), np.asarray(run.y_pred)
    expected, undefined = {}, []
    for name, (low, high) in {
        "(-0.001, 12.5]": (0, 12.5),
        "(12.5, 13.5]": (12.5, 13.5),
        "(13.5, 20.0]": (13.5, 20),
    }.items():
        rows = (alcohol > low) & (alcohol <= high)
        if metric == "roc_auc" and len(set(y_true[rows])) < 3:
            undefined.append(name)
            continue
        value = MULTICLASS_REFERENCE[metric](y_true[rows], y_pred[rows], run.y_score[rows])
        expected[name] = {"value": pytest.approx(value, abs=1e-6), "rows": int(rows.sum())}
    assert s["groups"] == expected
    assert s.get("undefined", []) == undefined
    assert (metric == "roc_auc") == bool(undefined), "the data should make ROC-AUC undefined in one bin"
    assert not np.isnan(s["gap"]) and s["passed"] is True


def test_a_multiclass_group_holding_two_of_three_classes_is_macro_averaged(model_variant) -> None:
    """Group 'a' holds classes 0 and 2 only. Its F1 is still the task's macro average, not a
    binary F1 for a class 1 that is not there (which scikit-learn refuses)."""
    model = _fairness(model_variant, "f1", 1.0, {"name": "site", "column": "site"}, dataset="wine")
    frame = pd.DataFrame({"site": ["a"] * 4 + ["b"] * 6})
    y_true = np.array([0, 2, 0, 2, 0, 1, 2, 0, 1, 2])
    y_pred = np.array([0, 2, 2, 2, 0, 1, 1, 0, 1, 2])
    (s,) = metricgate.evaluate_fairness(model, frame, y_true, y_pred, None)["slices"]
    a = skm.f1_score(y_true[:4], y_pred[:4], average="macro")
    b = skm.f1_score(y_true[4:], y_pred[4:], average="macro")
    assert s["groups"] == {
        "a": {"value": pytest.approx(a, abs=1e-6), "rows": 4},
        "b": {"value": pytest.approx(b, abs=1e-6), "rows": 6},
    }
    assert s["gap"] == pytest.approx(abs(a - b), abs=1e-6)
