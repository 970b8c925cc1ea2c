"""The estimator allow-list, and what each listed estimator accepts and offers.

A ``Model`` names its estimator by import path, but only paths listed here are
accepted, so a spec can never make the controller import arbitrary code. The
train step imports exactly the module and attribute named here.

The api layer never imports scikit-learn, so what validation needs to know about
an estimator is written down here: its constructor parameters
(:data:`SKLEARN_PARAMS`) and whether it has ``predict_proba``
(:func:`has_predict_proba`). tests/api checks both tables against the real
classes, so they cannot drift from the pinned scikit-learn.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any, NamedTuple


class Task(StrEnum):
    CLASSIFICATION = "classification"
    REGRESSION = "regression"


class Framework(StrEnum):
    SKLEARN = "sklearn"
    XGBOOST = "xgboost"
    LIGHTGBM = "lightgbm"


_SKLEARN_CLASSIFIERS = [
    "sklearn.linear_model.LogisticRegression",
    "sklearn.linear_model.RidgeClassifier",
    "sklearn.linear_model.SGDClassifier",
    "sklearn.ensemble.GradientBoostingClassifier",
    "sklearn.ensemble.HistGradientBoostingClassifier",
    "sklearn.ensemble.RandomForestClassifier",
    "sklearn.ensemble.ExtraTreesClassifier",
    "sklearn.ensemble.AdaBoostClassifier",
    "sklearn.tree.DecisionTreeClassifier",
    "sklearn.neighbors.KNeighborsClassifier",
    "sklearn.naive_bayes.GaussianNB",
    "sklearn.svm.SVC",
    "sklearn.neural_network.MLPClassifier",
]
_SKLEARN_REGRESSORS = [
    "sklearn.linear_model.LinearRegression",
    "sklearn.linear_model.Ridge",
    "sklearn.linear_model.Lasso",
    "sklearn.linear_model.ElasticNet",
    "sklearn.ensemble.GradientBoostingRegressor",
    "sklearn.ensemble.HistGradientBoostingRegressor",
    "sklearn.ensemble.RandomForestRegressor",
    "sklearn.ensemble.ExtraTreesRegressor",
    "sklearn.tree.DecisionTreeRegressor",
    "sklearn.neighbors.KNeighborsRegressor",
    "sklearn.svm.SVR",
    "sklearn.neural_network.MLPRegressor",
]

# import path -> (framework, task)
ALLOWED_ESTIMATORS: dict[str, tuple[Framework, Task]] = {
    **{p: (Framework.SKLEARN, Task.CLASSIFICATION) for p in _SKLEARN_CLASSIFIERS},
    **{p: (Framework.SKLEARN, Task.REGRESSION) for p in _SKLEARN_REGRESSORS},
    "xgboost.XGBClassifier": (Framework.XGBOOST, Task.CLASSIFICATION),
    "xgboost.XGBRegressor": (Framework.XGBOOST, Task.REGRESSION),
    "lightgbm.LGBMClassifier": (Framework.LIGHTGBM, Task.CLASSIFICATION),
    "lightgbm.LGBMRegressor": (Framework.LIGHTGBM, Task.REGRESSION),
}

# Constructor parameters of each allow-listed scikit-learn estimator (``inspect.signature``
# of the class, checked by tests/api/test_estimators.py). XGBoost and LightGBM take
# ``**kwargs`` and pass unknown names on to their boosters with a warning at most, and they
# are not installed with modelplane, so there is no list to check their params against:
# their params are not checked at validation.
_PARAM_NAMES: dict[str, str] = {
    "sklearn.linear_model.LogisticRegression": (
        "penalty C l1_ratio dual tol fit_intercept intercept_scaling class_weight random_state solver "
        "max_iter verbose warm_start n_jobs"
    ),
    "sklearn.linear_model.RidgeClassifier": (
        "alpha fit_intercept copy_X max_iter tol class_weight solver positive random_state"
    ),
    "sklearn.linear_model.SGDClassifier": (
        "loss penalty alpha l1_ratio fit_intercept max_iter tol shuffle verbose epsilon n_jobs random_state "
        "learning_rate eta0 power_t early_stopping validation_fraction n_iter_no_change class_weight "
        "warm_start average"
    ),
    "sklearn.ensemble.GradientBoostingClassifier": (
        "loss learning_rate n_estimators subsample criterion min_samples_split min_samples_leaf "
        "min_weight_fraction_leaf max_depth min_impurity_decrease init random_state max_features verbose "
        "max_leaf_nodes warm_start validation_fraction n_iter_no_change tol ccp_alpha"
    ),
    "sklearn.ensemble.HistGradientBoostingClassifier": (
        "loss learning_rate max_iter max_leaf_nodes max_depth min_samples_leaf l2_regularization max_features "
        "max_bins categorical_features monotonic_cst interaction_cst warm_start early_stopping scoring "
        "validation_fraction n_iter_no_change tol verbose random_state class_weight"
    ),
    "sklearn.ensemble.RandomForestClassifier": (
        "n_estimators criterion max_depth min_samples_split min_samples_leaf min_weight_fraction_leaf "
        "max_features max_leaf_nodes min_impurity_decrease bootstrap oob_score n_jobs random_state verbose "
        "warm_start class_weight ccp_alpha max_samples monotonic_cst"
    ),
    "sklearn.ensemble.ExtraTreesClassifier": (
        "n_estimators criterion max_depth min_samples_split min_samples_leaf min_weight_fraction_leaf "
        "max_features max_leaf_nodes min_impurity_decrease bootstrap oob_score n_jobs random_state verbose "
        "warm_start class_weight ccp_alpha max_samples monotonic_cst"
    ),
    "sklearn.ensemble.AdaBoostClassifier": "estimator n_estimators learning_rate random_state",
    "sklearn.tree.DecisionTreeClassifier": (
        "criterion splitter max_depth min_samples_split min_samples_leaf min_weight_fraction_leaf "
        "max_features random_state max_leaf_nodes min_impurity_decrease class_weight ccp_alpha monotonic_cst"
    ),
    "sklearn.neighbors.KNeighborsClassifier": "n_neighbors weights algorithm leaf_size p metric metric_params n_jobs",
    "sklearn.naive_bayes.GaussianNB": "priors var_smoothing",
    "sklearn.svm.SVC": (
        "C kernel degree gamma coef0 shrinking probability tol cache_size class_weight verbose max_iter "
        "decision_function_shape break_ties random_state"
    ),
    "sklearn.neural_network.MLPClassifier": (
        "hidden_layer_sizes activation solver alpha batch_size learning_rate learning_rate_init power_t "
        "max_iter shuffle random_state tol verbose warm_start momentum nesterovs_momentum early_stopping "
        "validation_fraction beta_1 beta_2 epsilon n_iter_no_change max_fun"
    ),
    "sklearn.linear_model.LinearRegression": "fit_intercept copy_X tol n_jobs positive",
    "sklearn.linear_model.Ridge": "alpha fit_intercept copy_X max_iter tol solver positive random_state",
    "sklearn.linear_model.Lasso": (
        "alpha fit_intercept precompute copy_X max_iter tol warm_start positive random_state selection"
    ),
    "sklearn.linear_model.ElasticNet": (
        "alpha l1_ratio fit_intercept precompute max_iter copy_X tol warm_start positive random_state selection"
    ),
    "sklearn.ensemble.GradientBoostingRegressor": (
        "loss learning_rate n_estimators subsample criterion min_samples_split min_samples_leaf "
        "min_weight_fraction_leaf max_depth min_impurity_decrease init random_state max_features alpha "
        "verbose max_leaf_nodes warm_start validation_fraction n_iter_no_change tol ccp_alpha"
    ),
    "sklearn.ensemble.HistGradientBoostingRegressor": (
        "loss quantile learning_rate max_iter max_leaf_nodes max_depth min_samples_leaf l2_regularization "
        "max_features max_bins categorical_features monotonic_cst interaction_cst warm_start early_stopping "
        "scoring validation_fraction n_iter_no_change tol verbose random_state"
    ),
    "sklearn.ensemble.RandomForestRegressor": (
        "n_estimators criterion max_depth min_samples_split min_samples_leaf min_weight_fraction_leaf "
        "max_features max_leaf_nodes min_impurity_decrease bootstrap oob_score n_jobs random_state verbose "
        "warm_start ccp_alpha max_samples monotonic_cst"
    ),
    "sklearn.ensemble.ExtraTreesRegressor": (
        "n_estimators criterion max_depth min_samples_split min_samples_leaf min_weight_fraction_leaf "
        "max_features max_leaf_nodes min_impurity_decrease bootstrap oob_score n_jobs random_state verbose "
        "warm_start ccp_alpha max_samples monotonic_cst"
    ),
    "sklearn.tree.DecisionTreeRegressor": (
        "criterion splitter max_depth min_samples_split min_samples_leaf min_weight_fraction_leaf "
        "max_features random_state max_leaf_nodes min_impurity_decrease ccp_alpha monotonic_cst"
    ),
    "sklearn.neighbors.KNeighborsRegressor": "n_neighbors weights algorithm leaf_size p metric metric_params n_jobs",
    "sklearn.svm.SVR": "kernel degree gamma coef0 tol C epsilon shrinking cache_size verbose max_iter",
    "sklearn.neural_network.MLPRegressor": (
        "loss hidden_layer_sizes activation solver alpha batch_size learning_rate learning_rate_init power_t "
        "max_iter shuffle random_state tol verbose warm_start momentum nesterovs_momentum early_stopping "
        "validation_fraction beta_1 beta_2 epsilon n_iter_no_change max_fun"
    ),
}
SKLEARN_PARAMS: dict[str, frozenset[str]] = {path: frozenset(names.split()) for path, names in _PARAM_NAMES.items()}


def accepted_params(path: str) -> frozenset[str] | None:
    """The parameter names the estimator at ``path`` accepts; ``None`` when not known."""
    return SKLEARN_PARAMS.get(path)


class ProbaParam(NamedTuple):
    """The constructor parameter a classifier's ``predict_proba`` depends on."""

    param: str
    values: tuple[Any, ...]  # the values that give it predict_proba
    default: Any  # the parameter's default (as the signature says)
    note: str = ""  # said with the fix, e.g. that the parameter is deprecated


# Classifiers whose ``predict_proba`` depends on a constructor parameter.
PROBA_WHEN: dict[str, ProbaParam] = {
    "sklearn.linear_model.SGDClassifier": ProbaParam("loss", ("log_loss", "modified_huber"), "hinge"),
    # scikit-learn 1.9 deprecates the parameter (default 'deprecated', meaning False); it works until 1.11
    "sklearn.svm.SVC": ProbaParam("probability", (True,), "deprecated", "deprecated in scikit-learn 1.9"),
}
# Classifiers that never have ``predict_proba``. Every other classifier always has it;
# no regressor has it.
NO_PROBA = frozenset({"sklearn.linear_model.RidgeClassifier"})


def has_predict_proba(path: str, params: Mapping[str, Any]) -> bool:
    """Whether the estimator at ``path``, built with ``params``, has ``predict_proba``."""
    framework_task = ALLOWED_ESTIMATORS.get(path)
    if framework_task is None or framework_task[1] != Task.CLASSIFICATION or path in NO_PROBA:
        return False
    if path in PROBA_WHEN:
        rule = PROBA_WHEN[path]
        value = params.get(rule.param, rule.default)
        return any(value == v and type(value) is type(v) for v in rule.values)
    return True


def proba_summary(path: str) -> str:
    """Whether the estimator has ``predict_proba``, in words (for the spec reference)."""
    if path in PROBA_WHEN:
        rule = PROBA_WHEN[path]
        values = " or ".join(f"`{str(v).lower() if isinstance(v, bool) else v}`" for v in rule.values)
        return f"with `{rule.param}`: {values}" + (f" ({rule.note})" if rule.note else "")
    return "yes" if has_predict_proba(path, {}) else "no"
