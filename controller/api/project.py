"""The project file, ``modelplane.yaml`` at the platform repo's root (optional).

It marks the root (``modelplane`` finds it by walking up from the current
directory, as git finds ``.git``) and sets the defaults a platform team shares:
where the policies and the state live, and who may approve a model version for
Production. Read by the CLI before any command runs.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Annotated, Literal

from pydantic import Field, field_validator

from controller.api.common import StrictModel
from controller.api.identity import IdentityError, normalise
from controller.api.located import field_error

FILE_NAME = "modelplane.yaml"
DEFAULT_WAIVER_MAX_DAYS = 180


class ProjectSpec(StrictModel):
    policies: list[str] | None = Field(
        default=None,
        description="The policy set: directories relative to the root, and 'builtin' for the library that "
        "ships with modelplane (e.g. [builtin, policies]). Unset: builtin, plus policies/ when it exists.",
    )
    stateDir: str = Field(
        default=".modelplane",
        description="The state directory (database, artifacts, cards), relative to the root unless absolute.",
    )
    policyTimeoutSeconds: Annotated[float, Field(gt=0, le=3600)] = Field(
        default=5.0,
        description="Time limit of one policy decision (one resource judged by every package), in seconds; "
        "over it the resource is denied with policy-timeout.",
    )
    waiverMaxDays: Annotated[int, Field(ge=1, le=3650)] = Field(
        default=DEFAULT_WAIVER_MAX_DAYS,
        description="The longest a PolicyException may last, from approvedAt to expires, in days "
        f"(default {DEFAULT_WAIVER_MAX_DAYS}); a longer one waives nothing and is an error.",
    )
    dataRoots: list[str] = Field(
        default_factory=list,
        description="Directories outside the repo that data may be read from (read-only data mounts), as "
        "absolute paths. A Dataset's path stays relative to the repo; a symlink in the repo may lead into "
        "one of these (e.g. data/shared -> /mnt/datasets). Anything else outside the repo is refused.",
    )
    approvers: list[str] | None = Field(
        default=None,
        description="Who may approve a model version for Production, as identities (e.g. alice or "
        "alice@example.org; compared case-folded and trimmed). Unset: anyone who runs 'modelplane approve'.",
    )

    @field_validator("policies", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("policies")
    @classmethod
    def _some(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("an empty policy set would judge nothing: remove the key for the default set")
        for source in value or []:
            if not source.strip():
                raise ValueError("a policy source cannot be blank")
            path = PurePosixPath(source)
            if source != "builtin" and (path.is_absolute() or ".." in path.parts):
                raise ValueError(
                    f"policy source '{source}' leaves the repo: the project file names 'builtin' or directories "
                    "of the repo (an operator can add others with --policies)"
                )
        return value

    @field_validator("dataRoots")
    @classmethod
    def _absolute_roots(cls, value: list[str]) -> list[str]:
        for root in value:
            path = PurePosixPath(root)
            if not path.is_absolute() or ".." in path.parts:
                raise ValueError(f"data root '{root}' must be an absolute path without '..'")
            if path == PurePosixPath("/"):
                raise ValueError("data root '/' would allow every file on the machine: name the data mount")
        return value

    @field_validator("approvers")
    @classmethod
    def _identities(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("an empty approver list would let nobody approve: remove the key to allow anyone")
        out = []
        for i, raw in enumerate(value):
            try:
                out.append(normalise(raw))
            except IdentityError as exc:
                raise field_error(i, message=str(exc)) from None
        return out


class ProjectMetadata(StrictModel):
    name: str = Field(min_length=1, max_length=63, description="The platform's name.")


class Project(StrictModel):
    """The platform repo's project file: its root, its policies and state, its approvers."""

    apiVersion: Literal["modelplane.io/v1alpha1"] = "modelplane.io/v1alpha1"
    kind: Literal["Project"] = "Project"
    metadata: ProjectMetadata
    spec: ProjectSpec = Field(default_factory=ProjectSpec)
