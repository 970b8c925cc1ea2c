"""The metric gate: a Model's gates and fairness slices on the held-out split.

Pure: it takes the metrics and predictions of a training run and decides. A
failed gate stops the chain (``Stalled/GateFailed``) with the evidence.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.api import Model
from controller.api.estimators import Task
from reconcilers.metrics import compute_metrics


@dataclass
class GateOutcome:
    passed: bool
    gates: list[dict[str, Any]]
    fairness: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        failed = [g for g in self.gates if not g["passed"]]
        parts = [f"{g['metric']} {g['observed']} {g['operator']} {g['threshold']} is false" for g in failed]
        for s in self.fairness.get("slices", []):
            if not s["passed"]:
                parts.append(
                    f"fairness slice {s['name']}: {self.fairness['metric']} gap {s['gap']} > {self.fairness['maxGap']}"
                )
        if not parts:
            return f"{len(self.gates)} gate(s) passed" + (", fairness within bounds" if self.fairness else "")
        return "; ".join(parts)


def evaluate_gates(model: Model, metrics: dict[str, float]) -> list[dict[str, Any]]:
    out = []
    for gate in model.spec.gates:
        observed = metrics.get(gate.metric.value)
        passed = observed is not None and gate.operator.holds(observed, gate.threshold)
        out.append(
            {
                "metric": gate.metric.value,
                "operator": gate.operator.value,
                "threshold": gate.threshold,
                "observed": observed,
                "passed": passed,
            }
        )
    return out


def evaluate_fairness(model: Model, test_frame: Any, y_true: Any, y_pred: Any, y_score: Any) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    fairness = model.spec.fairness
    if fairness is None:
        return {}
    task = model.spec.estimator.task
    classes = np.unique(np.asarray(y_true)) if task == Task.CLASSIFICATION else None  # of the whole split
    slices: list[dict[str, Any]] = []
    for s in fairness.slices:
        if s.column not in test_frame.columns:
            slices.append(
                {
                    "name": s.name,
                    "column": s.column,
                    "groups": {},
                    "gap": None,
                    "passed": False,
                    "error": f"column '{s.column}' is not in the data",
                }
            )
            continue
        column = test_frame[s.column]
        groups = pd.cut(column, bins=s.bins, include_lowest=True).astype(str) if s.bins else column.astype(str)
        per_group = {}
        undefined = []  # groups where the metric is undefined (e.g. ROC-AUC of one class): not in the gap
        for group in sorted(groups.unique()):
            mask = np.asarray(groups == group)
            if mask.sum() == 0:
                continue
            score = y_score[mask] if y_score is not None else None
            values = compute_metrics(
                task, [fairness.metric], np.asarray(y_true)[mask], np.asarray(y_pred)[mask], score, classes
            )
            if fairness.metric.value in values:
                per_group[group] = {"value": values[fairness.metric.value], "rows": int(mask.sum())}
            else:
                undefined.append(group)
        scores = [g["value"] for g in per_group.values()]
        gap = round(max(scores) - min(scores), 6) if len(scores) > 1 else 0.0
        slices.append(
            {
                "name": s.name,
                "column": s.column,
                "groups": per_group,
                "gap": gap,
                "passed": gap <= fairness.maxGap,
                **({"undefined": undefined} if undefined else {}),
            }
        )
    return {"metric": fairness.metric.value, "maxGap": fairness.maxGap, "slices": slices}


def decide(model: Model, metrics: dict[str, float], fairness: dict[str, Any]) -> GateOutcome:
    gates = evaluate_gates(model, metrics)
    passed = all(g["passed"] for g in gates) and all(s["passed"] for s in fairness.get("slices", []))
    return GateOutcome(passed, gates, fairness)
