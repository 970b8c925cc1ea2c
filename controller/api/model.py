"""``Model``: how to train, judge, promote and describe one model."""

from __future__ import annotations

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
from controller.api.estimators import ALLOWED_ESTIMATORS, Framework, Task


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
    params: dict[str, Any] = Field(default_factory=dict, description="Constructor keyword arguments.")

    model_config = StrictModel.model_config | {"populate_by_name": True}

    @model_validator(mode="after")
    def _framework_matches(self) -> Estimator:
        framework, _ = ALLOWED_ESTIMATORS[self.className]
        if framework != self.framework:
            raise ValueError(
                f"estimator '{self.className}' belongs to framework '{framework.value}', not '{self.framework.value}'"
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
    metric: Metric
    direction: Literal["maximize", "minimize"] = "maximize"
    cv: Annotated[int, Field(ge=2, le=20)] = 3
    space: Annotated[dict[str, Parameter], Field(min_length=1)]

    @model_validator(mode="after")
    def _ranges_ordered(self) -> Search:
        for name, param in self.space.items():
            if isinstance(param, IntRange | FloatRange) and param.low > param.high:
                raise ValueError(f"search space '{name}': low ({param.low}) is above high ({param.high})")
            if self.strategy == "grid" and isinstance(param, FloatRange):
                raise ValueError(f"search space '{name}': grid search needs 'int' or 'choice' parameters")
        return self


class Gate(StrictModel):
    metric: Metric
    operator: Operator
    threshold: float


class FairnessSlice(StrictModel):
    name: DNSLabel
    column: NonEmptyStr = Field(description="The column whose groups are compared.")
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
        default=None, description="Feature columns (all but the target when omitted)."
    )
    target: NonEmptyStr | None = Field(default=None, description="Label column (the Dataset's target when omitted).")
    split: Split = Field(default_factory=Split)
    estimator: Estimator
    search: Search | None = None
    metrics: list[Metric] = Field(default_factory=list, description="Metrics to compute and record.")
    fairness: Fairness | None = None
    gates: list[Gate] = Field(default_factory=list)
    promotion: Promotion = Field(default_factory=Promotion)
    artifactUri: Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://\S+$")] | None = Field(
        default=None, description="Where model artifacts are stored (the local store when omitted)."
    )
    card: Card = Field(default_factory=Card)

    @model_validator(mode="after")
    def _metrics_fit_task(self) -> ModelSpec:
        task = self.estimator.task
        allowed = CLASSIFICATION_METRICS if task == Task.CLASSIFICATION else REGRESSION_METRICS
        used = [("metrics", m) for m in self.metrics] + [("gates", g.metric) for g in self.gates]
        if self.search:
            used.append(("search.metric", self.search.metric))
        for where, metric in used:
            if metric not in allowed:
                raise ValueError(
                    f"{where}: metric '{metric.value}' does not apply to a {task.value} estimator; "
                    f"use one of {', '.join(sorted(m.value for m in allowed))}"
                )
        return self


class Model(Resource):
    """A model trained from a Dataset, gated by metrics and promoted through the registry."""

    kind: Literal["Model"]
    spec: ModelSpec

    def references(self) -> list[Reference]:
        return [Reference(kind="Dataset", name=self.spec.dataset, path=("spec", "dataset"))]
