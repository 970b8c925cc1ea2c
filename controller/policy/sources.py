"""Rego files of a policy set, and what they define.

Called by the engines (to load policies) and by the test runner (to find
``test_*`` rules). A policy set is a list of sources: directories (or single
``.rego`` files) of the platform repo, and ``builtin``, the library that ships
with modelplane (``controller/policy/library``), so a platform repo uses it by
reference instead of copying it. Loading fails loudly: no policies is an error,
not a pass, and a repo file that redefines a package of the library is refused
(Rego would merge the two silently).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_DIR = "policies"
BUILTIN = "builtin"  # the library shipped with modelplane; a directory of that name is ./builtin
LIBRARY = Path(__file__).resolve().parent / "library"
_PACKAGE = re.compile(r"^package\s+([A-Za-z_][\w.]*)", re.M)  # the library's own files only
_PACKAGE_LINE = re.compile(r"^[ \t]*package\b", re.M)
FINDING_PREFIXES = ("deny", "warn", "violation")


class PolicyLoadError(Exception):
    """A policy cannot be loaded: a syntax error (with file and line) or no policies at all."""

    def __init__(self, message: str, file: str | None = None, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.file = file
        self.line = line
        self.column = column

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}: " if self.file and self.line else ""
        return where + self.message


@dataclass(frozen=True)
class PolicyFile:
    path: str  # as given, relative to the repo when possible
    text: str

    @property
    def is_test(self) -> bool:
        return self.path.endswith("_test.rego")


@dataclass(frozen=True)
class RuleInfo:
    package: str  # e.g. "models"
    name: str  # e.g. "deny_medical_min_auc"
    file: str
    line: int

    @property
    def is_test(self) -> bool:
        return self.name.startswith("test_")

    @property
    def is_finding(self) -> bool:
        return self.name.split("_", 1)[0] in FINDING_PREFIXES

    @property
    def rule_id(self) -> str:
        """Id used in findings and waivers: ``<package>.<suffix>`` (``models.deny`` for a bare rule)."""
        _, _, suffix = self.name.partition("_")
        return f"{self.package}.{suffix or self.name}"


def default_sources(root: str | Path = ".") -> list[str]:
    """The policy set when none is configured: the built-in library, and the repo's
    own ``policies/`` directory when it has one."""
    return [BUILTIN, DEFAULT_DIR] if (Path(root) / DEFAULT_DIR).is_dir() else [BUILTIN]


def library() -> list[PolicyFile]:
    """The built-in library, named ``builtin/<file>.rego`` wherever it is installed."""
    return [PolicyFile(f"{BUILTIN}/{p.name}", p.read_text(encoding="utf-8")) for p in sorted(LIBRARY.glob("*.rego"))]


# regorus takes time doubling with each level of nested brackets to parse a term
# (0.3 s at 14 levels, 30 s at 20): deeper nesting is refused before it is parsed. The
# library's deepest is 7 (test inputs). The cost of a file, the sum of 2**depth over its
# outermost bracket groups, is bounded too (many deep groups add up).
MAX_NESTING = 12
MAX_NESTING_COST = 1 << 16
_TOKENS = re.compile(r'#[^\n]*|"(?:\\.|[^"\\\n])*"|`[^`]*`|[\[\]{}]')


def check_nesting(policy: PolicyFile) -> None:
    """Raise :class:`PolicyLoadError` when ``policy`` nests brackets (``[`` and ``{``,
    outside strings and comments) deeper than :data:`MAX_NESTING`, or its nesting would
    cost more than :data:`MAX_NESTING_COST` to parse (the sum, over every group, of
    2 ** the depth of brackets inside it: many deep groups side by side add up): never
    hand regorus such a text."""
    text = policy.text
    opened: list[int] = []  # for each open group: the deepest level reached inside it
    cost = 0
    for match in _TOKENS.finditer(text):
        token = match.group()
        if token in ("[", "{"):
            opened.append(len(opened) + 1)
            if len(opened) > MAX_NESTING:
                line = 1 + text.count("\n", 0, match.start())
                column = match.start() - text.rfind("\n", 0, match.start())
                raise PolicyLoadError(
                    f"brackets nested more than {MAX_NESTING} deep: the policy engine's parsing time doubles "
                    "with each level; name the inner values as rules of their own",
                    policy.path,
                    line,
                    column,
                )
        elif token in ("]", "}") and opened:
            depth = len(opened)
            deepest = opened.pop()
            cost += 1 << (deepest - depth + 1)
            if opened:
                opened[-1] = max(opened[-1], deepest)
    if cost > MAX_NESTING_COST:
        raise PolicyLoadError(
            f"too many deeply nested brackets to parse in time (cost {cost}, at most {MAX_NESTING_COST}): "
            "split the file, or name nested values as rules of their own",
            policy.path,
            1,
            1,
        )


def package_of(policy: PolicyFile) -> tuple[str, int] | None:
    """The package a file declares, as Rego reads it (regorus parses the file: an
    indented ``package`` line or a path with string keys, ``package a["b"]``, is read
    right), and the line it declares it on; None for a file that does not parse
    (loading it reports where)."""
    import regorus

    check_nesting(policy)  # before regorus parses it
    # A regorus engine may only be dropped on the thread that made it: it is never left
    # in a frame that an error's traceback (collected later, on any thread) could hold.
    engine = regorus.Engine()
    try:
        declared = engine.add_policy(policy.path, policy.text)
    except RuntimeError:
        return None
    finally:
        del engine
    match = _PACKAGE_LINE.search(policy.text)
    return str(declared).removeprefix("data."), 1 + policy.text.count("\n", 0, match.start()) if match else 1


DATA_NAMESPACE = "modelplane"  # data.modelplane: the resources and context modelplane writes
_PLAIN_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*\Z")


def package_problem(package: str) -> str | None:
    """Why a policy of the repo (or written over HTTP) may not declare ``package``, if so:
    a key that is not a Rego identifier (``team["ml-ops"]``: findings and waivers name
    rules as ``<package>.<rule>``), or ``modelplane`` or a package inside it, where rules
    would add to (and could contradict) the resources and context modelplane writes."""
    if not _PLAIN_PACKAGE.match(package):
        return f"package {package} has a key that is not a Rego identifier: use a dotted name of identifiers"
    if package == DATA_NAMESPACE or package.startswith(DATA_NAMESPACE + "."):
        return (
            f"package {package} is inside data.{DATA_NAMESPACE}, which holds the resources and context modelplane "
            f"writes for the policies: a policy may not add to it; use a package of your own"
        )
    return None


def in_library(package: str, library: set[str]) -> bool:
    """Whether ``package`` is one of the library's packages, or inside one's namespace."""
    return package in library or package.split(".")[0] in library


def library_packages() -> set[str]:
    """The built-in library's packages (its files are ours, each with a plain ``package`` line)."""
    return {m.group(1) for f in library() if (m := _PACKAGE.search(f.text))}


def _directory(directory: str | Path) -> list[PolicyFile]:
    root = Path(directory)
    if not root.exists():
        raise PolicyLoadError(f"policy directory '{directory}' does not exist")
    from controller.loading.loader import leaves_repo

    paths = [root] if root.is_file() else sorted(p for p in root.rglob("*.rego") if p.is_file())
    for path in paths:
        if (target := leaves_repo(str(path))) is not None:
            raise PolicyLoadError(
                f"a symbolic link to {target!r}, outside the repo: policies must live in the repo", str(path), 1, 1
            )
    return [PolicyFile(str(p), p.read_text(encoding="utf-8")) for p in paths]


def combine(parts: Sequence[tuple[str, list[PolicyFile]]]) -> list[PolicyFile]:
    """The files of every source, in order, refusing an empty set and a repo file
    that redefines a package of the built-in library."""
    builtin = library_packages() if any(name == BUILTIN for name, _ in parts) else set()
    out: list[PolicyFile] = []
    for name, files in parts:
        if name != BUILTIN:
            for f in files:
                found = package_of(f)
                if found and (problem := package_problem(found[0])):
                    raise PolicyLoadError(problem, f.path, found[1], 1)
                if found and in_library(found[0], builtin):
                    package, line = found
                    raise PolicyLoadError(
                        f"package {package} is the built-in library's (or inside its namespace); rename your package "
                        f"(e.g. platform_{package.replace('.', '_')}), or leave 'builtin' out of the policy set "
                        "to use your own copy instead",
                        f.path,
                        line,
                        1,
                    )
        out.extend(files)
    if not [f for f in out if not f.is_test]:
        named = ", ".join(f"'{name}'" for name, _ in parts) or "no source"
        raise PolicyLoadError(f"no policies found in {named} (expected *.rego files)")
    return out


def discover(sources: str | Path | Sequence[str | Path]) -> list[PolicyFile]:
    """The policy files of one source or a list of them (``builtin`` or a path)."""
    chosen = [sources] if isinstance(sources, str | Path) else list(sources)
    return combine([(str(s), library() if str(s) == BUILTIN else _directory(s)) for s in chosen])


def _dotted(ref: Any) -> str | None:
    """Flatten a Rego AST reference (``Var`` or ``RefDot`` chain) to ``a.b.c``."""
    if not isinstance(ref, dict):
        return None
    if "Var" in ref:
        return ref["Var"]["value"]
    if "RefDot" in ref:
        base = _dotted(ref["RefDot"]["refr"])
        field = ref["RefDot"]["field"]
        name = field[1] if isinstance(field, list) else field
        return f"{base}.{name}" if base else None
    if "RefBrack" in ref:  # a["b"]: a string key reads as a.b
        base = _dotted(ref["RefBrack"]["refr"])
        index = ref["RefBrack"].get("index") or {}
        key = (index.get("String") or index.get("RawString") or {}).get("value")
        return f"{base}.{key}" if base and isinstance(key, str) else None
    return None


def _head_ref(node: Any) -> tuple[str, int] | None:
    """The name and line of a rule head, wherever the AST variant keeps it."""
    if isinstance(node, dict):
        if "refr" in node and "span" in node:
            name = _dotted(node["refr"])
            if name:
                return name, node["span"]["line"]
        for value in node.values():
            found = _head_ref(value)
            if found:
                return found
    return None


def rules_from_ast(modules: list[dict[str, Any]]) -> list[RuleInfo]:
    """Every rule defined by the loaded policies, from regorus' AST (parsed)."""
    out: dict[tuple[str, str], RuleInfo] = {}
    for module in modules:
        package = _dotted(module["ast"]["package"]["refr"]) or ""
        file = module["source"]["file"]
        for rule in module["ast"]["rules"]:
            kind, body = next(iter(rule.items()))
            head = body.get("head") if kind == "Spec" else body
            found = _head_ref(head)
            if found:
                name, line = found
                out.setdefault((package, name), RuleInfo(package, name, file, line))
    return sorted(out.values(), key=lambda r: (r.package, r.file, r.line))
