"""Typed fields of the resource models: durations, operators, the estimator allow-list."""

from __future__ import annotations

import importlib

import pytest
from pydantic import ValidationError

from controller.api.common import Operator, duration_seconds
from controller.api.estimators import ALLOWED_ESTIMATORS, Task
from controller.api.inference_service import Canary, Replicas


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30), ("5m", 300), ("1h30m", 5400), ("365d", 365 * 86400), ("1d2h3m4s5ms", 93784.005)],
    ids=["ms", "s", "m", "h-m", "d", "all"],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 m", "1m1h", "-3s", "5min"])
def test_bad_durations_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        duration_seconds(text)


@pytest.mark.parametrize(
    ("op", "observed", "threshold", "holds"),
    [
        (">=", 0.92, 0.92, True),
        (">=", 0.91, 0.92, False),
        (">", 0.93, 0.92, True),
        (">", 0.92, 0.92, False),
        ("<=", 0.1, 0.1, True),
        ("<=", 0.11, 0.1, False),
        ("<", 0.09, 0.1, True),
        ("<", 0.1, 0.1, False),
        ("==", 1, 1, True),
        ("==", 0.99, 1, False),
    ],
    ids=["ge-equal", "ge-below", "gt-above", "gt-equal", "le-equal", "le-above", "lt-below", "lt-equal", "eq", "ne"],
)
def test_operator_holds(op: str, observed: float, threshold: float, holds: bool) -> None:
    assert Operator(op).holds(observed, threshold) is holds


def test_allow_listed_estimators_exist_and_match_their_task() -> None:
    from sklearn.base import is_classifier, is_regressor

    checked = 0
    for path, (_, task) in ALLOWED_ESTIMATORS.items():
        module, _, name = path.rpartition(".")
        if not module.startswith("sklearn"):
            continue  # xgboost / lightgbm are optional extras, not installed here
        estimator = getattr(importlib.import_module(module), name)()
        assert (is_classifier if task == Task.CLASSIFICATION else is_regressor)(estimator), path
        checked += 1
    assert checked >= 20


def test_canary_steps_must_increase() -> None:
    with pytest.raises(ValidationError, match="canary steps must increase"):
        Canary(steps=[50, 10, 100])


def test_replicas_min_not_above_max() -> None:
    with pytest.raises(ValidationError, match=r"min \(3\) is above max \(2\)"):
        Replicas(min=3, max=2)
