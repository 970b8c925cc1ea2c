"""Each metric against scikit-learn's own function, for binary, multi-class and regression
predictions made by real estimators on scikit-learn's bundled data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris, load_wine
from sklearn.linear_model import Ridge
from sklearn.model_selection import train_test_split
from sklearn.naive_bayes import GaussianNB

from controller.api.estimators import Task
from controller.api.model import CLASSIFICATION_METRICS, REGRESSION_METRICS, Metric
from reconcilers.metrics import compute_metrics, search_scorer


def _predictions(loader: Callable[..., Any], estimator: Any) -> tuple[Any, Any, Any]:
    x, y = loader(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    fitted = estimator.fit(x_train, y_train)
    score = fitted.predict_proba(x_test) if hasattr(fitted, "predict_proba") else None
    return y_test, fitted.predict(x_test), score


BINARY = _predictions(load_breast_cancer, GaussianNB())
MULTICLASS = _predictions(load_wine, GaussianNB())
REGRESSION = _predictions(load_diabetes, Ridge(alpha=0.5))

CASES = [
    (BINARY, Metric.ROC_AUC, lambda t, p, s: skm.roc_auc_score(t, s[:, 1])),
    (BINARY, Metric.ACCURACY, lambda t, p, s: skm.accuracy_score(t, p)),
    (BINARY, Metric.F1, lambda t, p, s: skm.f1_score(t, p)),
    (BINARY, Metric.PRECISION, lambda t, p, s: skm.precision_score(t, p)),
    (BINARY, Metric.RECALL, lambda t, p, s: skm.recall_score(t, p)),
    (BINARY, Metric.LOG_LOSS, lambda t, p, s: skm.log_loss(t, s)),
    (MULTICLASS, Metric.ROC_AUC, lambda t, p, s: skm.roc_auc_score(t, s, multi_class="ovr", average="macro")),
    (MULTICLASS, Metric.ACCURACY, lambda t, p, s: skm.accuracy_score(t, p)),
    (MULTICLASS, Metric.F1, lambda t, p, s: skm.f1_score(t, p, average="macro")),
    (MULTICLASS, Metric.PRECISION, lambda t, p, s: skm.precision_score(t, p, average="macro")),
    (MULTICLASS, Metric.RECALL, lambda t, p, s: skm.recall_score(t, p, average="macro")),
    (MULTICLASS, Metric.LOG_LOSS, lambda t, p, s: skm.log_loss(t, s)),
    (REGRESSION, Metric.RMSE, lambda t, p, s: skm.root_mean_squared_error(t, p)),
    (REGRESSION, Metric.MAE, lambda t, p, s: skm.mean_absolute_error(t, p)),
    (REGRESSION, Metric.R2, lambda t, p, s: skm.r2_score(t, p)),
]
IDS = [
    f"{'binary' if d is BINARY else 'multiclass' if d is MULTICLASS else 'regression'}-{m.value}" for d, m, _ in CASES
]


@pytest.mark.parametrize(("predictions", "metric", "reference"), CASES, ids=IDS)
def test_metric_equals_scikit_learn(predictions: tuple[Any, Any, Any], metric: Metric, reference: Callable) -> None:
    y_true, y_pred, y_score = predictions
    task = Task.REGRESSION if predictions is REGRESSION else Task.CLASSIFICATION
    expected = float(reference(y_true, y_pred, y_score))
    assert compute_metrics(task, [metric], y_true, y_pred, y_score) == {metric.value: round(expected, 6)}


def test_the_cases_cover_every_metric_of_each_task() -> None:
    assert {m for d, m, _ in CASES if d is BINARY} == CLASSIFICATION_METRICS
    assert {m for d, m, _ in CASES if d is MULTICLASS} == CLASSIFICATION_METRICS
    assert {m for d, m, _ in CASES if d is REGRESSION} == REGRESSION_METRICS


def test_the_predictions_are_not_perfect() -> None:
    """A perfect model scores 1 on everything, and then any metric would 'match' any other."""
    for y_true, y_pred, _ in (BINARY, MULTICLASS):
        assert 0.8 < skm.accuracy_score(y_true, y_pred) < 1
    assert 0.2 < skm.r2_score(REGRESSION[0], REGRESSION[1]) < 0.9


def test_probability_metrics_are_left_out_without_scores() -> None:
    """An estimator without predict_proba (RidgeClassifier, SVC) has no ROC-AUC nor log loss."""
    y_true, y_pred, _ = BINARY
    out = compute_metrics(Task.CLASSIFICATION, sorted(CLASSIFICATION_METRICS), y_true, y_pred, None)
    assert set(out) == {"accuracy", "f1", "precision", "recall"}


# What scikit-learn calls each metric when it scores a fold: for two classes, and for several.
_SKLEARN_SCORERS = {
    Metric.ROC_AUC: ("roc_auc", "roc_auc_ovr"),
    Metric.ACCURACY: ("accuracy", "accuracy"),
    Metric.F1: ("f1", "f1_macro"),
    Metric.PRECISION: ("precision", "precision_macro"),
    Metric.RECALL: ("recall", "recall_macro"),
    Metric.LOG_LOSS: ("neg_log_loss", "neg_log_loss"),
    Metric.RMSE: ("neg_root_mean_squared_error",) * 2,
    Metric.MAE: ("neg_mean_absolute_error",) * 2,
    Metric.R2: ("r2", "r2"),
}


_SCORED = [
    (metric, data)
    for data, metrics in (
        ("breast_cancer", CLASSIFICATION_METRICS),
        ("iris", CLASSIFICATION_METRICS),
        ("diabetes", REGRESSION_METRICS),
    )
    for metric in sorted(metrics)
]


@pytest.mark.parametrize(("metric", "data"), _SCORED, ids=[f"{d}-{m.value}" for m, d in _SCORED])
def test_the_search_scorer_is_the_gate_metric_in_its_own_units(metric: Metric, data: str) -> None:
    """The search ranks trials by the metric as the gates compute it (compute_metrics), and
    that is scikit-learn's own scorer: one-vs-rest macro ROC-AUC and macro F1 for several
    classes, a loss as a positive number (scikit-learn's scorers negate losses)."""
    regression = data == "diabetes"
    loader = {"breast_cancer": load_breast_cancer, "iris": load_iris, "diabetes": load_diabetes}[data]
    estimator = Ridge(alpha=0.5) if regression else GaussianNB()
    x, y = loader(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=0)
    fitted = estimator.fit(x_train, y_train)
    task = Task.REGRESSION if regression else Task.CLASSIFICATION
    proba = None if regression else fitted.predict_proba(x_test)
    gate = compute_metrics(task, [metric], y_test, fitted.predict(x_test), proba)[metric.value]
    got = search_scorer(task, metric, None if regression else np.unique(y_train))(fitted, x_test, y_test)
    assert got == pytest.approx(gate, abs=1e-6)
    name = _SKLEARN_SCORERS[metric][data == "iris"]
    sign = -1 if name.startswith("neg_") else 1
    assert got == pytest.approx(sign * skm.get_scorer(name)(fitted, x_test, y_test), abs=1e-9)


def test_the_search_scorer_is_nan_where_the_metric_is_undefined() -> None:
    """One-vs-rest ROC-AUC on rows that lack a class: NaN, which the search refuses to rank."""
    x, y = load_iris(return_X_y=True)
    fitted = GaussianNB().fit(x, y)
    rows = y != 2
    scorer = search_scorer(Task.CLASSIFICATION, Metric.ROC_AUC, np.unique(y))
    assert np.isnan(scorer(fitted, x[rows], y[rows]))
    assert scorer(fitted, x, y) == pytest.approx(skm.roc_auc_score(y, fitted.predict_proba(x), multi_class="ovr"))


def test_the_search_scorer_takes_the_second_of_two_text_labels_as_positive() -> None:
    """As the gates do: the classes of the rows searched on, not 1, decide the positive class."""
    x, y = load_breast_cancer(return_X_y=True)
    names = np.where(y == 0, "malignant", "benign")
    fitted = GaussianNB().fit(x, names)
    scorer = search_scorer(Task.CLASSIFICATION, Metric.RECALL, np.unique(names))
    expected = skm.recall_score(names, fitted.predict(x), pos_label="malignant")
    assert scorer(fitted, x, names) == pytest.approx(expected)
    assert expected != pytest.approx(skm.recall_score(names, fitted.predict(x), pos_label="benign"))


def test_binary_labels_that_are_not_0_and_1() -> None:
    """The positive class is the second label, whose probability is ``predict_proba[:, 1]``."""
    x, y = load_breast_cancer(return_X_y=True)
    names = np.where(y == 0, "malignant", "benign")
    x_train, x_test, y_train, y_test = train_test_split(x, names, test_size=0.3, random_state=0)
    fitted = GaussianNB().fit(x_train, y_train)
    assert list(fitted.classes_) == ["benign", "malignant"]
    y_pred, y_score = fitted.predict(x_test), fitted.predict_proba(x_test)
    got = compute_metrics(Task.CLASSIFICATION, sorted(CLASSIFICATION_METRICS), y_test, y_pred, y_score)
    expected = {
        "roc_auc": skm.roc_auc_score(y_test == "malignant", y_score[:, 1]),
        "accuracy": skm.accuracy_score(y_test, y_pred),
        "f1": skm.f1_score(y_test, y_pred, pos_label="malignant"),
        "precision": skm.precision_score(y_test, y_pred, pos_label="malignant"),
        "recall": skm.recall_score(y_test, y_pred, pos_label="malignant"),
        "log_loss": skm.log_loss(y_test, y_score),
    }
    assert got == {k: pytest.approx(v, abs=1e-6) for k, v in expected.items()}


@pytest.mark.parametrize(
    ("task", "y_true", "y_pred", "y_score", "expected"),
    [
        (Task.CLASSIFICATION, [1, 1, 1], [1, 0, 1], [[0.2, 0.8], [0.6, 0.4], [0.1, 0.9]], {"accuracy": 0.666667}),
        (
            Task.CLASSIFICATION,
            [0, 2, 0],
            [0, 2, 2],
            [[0.8, 0.1, 0.1], [0.2, 0.2, 0.6], [0.3, 0.3, 0.4]],
            {"accuracy": 0.666667},
        ),
        (Task.REGRESSION, [3.0], [2.5], None, {"mae": 0.5}),
    ],
    ids=["roc-auc-one-class", "roc-auc-ovr-class-missing", "r2-one-row"],
)
def test_an_undefined_metric_is_left_out_not_nan(task: Task, y_true, y_pred, y_score, expected) -> None:
    """ROC-AUC of one class, one-vs-rest without every class, R² of one row: no value at all."""
    undefined = Metric.ROC_AUC if task == Task.CLASSIFICATION else Metric.R2
    measured = Metric.ACCURACY if task == Task.CLASSIFICATION else Metric.MAE
    score = None if y_score is None else np.array(y_score)
    assert compute_metrics(task, [undefined, measured], np.array(y_true), np.array(y_pred), score) == expected
