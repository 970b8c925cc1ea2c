"""The decision log: one JSON line per policy decision, appended and synced.

Written by ``audit`` (and ``validate --decision-log``). Each line has the
timestamp, revision, engine, policy, rule, resource, result, message and the
digest of the input; messages are already scrubbed of secrets, and inputs are
recorded by digest only.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

from controller.policy.evaluate import Decision

DEFAULT_PATH = Path(".modelplane") / "decisions.jsonl"


def append(path: Path, decisions: list[Decision]) -> int:
    """Append ``decisions``; durable on return (fsync). Returns how many were written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = "".join(json.dumps(asdict(d), sort_keys=True) + "\n" for d in decisions)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(lines)
        handle.flush()
        os.fsync(handle.fileno())
    return len(decisions)


def read(path: Path) -> list[Decision]:
    with open(path, encoding="utf-8") as handle:
        return [Decision(**json.loads(line)) for line in handle if line.strip()]
