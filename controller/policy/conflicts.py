"""Rules that cannot stand together, found when policies load, not when they are queried.

Called by :class:`controller.policy.embedded.EmbeddedEngine` with the facts of every
loaded module (:class:`ModuleFacts`, read from regorus' AST, or for the built-in
library from its generated index). regorus accepts such policies and fails (or answers
arbitrarily) only when the rule is evaluated; OPA refuses them when it compiles.
Refused here, as OPA does, at the location of the later definition:

- two ``default`` rules for one rule;
- one rule defined as different kinds (a single value, a set with ``contains``, an
  object with ``[key]``, a function of some number of arguments);
- a rule whose path another rule or a package extends (``p := 1`` beside
  ``p.q := 2``, or rule ``y`` of package ``x`` beside ``package x.y``).

Conflicts that depend on values (two complete rules producing different values) are
found only by evaluating; the Data API evaluates what is written before serving it
(:mod:`controller.policy.worker`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controller.policy.sources import PolicyLoadError, RuleInfo, rules_from_ast

_LITERALS = ("String", "RawString")


@dataclass(frozen=True)
class _Definition:
    path: str  # the rule's full path below data: package.rule
    kind: str  # value, set, object, function/N
    default: bool
    file: str
    line: int
    column: int
    order: int  # definitions are numbered in load order

    def where(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def _span(node: dict[str, Any]) -> tuple[int, int]:
    span = node.get("span") or {}
    return int(span.get("line", 1)), int(span.get("col", 1))


def _path(ref: Any) -> tuple[list[str], bool] | None:
    """The names of a rule head's reference, and whether it ends in a variable key
    (``o[k]``, a partial object); None for a reference this check does not follow."""
    if not isinstance(ref, dict) or len(ref) != 1:
        return None
    ((variant, node),) = ref.items()
    if variant == "Var":
        return [node["value"]], False
    if variant == "RefDot":
        base = _path(node["refr"])
        field = node["field"]
        name = field[1] if isinstance(field, list) else field
        return (base[0] + [name], False) if base and not base[1] else None
    if variant == "RefBrack":
        base = _path(node["refr"])
        if base is None or base[1]:
            return None
        index = node.get("index") or {}
        literal = next((index[k] for k in _LITERALS if k in index), None)
        if literal is not None:
            return base[0] + [str(literal.get("value"))], False
        return base[0], True
    return None


Fact = tuple[str, str, bool, int, int]  # (path below the package, kind, default, line, column)


def _definition(rule: dict[str, Any]) -> Fact | None:
    ((variant, body),) = rule.items()
    if variant == "Default":
        found = _path(body.get("refr"))
        kind = f"function/{len(body['args'])}" if body.get("args") else "value"
        head = body
        default = True
    elif variant == "Spec":
        ((head_kind, head),) = body["head"].items()
        found = _path(head.get("refr"))
        if head_kind == "Func":
            kind = f"function/{len(head.get('args') or [])}"
        elif head_kind == "Set":
            kind = "set"
        else:
            kind = "object" if found and found[1] else "value"
        default = False
    else:
        return None
    if found is None:
        return None
    line, column = _span(head)
    return ".".join(found[0]), kind, default, line, column


@dataclass(frozen=True)
class ModuleFacts:
    """What the checks need of one module: its package, its rules (name, line) and
    every rule definition (see :data:`Fact`)."""

    file: str
    package: str
    rules: tuple[tuple[str, int], ...]
    definitions: tuple[Fact, ...]
    calls: tuple[tuple[str, int, int], ...] = ()  # functions called by their data path: (path, line, column)

    def to_json(self) -> dict[str, Any]:
        return {"package": self.package, "rules": self.rules, "definitions": self.definitions, "calls": self.calls}

    @classmethod
    def from_json(cls, file: str, value: dict[str, Any]) -> ModuleFacts:
        return cls(
            file,
            value["package"],
            tuple((name, line) for name, line in value["rules"]),
            tuple(
                (path, kind, bool(default), line, column) for path, kind, default, line, column in value["definitions"]
            ),
            tuple((path, line, column) for path, line, column in value.get("calls", [])),
        )


def facts_of(modules: list[dict[str, Any]]) -> list[ModuleFacts]:
    """The facts of each module of regorus' AST (parsed), in order."""
    out = []
    for module in modules:
        declared = _path(module["ast"]["package"]["refr"])
        rules = [(r.name, r.line) for r in rules_from_ast([module])]
        definitions = [d for rule in module["ast"]["rules"] if (d := _definition(rule)) is not None]
        package = ".".join(declared[0]) if declared else ""
        calls = _calls(module)
        out.append(ModuleFacts(module["source"]["file"], package, tuple(rules), tuple(definitions), tuple(calls)))
    return out


def _aliases(module: dict[str, Any]) -> dict[str, str]:
    """Import aliases that name a place in ``data``: alias -> path below data ("" for data itself)."""
    source = module["source"].get("contents") or ""
    out: dict[str, str] = {}
    for imported in module["ast"].get("imports") or []:
        found = _path(imported.get("refr"))
        if found is None or found[1] or found[0][0] != "data":
            continue
        span = imported.get("as")
        alias = source[span["start"] : span["end"]] if isinstance(span, dict) else found[0][-1]
        out[alias] = ".".join(found[0][1:])
    return out


def _calls(module: dict[str, Any]) -> list[tuple[str, int, int]]:
    """Every call of a function named by its place in data (``data.a.f(x)``, or through an
    import: ``a.f(x)`` after ``import data.a``), as (path below data, line, column)."""
    aliases = _aliases(module)
    out: list[tuple[str, int, int]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            call = node.get("Call")
            if isinstance(call, dict):
                fcn = call.get("fcn") or {}
                found = _path(fcn)
                if found is not None and not found[1] and len(found[0]) > 1:
                    head, rest = found[0][0], found[0][1:]
                    base = "" if head == "data" else aliases.get(head)
                    if base is not None:
                        line, column = _span(next(iter(fcn.values()), {}))  # the reference's own span
                        out.append((".".join(p for p in (base, *rest) if p), line, column))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(module["ast"]["rules"])
    return out


def rules_of(facts: list[ModuleFacts]) -> list[RuleInfo]:
    """Every rule the modules define, once per package and name (as regorus lists them)."""
    out: dict[tuple[str, str], RuleInfo] = {}
    for module in facts:
        for name, line in module.rules:
            out.setdefault((module.package, name), RuleInfo(module.package, name, module.file, line))
    return sorted(out.values(), key=lambda r: (r.package, r.file, r.line))


def _refuse(later: _Definition, message: str) -> PolicyLoadError:
    return PolicyLoadError(message, later.file, later.line, later.column)


def check(modules: list[ModuleFacts]) -> None:
    """Raise :class:`PolicyLoadError` at the first definition that conflicts with one
    before it; ``modules`` in load order."""
    by_path: dict[str, _Definition] = {}
    defaults: dict[str, _Definition] = {}
    packages: dict[str, str] = {}  # package path -> the file declaring it first
    definitions: list[_Definition] = []
    for module in modules:
        packages.setdefault(module.package, module.file)
        for path, kind, default, line, column in module.definitions:
            full = ".".join(p for p in (module.package, path) if p)
            definitions.append(_Definition(full, kind, default, module.file, line, column, len(definitions)))
    for d in definitions:
        if d.default:
            first = defaults.setdefault(d.path, d)
            if first is not d:
                raise _refuse(d, f"multiple default rules for data.{d.path}: another is at {first.where()}")
        first = by_path.setdefault(d.path, d)
        if first.kind != d.kind:
            raise _refuse(
                d,
                f"conflicting rules for data.{d.path}: defined as {_kind(d.kind)} here and as "
                f"{_kind(first.kind)} at {first.where()}",
            )
    functions = {d.path for d in definitions if d.kind.startswith("function/")}
    for module in modules:
        for path, line, column in module.calls:
            if path not in functions:
                raise PolicyLoadError(
                    f"calls data.{path}, which no policy defines as a function", module.file, line, column
                )
    # Sorted, the paths extending a path follow it at once ('.' sorts before any
    # character of a name).
    paths = sorted(by_path)
    for at, path in enumerate(paths):
        outer = by_path[path]
        if outer.kind == "object":
            continue  # o[k] := v builds an object; other rules may add keys to it
        inner = paths[at + 1] if at + 1 < len(paths) and paths[at + 1].startswith(path + ".") else None
        if inner is not None:
            later = max(outer, by_path[inner], key=lambda d: d.order)
            raise _refuse(
                later, f"rule data.{path} ({outer.where()}) conflicts with rule data.{inner} ({by_path[inner].where()})"
            )
        package = next((p for p in packages if p == path or p.startswith(path + ".")), "")
        if package:
            raise _refuse(outer, f"rule data.{path} conflicts with package {package} (declared in {packages[package]})")


def _kind(kind: str) -> str:
    if kind.startswith("function/"):
        return f"a function of {kind.split('/', 1)[1]} argument(s)"
    return {"value": "a single value", "set": "a set (contains)", "object": "an object ([key] := value)"}[kind]
