"""``modelplane policy test|serve``: the policies' own tests, and OPA's Data API."""

from __future__ import annotations

import argparse
import json
import sys

from controller.cli.common import EXIT_OK, fail, guard_flags, policy_sources, policy_timeout, store, timeout_flag


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    policy = commands.add_parser("policy", help="test and serve Rego policies")
    sub = policy.add_subparsers(dest="policy_command", metavar="COMMAND", required=True)
    test = sub.add_parser(
        "test", help="run test_* rules, like 'opa test'", description="Run every test_* rule; exit 1 on a failure."
    )
    test.add_argument(
        "policies",
        nargs="*",
        metavar="DIR",
        help="policy directories, or 'builtin' (default: the project's policy set, as validate uses)",
    )
    test.add_argument("--run", "-r", metavar="PATTERN", help="only tests whose 'package.name' contains PATTERN")
    test.add_argument("--format", choices=["text", "json"], default="text")
    test.add_argument("--verbose", "-v", action="store_true", help="list passing tests too")
    test.add_argument("--no-coverage", action="store_true", help="skip the coverage report")
    test.set_defaults(func=test_policies)
    written = sub.add_parser(
        "written",
        parents=[state],
        help="list the policies written or deleted over HTTP that 'policy serve' replays over the repo's",
    )
    written.set_defaults(func=list_written)
    forget = sub.add_parser(
        "forget",
        parents=[state],
        help="drop what was written (or deleted) over HTTP for a policy id: the repo's version is served again",
        description="Record (in the audit log) that the write of ID over HTTP no longer applies: from the next "
        "start, 'policy serve' serves the repo's version of ID, if it has one. Use it when the repo's policies "
        "no longer load with a written one.",
    )
    forget.add_argument("id", metavar="ID", help="the policy id, as 'policy written' lists it")
    forget.add_argument("--as", dest="actor", required=True, metavar="NAME", help="who drops it (audited)")
    forget.set_defaults(func=forget_written)
    serve_cmd = sub.add_parser(
        "serve",
        parents=[state],
        help="serve OPA's Data API from the embedded engine",
        description="Serve POST /v1/data/{path}, GET /health and the policy API on HOST:PORT, "
        "with the resources under PATH as data.modelplane. Every request but GET /health needs "
        "'Authorization: Bearer TOKEN', a token from MODELPLANE_API_TOKEN or --token-file.",
    )
    serve_cmd.add_argument(
        "paths", nargs="*", metavar="PATH", help="resources for data.modelplane (default: specs/ and chaos/)"
    )
    serve_cmd.add_argument(
        "--policies", action="append", metavar="DIR", help="a policy directory or 'builtin'; repeatable (as validate)"
    )
    timeout_flag(
        serve_cmd,
        "time limit of one query; over it the evaluation is stopped and answered 500 policy-timeout "
        "(default: the project file's policyTimeoutSeconds, else 5)",
    )
    serve_cmd.add_argument(
        "--policy-memory",
        type=_megabytes,
        metavar="MB",
        # The default is controller.policy.engine.DEFAULT_MEMORY_MB (not imported: parsing stays light).
        help="memory limit of the engine's process; a query over it is stopped and answered 500 (default: 4096)",
    )
    serve_cmd.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    serve_cmd.add_argument("--port", type=int, default=8181)
    guard = guard_flags(serve_cmd)
    guard.add_argument(
        "--allow-policy-writes",
        action="store_true",
        help="accept PUT and DELETE /v1/policies/{id} from token holders; audited, and kept in the state "
        "directory over the repo's policies",
    )
    guard.add_argument(
        "--allow-data-writes",
        action="store_true",
        help="accept PUT /v1/data/{path} from token holders; audited, kept until the server stops",
    )
    serve_cmd.set_defaults(func=serve)


def test_policies(args: argparse.Namespace) -> int:
    from controller.policy.sources import PolicyLoadError, discover
    from controller.policy.testing import run_tests

    try:
        run = run_tests(discover(policy_sources(args)), run=args.run, coverage=not args.no_coverage)
    except PolicyLoadError as exc:
        return fail(str(exc))
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


def list_written(args: argparse.Namespace) -> int:
    with store(args) as opened:
        writes = opened.policy_writes.current(texts=False)
    for w in writes:
        print(f"{w.id}: {'written' if w.text is not None else 'deleted'} over HTTP by {w.client} at {w.at}")
    if not writes:
        print("No policies written over HTTP are in force.")
    return EXIT_OK


def forget_written(args: argparse.Namespace) -> int:
    from controller.api.identity import IdentityError, normalise

    try:
        actor = normalise(args.actor)
    except IdentityError as exc:
        return fail(str(exc))
    with store(args) as opened:
        dropped = opened.policy_writes.forget(args.id, actor)
    if not dropped:
        return fail(f"no policy written over HTTP is in force for {args.id!r} (see 'modelplane policy written')")
    print(f"{args.id}: the write over HTTP no longer applies (audited, by {actor}); restart 'policy serve'")
    return EXIT_OK


def _megabytes(text: str) -> int:
    if not text.isdigit() or not 256 <= int(text) <= 1 << 20:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of megabytes between 256 and 1048576")
    return int(text)


def serve(args: argparse.Namespace) -> int:
    # Imported here: starlette and uvicorn load only when a server is started.
    from pathlib import Path

    from controller.loading import UsageError
    from controller.policy.sources import PolicyLoadError
    from controller.server.guard import Guard
    from controller.server.run import ServerError
    from controller.server.serve import Started, serve_data_api
    from controller.state.artifacts import ArtifactError

    def announce(started: Started) -> None:
        for warning in started.warnings:
            print(warning, file=sys.stderr, flush=True)
        print(f"serving OPA Data API on {started.url} ({started.policy_files} policy files)", flush=True)
        if started.clients:
            print(f"clients with a token: {', '.join(started.clients)}")
        if started.writes:
            print(f"{' and '.join(started.writes)}: writes are audited in {started.state_dir}")
        for r in started.replayed:
            w = r.write
            what = ("deleted" if w.text is None else "written") + f" over HTTP by {w.client} at {w.at}"
            where = "replacing the repo's" if r.in_repo and w.text is not None else "not in the repo"
            where = "removing the repo's" if r.in_repo and w.text is None else where
            print(f"policy {w.id}: {what}, {where} (from the audit log in {started.state_dir})")
        sys.stdout.flush()

    def path(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    guard = Guard(
        token_file=path(args.token_file),
        insecure_no_auth=args.insecure_no_auth,
        tls_cert=path(args.tls_cert),
        tls_key=path(args.tls_key),
        behind_tls_proxy=args.behind_tls_proxy,
        allow_policy_writes=args.allow_policy_writes,
        allow_data_writes=args.allow_data_writes,
    )
    try:
        serve_data_api(
            policy_sources(args),
            args.paths,
            guard=guard,
            host=args.host,
            port=args.port,
            state_dir=Path(args.state_dir),
            timeout=policy_timeout(args),
            memory_mb=args.policy_memory,
            on_ready=announce,
        )
    except (PolicyLoadError, UsageError, ServerError, ArtifactError, OSError) as exc:
        return fail(str(exc))
    except KeyboardInterrupt:  # Ctrl-C: uvicorn has shut down gracefully
        pass
    return EXIT_OK
