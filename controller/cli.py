"""The ``modelplane`` command: flags in, a call below, formatted output, an exit code.

Exit codes: 0 success, 1 findings (or stale files), 2 usage or I/O error.
No business logic lives here.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from controller import __version__
from controller.output import FORMATTERS

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _validate(args: argparse.Namespace) -> int:
    from controller.loading import DEFAULT_PATHS, UsageError, load

    paths = args.paths or [p for p in DEFAULT_PATHS if Path(p).exists()]
    if not paths:
        print(f"modelplane: nothing to validate: none of {', '.join(DEFAULT_PATHS)} exists here", file=sys.stderr)
        return EXIT_USAGE
    try:
        result = load(paths, max_file_bytes=args.max_file_bytes)
    except UsageError as exc:
        print(f"modelplane: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not result.files:
        print(f"modelplane: no .yaml or .yml files under {', '.join(paths)}", file=sys.stderr)
        return EXIT_USAGE
    report = result.report()
    report.fail_on_warn = args.fail_on_warn
    sys.stdout.write(FORMATTERS[args.format](report))
    return report.exit_code


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
    validate.set_defaults(func=_validate)

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
