"""Metric computation shared by the train step and the metric gate."""

from __future__ import annotations

import math
from typing import Any

from controller.api.estimators import Task
from controller.api.model import Metric

_SCORERS = {
    Metric.ROC_AUC: "roc_auc",
    Metric.ACCURACY: "accuracy",
    Metric.F1: "f1",
    Metric.PRECISION: "precision",
    Metric.RECALL: "recall",
    Metric.LOG_LOSS: "neg_log_loss",
    Metric.RMSE: "neg_root_mean_squared_error",
    Metric.MAE: "neg_mean_absolute_error",
    Metric.R2: "r2",
}


def scorer_name(metric: Metric) -> str:
    return _SCORERS[metric]


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
    import numpy as np
    from sklearn import metrics as m

    out: dict[str, float] = {}
    present = np.unique(np.asarray(y_true))
    labels = present if classes is None else np.unique(np.asarray(classes))
    binary = task == Task.CLASSIFICATION and len(labels) <= 2 and (y_score is None or y_score.shape[1] <= 2)
    average = "binary" if binary else "macro"
    # The positive class is the second one, whose probability is y_score[:, 1] (1 for 0/1 labels).
    pos_label = labels[1] if binary and len(labels) == 2 else 1
    for metric in metrics:
        if metric == Metric.ROC_AUC:
            if y_score is None or len(present) < 2 or (not binary and len(present) != y_score.shape[1]):
                continue  # undefined: one-vs-rest needs every class among the rows
            value = (
                m.roc_auc_score(y_true, y_score[:, 1])
                if binary
                else m.roc_auc_score(y_true, y_score, multi_class="ovr")
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
                continue
            value = m.log_loss(y_true, y_score, labels=labels if len(labels) == y_score.shape[1] else None)
        elif metric == Metric.RMSE:
            value = math.sqrt(m.mean_squared_error(y_true, y_pred))
        elif metric == Metric.MAE:
            value = m.mean_absolute_error(y_true, y_pred)
        else:
            if len(np.asarray(y_true)) < 2:
                continue  # R² of a single row is undefined
            value = m.r2_score(y_true, y_pred)
        if not math.isnan(value):  # never NaN in a record (JSON has no NaN); undefined is left out
            out[metric.value] = round(float(value), 6)
    return out
