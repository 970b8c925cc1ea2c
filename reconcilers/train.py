"""The train step: the allow-listed estimator, a seeded split, optional search.

Deterministic for a given spec and data: the split, the search and the
estimator all take the declared seed. Every search trial is recorded. The
estimator class is imported only from the allow-list in ``controller.api``.
"""

from __future__ import annotations

import functools
import importlib
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from controller import __version__
from controller.api import Model
from controller.api.estimators import ALLOWED_ESTIMATORS, Task
from controller.api.model import Choice, FloatRange, IntRange
from reconcilers.metrics import compute_metrics, search_scorer

if TYPE_CHECKING:
    import pandas as pd

Progress = Callable[[str], None]


class TrainError(Exception):
    """Training cannot start or failed: a missing column, a bad parameter."""


@dataclass
class Trained:
    estimator: Any
    params: dict[str, Any]
    metrics: dict[str, float]
    trials: list[dict[str, Any]]
    test_frame: pd.DataFrame  # the held-out rows with the target, for fairness slices
    y_test: Any
    y_pred: Any
    y_score: Any
    duration_s: float
    environment: dict[str, Any] = field(default_factory=dict)


def environment() -> dict[str, Any]:
    packages = {}
    for name in ("scikit-learn", "numpy", "pandas", "scipy", "xgboost", "lightgbm", "skops"):
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            continue
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "modelplane": __version__,
        "packages": packages,
    }


@functools.cache
def _package_version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:
        return "missing"


def code_version(model: Model) -> str:
    """What besides the spec and the data decides a training result."""
    framework = ALLOWED_ESTIMATORS[model.spec.estimator.className][0].value
    package = {"sklearn": "scikit-learn"}.get(framework, framework)
    return f"modelplane={__version__};{package}={_package_version(package)}"


def estimator_class(path: str) -> type:
    if path not in ALLOWED_ESTIMATORS:  # the model layer already refuses these; never import them
        raise TrainError(f"estimator '{path}' is not on the allow-list")
    module, _, name = path.rpartition(".")
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError as exc:
        raise TrainError(f"estimator '{path}' needs a package that is not installed: {exc.name}") from None


def _features(model: Model, frame: pd.DataFrame, target: str) -> list[str]:
    features = model.spec.features or [c for c in frame.columns if c != target]
    if target in features:  # the label as an input: the held-out metrics would be meaningless
        raise TrainError(f"target '{target}' is also listed as a feature; remove it from spec.features")
    missing = [c for c in [*features, target] if c not in frame.columns]
    if missing:
        raise TrainError(f"column(s) {', '.join(missing)} are not in the dataset")
    return features


def _search_space(model: Model) -> tuple[Any, int]:
    from scipy import stats
    from sklearn.model_selection import ParameterGrid, ParameterSampler

    search = model.spec.search
    assert search is not None
    seed = model.spec.split.seed
    if search.strategy == "grid":
        grid = {}
        for name, p in search.space.items():
            grid[name] = list(range(p.low, p.high + 1)) if isinstance(p, IntRange) else list(p.values)  # type: ignore[union-attr]
        candidates = list(ParameterGrid(grid))[: search.trials]
        return candidates, len(candidates)
    distributions: dict[str, Any] = {}
    for name, p in search.space.items():
        if isinstance(p, IntRange):
            distributions[name] = stats.randint(p.low, p.high + 1)
        elif isinstance(p, FloatRange):
            distributions[name] = stats.loguniform(p.low, p.high) if p.log else stats.uniform(p.low, p.high - p.low)
        elif isinstance(p, Choice):
            distributions[name] = list(p.values)
    n_iter = search.trials
    if all(isinstance(d, list) for d in distributions.values()):  # a finite space: each point at most once
        n_iter = min(n_iter, len(ParameterGrid(distributions)))
    candidates = list(ParameterSampler(distributions, n_iter=n_iter, random_state=seed))
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in c.items()} for c in candidates], len(candidates)


def _search(
    model: Model, base: Any, params: dict[str, Any], x_train: Any, y_train: Any, progress: Progress
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every trial's cross-validated score, and the params of the best one.

    Each trial is scored by the search metric exactly as the gates compute it, in the
    metric's own units, and the best trial is the highest or the lowest score as
    ``search.goal`` says. A fold that fails to fit raises (``error_score="raise"``):
    scikit-learn would otherwise score it NaN with a warning, and a NaN trial cannot be
    ranked. A trial that fails, or whose score is NaN (the metric undefined on a fold),
    fails the search, naming the trial and its params.
    """
    import numpy as np
    from sklearn.base import clone
    from sklearn.model_selection import KFold, StratifiedKFold, cross_val_score

    spec = model.spec
    search = spec.search
    assert search is not None
    task = spec.estimator.task
    candidates, total = _search_space(model)
    folds = (StratifiedKFold if task == Task.CLASSIFICATION else KFold)(
        n_splits=search.cv, shuffle=True, random_state=spec.split.seed
    )
    classes = np.unique(np.asarray(y_train)) if task == Task.CLASSIFICATION else None
    scorer = search_scorer(task, search.metric, classes)
    metric = search.metric.value
    trials: list[dict[str, Any]] = []
    best, best_score = dict(params), None
    for i, candidate in enumerate(candidates, start=1):
        t0 = time.perf_counter()
        estimator = clone(base).set_params(**candidate)
        try:
            scores = cross_val_score(estimator, x_train, y_train, cv=folds, scoring=scorer, error_score="raise")
        except Exception as exc:  # any estimator error: the trial, not the controller, failed
            cause = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
            raise TrainError(f"search trial {i} with {candidate} failed: {cause}") from None
        if np.isnan(scores).any():
            undefined = ", ".join(str(n) for n, v in enumerate(scores, start=1) if np.isnan(v))
            raise TrainError(
                f"search trial {i} with {candidate} scored NaN: {metric} is undefined on fold(s) {undefined} "
                f"of {search.cv}; lower search.cv or check the data"
            )
        score = float(scores.mean())
        trials.append(
            {
                "trial": i,
                "params": candidate,
                "score": score,
                "std": float(scores.std()),
                "duration_s": round(time.perf_counter() - t0, 4),
            }
        )
        if best_score is None or (score > best_score if search.goal == "maximize" else score < best_score):
            best_score, best = score, {**params, **candidate}
        progress(f"trial {i}/{total}: {metric}={score:.4f} (best {best_score:.4f}) {candidate}")
    return trials, best


def train(model: Model, frame: pd.DataFrame, target: str, progress: Progress = lambda _msg: None) -> Trained:
    from sklearn.base import clone
    from sklearn.model_selection import train_test_split

    started = time.perf_counter()
    spec = model.spec
    cls = estimator_class(spec.estimator.className)  # first: the task is looked up in the allow-list too
    task = spec.estimator.task
    features = _features(model, frame, target)
    # Columns a fairness slice groups by ride along with the split, model input or not.
    sliced = [s.column for s in spec.fairness.slices] if spec.fairness else []
    sliced = list(dict.fromkeys(c for c in sliced if c in frame.columns and c not in features and c != target))
    y = frame[target]
    stratify = y if (task == Task.CLASSIFICATION and spec.split.stratify) else None
    try:
        rows_train, rows_test, y_train, y_test = train_test_split(
            frame[[*features, *sliced]],
            y,
            test_size=spec.split.testSize,
            random_state=spec.split.seed,
            stratify=stratify,
        )
    except ValueError as exc:
        raise TrainError(f"cannot split the data: {exc}") from None
    x_train, x_test = rows_train[features], rows_test[features]

    params = dict(spec.estimator.params)
    try:
        base = cls(**params)
    except TypeError as exc:
        raise TrainError(f"bad estimator params for {spec.estimator.className}: {exc}") from None
    if "random_state" in base.get_params() and "random_state" not in params:
        params["random_state"] = spec.split.seed
        base.set_params(random_state=spec.split.seed)

    trials: list[dict[str, Any]] = []
    best = dict(params)
    if spec.search:
        trials, best = _search(model, base, params, x_train, y_train, progress)

    estimator = clone(base).set_params(**best)
    try:
        estimator.fit(x_train, y_train)
    except ValueError as exc:
        raise TrainError(f"training failed: {exc}") from None
    y_pred = estimator.predict(x_test)
    y_score = estimator.predict_proba(x_test) if hasattr(estimator, "predict_proba") else None
    wanted = set(spec.metrics) | {g.metric for g in spec.gates}
    if spec.fairness:
        wanted.add(spec.fairness.metric)
    metrics = compute_metrics(task, sorted(wanted, key=lambda m: m.value), y_test, y_pred, y_score)
    test_frame = rows_test.assign(**{target: y_test})  # for the fairness slices
    return Trained(
        estimator,
        best,
        metrics,
        trials,
        test_frame,
        y_test,
        y_pred,
        y_score,
        round(time.perf_counter() - started, 3),
        environment(),
    )
