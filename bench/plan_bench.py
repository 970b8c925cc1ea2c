"""Benchmark: a no-op plan over 1,000 (or 10,000) models, and the plan after changing one file.

Builds a platform of N datasets (small CSV files) and N models (one per dataset),
then writes the state a finished apply would have left (data checks passed, runs
passed, versions in Staging with cards) straight into a state store, and times,
side by side in one run (each command a fresh process, alternating; medians, and
each process's peak RSS):
  * ``modelplane plan`` with the state directory's cache filled (what every plan
    after the first one pays), and with no cache (the first plan of a state);
  * ``modelplane plan --no-policy`` with the cache filled;
  * with ``--compare-with REV``: ``plan`` and ``plan --no-policy`` as the code at
    git revision REV, from a scratch export of it;
  * the planner in-process (desired state, observed state, plan), hashing every
    data file, and through the cache;
and checks that every plan is a no-op, and that editing one data file, then one
model, plans exactly their chains (in-process and through the CLI with its cache).
Python's bytecode cache is written and used, as after an install.

Usage: python bench/plan_bench.py [--models 1000 10000] [--repeats 5] [--compare-with REV]
"""

from __future__ import annotations

import argparse
import compileall
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controller.api.status import ActionKind, OutcomeKind, Reason, RunStatus, Stage
from controller.engine.actions import Plan
from controller.engine.desired import desired_state, observed_state
from controller.engine.plan import plan
from controller.state.store import Store
from controller.triggers.git_source import GitSource

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}  # bytecode cached, as installed


def make_platform(root: Path, count: int) -> None:
    rows = (ROOT / "data" / "breast-cancer.csv").read_text().splitlines()
    dataset = (ROOT / "specs" / "datasets" / "breast-cancer.yaml").read_text()
    model = (ROOT / "specs" / "models" / "breast-cancer-classifier.yaml").read_text()
    for sub in ("data", "specs/datasets", "specs/models"):
        (root / sub).mkdir(parents=True)
    shutil.copytree(ROOT / "policies", root / "policies")
    for i in range(count):
        (root / "data" / f"d{i}.csv").write_text("\n".join([rows[0], *rows[1 + i % 500 : 41 + i % 500]]) + "\n")
        (root / "specs" / "datasets" / f"d{i}.yaml").write_text(
            dataset.replace("name: breast-cancer", f"name: bc-{i}")
            .replace("path: data/breast-cancer.csv", f"path: data/d{i}.csv")
            .replace("min_value: 500", "min_value: 10")
            .replace("labels:\n    owner", "labels:\n    owner")  # keep the owner label
            .replace("classification: public", "classification: public\n    retention: 365d")
        )
        (root / "specs" / "models" / f"m{i}.yaml").write_text(
            model.replace("name: breast-cancer-classifier", f"name: bc-model-{i}").replace(
                "dataset: breast-cancer", f"dataset: bc-{i}"
            )
        )


def settle(root: Path, store: Store) -> None:
    """Record, through the store's API in one transaction, what a finished apply leaves:
    every chain done and in the ledger, v1 in Staging with its card."""
    result = GitSource(root).load(None, ["specs"])
    assert not result.findings, result.findings[:3]
    desired = desired_state(result.resources, root, "bench")
    artifact = "sha256:" + "0" * 64

    def done(key: str, kind: ActionKind, ref: str) -> None:
        store.effects.record(key, kind, ref, OutcomeKind.SUCCEEDED, Reason.SUCCEEDED, revision="bench")

    with store.transaction():
        for d in desired.datasets.values():
            assert d.check_key and d.content_hash
            store.checks.record(d.check_key, d.name, d.content_hash, "bench", True, "bench", {"summary": "ok"})
            done(d.check_key, ActionKind.DATA_GATE, f"Dataset/{d.name}")
        for i, m in enumerate(desired.models.values()):
            key, ref, run = m.train_key, f"Model/{m.name}", f"run{i:06d}"
            assert key is not None
            store.runs.start(
                run, key, m.name, "bench", m.dataset, desired.datasets[m.dataset].content_hash or "", m.spec_digest
            )
            store.runs.finish(
                key,
                status=RunStatus.TRAINED,
                params={},
                metrics={},
                fairness={},
                trials=[],
                environment={},
                artifact_digest=artifact,
                duration_s=0.0,
                error=None,
                revision="bench",
            )
            store.runs.record_gates(key, passed=True, gates=[], fairness={}, revision="bench")
            store.registry.register(m.name, run, artifact, "bench")
            store.registry.promote(
                m.name, 1, Stage.STAGING, key=f"{key}/Staging", actor="bench", reason="bench", revision="bench"
            )
            store.registry.record_card(m.name, 1, Stage.STAGING, {"json": "", "markdown": "", "html": ""})
            for suffix, kind in (
                ("", ActionKind.TRAIN),
                ("/gate", ActionKind.METRIC_GATE),
                ("/register", ActionKind.REGISTER),
                ("/Staging", ActionKind.PROMOTE),
                ("/card/Staging", ActionKind.MODEL_CARD),
            ):
                done(key + suffix, kind, ref)


def planner(root: Path, store: Store, *, cached: bool) -> tuple[float, Plan]:
    """The planner in-process: desired state (each dataset's content hash, each spec's
    digests), observed state and the plan; with ``cached``, data files are hashed
    through the state directory's cache, as ``modelplane plan`` does."""
    result = GitSource(root).load(None, ["specs"], keep="data")  # what plan keeps
    gc.freeze()
    start = time.perf_counter()
    desired = desired_state(result.resources, root, "bench", digests=store.cache if cached else None)
    store.cache.flush()
    out = plan(desired, observed_state(store))
    return time.perf_counter() - start, out


# Runs a command as its only child, passes its stdout through, and prints on stderr its
# wall time and peak RSS (KiB). A small launcher: a process forked from this benchmark
# (hundreds of MB once the platform is loaded) would inherit its high-water mark.
LAUNCHER = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "out = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)\n"
    "wall = time.perf_counter() - start\n"
    "sys.stdout.buffer.write(out.stdout)\n"
    "sys.stderr.buffer.write(out.stderr)\n"
    "print(out.returncode, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr)\n"
)


def measured(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of one ``cmd`` process."""
    out = subprocess.run([sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, cwd=cwd, env=env)
    *errors, last = out.stderr.decode().splitlines()
    code, wall, rss = last.split()
    assert code == "0", f"{' '.join(cmd[:6])} exited {code}: {chr(10).join(errors)[-2000:]}"
    return float(wall), int(rss) / 1024, out.stdout.decode()


def before_command(revision: str, scratch: Path) -> tuple[list[str], dict[str, str]]:
    """``modelplane`` as the code at ``revision`` (exported, not checked out, compiled)."""
    tree = scratch / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    for package in ("controller", "reconcilers"):
        compileall.compile_dir(str(tree / package), quiet=1)
    # -P: the current directory (the platform) does not go ahead of PYTHONPATH.
    code = "import sys; from controller.cli import main; sys.argv[0] = 'modelplane'; sys.exit(main())"
    return [sys.executable, "-P", "-c", code], {**ENV, "PYTHONPATH": str(tree)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--compare-with", metavar="REV", help="also run 'plan' as the code at git revision REV")
    args = parser.parse_args()
    for package in ("controller", "reconcilers"):  # bytecode as after an install
        compileall.compile_dir(str(ROOT / package), quiet=1)
    for count in args.models:
        run(count, args.repeats, args.compare_with)


def _resources(plan_json: str) -> list[str]:
    return sorted({a["resource"] for a in json.loads(plan_json)["actions"]})


def run(count: int, repeats: int, compare_with: str | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="modelplane-plan-bench-"))
    platform = work / "platform"
    mp = [str(BIN / "modelplane")]
    try:
        make_platform(platform, count)
        store = Store(platform / ".modelplane")
        settle(platform, store)
        before = before_command(compare_with, work) if compare_with else None
        cache_db = platform / ".modelplane" / "cache.db"
        commands: list[tuple[str, list[str], dict[str, str], bool]] = [
            ("'modelplane plan' (cache filled)", [*mp, "plan", "-o", "json"], ENV, False),
            ("'modelplane plan' (no cache: first plan)", [*mp, "plan", "-o", "json"], ENV, True),
            ("'modelplane plan --no-policy' (cache filled)", [*mp, "plan", "--no-policy", "-o", "json"], ENV, False),
        ]
        if before is not None:
            commands += [
                (f"'modelplane plan' at {compare_with}", [*before[0], "plan", "-o", "json"], before[1], False),
                (
                    f"'modelplane plan --no-policy' at {compare_with}",
                    [*before[0], "plan", "--no-policy", "-o", "json"],
                    before[1],
                    False,
                ),
            ]
        measured(commands[0][1], platform, ENV)  # fill the cache (and wait out the racy window below)
        time.sleep(3.5)
        measured(commands[0][1], platform, ENV)  # data digests remembered now that the files are old enough
        walls: dict[str, list[float]] = {name: [] for name, *_ in commands}
        rsss: dict[str, list[float]] = {name: [] for name, *_ in commands}
        outputs: dict[str, set[str]] = {name: set() for name, *_ in commands}
        planner_plain: list[float] = []
        planner_cached: list[float] = []
        for _ in range(repeats):  # alternating, side by side
            for name, cmd, env, cold in commands:
                if cold:
                    for leftover in cache_db.parent.glob("cache.db*"):
                        leftover.unlink()
                wall, rss, out = measured(cmd, platform, env)
                walls[name].append(wall)
                rsss[name].append(rss)
                outputs[name].add(out)
                if cold:
                    measured(commands[0][1], platform, ENV)  # refill it for the next runs
            for cached, times in ((False, planner_plain), (True, planner_cached)):
                elapsed, result = planner(platform, store, cached=cached)
                assert result.empty, [a.describe() for a in result.actions[:3]]
                times.append(elapsed)
        for name, seen in outputs.items():
            assert len(seen) == 1 and json.loads(next(iter(seen)))["actions"] == [], f"{name}: not a no-op plan"

        data = platform / "data" / "d7.csv"
        data.write_text(data.read_text().replace("\n", "\n", 1) + data.read_text().splitlines()[-1] + "\n")
        _, after_data = planner(platform, store, cached=True)
        cli_after_data = _resources(measured(commands[0][1], platform, ENV)[2])
        model = platform / "specs" / "models" / "m42.yaml"
        model.write_text(model.read_text().replace("max_depth: 3", "max_depth: 4"))
        _, after_both = planner(platform, store, cached=True)
        cli_after_both = _resources(measured(commands[0][1], platform, ENV)[2])
        store.close()
    finally:
        shutil.rmtree(work)

    touched_data = sorted({a.resource for a in after_data.actions})
    touched_both = sorted({a.resource for a in after_both.actions})
    median = statistics.median
    base = median(walls[commands[0][0]])
    print(f"{count} datasets + {count} models, every chain settled; medians of {repeats} alternating runs:")
    for name, *_ in commands:
        wall = median(walls[name])
        print(f"  {name:52s} {wall * 1000:9.1f} ms  {median(rsss[name]):6.0f} MB peak RSS  {wall / base:6.2f}x")
    print(f"  {'planner in-process (desired + observed + plan)':52s} {median(planner_plain) * 1000:9.1f} ms")
    print(f"  {'  the same, data files hashed through the cache':52s} {median(planner_cached) * 1000:9.1f} ms")
    print(f"  after editing data/d7.csv: {len(after_data.actions)} actions on {touched_data}")
    print(f"  after also editing m42.yaml: {len(after_both.actions)} actions on {touched_both}")
    assert touched_data == cli_after_data == ["Dataset/bc-7", "Model/bc-model-7"], (touched_data, cli_after_data)
    assert touched_both == cli_after_both == ["Dataset/bc-7", "Model/bc-model-42", "Model/bc-model-7"], (
        touched_both,
        cli_after_both,
    )


if __name__ == "__main__":
    main()
