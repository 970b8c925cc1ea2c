"""The ``modelplane`` command: flags in, a call below, formatted output, an exit code.

Exit codes: 0 success, 1 findings (or stale files), 2 usage or I/O error.
No business logic lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from controller import __version__
from controller.output import FORMATTERS

if TYPE_CHECKING:
    from controller.api.findings import Report
    from controller.engine.checks import PolicySettings
    from controller.state.store import Store

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> int:
    print(f"modelplane: {message}", file=sys.stderr)
    return EXIT_USAGE


def _policy_settings(args: argparse.Namespace) -> PolicySettings | None:
    from controller.engine.checks import PolicySettings

    if getattr(args, "no_policy", False):
        return None
    log = Path(args.decision_log) if getattr(args, "decision_log", None) else None
    return PolicySettings(directory=args.policies, opa_url=args.opa_url, decision_log=log)


def _emit(report: Report, args: argparse.Namespace) -> int:
    report.fail_on_warn = args.fail_on_warn
    text = FORMATTERS[args.format](report)
    if getattr(args, "output", None):
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return report.exit_code


def _validate(args: argparse.Namespace) -> int:
    import gc

    from controller.engine.checks import judge
    from controller.loading import DEFAULT_PATHS, UsageError, load
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.triggers.git_source import context_for

    paths = args.paths or [p for p in DEFAULT_PATHS if Path(p).exists()]
    if not paths:
        return _fail(f"nothing to validate: none of {', '.join(DEFAULT_PATHS)} exists here")
    try:
        result = load(paths, max_file_bytes=args.max_file_bytes)
    except UsageError as exc:
        return _fail(str(exc))
    if not result.files:
        return _fail(f"no .yaml or .yml files under {', '.join(paths)}")
    gc.freeze()  # a short-lived process: keep the collector off the loaded resources
    try:
        report, _ = judge(result, _policy_settings(args), context_for())
    except PolicyLoadError as exc:
        return _fail(f"{exc} (use --no-policy to skip policies)")
    except EngineError as exc:
        return _fail(str(exc))
    return _emit(report, args)


def _audit(args: argparse.Namespace) -> int:
    if args.paths == ["verify"]:  # `modelplane audit verify`: check the audit log's hash chain
        return _audit_verify(args)
    from controller.engine.checks import judge
    from controller.loading import DEFAULT_PATHS, UsageError, load
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.triggers.git_source import GitError, context_for, load_revision

    paths = args.paths or list(DEFAULT_PATHS)
    settings = _policy_settings(args)
    assert settings is not None
    try:
        if args.revision:
            result, files = load_revision(args.revision, paths, args.policies)
        else:
            result, files = load([p for p in paths if Path(p).exists()] or paths), None
        report, _ = judge(result, settings, context_for(revision=args.revision), files)
    except (UsageError, GitError, PolicyLoadError, EngineError) as exc:
        return _fail(str(exc))
    code = _emit(report, args)
    print(f"decisions appended to {settings.decision_log}", file=sys.stderr)
    return code


def _open_store(args: argparse.Namespace) -> Store:
    from controller.state.store import Store

    return Store(Path(args.state_dir).resolve())


@contextmanager
def _store(args: argparse.Namespace) -> Iterator[Store]:
    store = _open_store(args)
    try:
        yield store
    finally:
        store.close()


def _reconcile(args: argparse.Namespace, do_apply: bool) -> int:
    import dataclasses
    import gc
    import os
    import shutil
    import tempfile

    from controller.engine.apply import summary as executor_summary
    from controller.engine.reconcile import reconcile
    from controller.loading import DEFAULT_PATHS, UsageError, load
    from controller.output import plan_format
    from controller.policy.engine import EngineError
    from controller.policy.sources import PolicyLoadError
    from controller.state.lock import LockHeld
    from controller.triggers.git_source import GitError, GitRepo, context_for

    store = _open_store(args)
    checkout: Path | None = None
    home = Path.cwd()
    try:
        context = context_for(revision=args.revision)
        if args.revision:  # work on the tree as committed, not the work tree
            checkout = Path(tempfile.mkdtemp(prefix="checkout-", dir=store.state_dir))
            GitRepo(".").export(args.revision, checkout)
            os.chdir(checkout)
        context = dataclasses.replace(context, approvals=store.all_approvals())
        paths = [p for p in DEFAULT_PATHS if Path(p).exists()]
        result = load(paths) if paths else None
        if result is None:
            return _fail(f"nothing to reconcile: none of {', '.join(DEFAULT_PATHS)} exists")
        gc.freeze()  # a short-lived process: keep the collector off the loaded resources
        progress = (lambda msg: print(msg, flush=True)) if do_apply else (lambda _msg: None)
        outcome = reconcile(
            result,
            root=Path("."),
            store=store,
            policy=_policy_settings(args),
            context=context,
            do_apply=do_apply,
            wait=getattr(args, "wait", False),
            progress=progress,
        )
    except (UsageError, GitError, PolicyLoadError, EngineError) as exc:
        return _fail(str(exc))
    except LockHeld as exc:
        return _fail(str(exc))
    finally:
        store.close()
        if checkout is not None:
            os.chdir(home)
            shutil.rmtree(checkout, ignore_errors=True)
    if outcome.plan is None:  # validation or policy stopped it
        sys.stdout.write(FORMATTERS["text"](outcome.report))
        return EXIT_FINDINGS
    if not do_apply:
        if outcome.report.errors or outcome.report.warnings:
            sys.stderr.write(FORMATTERS["text"](outcome.report))
        sys.stdout.write(plan_format.render(outcome.plan.to_dict(), args.format))
        return EXIT_OK
    counts = executor_summary(outcome.executed)
    if not outcome.executed:
        print("Nothing to do: every resource is up to date.")
    else:
        print(
            f"Applied {counts['succeeded']} action(s), {counts['failed']} failed, "
            f"{counts['skipped']} skipped. See 'modelplane status'."
        )
    return EXIT_FINDINGS if counts["failed"] else EXIT_OK


def _plan(args: argparse.Namespace) -> int:
    return _reconcile(args, do_apply=False)


def _apply(args: argparse.Namespace) -> int:
    return _reconcile(args, do_apply=True)


def _approve(args: argparse.Namespace) -> int:
    with _store(args) as store:
        try:
            version = store.resolve_version(args.model, args.version)
            new = store.approve(args.model, version, args.approver)
            count = len(store.approvals(args.model, version))
        except KeyError as exc:
            return _fail(str(exc.args[0]))
    if new:
        print(
            f"{args.approver} approved {args.model} v{version} ({count} approval(s)); "
            "the next apply promotes it once enough are in."
        )
    else:
        print(f"{args.approver} had already approved {args.model} v{version}; still {count} approval(s).")
    return EXIT_OK


def _status(args: argparse.Namespace) -> int:
    with _store(args) as store:
        statuses = store.statuses()
    if args.format == "json":
        print(json.dumps({f"{k}/{n}": v for (k, n), v in sorted(statuses.items())}, indent=2))
        return EXIT_OK
    if not statuses:
        print("No status yet: run 'modelplane apply'.")
        return EXIT_OK
    for (kind, name), status in sorted(statuses.items()):
        conditions = {c["type"]: c for c in status["conditions"]}
        ready = conditions["Ready"]
        state = (
            "Stalled"
            if conditions["Stalled"]["status"] == "True"
            else (
                "Reconciling"
                if conditions["Reconciling"]["status"] == "True"
                else ("Ready" if ready["status"] == "True" else "NotReady")
            )
        )
        applied = (status.get("lastAppliedRevision") or "-")[:12]
        print(f"{kind}/{name}: {state} ({ready['reason']}) {ready['message']} [applied {applied}]")
    return EXIT_OK


def _runs(args: argparse.Namespace) -> int:
    with _store(args) as store:
        return _runs_command(store, args)


def _runs_command(store: Store, args: argparse.Namespace) -> int:
    if args.runs_command == "list":
        runs = store.runs(args.model)
        for r in runs:
            metric = ", ".join(f"{k}={v:.4f}" for k, v in sorted(r["metrics"].items())[:3])
            print(
                f"{r['id']}  {r['model']:28s} {r['status']:11s} {r['started_at'][:19]}  "
                f"data {r['dataset_hash'][7:15]}  {metric}"
            )
        if not runs:
            print("No runs yet.")
        return EXIT_OK
    ids = [args.run] if args.runs_command == "show" else [args.a, args.b]
    found = [store.run(i) for i in ids]
    missing = [i for i, r in zip(ids, found, strict=True) if r is None]
    if missing:
        return _fail(f"no run (or more than one) matches {', '.join(missing)}")
    if args.runs_command == "show":
        print(json.dumps(found[0], indent=2))
        return EXIT_OK
    a, b = found
    rows = [
        ("model", a["model"], b["model"]),
        ("status", a["status"], b["status"]),
        ("revision", a["revision"], b["revision"]),
        ("dataset", a["dataset_hash"][:19], b["dataset_hash"][:19]),
    ]
    for key in sorted(set(a["params"]) | set(b["params"])):
        rows.append((f"param {key}", a["params"].get(key), b["params"].get(key)))
    for key in sorted(set(a["metrics"]) | set(b["metrics"])):
        va, vb = a["metrics"].get(key), b["metrics"].get(key)
        delta = f"{vb - va:+.4f}" if isinstance(va, float) and isinstance(vb, float) else ""
        rows.append((f"metric {key}", va, f"{vb} {delta}".strip()))
    rows.append(("duration s", a["duration_s"], b["duration_s"]))
    rows.append(("trials", len(a["trials"]), len(b["trials"])))
    print(f"{'':24s} {a['id']:>24s} {b['id']:>24s}")
    for label, va, vb in rows:
        print(f"{label:24s} {va!s:>24s} {vb!s:>24s}")
    return EXIT_OK


def _registry(args: argparse.Namespace) -> int:
    with _store(args) as store:
        try:
            return _registry_command(store, args)
        except KeyError as exc:
            return _fail(str(exc.args[0]))


def _registry_command(store: Store, args: argparse.Namespace) -> int:
    if args.registry_command == "history":
        history = store.history(args.model)
        for p in history:
            print(f"{p.at[:19]}  v{p.version}  {p.from_stage} -> {p.to_stage}  by {p.actor}: {p.reason}")
        if not history:
            print(f"No promotions for {args.model}.")
        return EXIT_OK
    if args.registry_command == "alias":
        version = store.resolve_version(args.model, args.version)
        store.set_alias(args.model, args.alias, version, actor=args.actor)
        print(f"{args.model}@{args.alias} -> v{version}")
        return EXIT_OK
    models = [args.model] if args.model else sorted({r["model"] for r in store.runs()})
    for model in models:
        aliases = store.aliases(model)
        for v in store.versions(model):
            approvals = store.approvals(model, v.version)
            named = [a for a, n in aliases.items() if n == v.version]
            card = store.card(model, v.version)
            print(
                f"{model} v{v.version}: {v.stage}  run {v.run_id}  artifact {v.artifact_digest[:19]}  "
                f"approvals {len(approvals)}"
                + (f"  aliases {','.join(named)}" if named else "")
                + (f"  card {card['html']}" if card else "")
            )
    return EXIT_OK


def _audit_verify(args: argparse.Namespace) -> int:
    with _store(args) as store:
        result = store.verify_audit()
    if result.ok:
        print(f"audit log intact: {result.checked} records, hash chain verified")
        return EXIT_OK
    print(f"audit log BROKEN at record {result.seq}: {result.problem} ({result.checked} records verified before it)")
    return EXIT_FINDINGS


def _policy_test(args: argparse.Namespace) -> int:
    from controller.policy.sources import PolicyLoadError, discover
    from controller.policy.testing import run_tests

    try:
        run = run_tests(discover(args.directory), run=args.run, coverage=not args.no_coverage)
    except PolicyLoadError as exc:
        return _fail(str(exc))
    if args.format == "json":
        print(
            json.dumps(
                {
                    "results": [r.__dict__ for r in run.results],
                    "passed": len(run.results) - len(run.failed),
                    "failed": len(run.failed),
                    "coverage": run.coverage_percent(),
                },
                indent=2,
            )
        )
        return run.exit_code
    for r in run.results:
        if args.verbose or not r.passed:
            status = "PASS" if r.passed else "FAIL"
            detail = f" ({r.error})" if r.error else ""
            print(f"{r.file}:{r.line}: {status}: data.{r.package}.{r.name} ({r.duration_ms:.1f}ms){detail}")
    if not run.results:
        print("no test_* rules found", file=sys.stderr)
    coverage = run.coverage_percent()
    print("-" * 60)
    print(
        f"PASS: {len(run.results) - len(run.failed)}/{len(run.results)}"
        + (f"  FAIL: {len(run.failed)}" if run.failed else "")
    )
    if coverage is not None:
        print(f"coverage: {coverage:.1f}% of policy lines")
    return run.exit_code


def _policy_serve(args: argparse.Namespace) -> int:
    from controller.loading import DEFAULT_PATHS, load
    from controller.policy.data_api import DataApi, make_server
    from controller.policy.evaluate import data_for
    from controller.policy.sources import PolicyLoadError, discover
    from controller.triggers.git_source import context_for

    try:
        files = discover(args.policies)
        paths = args.paths or [p for p in DEFAULT_PATHS if Path(p).exists()]
        result = load(paths) if paths else None
        data = {"modelplane": data_for(result.resources if result else [], context_for())}
        api = DataApi(files, data)
        server = make_server(api, args.host, args.port)
    except (PolicyLoadError, OSError) as exc:
        return _fail(str(exc))
    host, port = server.server_address[:2]
    print(f"serving OPA Data API on http://{host}:{port} ({len(files)} policy files)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return EXIT_OK


def _schemas(args: argparse.Namespace) -> int:
    from controller.api import generate

    schemas_dir, reference = Path(args.schemas_dir), Path(args.reference)
    if args.action == "check":
        stale = generate.stale(schemas_dir, reference)
        for path in stale:
            print(f"{path}: stale; run 'modelplane schemas generate'", file=sys.stderr)
        if not stale:
            print("schemas and spec reference are up to date")
        return EXIT_FINDINGS if stale else EXIT_OK
    changed = generate.write(schemas_dir, reference)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print("schemas and spec reference are up to date")
    return EXIT_OK


def _policy_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--policies", default="policies", metavar="DIR", help="Rego policies (default: policies/)")
    parser.add_argument("--opa-url", metavar="URL", help="decide with an OPA server instead of the embedded engine")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelplane",
        description="A declarative GitOps control plane for machine learning.",
    )
    parser.add_argument("--version", action="version", version=f"modelplane {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    validate = commands.add_parser(
        "validate",
        help="check resources against their schemas and each other",
        description="Check YAML resources: syntax, schema, names and references, then the Rego policies. "
        "Exit 0 when valid, 1 on findings, 2 on usage or I/O errors.",
    )
    validate.add_argument(
        "paths", nargs="*", metavar="PATH", help="files or directories ('-' for stdin; default: specs/ and chaos/)"
    )
    validate.add_argument("--format", "-o", choices=sorted(FORMATTERS), default="text", help="output format")
    validate.add_argument("--fail-on-warn", action="store_true", help="exit 1 on warnings too")
    validate.add_argument(
        "--max-file-bytes", type=int, default=1 << 20, metavar="N", help="refuse files larger than N bytes"
    )
    validate.add_argument("--no-policy", action="store_true", help="check schemas and references only")
    _policy_flags(validate)
    validate.add_argument("--decision-log", metavar="FILE", help="append each policy decision to FILE (JSON lines)")
    validate.set_defaults(func=_validate)

    audit = commands.add_parser(
        "audit",
        help="evaluate every policy over the repo (at a revision); 'audit verify' checks the audit log",
        description="Evaluate every policy over the resources, at a git revision or in the work tree, "
        "write a report and append every decision to the decision log. "
        "'modelplane audit verify' instead checks the audit log's hash chain (exit 1 when broken).",
    )
    audit.add_argument("paths", nargs="*", metavar="PATH", help="resource paths (default: specs/ and chaos/)")
    audit.add_argument("--revision", metavar="REV", help="a git revision (default: the work tree)")
    audit.add_argument("--format", "-o", choices=sorted(FORMATTERS), default="text", help="report format")
    audit.add_argument("--output", metavar="FILE", help="write the report to FILE instead of stdout")
    audit.add_argument("--fail-on-warn", action="store_true", help="exit 1 on warnings too")
    audit.add_argument(
        "--decision-log", metavar="FILE", default=".modelplane/decisions.jsonl", help="decision log (JSON lines)"
    )
    _policy_flags(audit)
    audit.set_defaults(func=_audit)

    audit.add_argument("--state-dir", default=".modelplane", metavar="DIR", help="state directory (for 'audit verify')")

    def stateful(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
        parser.add_argument("--state-dir", default=".modelplane", metavar="DIR", help="state directory")
        return parser

    for name, func, text in (
        ("plan", _plan, "show what apply would do, and why"),
        ("apply", _apply, "run the plan: data gate, train, metric gate, promote, model cards"),
    ):
        cmd = stateful(commands.add_parser(name, help=text, description=text[0].upper() + text[1:] + "."))
        cmd.add_argument("--revision", metavar="REV", help="a git revision (default: the work tree)")
        _policy_flags(cmd)
        cmd.add_argument("--no-policy", action="store_true", help="skip the policies")
        if name == "plan":
            cmd.add_argument("--format", "-o", choices=["text", "markdown", "json"], default="text")
        else:
            cmd.add_argument("--wait", action="store_true", help="wait for another apply instead of refusing")
        cmd.set_defaults(func=func)

    approve = stateful(commands.add_parser("approve", help="approve a model version for Production"))
    approve.add_argument("model")
    approve.add_argument("version", help="a version number, or a stage (e.g. Staging) for the version in it")
    approve.add_argument("--as", dest="approver", required=True, metavar="NAME", help="who approves")
    approve.set_defaults(func=_approve)

    status = stateful(commands.add_parser("status", help="each resource's conditions"))
    status.add_argument("--format", "-o", choices=["text", "json"], default="text")
    status.set_defaults(func=_status)

    runs = stateful(commands.add_parser("runs", help="training runs: list, show, compare"))
    runs_commands = runs.add_subparsers(dest="runs_command", metavar="COMMAND", required=True)
    runs_list = stateful(runs_commands.add_parser("list", help="every run"))
    runs_list.add_argument("--model", metavar="MODEL")
    stateful(runs_commands.add_parser("show", help="one run in full")).add_argument("run", metavar="RUN_ID")
    compare = stateful(runs_commands.add_parser("compare", help="two runs side by side"))
    compare.add_argument("a", metavar="RUN_A")
    compare.add_argument("b", metavar="RUN_B")
    runs.set_defaults(func=_runs)

    registry = stateful(commands.add_parser("registry", help="model versions and their promotion history"))
    registry_commands = registry.add_subparsers(dest="registry_command", metavar="COMMAND", required=True)
    stateful(registry_commands.add_parser("list", help="versions, stages, cards")).add_argument("model", nargs="?")
    stateful(registry_commands.add_parser("history", help="every stage transition")).add_argument("model")
    alias = stateful(registry_commands.add_parser("alias", help="point a named alias (e.g. champion) at a version"))
    alias.add_argument("model")
    alias.add_argument("alias")
    alias.add_argument("version", help="a version number, a stage or another alias")
    alias.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who moves the alias")
    registry.set_defaults(func=_registry)

    policy = commands.add_parser("policy", help="test and serve Rego policies")
    policy_commands = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    test = policy_commands.add_parser(
        "test", help="run test_* rules, like 'opa test'", description="Run every test_* rule; exit 1 on a failure."
    )
    test.add_argument("directory", nargs="?", default="policies", metavar="DIR")
    test.add_argument("--run", "-r", metavar="PATTERN", help="only tests whose 'package.name' contains PATTERN")
    test.add_argument("--format", choices=["text", "json"], default="text")
    test.add_argument("--verbose", "-v", action="store_true", help="list passing tests too")
    test.add_argument("--no-coverage", action="store_true", help="skip the coverage report")
    test.set_defaults(func=_policy_test)
    serve = policy_commands.add_parser(
        "serve",
        help="serve OPA's Data API from the embedded engine",
        description="Serve POST /v1/data/{path}, GET /health and the policy API on HOST:PORT, "
        "with the resources under PATH as data.modelplane.",
    )
    serve.add_argument(
        "paths", nargs="*", metavar="PATH", help="resources for data.modelplane (default: specs/ and chaos/)"
    )
    serve.add_argument("--policies", default="policies", metavar="DIR")
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8181)
    serve.set_defaults(func=_policy_serve)

    schemas = commands.add_parser(
        "schemas",
        help="generate or check the JSON Schemas and the spec reference",
        description="The JSON Schemas in schemas/ and docs/spec-reference.md are generated from the models.",
    )
    schemas.add_argument("action", choices=["generate", "check"])
    schemas.add_argument("--schemas-dir", default="schemas", metavar="DIR")
    schemas.add_argument("--reference", default="docs/spec-reference.md", metavar="FILE")
    schemas.set_defaults(func=_schemas)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return args.func(args)
    except BrokenPipeError:  # e.g. `modelplane validate | head`
        return EXIT_OK
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
