"""kill -9 at several points of apply, then apply again: the work finishes, nothing is doubled.
Two applies at once: the second refuses (or waits), never interleaves."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
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
    ],
    ids=["in-data-gate", "in-search"],
)
def test_kill_9_inside_a_step_then_apply_finishes_without_duplicates(repo: Path, marker: str) -> None:
    assert apply_and_kill_at(repo, marker), f"apply finished before '{marker}'"
    out = modelplane(repo, "apply")
    assert out.returncode == 0, out.stdout + out.stderr
    after = state(repo)
    assert after["runs"] == after["passed"] == 1
    assert after["versions"] == 1 and after["stages"] == [(1, "Staging")]
    assert after["promotions"] == 1 and after["data_checks"] == 1
    for event in ("data-gate", "train", "metric-gate", "register", "promote"):
        assert after["events"].count(event) == 1, (event, after["events"])
    assert modelplane(repo, "apply").stdout.strip() == "Nothing to do: every resource is up to date."
    assert (repo / ".modelplane" / "cards" / "breast-cancer-classifier-v1.html").exists()


def ledger(repo: Path) -> dict[str, tuple[str, str, int]]:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    try:
        return {
            k: (kind, outcome, n)
            for k, kind, outcome, n in conn.execute("SELECT key, kind, outcome, attempts FROM effects")
        }
    finally:
        conn.close()


# Runs `modelplane apply` in a fresh interpreter whose executor SIGKILLs its own process right
# after the first action has finished (its effect committed, nothing after it): an exact step
# boundary, with no hook in the product.
KILL_AFTER_FIRST_STEP = """
import os, signal, sys
from controller.engine import executor
from controller.cli import main

real = executor.run_action

def run_action(action, ctx):
    executed = real(action, ctx)
    print("killed after " + action.describe().split(":", 1)[0], flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

executor.run_action = run_action
sys.exit(main(["apply"]))
"""


def kill_after_each_step(repo: Path) -> list[str]:
    """Apply again and again, each killed right after one step: every step boundary is a crash
    point. Returns the step each apply was killed after."""
    killed_after: list[str] = []
    while True:
        out = subprocess.run(
            [sys.executable, "-c", KILL_AFTER_FIRST_STEP], cwd=repo, capture_output=True, text=True, timeout=300
        )
        lines = [line for line in out.stdout.splitlines() if line.startswith("killed after ")]
        if out.returncode != -signal.SIGKILL:
            assert out.returncode == 0 and not lines, out.stdout + out.stderr
            return killed_after
        killed_after.append(lines[-1].removeprefix("killed after "))


@pytest.mark.served
def test_kill_9_at_every_step_boundary_up_to_production_converges(repo: Path) -> None:
    assert kill_after_each_step(repo) == [
        "data-gate breast-cancer",
        "train breast-cancer-classifier",
        "metric-gate breast-cancer-classifier",
        "register breast-cancer-classifier",
        "promote breast-cancer-classifier -> Staging",
        "model-card breast-cancer-classifier",
    ]
    for who in ("alice", "bob"):
        assert modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", who).returncode == 0
    # Killed after the Production promotion, before its card: the card must still come, saying Production.
    assert kill_after_each_step(repo) == [
        "promote breast-cancer-classifier -> Production",
        "model-card breast-cancer-classifier",
        "deploy breast-cancer-api",  # the service serves Production: it follows in the same apply
    ]
    after = state(repo)
    assert after["runs"] == after["passed"] == 1 and after["data_checks"] == 1
    assert after["stages"] == [(1, "Production")] and after["promotions"] == 2
    for event, n in (("data-gate", 1), ("train", 1), ("metric-gate", 1), ("register", 1), ("promote", 2)):
        assert after["events"].count(event) == n, (event, after["events"])
    effects = ledger(repo)
    assert sorted(kind for kind, _, _ in effects.values()) == sorted(
        ["data-gate", "train", "metric-gate", "register", "promote", "promote", "model-card", "model-card", "deploy"]
    )
    assert after["events"].count("deployed") == 1  # one deployment, one server
    served = json.loads(modelplane(repo, "serve", "status", "-o", "json").stdout)
    assert [(s["state"], len(s["replicas"])) for s in served] == [("ready", 1)]
    assert {(outcome, n) for _, outcome, n in effects.values()} == {("Succeeded", 1)}  # each effect exactly once
    card = json.loads((repo / ".modelplane" / "cards" / "breast-cancer-classifier-v1.json").read_text())
    assert "stage: Production" in card["model_details"]["documentation"]
    status = json.loads(modelplane(repo, "status", "--format", "json").stdout)
    ready = next(c for c in status["Model/breast-cancer-classifier"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["message"]) == ("True", "v1 is in Production")
    assert modelplane(repo, "apply").stdout.strip() == "Nothing to do: every resource is up to date."
    assert modelplane(repo, "audit", "verify").returncode == 0


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
