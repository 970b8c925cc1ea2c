"""kill -9 at several points of apply, then apply again: the work finishes, nothing is doubled.
Two applies at once: the second refuses (or waits), never interleaves."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from loop_helpers import EXE, modelplane


def state(repo: Path) -> dict[str, object]:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    try:
        one = lambda q: conn.execute(q).fetchone()[0]  # noqa: E731
        return {
            "runs": one("SELECT count(*) FROM runs"),
            "passed": one("SELECT count(*) FROM runs WHERE status = 'passed'"),
            "versions": one("SELECT count(*) FROM model_versions"),
            "stages": [tuple(r) for r in conn.execute("SELECT version, stage FROM model_versions")],
            "promotions": one("SELECT count(*) FROM promotions"),
            "data_checks": one("SELECT count(*) FROM data_checks"),
            "events": [r[0] for r in conn.execute("SELECT event FROM audit_log ORDER BY seq")],
        }
    finally:
        conn.close()


def apply_and_kill_at(repo: Path, marker: str) -> bool:
    """Start ``apply``; SIGKILL it as soon as ``marker`` appears in its output. True if it was killed."""
    proc = subprocess.Popen(
        [str(EXE), "apply"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert proc.stdout is not None
    killed = False
    for line in proc.stdout:
        if marker in line:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
    proc.wait(timeout=300)
    proc.stdout.close()
    return killed


@pytest.mark.parametrize(
    "marker",
    [
        "running the data contract",  # inside the data gate, before its result is stored
        "trial 1/2",  # in the middle of the hyper-parameter search
        "> metric-gate",  # after the run is stored, before the gate decides
        "> promote",  # before the Staging promotion
        "> model-card",  # after the promotion, before the card
    ],
    ids=["data-gate", "search", "before-gate", "before-promote", "before-card"],
)
def test_kill_9_then_apply_finishes_without_duplicates(repo: Path, marker: str) -> None:
    assert apply_and_kill_at(repo, marker), f"apply finished before '{marker}'"
    out = modelplane(repo, "apply")
    assert out.returncode == 0, out.stdout + out.stderr
    after = state(repo)
    assert after["runs"] == after["passed"] == 1
    assert after["versions"] == 1 and after["stages"] == [(1, "Staging")]
    assert after["promotions"] == 1 and after["data_checks"] == 1
    events = after["events"]
    for event in ("data-gate", "train", "metric-gate", "register", "promote"):
        assert events.count(event) == 1, (event, events)
    assert modelplane(repo, "apply").stdout.strip() == "Nothing to do: every resource is up to date."
    assert modelplane(repo, "audit", "verify").returncode == 0
    assert (repo / ".modelplane" / "cards" / "breast-cancer-classifier-v1.html").exists()


def test_second_apply_refuses_while_the_first_holds_the_lock(repo: Path) -> None:
    first = subprocess.Popen(
        [str(EXE), "apply"], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    assert first.stdout is not None
    for line in first.stdout:  # wait until it is really applying (it holds the lock)
        if line.startswith("> "):
            break
    second = modelplane(repo, "apply")
    assert second.returncode == 2
    assert second.stderr.startswith(f"modelplane: another apply (pid {first.pid}) holds ")
    assert "run with --wait" in second.stderr
    waiting = subprocess.Popen([str(EXE), "apply", "--wait"], cwd=repo, stdout=subprocess.PIPE, text=True)
    first.stdout.read()
    first.stdout.close()
    assert first.wait(timeout=300) == 0
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0 and out.strip() == "Nothing to do: every resource is up to date."
    assert state(repo)["runs"] == 1


def test_lock_is_released_when_the_holder_dies(repo: Path) -> None:
    assert apply_and_kill_at(repo, "> train")
    start = time.monotonic()
    out = modelplane(repo, "apply")
    assert out.returncode == 0 and time.monotonic() - start < 120
