"""The estimator allow-list.

A ``Model`` names its estimator by import path, but only paths listed here are
accepted, so a spec can never make the controller import arbitrary code. The
train step imports exactly the module and attribute named here.
"""

from __future__ import annotations

from enum import StrEnum


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
