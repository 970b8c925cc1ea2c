"""The train step: search (grid and random), the held-out metrics, features and target,
the estimator allow-list. Each result is checked against scikit-learn run by the test."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from sklearn import metrics as skm
from sklearn.model_selection import KFold, ParameterGrid, StratifiedKFold, cross_val_score, train_test_split

from reconcilers import train

TREE = {"framework": "sklearn", "class": "sklearn.tree.DecisionTreeClassifier", "params": {}}
NAIVE_BAYES = {"framework": "sklearn", "class": "sklearn.naive_bayes.GaussianNB"}
RIDGE = {"framework": "sklearn", "class": "sklearn.linear_model.Ridge"}
REGRESSION = {"fairness": None, "gates": [{"metric": "r2", "operator": ">=", "threshold": 0.3}]}


def _split(model, frame: pd.DataFrame, target: str, stratify: bool = True):
    features = model.spec.features or [c for c in frame.columns if c != target]
    return train_test_split(
        frame[features],
        frame[target],
        test_size=model.spec.split.testSize,
        random_state=model.spec.split.seed,
        stratify=frame[target] if stratify else None,
    )


def _cv_score(model, estimator, x_train, y_train, scoring: str, classification: bool = True) -> float:
    """What the search should have measured for one candidate: the mean over the same folds."""
    folds = (StratifiedKFold if classification else KFold)(
        n_splits=model.spec.search.cv, shuffle=True, random_state=model.spec.split.seed
    )
    return float(cross_val_score(estimator, x_train, y_train, cv=folds, scoring=scoring).mean())


# --- grid search -------------------------------------------------------------------------------------


GRID = {
    "strategy": "grid",
    "trials": 5,
    "metric": "roc_auc",
    "cv": 3,
    "space": {
        "max_depth": {"type": "int", "low": 1, "high": 3},
        "criterion": {"type": "choice", "values": ["gini", "entropy"]},
    },
}


@pytest.fixture(scope="module")
def grid_run(model_variant, frames) -> tuple[Any, train.Trained]:
    model = model_variant(estimator=TREE, search=GRID)
    return model, train.train(model, frames["breast-cancer"], "target")


def test_grid_search_runs_the_grid_in_order_up_to_the_trial_budget(grid_run) -> None:
    _, trained = grid_run
    grid = list(ParameterGrid({"criterion": ["gini", "entropy"], "max_depth": [1, 2, 3]}))
    assert len(grid) == 6
    assert [t["trial"] for t in trained.trials] == [1, 2, 3, 4, 5]
    assert [t["params"] for t in trained.trials] == grid[:5]


def test_grid_search_trials_record_the_cross_validated_score(grid_run, frames) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model, trained = grid_run
    x_train, _, y_train, _ = _split(model, frames["breast-cancer"], "target")
    for trial in trained.trials:
        assert set(trial) == {"trial", "params", "score", "std", "duration_s"}
        expected = _cv_score(
            model, DecisionTreeClassifier(random_state=42, **trial["params"]), x_train, y_train, "roc_auc"
        )
        assert trial["score"] == pytest.approx(expected, abs=1e-12), trial
        assert 0 <= trial["std"] < 0.2 and trial["duration_s"] >= 0


def test_grid_search_keeps_the_best_trial_by_the_search_metric(grid_run) -> None:
    _, trained = grid_run
    scores = [t["score"] for t in trained.trials]
    assert len(set(scores)) > 1, "the grid should not be flat, or the choice proves nothing"
    best = trained.trials[int(np.argmax(scores))]  # the first of equal bests, as the search keeps it
    assert trained.params == {"random_state": 42, **best["params"]}
    fitted = trained.estimator.get_params()
    assert {k: fitted[k] for k in best["params"]} == best["params"]


# --- random search -----------------------------------------------------------------------------------


RANDOM = {
    "strategy": "random",
    "trials": 6,
    "metric": "accuracy",
    "cv": 3,
    "space": {
        "max_depth": {"type": "int", "low": 2, "high": 6},
        "min_samples_leaf": {"type": "int", "low": 1, "high": 20},
        "ccp_alpha": {"type": "float", "low": 0.0001, "high": 0.05, "log": True},
        "criterion": {"type": "choice", "values": ["gini", "entropy", "log_loss"]},
    },
}


@pytest.fixture(scope="module")
def random_run(model_variant, frames) -> tuple[Any, train.Trained]:
    model = model_variant(estimator=TREE, search=RANDOM)
    return model, train.train(model, frames["breast-cancer"], "target")


def test_random_search_records_every_trial_within_the_space(random_run) -> None:
    _, trained = random_run
    assert [t["trial"] for t in trained.trials] == list(range(1, 7))
    for t in trained.trials:
        p = t["params"]
        assert set(p) == {"max_depth", "min_samples_leaf", "ccp_alpha", "criterion"}
        assert 2 <= p["max_depth"] <= 6 and 1 <= p["min_samples_leaf"] <= 20
        assert 0.0001 <= p["ccp_alpha"] <= 0.05 and p["criterion"] in ("gini", "entropy", "log_loss")
        assert all(type(v) in (int, float, str) for v in p.values()), "params must be plain JSON values"
    assert len({tuple(sorted(t["params"].items())) for t in trained.trials}) == 6


def test_random_search_is_seeded_by_the_split_seed(random_run, model_variant, frames) -> None:
    model, trained = random_run
    again = train.train(model, frames["breast-cancer"], "target")
    assert [t["params"] for t in again.trials] == [t["params"] for t in trained.trials]
    other = model_variant(estimator=TREE, search=RANDOM, split={"testSize": 0.25, "seed": 7})
    assert [t["params"] for t in train.train(other, frames["breast-cancer"], "target").trials] != [
        t["params"] for t in trained.trials
    ]


def test_random_search_keeps_the_trial_with_the_best_accuracy(random_run, frames) -> None:
    from sklearn.tree import DecisionTreeClassifier

    model, trained = random_run
    x_train, _, y_train, _ = _split(model, frames["breast-cancer"], "target")
    measured = [
        _cv_score(model, DecisionTreeClassifier(random_state=42, **t["params"]), x_train, y_train, "accuracy")
        for t in trained.trials
    ]
    assert [t["score"] for t in trained.trials] == pytest.approx(measured, abs=1e-12)
    best = trained.trials[int(np.argmax(measured))]
    assert trained.params == {"random_state": 42, **best["params"]}


def test_random_search_over_a_space_smaller_than_its_budget_runs_each_point_once(model_variant, frames) -> None:
    """Four possible candidates and a budget of eight: four trials, and the progress says so."""
    search = {
        "strategy": "random",
        "trials": 8,
        "metric": "roc_auc",
        "cv": 3,
        "space": {
            "max_depth": {"type": "choice", "values": [1, 2]},
            "criterion": {"type": "choice", "values": ["gini", "entropy"]},
        },
    }
    messages: list[str] = []
    trained = train.train(
        model_variant(estimator=TREE, search=search), frames["breast-cancer"], "target", messages.append
    )
    assert sorted((t["params"]["max_depth"], t["params"]["criterion"]) for t in trained.trials) == [
        (1, "entropy"),
        (1, "gini"),
        (2, "entropy"),
        (2, "gini"),
    ]
    assert [m.split(":")[0] for m in messages] == [f"trial {i}/4" for i in range(1, 5)]


@pytest.mark.parametrize("log", [False, True], ids=["uniform", "log-uniform"])
def test_float_ranges_are_sampled_over_the_whole_range(log: bool, model_variant) -> None:
    """Many draws (nothing is fitted): all inside [low, high], reaching both ends, and
    centred on the arithmetic mean (uniform) or the geometric mean (log-uniform)."""
    low, high = 0.01, 1.0
    space = {"ccp_alpha": {"type": "float", "low": low, "high": high, "log": log}}
    candidates, total = train._search_space(
        model_variant(estimator=TREE, search={**RANDOM, "trials": 400, "space": space})
    )
    xs = np.array([c["ccp_alpha"] for c in candidates])
    assert total == len(xs) == 400
    assert low <= xs.min() < low + 0.05 * (high - low) * (0.1 if log else 1)
    assert high - 0.05 * (high - low) < xs.max() <= high
    centre = math.sqrt(low * high) if log else (low + high) / 2
    assert np.median(xs) == pytest.approx(centre, rel=0.2)


# --- regression --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def diabetes_run(model_variant, frames) -> tuple[Any, train.Trained]:
    search = {
        "strategy": "random",
        "trials": 5,
        "metric": "rmse",
        "direction": "minimize",
        "cv": 3,
        "space": {"alpha": {"type": "float", "low": 0.001, "high": 10.0, "log": True}},
    }
    model = model_variant(
        dataset="diabetes", estimator=RIDGE, search=search, metrics=["r2", "rmse", "mae"], **REGRESSION
    )
    return model, train.train(model, frames["diabetes"], "target")


def test_regression_on_diabetes_reports_r2_rmse_mae_of_the_held_out_split(diabetes_run, frames) -> None:
    from sklearn.linear_model import Ridge

    model, trained = diabetes_run
    x_train, x_test, y_train, y_test = _split(model, frames["diabetes"], "target", stratify=False)
    pd.testing.assert_series_equal(trained.y_test, y_test)
    reference = Ridge(alpha=trained.params["alpha"]).fit(x_train, y_train).predict(x_test)
    np.testing.assert_allclose(trained.y_pred, reference)
    assert trained.y_score is None  # a regressor has no predict_proba
    assert trained.metrics == {
        "mae": pytest.approx(skm.mean_absolute_error(y_test, reference), abs=1e-6),
        "r2": pytest.approx(skm.r2_score(y_test, reference), abs=1e-6),
        "rmse": pytest.approx(math.sqrt(skm.mean_squared_error(y_test, reference)), abs=1e-6),
    }
    assert 0.3 < trained.metrics["r2"] < 0.7 and 40 < trained.metrics["rmse"] < 70


def test_regression_search_minimises_rmse_reported_as_a_positive_error(diabetes_run, frames) -> None:
    from sklearn.linear_model import Ridge

    model, trained = diabetes_run
    x_train, _, y_train, _ = _split(model, frames["diabetes"], "target", stratify=False)
    for t in trained.trials:
        neg = _cv_score(model, Ridge(**t["params"]), x_train, y_train, "neg_root_mean_squared_error", False)
        assert t["score"] == pytest.approx(-neg, abs=1e-9) and t["score"] > 0
    best = min(trained.trials, key=lambda t: t["score"])
    assert trained.params == {**best["params"], "random_state": 42}
    assert best["score"] < max(t["score"] for t in trained.trials)


# --- multi-class ----------------------------------------------------------------------------------


@pytest.mark.parametrize("dataset", ["iris", "wine"])
def test_multiclass_roc_auc_is_one_vs_rest_macro(dataset: str, model_variant, frames) -> None:
    from sklearn.naive_bayes import GaussianNB

    model = model_variant(
        dataset=dataset,
        estimator=NAIVE_BAYES,
        search=None,
        fairness=None,
        metrics=["roc_auc", "accuracy", "f1", "precision", "recall", "log_loss"],
        gates=[{"metric": "roc_auc", "operator": ">=", "threshold": 0.9}],
    )
    trained = train.train(model, frames[dataset], "target")
    x_train, x_test, y_train, y_test = _split(model, frames[dataset], "target")
    reference = GaussianNB().fit(x_train, y_train)
    proba = reference.predict_proba(x_test)
    y_pred = reference.predict(x_test)
    assert proba.shape[1] == 3 and set(y_test) == {0, 1, 2}
    np.testing.assert_allclose(trained.y_score, proba)
    expected = {
        "roc_auc": skm.roc_auc_score(y_test, proba, multi_class="ovr", average="macro"),
        "accuracy": skm.accuracy_score(y_test, y_pred),
        "f1": skm.f1_score(y_test, y_pred, average="macro"),
        "precision": skm.precision_score(y_test, y_pred, average="macro"),
        "recall": skm.recall_score(y_test, y_pred, average="macro"),
        "log_loss": skm.log_loss(y_test, proba),
    }
    assert trained.metrics == {k: pytest.approx(v, abs=1e-6) for k, v in expected.items()}


# --- features and target ----------------------------------------------------------------------------


def test_declared_features_are_the_only_inputs(model_variant, frames) -> None:
    features = ["mean radius", "mean texture", "worst area"]
    model = model_variant(estimator=NAIVE_BAYES, search=None, features=features)
    trained = train.train(model, frames["breast-cancer"], "target")
    assert list(trained.estimator.feature_names_in_) == features
    assert list(trained.test_frame.columns) == [*features, "target"]
    assert len(trained.test_frame) == math.ceil(569 * 0.25)  # sklearn rounds the test share up


def test_without_features_every_column_but_the_target_is_an_input(model_variant, frames) -> None:
    trained = train.train(model_variant(estimator=NAIVE_BAYES, search=None), frames["breast-cancer"], "target")
    inputs = list(trained.estimator.feature_names_in_)
    assert len(inputs) == 30 and "target" not in inputs
    assert inputs == [c for c in frames["breast-cancer"].columns if c != "target"]


@pytest.mark.parametrize(
    ("features", "target", "message"),
    [
        (["mean radius", "no such column"], "target", r"column\(s\) no such column are not in the dataset"),
        (None, "label", r"column\(s\) label are not in the dataset"),
        (["mean radius", "target"], "target", r"target 'target' is also listed as a feature"),
    ],
    ids=["missing-feature", "missing-target", "target-as-feature"],
)
def test_bad_features_or_target_are_train_errors(
    features: list[str] | None, target: str, message: str, model_variant, frames
) -> None:
    """Validation refuses these when the Dataset declares its columns and the target is known
    (tests/loading); the train step still checks the data it is given."""
    model = model_variant(estimator=NAIVE_BAYES, search=None, features=features, target=None)
    with pytest.raises(train.TrainError, match=message):
        train.train(model, frames["breast-cancer"], target)


@pytest.mark.parametrize("stratify", [True, False], ids=["stratified", "not-stratified"])
def test_the_classification_split_follows_split_stratify(stratify: bool, model_variant, frames) -> None:
    split = {"testSize": 0.25, "seed": 3, "stratify": stratify}
    model = model_variant(estimator=NAIVE_BAYES, search=None, split=split)
    trained = train.train(model, frames["breast-cancer"], "target")
    _, _, _, expected = _split(model, frames["breast-cancer"], "target", stratify=stratify)
    _, _, _, other = _split(model, frames["breast-cancer"], "target", stratify=not stratify)
    assert list(trained.y_test.index) == list(expected.index) != list(other.index)


# --- the allow-list ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["builtins.eval", "os.system", "sklearn.dummy.DummyClassifier", "modelplane_tests_absent.Estimator"],
    ids=["builtins-eval", "os-system", "sklearn-but-not-listed", "unknown-module"],
)
def test_an_estimator_off_the_allow_list_is_refused_without_importing_it(path: str, model_variant) -> None:
    with pytest.raises(ValidationError, match="class"):
        model_variant(estimator={"framework": "sklearn", "class": path})
    with pytest.raises(train.TrainError, match=rf"estimator '{path}' is not on the allow-list"):
        train.estimator_class(path)
    assert "modelplane_tests_absent" not in sys.modules


def test_train_refuses_a_model_built_around_validation(model_variant, frames) -> None:
    """Even a Model that skipped validation (``model_copy``) cannot name another class."""
    model = model_variant(estimator=NAIVE_BAYES, search=None)
    estimator = model.spec.estimator.model_copy(update={"className": "os.system"})
    sneaky = model.model_copy(update={"spec": model.spec.model_copy(update={"estimator": estimator})})
    with pytest.raises(train.TrainError, match=r"'os\.system' is not on the allow-list"):
        train.train(sneaky, frames["breast-cancer"], "target")


def test_bad_estimator_params_are_refused_at_validation_and_by_train(model_variant, frames) -> None:
    with pytest.raises(ValidationError, match=r"'max_dept' is not a parameter of .*; did you mean 'max_depth'\?"):
        model_variant(estimator={**TREE, "params": {"max_dept": 3}}, search=None)
    model = model_variant(estimator=TREE, search=None)  # a Model that skipped validation
    estimator = model.spec.estimator.model_copy(update={"params": {"max_dept": 3}})
    sneaky = model.model_copy(update={"spec": model.spec.model_copy(update={"estimator": estimator})})
    with pytest.raises(train.TrainError, match=r"bad estimator params for sklearn\.tree\.DecisionTreeClassifier"):
        train.train(sneaky, frames["breast-cancer"], "target")


def test_a_binary_target_with_text_labels_trains(model_variant, frames) -> None:
    """Labels need not be 0 and 1: the positive class is the second one, as in predict_proba."""
    frame = frames["breast-cancer"].assign(target=lambda f: f["target"].map({0: "malignant", 1: "benign"}))
    model = model_variant(estimator=NAIVE_BAYES, search=None)
    trained = train.train(model, frame, "target")
    assert list(trained.estimator.classes_) == ["benign", "malignant"]
    y_true, y_pred = trained.y_test, trained.y_pred
    assert trained.metrics["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, pos_label="malignant"), abs=1e-6)
    assert trained.metrics["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, pos_label="malignant"), abs=1e-6)
    assert trained.metrics["roc_auc"] == pytest.approx(
        skm.roc_auc_score(y_true == "malignant", trained.y_score[:, 1]), abs=1e-6
    )


# --- honest search results ---------------------------------------------------------------------------


MULTICLASS = {
    "fairness": None,
    "metrics": ["roc_auc", "f1"],
    "gates": [{"metric": "roc_auc", "operator": ">=", "threshold": 0.5}],
}
SMOOTHING = {"var_smoothing": {"type": "choice", "values": [1e-9, 0.05, 0.5]}}


@pytest.mark.parametrize(
    ("dataset", "metric", "sklearn_name"), [("iris", "roc_auc", "roc_auc_ovr"), ("wine", "f1", "f1_macro")]
)
def test_a_multiclass_search_scores_one_vs_rest_as_the_gate_does(
    dataset: str, metric: str, sklearn_name: str, model_variant, frames
) -> None:
    """Each trial is the mean over folds of the gate's metric: for three classes, one-vs-rest
    macro ROC-AUC and macro F1 (scikit-learn's binary 'roc_auc' and 'f1' cannot score them).
    tests/reconcilers/test_metrics.py checks fold by fold that this is the gate's computation."""
    from sklearn.naive_bayes import GaussianNB

    search = {"strategy": "grid", "metric": metric, "cv": 3, "space": SMOOTHING}
    model = model_variant(dataset=dataset, estimator=NAIVE_BAYES, search=search, **MULTICLASS)
    trained = train.train(model, frames[dataset], "target")
    x_train, _, y_train, _ = _split(model, frames[dataset], "target")
    assert len(np.unique(y_train)) == 3 and len(trained.trials) == 3
    for t in trained.trials:
        expected = _cv_score(model, GaussianNB(**t["params"]), x_train, y_train, sklearn_name)
        assert t["score"] == pytest.approx(expected, abs=1e-12), t
    assert len({round(t["score"], 9) for t in trained.trials}) > 1, "a flat search proves nothing"
    best = max(trained.trials, key=lambda t: t["score"])
    assert trained.params == best["params"]


def test_a_log_loss_search_minimises_by_default_and_records_the_loss(model_variant, frames) -> None:
    """No direction given: log_loss is a loss, so the best trial is the lowest, and the recorded
    scores are the loss itself (positive), not scikit-learn's negated scorer."""
    from sklearn.naive_bayes import GaussianNB

    search = {"strategy": "grid", "metric": "log_loss", "cv": 3, "space": SMOOTHING}
    model = model_variant(estimator=NAIVE_BAYES, search=search)
    assert model.spec.search.direction is None and model.spec.search.goal == "minimize"
    trained = train.train(model, frames["breast-cancer"], "target")
    x_train, _, y_train, _ = _split(model, frames["breast-cancer"], "target")
    for t in trained.trials:
        neg = _cv_score(model, GaussianNB(**t["params"]), x_train, y_train, "neg_log_loss")
        # scikit-learn's scorer clips the positive class's probability alone: equal to float noise
        assert t["score"] == pytest.approx(-neg, rel=1e-5) and t["score"] > 0
    scores = [t["score"] for t in trained.trials]
    assert min(scores) < max(scores)
    assert trained.params == min(trained.trials, key=lambda t: t["score"])["params"]
    explicit = model_variant(estimator=NAIVE_BAYES, search={**search, "direction": "minimize"})
    assert train.train(explicit, frames["breast-cancer"], "target").params == trained.params


def test_a_search_on_text_labels_scores_the_second_class_as_positive(model_variant, frames) -> None:
    """Recall on labels 'benign'/'malignant': the positive class is 'malignant' (the second),
    in the search as in the gates; scikit-learn's 'recall' scorer would look for a label 1."""
    from sklearn.metrics import make_scorer, recall_score
    from sklearn.naive_bayes import GaussianNB

    frame = frames["breast-cancer"].assign(target=lambda f: f["target"].map({0: "malignant", 1: "benign"}))
    search = {"strategy": "grid", "metric": "recall", "cv": 3, "space": SMOOTHING}
    model = model_variant(estimator=NAIVE_BAYES, search=search)
    trained = train.train(model, frame, "target")
    x_train, _, y_train, _ = _split(model, frame, "target")
    scorer = make_scorer(recall_score, pos_label="malignant")
    for t in trained.trials:
        assert t["score"] == pytest.approx(_cv_score(model, GaussianNB(**t["params"]), x_train, y_train, scorer))
    assert trained.metrics["recall"] == pytest.approx(
        recall_score(trained.y_test, trained.y_pred, pos_label="malignant"), abs=1e-6
    )


def test_a_trial_whose_fit_fails_fails_the_search_naming_it(model_variant, frames) -> None:
    """scikit-learn's default (error_score=nan) would score the trial NaN with a warning and
    the search would rank around it; the search raises instead, with the cause."""
    search = {
        "strategy": "grid",
        "metric": "accuracy",
        "cv": 3,
        "space": {"criterion": {"type": "choice", "values": ["gini", "mse"]}},
    }
    model = model_variant(estimator=TREE, search=search)
    messages: list[str] = []
    with pytest.raises(train.TrainError) as caught:
        train.train(model, frames["breast-cancer"], "target", messages.append)
    assert str(caught.value).startswith(
        "search trial 2 with {'criterion': 'mse'} failed: InvalidParameterError: The 'criterion' parameter"
    )
    assert [m.split(":")[0] for m in messages] == ["trial 1/2"]


def test_a_trial_scored_nan_fails_the_search_naming_it(model_variant, frames) -> None:
    """A class with three rows in the search's training rows and five folds: two folds lack it,
    one-vs-rest ROC-AUC is undefined there and the trial's mean is NaN. No best is picked."""
    frame = frames["iris"]
    rare = frame[frame["target"] == 2].head(4)
    frame = pd.concat([frame[frame["target"] != 2], rare]).reset_index(drop=True)
    search = {"strategy": "grid", "metric": "roc_auc", "cv": 5, "space": SMOOTHING}
    model = model_variant(dataset="iris", estimator=NAIVE_BAYES, search=search, **MULTICLASS)
    _, _, y_train, _ = _split(model, frame, "target")
    assert (y_train == 2).sum() == 3
    with pytest.warns(UserWarning, match="least populated class"), pytest.raises(train.TrainError) as caught:
        train.train(model, frame, "target")
    assert str(caught.value) == (
        "search trial 1 with {'var_smoothing': 1e-09} scored NaN: roc_auc is undefined on fold(s) 4, 5 of 5; "
        "lower search.cv or check the data"
    )


def test_a_fairness_slice_may_group_by_a_column_that_is_not_a_feature(model_variant, frames) -> None:
    """Slicing by an attribute the model does not see is the usual fairness question: the
    held-out rows keep the slice's column."""
    from reconcilers.metricgate import evaluate_fairness

    fairness = {
        "metric": "accuracy",
        "maxGap": 1.0,
        "slices": [{"name": "size", "column": "mean area", "bins": [0, 700, 3000]}],
    }
    model = model_variant(
        estimator=NAIVE_BAYES, search=None, features=["mean texture", "worst smoothness"], fairness=fairness
    )
    trained = train.train(model, frames["breast-cancer"], "target")
    assert list(trained.estimator.feature_names_in_) == ["mean texture", "worst smoothness"]
    assert list(trained.test_frame.columns) == ["mean texture", "worst smoothness", "mean area", "target"]
    expected = frames["breast-cancer"].loc[trained.y_test.index, "mean area"]
    pd.testing.assert_series_equal(trained.test_frame["mean area"], expected)
    (piece,) = evaluate_fairness(model, trained.test_frame, trained.y_test, trained.y_pred, trained.y_score)["slices"]
    assert "error" not in piece and sum(g["rows"] for g in piece["groups"].values()) == len(trained.y_test)
