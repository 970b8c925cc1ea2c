"""Examples in docs run as tests: every ``console`` block's commands and output."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = sorted(
    [Path(__file__).resolve().parents[1] / "README.md", *(Path(__file__).resolve().parents[1] / "docs").glob("*.md")]
)
BLOCK = re.compile(r"^( *)```console\n(.*?)^\1```", re.S | re.M)


def _examples() -> list[tuple[str, str, str]]:
    out = []
    for doc in DOCS:
        for match in BLOCK.finditer(doc.read_text()):
            indent = len(match.group(1))
            lines = [line[indent:] for line in match.group(2).splitlines()]
            command, expected = None, []
            for line in [*lines, "$ "]:
                if line.startswith("$ "):
                    if command:
                        out.append((f"{doc.name}: {command}", command, "\n".join(expected)))
                    command, expected = line[2:].strip(), []
                else:
                    expected.append(line)
    return out


EXAMPLES = _examples()


def test_docs_have_examples() -> None:
    assert len(EXAMPLES) >= 6


@pytest.mark.parametrize(("where", "command", "expected"), EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_doc_example(where: str, command: str, expected: str) -> None:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, timeout=120)
    assert (out.stdout + out.stderr).rstrip("\n") == expected.rstrip("\n"), where
