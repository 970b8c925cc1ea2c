"""regorus, in-process: the default engine.

Called by :mod:`controller.engine.checks` (validate, audit, the reconcile loop),
the policy test runner and the Data API's engine process
(:mod:`controller.policy.worker`). Policies are parsed once, and rules that cannot
stand together are refused then (:mod:`controller.policy.conflicts`); each decision
only sets the input (as JSON text, when the caller has it). A regorus engine may
only be used (and dropped) by the thread that made it.
"""

from __future__ import annotations

import json
import re
import traceback
from typing import Any

import regorus

from controller.policy import conflicts
from controller.policy.engine import EngineError, clean_error
from controller.policy.sources import PolicyFile, PolicyLoadError, RuleInfo, check_nesting

DECISION_PACKAGE = "modelplane_internal_decision"
DECISION_RULE = f"data.{DECISION_PACKAGE}.decision"

_LOCATION = re.compile(r"-->\s*(?P<file>[^\n]+?):(?P<line>\d+):(?P<col>\d+)\s*\n(?P<body>.*)", re.S)


def _load_error(exc: BaseException, fallback_file: str) -> PolicyLoadError:
    text = clean_error(exc)
    match = _LOCATION.search(text)
    if not match:
        return PolicyLoadError(text, fallback_file, 1, 1)
    body = match.group("body")
    message = next((ln.split("error:", 1)[1].strip() for ln in body.splitlines() if "error:" in ln), body.strip())
    return PolicyLoadError(message, match.group("file"), int(match.group("line")), int(match.group("col")))


def _evaluation_error(exc: BaseException) -> EngineError:
    """An evaluation error on one line, at its place (``file:line:col: message``) when
    regorus gives one, instead of its multi-line diagnostic."""
    if _LOCATION.search(clean_error(exc)):
        return EngineError(str(_load_error(exc, "")))
    return EngineError(clean_error(exc))


def _decision_module(rules: list[RuleInfo]) -> str:
    by_package: dict[str, set[str]] = {}
    for r in rules:
        if r.is_finding or r.name == "exception":
            by_package.setdefault(r.package, set()).add(r.name)
    entries = []
    for package, names in sorted(by_package.items()):
        fields = ",\n".join(f'    "{n}": data.{package}.{n}' for n in sorted(names))
        entries.append(f'  "{package}": {{\n{fields}\n  }}')
    return f"package {DECISION_PACKAGE}\n\ndecision := {{\n" + ",\n".join(entries) + "\n}\n"


def _facts(files: list[PolicyFile], engine: regorus.Engine) -> list[conflicts.ModuleFacts]:
    """Each file's facts, in order: the library's from its index, the rest from the AST
    (of ``engine`` when nothing is indexed, else of the unindexed files alone: the
    library's AST is what the index spares)."""
    from controller.policy import index

    known = {f.path: found for f in files if (found := index.known(f)) is not None}
    if not known:
        parsed = conflicts.facts_of(json.loads(engine.get_ast_as_json()))
    else:
        rest = regorus.Engine()
        try:
            for policy in files:
                if policy.path not in known:
                    rest.add_policy(policy.path, policy.text)  # it parsed in the engine: it parses here
            parsed = conflicts.facts_of(json.loads(rest.get_ast_as_json())) if len(known) < len(files) else []
        finally:
            del rest  # dropped here, on its own thread (see sources.package_of)
    by_file = {m.file: m for m in parsed}
    return [known.get(f.path) or by_file[f.path] for f in files]


class EmbeddedEngine:
    name = "regorus"
    # A forked child may decide with its copy (same thread, no sockets or threads of its own):
    # :func:`controller.policy.evaluate.evaluate` forks deciders when asked for workers.
    forkable = True

    def __init__(self, files: list[PolicyFile], *, coverage: bool = False) -> None:
        for policy in files:
            check_nesting(policy)  # before regorus parses anything
        engine = regorus.Engine()
        try:
            if coverage:
                engine.set_enable_coverage(True)
            for policy in files:
                try:
                    engine.add_policy(policy.path, policy.text)
                except RuntimeError as exc:
                    raise _load_error(exc, policy.path) from None
            facts = _facts(files, engine)
            conflicts.check(facts)
            self._rules = conflicts.rules_of(facts)
            # One rule gathers every package's finding and exception rules, so a decision
            # sets the input once and evaluates one compiled rule (a query would be parsed
            # on every call, and ``data.<pkg>`` would also run ``test_*`` rules).
            engine.add_policy(f"<{DECISION_PACKAGE}>", _decision_module(self._rules))
        except BaseException as exc:
            # A regorus engine may only be dropped on the thread that made it. The error's
            # traceback would keep it alive in a cycle that the collector may break on any
            # thread: drop it here, now.
            traceback.clear_frames(exc.__traceback__)
            del engine
            raise
        self._engine = engine

    def rules(self) -> list[RuleInfo]:
        return list(self._rules)

    def set_data(self, data: dict[str, Any]) -> None:
        """Replace ``data.modelplane``."""
        self.load_data({"modelplane": data})

    def load_data(self, data: dict[str, Any]) -> None:
        """Replace the whole ``data`` document (policies stay)."""
        self.set_data_json(json.dumps(data))

    def set_data_json(self, text: str) -> None:
        """Replace the whole ``data`` document with ``text``, a JSON object (e.g.
        ``{"modelplane": ...}``), for callers that already hold it as JSON."""
        try:
            self._engine.clear_data()
            self._engine.add_data_json(text)
        except RuntimeError as exc:
            raise EngineError(clean_error(exc)) from None

    def decide(self, input_doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
        return self.decide_json(json.dumps(input_doc))

    def decide_json(self, input_text: str) -> dict[str, dict[str, Any]]:
        """:meth:`decide` for an input already encoded as JSON."""
        try:
            self._engine.set_input_json(input_text)
            value = json.loads(self._engine.eval_rule_as_json(DECISION_RULE))
        except RuntimeError as exc:
            raise EngineError(clean_error(exc)) from None
        return value if isinstance(value, dict) else {}

    def query(self, path: str, input_doc: Any) -> Any:
        """``data.<path>`` (``data`` itself for an empty path); None when undefined."""
        dotted = path.strip("/").replace("/", ".")
        return self._eval("data." + dotted if dotted else "data", input_doc)

    def _eval(self, query: str, input_doc: Any) -> Any:
        try:
            if input_doc is not None:
                self._engine.set_input(input_doc)
            # As JSON: sets come back as lists, as from OPA (and sets of arrays,
            # which Python cannot hold in a set, survive).
            result = json.loads(self._engine.eval_query_as_json(query))
        except RuntimeError as exc:
            raise _evaluation_error(exc) from None
        rows = result.get("result") or []
        if not rows:
            return None  # undefined
        return rows[0]["expressions"][0]["value"]

    def check_package(self, package: str) -> None:
        """Evaluate ``data.<package>`` once with no input; an error (rules that conflict
        only in their values, say) is raised as a :class:`PolicyLoadError` at its place."""
        try:
            self._engine.set_input_json("{}")
            self._engine.eval_query_as_json(f"data.{package}")
        except RuntimeError as exc:
            raise _load_error(exc, f"package {package}") from None

    def eval_rule(self, path: str) -> Any:
        """Evaluate one rule (used by ``policy test``); None when undefined."""
        try:
            return json.loads(self._engine.eval_rule_as_json(path))
        except RuntimeError as exc:
            raise EngineError(clean_error(exc)) from None

    def coverage(self) -> dict[str, Any]:
        return json.loads(self._engine.get_coverage_report_as_json())
