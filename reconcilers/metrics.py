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


def compute_metrics(task: Task, metrics: list[Metric], y_true: Any, y_pred: Any, y_score: Any) -> dict[str, float]:
    from sklearn import metrics as m

    out: dict[str, float] = {}
    binary = task == Task.CLASSIFICATION and len(set(list(y_true))) <= 2
    average = "binary" if binary else "macro"
    for metric in metrics:
        if metric == Metric.ROC_AUC:
            if y_score is None:
                continue
            value = (
                m.roc_auc_score(y_true, y_score[:, 1])
                if binary
                else m.roc_auc_score(y_true, y_score, multi_class="ovr")
            )
        elif metric == Metric.ACCURACY:
            value = m.accuracy_score(y_true, y_pred)
        elif metric == Metric.F1:
            value = m.f1_score(y_true, y_pred, average=average, zero_division=0)
        elif metric == Metric.PRECISION:
            value = m.precision_score(y_true, y_pred, average=average, zero_division=0)
        elif metric == Metric.RECALL:
            value = m.recall_score(y_true, y_pred, average=average, zero_division=0)
        elif metric == Metric.LOG_LOSS:
            if y_score is None:
                continue
            value = m.log_loss(y_true, y_score)
        elif metric == Metric.RMSE:
            value = math.sqrt(m.mean_squared_error(y_true, y_pred))
        elif metric == Metric.MAE:
            value = m.mean_absolute_error(y_true, y_pred)
        else:
            value = m.r2_score(y_true, y_pred)
        out[metric.value] = round(float(value), 6)
    return out
