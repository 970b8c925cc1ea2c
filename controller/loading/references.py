"""Checks across resources: unique names, references that resolve, no cycles.

Called by :func:`controller.loading.loader.load` once every file is loaded. It
needs only each resource's kind, name and located reference edges, which every
loaded resource keeps whatever else the load dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.api.findings import Finding, Location

if TYPE_CHECKING:
    from controller.loading.loader import LoadedResource


@dataclass(frozen=True, slots=True)
class Edge:
    """One reference from a resource to another, and where it is written."""

    kind: str
    name: str
    path: tuple[str | int, ...]
    location: Location


def check_references(resources: list[LoadedResource]) -> list[Finding]:
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
