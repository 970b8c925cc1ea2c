"""``modelplane schemas generate|check``: the JSON Schemas and the spec reference."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.cli.common import EXIT_FINDINGS, EXIT_OK


def register(commands: argparse._SubParsersAction, state: argparse.ArgumentParser) -> None:
    schemas = commands.add_parser(
        "schemas",
        help="generate or check the JSON Schemas and the spec reference",
        description="The JSON Schemas in schemas/ and docs/spec-reference.md are generated from the models.",
    )
    schemas.add_argument("action", choices=["generate", "check"])
    schemas.add_argument("--schemas-dir", default="schemas", metavar="DIR")
    schemas.add_argument("--reference", default="docs/spec-reference.md", metavar="FILE")
    schemas.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
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
