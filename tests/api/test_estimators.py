"""The estimator tables in controller/api/estimators.py against the real classes.

The api layer does not import scikit-learn, so it keeps what validation needs to know
(constructor parameters, which classifiers have predict_proba) as static tables. These
tests build the real estimators, so a scikit-learn upgrade that changes either fails here.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Any

import pytest

from controller.api.estimators import (
    ALLOWED_ESTIMATORS,
    PROBA_WHEN,
    SKLEARN_PARAMS,
    Framework,
    Task,
    accepted_params,
    has_predict_proba,
)

SKLEARN = sorted(p for p, (framework, _) in ALLOWED_ESTIMATORS.items() if framework == Framework.SKLEARN)
OTHERS = sorted(p for p, (framework, _) in ALLOWED_ESTIMATORS.items() if framework != Framework.SKLEARN)


def _class(path: str) -> type:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def _options(cls: type, param: str) -> list[Any]:
    """Every value scikit-learn's own parameter validation allows for ``param`` (for the
    string-option and boolean parameters the predict_proba table depends on)."""
    from sklearn.utils._param_validation import StrOptions

    values: list[Any] = []
    for constraint in cls._parameter_constraints[param]:  # type: ignore[attr-defined]
        if isinstance(constraint, StrOptions):
            values += sorted(constraint.options - constraint.deprecated)
        elif constraint in ("boolean", bool):
            values += [True, False]
    assert values, f"no options found for {cls.__name__}.{param}"
    return values


@pytest.mark.parametrize("path", SKLEARN)
def test_the_param_table_is_the_constructor_signature(path: str) -> None:
    assert SKLEARN_PARAMS[path] == set(inspect.signature(_class(path)).parameters), path


def test_every_sklearn_estimator_has_a_param_table_and_nothing_else_does() -> None:
    assert set(SKLEARN_PARAMS) == set(SKLEARN)
    for path in OTHERS:  # **kwargs estimators, not installed with modelplane: not checked
        assert accepted_params(path) is None


@pytest.mark.parametrize("path", SKLEARN)
def test_predict_proba_with_default_params_matches_the_class(path: str) -> None:
    estimator = _class(path)()
    assert has_predict_proba(path, {}) is hasattr(estimator, "predict_proba"), path


@pytest.mark.parametrize("path", sorted(PROBA_WHEN))
def test_predict_proba_under_every_value_of_the_param_it_depends_on(path: str) -> None:
    cls = _class(path)
    param, _, default, note = PROBA_WHEN[path]
    assert inspect.signature(cls).parameters[param].default == default
    assert ("deprecated" in note) is (default == "deprecated"), "say so when scikit-learn deprecates it"
    options = _options(cls, param)
    results = {}
    for value in options:
        expected = hasattr(cls(**{param: value}), "predict_proba")
        assert has_predict_proba(path, {param: value}) is expected, (path, param, value)
        results[value] = expected
    assert set(results.values()) == {True, False}, "the parameter should decide, or it is not in the table"


def test_predict_proba_is_not_claimed_for_a_value_of_another_type() -> None:
    """``probability: 1`` is not ``true`` to scikit-learn (its validation wants a bool)."""
    assert has_predict_proba("sklearn.svm.SVC", {"probability": True})
    assert not has_predict_proba("sklearn.svm.SVC", {"probability": 1})
    assert not has_predict_proba("sklearn.svm.SVC", {"probability": "true"})


@pytest.mark.parametrize("path", OTHERS)
def test_xgboost_and_lightgbm_when_installed(path: str) -> None:
    """Not installed with modelplane (optional extras): checked only where they are."""
    pytest.importorskip(path.split(".")[0])
    estimator = _class(path)()
    task = ALLOWED_ESTIMATORS[path][1]
    assert has_predict_proba(path, {}) is hasattr(estimator, "predict_proba") is (task == Task.CLASSIFICATION)
