"""``Model``: how to train, judge, promote and describe one model."""

from __future__ import annotations

import difflib
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from controller.api.common import (
    DNSLabel,
    Fraction,
    NonEmptyStr,
    Operator,
    Reference,
    Resource,
    StrictModel,
)
from controller.api.estimators import (
    ALLOWED_ESTIMATORS,
    PROBA_WHEN,
    Framework,
    Task,
    accepted_params,
    has_predict_proba,
)
from controller.api.located import field_error


class Metric(StrEnum):
    ROC_AUC = "roc_auc"
    ACCURACY = "accuracy"
    F1 = "f1"
    PRECISION = "precision"
    RECALL = "recall"
    LOG_LOSS = "log_loss"
    RMSE = "rmse"
    MAE = "mae"
    R2 = "r2"


CLASSIFICATION_METRICS = frozenset(
    {Metric.ROC_AUC, Metric.ACCURACY, Metric.F1, Metric.PRECISION, Metric.RECALL, Metric.LOG_LOSS}
)
REGRESSION_METRICS = frozenset({Metric.RMSE, Metric.MAE, Metric.R2})
# Metrics computed from predict_proba: an estimator without it cannot report them.
PROBA_METRICS = frozenset({Metric.ROC_AUC, Metric.LOG_LOSS})
# Losses: lower is better. Every other metric: higher is better.
LOWER_IS_BETTER = frozenset({Metric.LOG_LOSS, Metric.RMSE, Metric.MAE})

Direction = Literal["maximize", "minimize"]


def natural_direction(metric: Metric) -> Direction:
    """Which way a search should push ``metric``: down for a loss, up otherwise."""
    return "minimize" if metric in LOWER_IS_BETTER else "maximize"


def _did_you_mean(word: str, choices: list[str]) -> str:
    lowered = {choice.lower(): choice for choice in choices}  # 'c' for 'C' too
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    if close:
        return f"; did you mean '{lowered[close[0]]}'?"
    return f"; it accepts {', '.join(sorted(choices))}"


class Split(StrictModel):
    testSize: Fraction = Field(default=0.2, description="Share of rows held out for evaluation.")
    seed: Annotated[int, Field(ge=0)] = 42
    stratify: bool = Field(default=True, description="Stratify on the target (classification only).")


class Estimator(StrictModel):
    framework: Framework
    className: Literal[tuple(ALLOWED_ESTIMATORS)] = Field(  # type: ignore[valid-type]
        alias="class",
        description="Import path of the estimator; only allow-listed estimators are accepted.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict,
        description="Constructor keyword arguments. For a scikit-learn estimator each name must be a parameter "
        "of its class (an unknown one is an error, with the closest name); XGBoost and LightGBM params are "
        "not checked.",
    )

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _framework_matches(self) -> Estimator:
        framework, _ = ALLOWED_ESTIMATORS[self.className]
        if framework != self.framework:
            raise field_error(
                "class",
                message=f"estimator '{self.className}' belongs to framework '{framework.value}', "
                f"not '{self.framework.value}'; set spec.estimator.framework to '{framework.value}'",
            )
        return self

    @model_validator(mode="after")
    def _params_accepted(self) -> Estimator:
        accepted = accepted_params(self.className)
        if accepted is None:  # XGBoost, LightGBM: see controller/api/estimators.py
            return self
        for name in self.params:
            if name not in accepted:
                raise field_error(
                    "params",
                    name,
                    at_key=True,
                    message=f"'{name}' is not a parameter of {self.className}{_did_you_mean(name, list(accepted))}",
                )
        return self

    @property
    def task(self) -> Task:
        return ALLOWED_ESTIMATORS[self.className][1]


class IntRange(StrictModel):
    type: Literal["int"]
    low: int
    high: int


class FloatRange(StrictModel):
    type: Literal["float"]
    low: float
    high: float
    log: bool = False


class Choice(StrictModel):
    type: Literal["choice"]
    values: Annotated[list[Any], Field(min_length=1)]


Parameter = Annotated[IntRange | FloatRange | Choice, Field(discriminator="type")]


class Search(StrictModel):
    """Hyper-parameter search over ``space``; every trial is recorded."""

    strategy: Literal["random", "grid"] = "random"
    trials: Annotated[int, Field(ge=1, le=10_000)] = 20
    metric: Metric = Field(
        description="What each trial is scored by, on each fold, as the gates compute it: one-vs-rest "
        "macro ROC-AUC and macro F1, precision and recall for more than two classes, the second class "
        "positive for two; a loss as itself (lower is better). A trial that fails to fit, or scores NaN "
        "on a fold, fails the search and names the trial."
    )
    direction: Direction | None = Field(
        default=None,
        description="Whether the best trial has the highest or the lowest score. Defaults to the metric's "
        "natural direction: 'minimize' for log_loss, rmse and mae, 'maximize' for the others; "
        "the other direction is an error.",
    )
    cv: Annotated[int, Field(ge=2, le=20)] = 3
    space: Annotated[dict[str, Parameter], Field(min_length=1)] = Field(
        description="Estimator parameters to search, by name (each one a parameter the estimator accepts)."
    )

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Search:
        for name, param in self.space.items():
            if isinstance(param, IntRange | FloatRange) and param.low > param.high:
                raise field_error("space", name, at_key=True, message=f"low ({param.low}) is above high ({param.high})")
            if self.strategy == "grid" and isinstance(param, FloatRange):
                raise field_error(
                    "space", name, "type", message="grid search needs 'int' or 'choice' parameters, not 'float'"
                )
        return self

    @model_validator(mode="after")
    def _direction_fits_metric(self) -> Search:
        natural = natural_direction(self.metric)
        if self.direction is not None and self.direction != natural:
            better = "lower" if natural == "minimize" else "higher"
            raise field_error(
                "direction",
                message=f"'{self.direction}' contradicts the metric '{self.metric.value}', where {better} is "
                f"better; write '{natural}' or leave direction out",
            )
        return self

    @property
    def goal(self) -> Direction:
        """The direction the search takes: the declared one, else the metric's natural one."""
        return self.direction or natural_direction(self.metric)


class Gate(StrictModel):
    metric: Metric
    operator: Operator
    threshold: float


class FairnessSlice(StrictModel):
    name: DNSLabel
    column: NonEmptyStr = Field(
        description="The column whose groups are compared: a column the Dataset declares (when it declares "
        "any); it need not be a feature."
    )
    bins: list[float] | None = Field(default=None, description="Bin edges for a numeric column; groups are the bins.")


class Fairness(StrictModel):
    metric: Metric = Metric.ACCURACY
    maxGap: Annotated[float, Field(ge=0)] = Field(
        description="Largest allowed difference of the metric between any two groups."
    )
    slices: Annotated[list[FairnessSlice], Field(min_length=1)]


class StagingPromotion(StrictModel):
    automatic: bool = True


class ProductionPromotion(StrictModel):
    approvals: Annotated[int, Field(ge=0, le=10)] = Field(
        default=1, description="Distinct approvers needed before Production."
    )
    archiveExisting: bool = Field(default=True, description="Archive the version that was in Production.")


class Promotion(StrictModel):
    staging: StagingPromotion = Field(default_factory=StagingPromotion)
    production: ProductionPromotion | None = Field(
        default=None, description="Omit to keep the model out of Production."
    )


class Owner(StrictModel):
    name: NonEmptyStr
    contact: NonEmptyStr | None = None


class Card(StrictModel):
    """Text for the generated model card."""

    description: str | None = None
    intendedUse: str | None = None
    limitations: list[str] = Field(default_factory=list)
    ethicalConsiderations: list[str] = Field(default_factory=list)
    owners: list[Owner] = Field(default_factory=list)
    license: str | None = None


class ModelSpec(StrictModel):
    dataset: DNSLabel = Field(description="Name of the Dataset to train on.")
    features: list[NonEmptyStr] | None = Field(
        default=None,
        description="Feature columns (all but the target when omitted). Each must be a column the Dataset "
        "declares (when it declares any), listed once, and not the target.",
    )
    target: NonEmptyStr | None = Field(
        default=None,
        description="Label column (the Dataset's target when omitted; one of the two must name it). "
        "A column the Dataset declares, when it declares any.",
    )
    split: Split = Field(default_factory=Split)
    estimator: Estimator
    search: Search | None = None
    metrics: list[Metric] = Field(
        default_factory=list,
        description="Metrics to compute and record. Here and wherever a metric is named (search, gates, "
        "fairness) it must fit the estimator's task, and roc_auc and log_loss need an estimator with "
        "predict_proba (see the estimator allow-list below).",
    )
    fairness: Fairness | None = None
    gates: list[Gate] = Field(default_factory=list)
    promotion: Promotion = Field(default_factory=Promotion)
    artifactUri: Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://\S+$")] | None = Field(
        default=None, description="Where model artifacts are stored (the local store when omitted)."
    )
    card: Card = Field(default_factory=Card)

    def metrics_used(self) -> list[tuple[tuple[str | int, ...], Metric]]:
        """Every metric the spec asks for, with the path of the field that names it."""
        used: list[tuple[tuple[str | int, ...], Metric]] = [(("metrics", i), m) for i, m in enumerate(self.metrics)]
        used += [(("gates", i, "metric"), g.metric) for i, g in enumerate(self.gates)]
        if self.search:
            used.append((("search", "metric"), self.search.metric))
        if self.fairness:
            used.append((("fairness", "metric"), self.fairness.metric))
        return used

    @model_validator(mode="after")
    def _features_distinct(self) -> ModelSpec:
        seen: set[str] = set()
        for i, name in enumerate(self.features or []):
            if name == self.target:  # the label as an input: the held-out metrics would be meaningless
                raise field_error("features", i, message=f"'{name}' is the target; remove it from the features")
            if name in seen:
                raise field_error("features", i, message=f"'{name}' is listed twice")
            seen.add(name)
        return self

    @model_validator(mode="after")
    def _searched_params_accepted(self) -> ModelSpec:
        accepted = accepted_params(self.estimator.className)
        if accepted is None or self.search is None:  # XGBoost, LightGBM: see controller/api/estimators.py
            return self
        for name in self.search.space:
            if name not in accepted:
                raise field_error(
                    "search",
                    "space",
                    name,
                    at_key=True,
                    message=f"'{name}' is not a parameter of {self.estimator.className}"
                    f"{_did_you_mean(name, list(accepted))}",
                )
        return self

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> ModelSpec:
        task = self.estimator.task
        allowed = CLASSIFICATION_METRICS if task == Task.CLASSIFICATION else REGRESSION_METRICS
        for path, metric in self.metrics_used():
            if metric not in allowed:
                raise field_error(
                    *path,
                    message=f"metric '{metric.value}' does not apply to a {task.value} estimator; "
                    f"use one of {', '.join(sorted(m.value for m in allowed))}",
                )
        return self

    @model_validator(mode="after")
    def _probabilities_available(self) -> ModelSpec:
        """roc_auc and log_loss are computed from predict_proba: every trial and the final
        estimator must have it, or the metric could not be computed after training."""
        estimator = self.estimator
        path = estimator.className
        needed = [(where, m) for where, m in self.metrics_used() if m in PROBA_METRICS]
        if not needed:
            return self
        searched = self.search.space if self.search else {}
        if path in PROBA_WHEN and PROBA_WHEN[path].param in searched:
            param = PROBA_WHEN[path].param
            space = searched[param]
            candidates = space.values if isinstance(space, Choice) else [None]
            if not all(has_predict_proba(path, {**estimator.params, param: c}) for c in candidates):
                where, metric = needed[0]
                raise field_error(
                    "search",
                    "space",
                    param,
                    at_key=True,
                    message=f"some trials would have no predict_proba, which metric '{metric.value}' "
                    f"(spec.{_dotted(where)}) needs: {_proba_condition(path)}",
                )
            return self
        if has_predict_proba(path, estimator.params):
            return self
        where, metric = needed[0]
        raise field_error(
            *where, message=f"metric '{metric.value}' needs predicted probabilities, and {_no_proba(path)}"
        )


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _proba_condition(path: str) -> str:
    rule = PROBA_WHEN[path]
    shown = " or ".join(repr(v).lower() if isinstance(v, bool) else repr(v) for v in rule.values)
    note = f" ({rule.note})" if rule.note else ""
    return f"{path} has predict_proba only with {rule.param}: {shown}{note}"


def _no_proba(path: str) -> str:
    """Why the estimator has no predict_proba, and what to do about it."""
    if path in PROBA_WHEN:
        rule = PROBA_WHEN[path]
        value = repr(rule.values[0]).lower() if isinstance(rule.values[0], bool) else rule.values[0]
        return f"{_proba_condition(path)}; set spec.estimator.params.{rule.param}: {value}"
    usable = ", ".join(sorted(m.value for m in CLASSIFICATION_METRICS - PROBA_METRICS))
    return (
        f"{path} has no predict_proba; use one of {usable}, "
        "or an estimator with predict_proba such as sklearn.linear_model.LogisticRegression"
    )


class Model(Resource):
    """A model trained from a Dataset, gated by metrics and promoted through the registry."""

    kind: Literal["Model"]
    spec: ModelSpec

    def references(self) -> list[Reference]:
        return [Reference(kind="Dataset", name=self.spec.dataset, path=("spec", "dataset"))]
