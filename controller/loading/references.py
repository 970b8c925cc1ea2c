"""Checks across resources: unique names, references that resolve, no cycles, and
columns a Model uses that its Dataset declares.

Called by :func:`controller.loading.loader.load` once every file is loaded. It
needs only each resource's kind, name, located reference edges and column facts
(:func:`columns_of`), which every loaded resource keeps whatever else the load
dropped.
"""

from __future__ import annotations

import difflib
from collections.abc import Set
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from controller.api.findings import Finding, Location

if TYPE_CHECKING:
    from controller.api.common import Resource
    from controller.loading.loader import LoadedResource
    from controller.loading.yaml_reader import Document


@dataclass(frozen=True, slots=True)
class Edge:
    """One reference from a resource to another, and where it is written."""

    kind: str
    name: str
    path: tuple[str | int, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class ColumnUse:
    """A column a Model names, in the role it gives it, and where it is written."""

    column: str
    role: str  # "feature", "target" or "slice"
    path: tuple[str | int, ...]
    location: Location


@dataclass(frozen=True, slots=True)
class Columns:
    """What a resource says about Dataset columns: for a Dataset, the columns it declares
    (``None`` when it declares none), its target and the Dataset it derives from; for a
    Model, its Dataset and the columns it uses."""

    dataset: str | None = None  # a Model's Dataset, a derived Dataset's parent
    declared: tuple[str, ...] | None = None
    target: str | None = None
    uses: tuple[ColumnUse, ...] = ()
    dataset_at: Location | None = None  # where a Model names its Dataset
    path: str | None = None  # a Dataset's data file (spec.source.path), relative to the repo root
    path_at: Location | None = None  # where it is written


def columns_of(resource: Resource, doc: Document) -> Columns | None:
    """The column facts of a Dataset or a Model (``None`` for other kinds)."""
    from controller.api.dataset import Dataset
    from controller.api.model import Model

    if isinstance(resource, Dataset):
        spec = resource.spec
        derived = spec.source.derivedFrom
        declared: tuple[str, ...] | None = tuple(c.name for c in spec.columns) or None
        if declared is None and derived is not None and derived.columns:
            declared = tuple(derived.columns)
        path = spec.source.path
        return Columns(
            derived.dataset if derived else None,
            declared,
            spec.target,
            path=path,
            path_at=doc.location(("spec", "source", "path")) if path else None,
        )
    if isinstance(resource, Model):
        model = resource.spec
        uses: list[tuple[str, str, tuple[str | int, ...]]] = [
            (name, "feature", ("spec", "features", i)) for i, name in enumerate(model.features or [])
        ]
        if model.target is not None:
            uses.append((model.target, "target", ("spec", "target")))
        for i, piece in enumerate(model.fairness.slices if model.fairness else []):
            uses.append((piece.column, "slice", ("spec", "fairness", "slices", i, "column")))
        return Columns(
            model.dataset,
            None,
            model.target,
            tuple(ColumnUse(column, role, path, doc.location(path)) for column, role, path in uses),
            doc.location(("spec", "dataset")),
        )
    return None


def check_references(resources: list[LoadedResource], invalid: Set[tuple[str, str]] = frozenset()) -> list[Finding]:
    """Names unique per kind, references that resolve, no cycles, declared columns.

    ``invalid``: resources that exist but failed their own checks; a reference to one
    is not reported again as dangling (its own error says what is wrong)."""
    findings: list[Finding] = []
    by_key: dict[tuple[str, str], LoadedResource] = {}
    for item in resources:
        first = by_key.get(item.key)
        if first is not None:
            findings.append(
                Finding(
                    "duplicate-name",
                    f"name '{item.name}' is already used by the {item.kind} at "
                    f"{first.name_at}; names are unique per kind",
                    item.name_at,
                    resource=item.ref,
                    field="metadata.name",
                )
            )
            continue
        by_key[item.key] = item

    edges: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for key, item in by_key.items():
        for ref in item.edges:
            target = (ref.kind, ref.name)
            if target in invalid and target not in by_key:
                continue
            if target not in by_key:
                same_name = [k for k in by_key if k[1] == ref.name]
                hint = f" (a {same_name[0][0]} has that name)" if same_name else ""
                findings.append(
                    Finding(
                        "dangling-reference",
                        f"{_dotted(ref.path)}: {ref.kind} '{ref.name}' does not exist{hint}; define it or fix the name",
                        ref.location,
                        resource=item.ref,
                        field=_dotted(ref.path),
                    )
                )
                continue
            edges.setdefault(key, []).append(target)
    findings.extend(_cycles(by_key, edges))
    findings.extend(_check_columns(by_key))
    return findings


def _declared(by_key: dict[tuple[str, str], LoadedResource], name: str) -> Columns | None:
    """The column facts of Dataset ``name``, with the declared columns of the nearest
    Dataset up its derivedFrom chain that declares some (references are acyclic here)."""
    item = by_key.get(("Dataset", name))
    if item is None or item.columns is None:
        return None
    facts = parent = item.columns
    seen = {name}
    while parent.declared is None and parent.dataset is not None and parent.dataset not in seen:
        seen.add(parent.dataset)
        above = by_key.get(("Dataset", parent.dataset))
        parent = above.columns if above is not None and above.columns is not None else Columns()
    return Columns(facts.dataset, parent.declared, facts.target)


def _check_columns(by_key: dict[tuple[str, str], LoadedResource]) -> list[Finding]:
    """Every column a Model names is one its Dataset declares, and its target is no feature.

    A Dataset that declares no columns (and derives from none that does) is not checked:
    its columns are known only once its data is read, and the train step checks them then."""
    findings: list[Finding] = []
    for (kind, _), item in by_key.items():
        facts = item.columns
        if kind != "Model" or facts is None or facts.dataset is None:
            continue
        dataset = _declared(by_key, facts.dataset)
        if dataset is None:
            continue  # dangling: already reported
        target = facts.target or dataset.target

        def report(use: ColumnUse, message: str, item: Any = item) -> None:
            where = _dotted(use.path)
            findings.append(
                Finding("invalid-value", f"{where}: {message}", use.location, resource=item.ref, field=where)
            )

        if target is None and facts.dataset_at is not None:
            findings.append(
                Finding(
                    "missing-field",
                    f"spec.dataset: no target column: Dataset '{facts.dataset}' names none; set spec.target here "
                    "or on the Dataset",
                    facts.dataset_at,
                    resource=item.ref,
                    field="spec.dataset",
                )
            )
        for use in facts.uses:
            if use.role == "feature" and use.column == target and facts.target is None:
                report(use, f"'{use.column}' is the target of Dataset '{facts.dataset}'; remove it from the features")
            elif dataset.declared is not None and use.column not in dataset.declared:
                close = difflib.get_close_matches(use.column, dataset.declared, n=1, cutoff=0.6)
                hint = f"; did you mean '{close[0]}'?" if close else ""
                report(use, f"column '{use.column}' is not declared by Dataset '{facts.dataset}'{hint}")
    return findings


def _dotted(path: tuple[str | int, ...]) -> str:
    return "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path).lstrip(".")


def _cycles(
    by_key: dict[tuple[str, str], LoadedResource], edges: dict[tuple[str, str], list[tuple[str, str]]]
) -> list[Finding]:
    """One finding per cycle, found by depth-first search (iterative, any size)."""
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(by_key, white)
    findings: list[Finding] = []
    for start in sorted(by_key):
        if color[start] != white:
            continue
        stack: list[tuple[tuple[str, str], int]] = [(start, 0)]
        trail: list[tuple[str, str]] = [start]
        color[start] = grey
        while stack:
            node, index = stack[-1]
            targets = edges.get(node, [])
            if index >= len(targets):
                stack.pop()
                trail.pop()
                color[node] = black
                continue
            stack[-1] = (node, index + 1)
            target = targets[index]
            if color[target] == grey:
                cycle = [*trail[trail.index(target) :], target]
                item = by_key[cycle[0]]
                ref = next(r for r in item.edges if (r.kind, r.name) == cycle[1])
                findings.append(
                    Finding(
                        "reference-cycle",
                        "reference cycle: " + " -> ".join(f"{k}/{n}" for k, n in cycle),
                        ref.location,
                        resource=item.ref,
                        field=_dotted(ref.path),
                    )
                )
            elif color[target] == white:
                color[target] = grey
                stack.append((target, 0))
                trail.append(target)
    return findings
