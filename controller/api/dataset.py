"""``Dataset``: where data comes from, its columns, its contract, its governance."""

from __future__ import annotations

import difflib
from enum import StrEnum
from pathlib import PurePosixPath
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, field_validator, model_validator

from controller.api.common import (
    DNSLabel,
    Duration,
    NonEmptyStr,
    Reference,
    Resource,
    StrictModel,
    exactly_one,
    one_of_schema,
)
from controller.api.located import field_error

# Datasets that ship inside scikit-learn (no download): name -> loader function.
SKLEARN_DATASETS = {
    "breast_cancer": "load_breast_cancer",
    "diabetes": "load_diabetes",
    "digits": "load_digits",
    "iris": "load_iris",
    "wine": "load_wine",
}


class DataFormat(StrEnum):
    CSV = "csv"
    PARQUET = "parquet"
    JSON = "json"


class DerivedSource(StrictModel):
    """A dataset derived from another one by selecting columns."""

    dataset: DNSLabel = Field(description="Name of the parent Dataset.")
    columns: list[NonEmptyStr] | None = Field(default=None, description="Columns to keep (all when omitted).")


class DatasetSource(StrictModel):
    model_config = ConfigDict(json_schema_extra=one_of_schema("path", "uri", "sklearn", "derivedFrom"))

    path: NonEmptyStr | None = Field(
        default=None,
        description="A file in the platform repo, relative to the repo root (no absolute paths, no '..'; "
        "a symlink that leads outside the repo is refused when the data is read).",
    )
    uri: Annotated[str, Field(pattern=r"^[a-z][a-z0-9+.-]*://\S+$")] | None = Field(
        default=None, description="A URI such as s3://bucket/key (not file://: use 'path')."
    )
    sklearn: Literal[tuple(SKLEARN_DATASETS)] | None = Field(  # type: ignore[valid-type]
        default=None, description="A dataset bundled with scikit-learn."
    )
    derivedFrom: DerivedSource | None = None
    format: DataFormat | None = Field(
        default=None, description="File format for 'path' and 'uri' (guessed from the extension when omitted)."
    )

    @field_validator("path")
    @classmethod
    def _inside_the_repo(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = PurePosixPath(value.replace("\\", "/")).parts
        if value.startswith(("/", "\\")) or (len(value) > 1 and value[1] == ":"):
            raise ValueError(f"'{value}' is absolute: data paths are relative to the repo root")
        if ".." in parts:
            raise ValueError(f"'{value}' leaves the repo through '..': data paths stay inside the repo root")
        if "://" in value:
            raise ValueError(f"'{value}' is a URI, not a path: put it in 'uri' ('file://' is refused there too)")
        return value

    @field_validator("uri")
    @classmethod
    def _no_local_files(cls, value: str | None) -> str | None:
        if value is not None and value.lower().startswith("file:"):
            raise ValueError(f"'{value}' reads a local file outside the repo: use 'path', relative to the repo root")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> DatasetSource:
        exactly_one(self, ("path", "uri", "sklearn", "derivedFrom"))
        return self


class ColumnType(StrEnum):
    INTEGER = "integer"
    FLOAT = "float"
    STRING = "string"
    BOOLEAN = "boolean"
    CATEGORY = "category"
    DATETIME = "datetime"


class Column(StrictModel):
    name: NonEmptyStr
    type: ColumnType
    nullable: bool = False
    description: str | None = None


class Expectation(StrictModel):
    """One Great Expectations expectation, by its GX name and keyword arguments."""

    type: Annotated[str, Field(pattern=r"^expect_[a-z0-9_]+$")] = Field(
        description="GX expectation name, e.g. 'expect_column_values_to_not_be_null'."
    )
    kwargs: dict[str, Any] = Field(default_factory=dict)
    severity: Literal["error", "warning"] = "error"


class Contract(StrictModel):
    schemaMatch: Literal["exact", "subset", "none"] = Field(
        default="exact",
        description="How the data's columns must match 'columns': 'exact' trips the gate on any "
        "added or removed column.",
    )
    expectations: list[Expectation] = Field(default_factory=list)


class ConsentBasis(StrEnum):
    """GDPR Art. 6 lawful bases."""

    CONSENT = "consent"
    CONTRACT = "contract"
    LEGAL_OBLIGATION = "legal-obligation"
    VITAL_INTERESTS = "vital-interests"
    PUBLIC_TASK = "public-task"
    LEGITIMATE_INTERESTS = "legitimate-interests"


class Governance(StrictModel):
    pii: bool = Field(default=False, description="Whether the data holds personal information.")
    consentBasis: ConsentBasis | None = None
    retention: Duration | None = Field(default=None, description="How long the data may be kept.")
    classification: Literal["public", "internal", "confidential", "restricted"] = "internal"


class DatasetSpec(StrictModel):
    source: DatasetSource
    columns: list[Column] = Field(default_factory=list, description="The expected columns.")
    target: NonEmptyStr | None = Field(default=None, description="The label column.")
    contract: Contract = Field(default_factory=Contract)
    governance: Governance = Field(default_factory=Governance)

    @model_validator(mode="after")
    def _columns_consistent(self) -> DatasetSpec:
        names = [c.name for c in self.columns]
        for i, name in enumerate(names):
            if name in names[:i]:
                raise field_error("columns", i, "name", message=f"column '{name}' is declared twice")
        if self.columns and self.target and self.target not in names:
            close = difflib.get_close_matches(self.target, names, n=1, cutoff=0.6)
            hint = f"; did you mean '{close[0]}'?" if close else ""
            raise field_error("target", message=f"target '{self.target}' is not one of the declared columns{hint}")
        return self


class Dataset(Resource):
    """A versioned source of data with a contract. Its version is the content hash of the data."""

    kind: Literal["Dataset"]
    spec: DatasetSpec

    def references(self) -> list[Reference]:
        derived = self.spec.source.derivedFrom
        if derived is None:
            return []
        return [Reference(kind="Dataset", name=derived.dataset, path=("spec", "source", "derivedFrom", "dataset"))]
