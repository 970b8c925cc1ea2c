"""Metric computation shared by the train step and the metric gate."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from controller.api.estimators import Task
from controller.api.model import PROBA_METRICS, Metric


def compute_metrics(
    task: Task, metrics: list[Metric], y_true: Any, y_pred: Any, y_score: Any, classes: Any = None
) -> dict[str, float]:
    """The metrics of these predictions. A metric that is undefined for them (no scores for
    ROC-AUC or log loss, a single class for ROC-AUC) is left out rather than reported as NaN.

    ``classes`` are the task's class labels, given when ``y_true`` is part of the held-out
    split (a fairness slice): whether the task is binary, and which class is positive, is a
    property of the task, not of the rows that happen to be in a slice. By default, the
    classes in ``y_true`` (and as many as ``y_score`` has columns). Scores are
    ``predict_proba`` columns, in the sorted class order.
    """
    out: dict[str, float] = {}
    for metric in metrics:
        value = metric_value(task, metric, y_true, y_pred, y_score, classes)
        if value is not None:  # never NaN in a record (JSON has no NaN); undefined is left out
            out[metric.value] = round(value, 6)
    return out


def metric_value(
    task: Task, metric: Metric, y_true: Any, y_pred: Any, y_score: Any, classes: Any = None
) -> float | None:
    """One metric of these predictions, unrounded; ``None`` when it is undefined for them
    (see :func:`compute_metrics`)."""
    import numpy as np
    from sklearn import metrics as m

    present = np.unique(np.asarray(y_true))
    labels = present if classes is None else np.unique(np.asarray(classes))
    binary = task == Task.CLASSIFICATION and len(labels) <= 2 and (y_score is None or y_score.shape[1] <= 2)
    average = "binary" if binary else "macro"
    # The positive class is the second one, whose probability is y_score[:, 1] (1 for 0/1 labels).
    pos_label = labels[1] if binary and len(labels) == 2 else 1
    if metric == Metric.ROC_AUC:
        if y_score is None or len(present) < 2 or (not binary and len(present) != y_score.shape[1]):
            return None  # undefined: one-vs-rest needs every class among the rows
        value = (
            m.roc_auc_score(y_true, y_score[:, 1]) if binary else m.roc_auc_score(y_true, y_score, multi_class="ovr")
        )
    elif metric == Metric.ACCURACY:
        value = m.accuracy_score(y_true, y_pred)
    elif metric == Metric.F1:
        value = m.f1_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)
    elif metric == Metric.PRECISION:
        value = m.precision_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)
    elif metric == Metric.RECALL:
        value = m.recall_score(y_true, y_pred, average=average, pos_label=pos_label, zero_division=0)
    elif metric == Metric.LOG_LOSS:
        if y_score is None:
            return None
        value = m.log_loss(y_true, y_score, labels=labels if len(labels) == y_score.shape[1] else None)
    elif metric == Metric.RMSE:
        value = math.sqrt(m.mean_squared_error(y_true, y_pred))
    elif metric == Metric.MAE:
        value = m.mean_absolute_error(y_true, y_pred)
    else:
        if len(np.asarray(y_true)) < 2:
            return None  # R² of a single row is undefined
        value = m.r2_score(y_true, y_pred)
    return None if math.isnan(value) else float(value)


def search_scorer(task: Task, metric: Metric, classes: Any = None) -> Callable[[Any, Any, Any], float]:
    """The scorer a search ranks its trials by: ``metric`` computed exactly as the gates
    compute it (:func:`metric_value`: one-vs-rest ROC-AUC for several classes, the
    second class positive for two), in its own units (a loss is not negated), on one
    cross-validation fold. ``classes`` are the labels of the rows the search trains on.

    NaN when the metric is undefined on the fold (ROC-AUC of a fold missing a class):
    the search refuses a trial with a NaN score rather than rank it.
    """

    def score(estimator: Any, x: Any, y: Any) -> float:
        proba = estimator.predict_proba(x) if metric in PROBA_METRICS else None
        y_pred = None if metric in PROBA_METRICS else estimator.predict(x)
        value = metric_value(task, metric, y, y_pred, proba, classes)
        return math.nan if value is None else value

    return score
