"""Checks across a Model's fields: each error names the field at fault (tests/invalid has
one example per message, at its line and column; tests/loading the cross-resource ones)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from controller.api.located import LOCATED
from controller.api.model import LOWER_IS_BETTER, Metric, Model, natural_direction

BASE: dict[str, Any] = {
    "apiVersion": "modelplane.io/v1alpha1",
    "kind": "Model",
    "metadata": {"name": "m"},
    "spec": {
        "dataset": "d",
        "target": "label",
        "estimator": {"framework": "sklearn", "class": "sklearn.linear_model.LogisticRegression"},
    },
}
RIDGE_CLASSIFIER = {"framework": "sklearn", "class": "sklearn.linear_model.RidgeClassifier"}
RIDGE = {"framework": "sklearn", "class": "sklearn.linear_model.Ridge"}
SVC = {"framework": "sklearn", "class": "sklearn.svm.SVC"}
SGD = {"framework": "sklearn", "class": "sklearn.linear_model.SGDClassifier"}
C_RANGE = {"C": {"type": "float", "low": 0.1, "high": 10}}


def model(**spec: Any) -> Model:
    raw = copy.deepcopy(BASE)
    raw["spec"].update(spec)
    return Model.model_validate(raw)


def error_at(**spec: Any) -> tuple[tuple[Any, ...], str]:
    """The one error's full path (pydantic's loc plus the located path) and message."""
    with pytest.raises(ValidationError) as caught:
        model(**spec)
    (error,) = caught.value.errors(include_url=False)
    assert error["type"] == LOCATED, error
    return (*error["loc"], *error["ctx"]["path"]), error["ctx"]["message"]


# --- search direction ---------------------------------------------------------------------------------


def _search_spec(metric: Metric, **search: Any) -> dict[str, Any]:
    regression = metric in (Metric.RMSE, Metric.MAE, Metric.R2)
    estimator = RIDGE if regression else BASE["spec"]["estimator"]
    space = {"alpha": {"type": "float", "low": 0.1, "high": 10}} if regression else C_RANGE
    return {"estimator": estimator, "search": {"metric": metric.value, "space": space, **search}}


@pytest.mark.parametrize("metric", list(Metric), ids=[m.value for m in Metric])
def test_search_direction_defaults_to_the_metric_s_natural_direction(metric: Metric) -> None:
    natural = "minimize" if metric in (Metric.LOG_LOSS, Metric.RMSE, Metric.MAE) else "maximize"
    assert natural_direction(metric) == natural
    search = model(**_search_spec(metric)).spec.search
    assert search is not None and search.direction is None and search.goal == natural
    explicit = model(**_search_spec(metric, direction=natural)).spec.search
    assert explicit is not None and explicit.goal == natural


@pytest.mark.parametrize("metric", list(Metric), ids=[m.value for m in Metric])
def test_a_direction_against_the_metric_is_an_error_at_the_direction(metric: Metric) -> None:
    wrong = "maximize" if metric in LOWER_IS_BETTER else "minimize"
    path, message = error_at(**_search_spec(metric, direction=wrong))
    assert path == ("spec", "search", "direction")
    better = "lower" if metric in LOWER_IS_BETTER else "higher"
    assert message == (
        f"'{wrong}' contradicts the metric '{metric.value}', where {better} is better; "
        f"write '{natural_direction(metric)}' or leave direction out"
    )


# --- metrics that need predict_proba -----------------------------------------------------------------


def _uses(metric: str) -> dict[str, dict[str, Any]]:
    """The metric in each place a spec can name one."""
    return {
        "search.metric": {"search": {"metric": metric, "space": {"alpha": {"type": "choice", "values": [1.0]}}}},
        "gates[1].metric": {
            "gates": [
                {"metric": "accuracy", "operator": ">=", "threshold": 0.5},
                {"metric": metric, "operator": ">=", "threshold": 0.5},
            ]
        },
        "metrics[2]": {"metrics": ["accuracy", "f1", metric]},
        "fairness.metric": {"fairness": {"metric": metric, "maxGap": 0.1, "slices": [{"name": "s", "column": "c"}]}},
    }


PROBA_CASES = [(metric, where) for metric in ("roc_auc", "log_loss") for where in _uses(metric)]


@pytest.mark.parametrize(("metric", "where"), PROBA_CASES, ids=[f"{m}-{w}" for m, w in PROBA_CASES])
def test_a_probability_metric_with_an_estimator_without_predict_proba_is_an_error_where_it_is_named(
    metric: str, where: str
) -> None:
    path, message = error_at(estimator=RIDGE_CLASSIFIER, **_uses(metric)[where])
    expected = ("spec", *[int(p) if p.isdigit() else p for p in where.replace("[", ".").replace("]", "").split(".")])
    assert path == expected
    assert message == (
        f"metric '{metric}' needs predicted probabilities, and sklearn.linear_model.RidgeClassifier has no "
        "predict_proba; use one of accuracy, f1, precision, recall, or an estimator with predict_proba "
        "such as sklearn.linear_model.LogisticRegression"
    )


def test_the_same_metrics_without_probabilities_are_fine() -> None:
    model(estimator=RIDGE_CLASSIFIER, metrics=["accuracy", "f1", "precision", "recall"])


@pytest.mark.parametrize(
    ("estimator", "fix"),
    [
        (SVC, "probability: true (deprecated in scikit-learn 1.9); set spec.estimator.params.probability: true"),
        (SGD, "loss: 'log_loss' or 'modified_huber'; set spec.estimator.params.loss: log_loss"),
    ],
    ids=["svc", "sgd-hinge"],
)
def test_an_estimator_that_needs_a_param_for_predict_proba_is_told_which(estimator: dict[str, Any], fix: str) -> None:
    path, message = error_at(estimator=estimator, metrics=["roc_auc"])
    assert path == ("spec", "metrics", 0)
    assert (
        message
        == f"metric 'roc_auc' needs predicted probabilities, and {estimator['class']} has predict_proba only with {fix}"
    )


@pytest.mark.parametrize(
    "estimator",
    [
        {**SVC, "params": {"probability": True}},
        {**SGD, "params": {"loss": "log_loss"}},
        {**SGD, "params": {"loss": "modified_huber"}},
    ],
    ids=["svc-probability", "sgd-log-loss", "sgd-modified-huber"],
)
def test_with_that_param_the_metric_is_accepted(estimator: dict[str, Any]) -> None:
    assert model(estimator=estimator, metrics=["roc_auc", "log_loss"]).spec.metrics == [Metric.ROC_AUC, Metric.LOG_LOSS]


def test_a_search_over_the_param_must_keep_predict_proba_in_every_trial() -> None:
    search = {"metric": "accuracy", "space": {"probability": {"type": "choice", "values": [True]}}}
    model(estimator=SVC, search=search, gates=[{"metric": "roc_auc", "operator": ">=", "threshold": 0.5}])
    search["space"] = {"probability": {"type": "choice", "values": [True, False]}}
    path, message = error_at(
        estimator=SVC, search=search, gates=[{"metric": "roc_auc", "operator": ">=", "threshold": 0.5}]
    )
    assert path == ("spec", "search", "space", "probability")
    assert message.startswith(
        "some trials would have no predict_proba, which metric 'roc_auc' (spec.gates[0].metric) needs: "
        "sklearn.svm.SVC has predict_proba only with probability: true"
    )


# --- parameters --------------------------------------------------------------------------------------


def test_an_unknown_estimator_param_is_an_error_at_its_key_with_a_suggestion() -> None:
    estimator = {**BASE["spec"]["estimator"], "params": {"C": 1.0, "max_iters": 500}}
    path, message = error_at(estimator=estimator)
    assert path == ("spec", "estimator", "params", "max_iters")
    assert (
        message == "'max_iters' is not a parameter of sklearn.linear_model.LogisticRegression; did you mean 'max_iter'?"
    )


def test_without_a_close_name_the_error_lists_the_accepted_params() -> None:
    _, message = error_at(
        estimator={"framework": "sklearn", "class": "sklearn.naive_bayes.GaussianNB", "params": {"zz": 1}}
    )
    assert message == "'zz' is not a parameter of sklearn.naive_bayes.GaussianNB; it accepts priors, var_smoothing"


def test_a_search_space_key_must_be_a_param_of_the_estimator() -> None:
    path, message = error_at(search={"metric": "accuracy", "space": {"c": {"type": "float", "low": 0.1, "high": 1}}})
    assert path == ("spec", "search", "space", "c")
    assert message == "'c' is not a parameter of sklearn.linear_model.LogisticRegression; did you mean 'C'?"


def test_xgboost_and_lightgbm_params_are_not_checked() -> None:
    """They take **kwargs and are not installed with modelplane: no list to check against."""
    estimator = {"framework": "xgboost", "class": "xgboost.XGBClassifier", "params": {"eta": 0.1, "anything": 1}}
    search = {"metric": "accuracy", "space": {"max_bin": {"type": "int", "low": 16, "high": 64}}}
    assert model(estimator=estimator, search=search).spec.estimator.params == {"eta": 0.1, "anything": 1}


# --- the rest ----------------------------------------------------------------------------------------


def test_framework_mismatch_is_an_error_at_the_class() -> None:
    path, message = error_at(estimator={"framework": "lightgbm", "class": "sklearn.linear_model.LogisticRegression"})
    assert path == ("spec", "estimator", "class")
    assert message.endswith("set spec.estimator.framework to 'sklearn'")


@pytest.mark.parametrize(
    ("features", "index", "message"),
    [
        (["a", "label", "b"], 1, "'label' is the target; remove it from the features"),
        (["a", "b", "a"], 2, "'a' is listed twice"),
    ],
    ids=["target", "twice"],
)
def test_features_exclude_the_target_and_repeat_nothing(features: list[str], index: int, message: str) -> None:
    assert error_at(features=features) == (("spec", "features", index), message)


def test_a_search_range_upside_down_is_an_error_at_the_parameter() -> None:
    path, message = error_at(search={"metric": "accuracy", "space": {"C": {"type": "float", "low": 5, "high": 1}}})
    assert (path, message) == (("spec", "search", "space", "C"), "low (5.0) is above high (1.0)")


def test_the_fairness_metric_must_fit_the_task_even_by_default() -> None:
    """accuracy, the fairness metric's default, does not apply to a regressor."""
    fairness = {"maxGap": 0.1, "slices": [{"name": "s", "column": "c"}]}
    path, message = error_at(estimator=RIDGE, fairness=fairness)
    assert path == ("spec", "fairness", "metric")
    assert message.startswith("metric 'accuracy' does not apply to a regression estimator; use one of mae, r2, rmse")
