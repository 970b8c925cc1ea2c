"""Benchmark: a no-op plan over 1,000 models, and the plan after changing one file.

Builds a platform of N datasets (small CSV files) and N models (one per dataset),
then writes the state a finished apply would have left (data checks passed, runs
passed, versions in Staging with cards) straight into a state store, and times:
  * the planner: desired state (hashing every data file) + observed state + plan;
  * ``modelplane plan`` as a process (loading, validation and policies included);
and checks that editing one data file, or one model, plans exactly one chain.

Usage: python bench/plan_bench.py [--models 1000 10000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controller.api.status import ActionKind, OutcomeKind, Reason, RunStatus, Stage
from controller.engine.desired import desired_state, observed_state
from controller.engine.plan import plan
from controller.state.store import Store
from controller.triggers.git_source import GitSource

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


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


def planner(root: Path, store: Store) -> tuple[float, object]:
    result = GitSource(root).load(None, ["specs"])
    gc.freeze()  # as the CLI does after loading
    start = time.perf_counter()
    desired = desired_state(result.resources, root, "bench")
    out = plan(desired, observed_state(store))
    return time.perf_counter() - start, out


# Runs a command as its only child and prints the child's peak RSS (KiB) and wall time.
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "start = time.perf_counter()\n"
    "subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, check=True)\n"
    "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def whole_process(cwd: Path, *args: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of one ``modelplane`` process."""
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(BIN / "modelplane"), *args], cwd=cwd, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    wall, rss = out.stdout.split()
    return float(wall), int(rss) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, nargs="+", default=[1000])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for count in args.models:
        run(count, args.repeats)


def run(count: int, repeats: int) -> None:
    work = Path(tempfile.mkdtemp(prefix="modelplane-plan-bench-"))
    try:
        make_platform(work, count)
        store = Store(work / ".modelplane")
        settle(work, store)
        planner_times, process_times, process_rss, bare_times = [], [], [], []
        for _ in range(repeats):  # alternating, side by side
            elapsed, result = planner(work, store)
            assert result.empty, [a.describe() for a in result.actions[:3]]  # type: ignore[attr-defined]
            planner_times.append(elapsed)
            wall, rss = whole_process(work, "plan", "--format", "json")
            process_times.append(wall)
            process_rss.append(rss)
            bare_times.append(whole_process(work, "plan", "--no-policy", "--format", "json")[0])

        data = work / "data" / "d7.csv"
        data.write_text(data.read_text().replace("\n", "\n", 1) + data.read_text().splitlines()[-1] + "\n")
        _, after_data = planner(work, store)
        model = work / "specs" / "models" / "m42.yaml"
        model.write_text(model.read_text().replace("max_depth: 3", "max_depth: 4"))
        _, after_both = planner(work, store)
        store.close()
    finally:
        shutil.rmtree(work)

    touched_data = sorted({a.resource for a in after_data.actions})  # type: ignore[attr-defined]
    touched_both = sorted({a.resource for a in after_both.actions})  # type: ignore[attr-defined]
    median = statistics.median
    print(f"{count} datasets + {count} models, every chain settled; medians of {repeats} alternating runs:")
    print(f"  planner in-process (hash data, read state, plan)  {median(planner_times) * 1000:9.1f} ms")
    print(
        f"  'modelplane plan' process                         {median(process_times) * 1000:9.1f} ms"
        f"  {median(process_rss):6.0f} MB peak RSS  (load + validate + policies + plan)"
    )
    print(f"  'modelplane plan --no-policy' process             {median(bare_times) * 1000:9.1f} ms")
    print(f"  after editing data/d7.csv: {len(after_data.actions)} actions on {touched_data}")  # type: ignore[attr-defined]
    print(f"  after also editing m42.yaml: {len(after_both.actions)} actions on {touched_both}")  # type: ignore[attr-defined]
    assert touched_data == ["Dataset/bc-7", "Model/bc-model-7"], touched_data
    assert touched_both == ["Dataset/bc-7", "Model/bc-model-42", "Model/bc-model-7"], touched_both


if __name__ == "__main__":
    main()
