"""The ``modelplane`` command: flags in, a call below, formatted output, an exit code.

Exit codes: 0 success, 1 findings (or stale files), 2 usage or I/O error.
No business logic lives here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from controller import __version__
from controller.api.findings import Report
from controller.engine.checks import PolicySettings
from controller.output import FORMATTERS

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _fail(message: str) -> int:
    print(f"modelplane: {message}", file=sys.stderr)
    return EXIT_USAGE


def _policy_settings(args: argparse.Namespace) -> PolicySettings | None:
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
    try:
        report = judge(result, _policy_settings(args), context_for())
    except PolicyLoadError as exc:
        return _fail(f"{exc} (use --no-policy to skip policies)")
    except EngineError as exc:
        return _fail(str(exc))
    return _emit(report, args)


def _audit(args: argparse.Namespace) -> int:
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
        report = judge(result, settings, context_for(revision=args.revision), files)
    except (UsageError, GitError, PolicyLoadError, EngineError) as exc:
        return _fail(str(exc))
    code = _emit(report, args)
    print(f"decisions appended to {settings.decision_log}", file=sys.stderr)
    return code


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
        description="Check YAML resources: syntax, schema, names and references. "
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
        help="evaluate every policy over the repo (at a revision) and write a report",
        description="Evaluate every policy over the resources, at a git revision or in the work tree, "
        "write a report and append every decision to the decision log.",
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
