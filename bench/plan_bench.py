"""Benchmark: a no-op plan over 1,000 models, and the plan after changing one file.

Builds a platform of N datasets (small CSV files) and N models (one per dataset),
then writes the state a finished apply would have left (data checks passed, runs
passed, versions in Staging with cards) straight into a state store, and times:
  * the planner: desired state (hashing every data file) + observed state + plan;
  * ``modelplane plan`` as a process (loading, validation and policies included);
and checks that editing one data file, or one model, plans exactly one chain.

Usage: python bench/plan_bench.py [--models 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import gc
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from controller.engine.desired import desired_state, observed_state
from controller.engine.plan import plan
from controller.loading import load
from controller.state.db import transaction
from controller.state.store import Store, now

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
    """Record, in one transaction, what a finished apply leaves: every chain done, v1 in Staging."""
    result = load([str(root / "specs")])
    assert not result.findings, result.findings[:3]
    desired = desired_state(result.resources, root, "bench")
    stamp = now()
    with transaction(store.conn):
        for d in desired.datasets.values():
            store.conn.execute(
                "INSERT INTO data_checks (key, dataset, dataset_hash, revision, success, gx_run_id, evidence, at) "
                "VALUES (?, ?, ?, 'bench', 1, 'bench', ?, ?)",
                (d.check_key, d.name, d.content_hash, json.dumps({"summary": "ok"}), stamp),
            )
        for i, m in enumerate(desired.models.values()):
            run = f"run{i:06d}"
            store.conn.execute(
                "INSERT INTO runs (id, key, model, status, revision, dataset, dataset_hash, spec_digest, "
                "metrics, gates, artifact_digest, started_at, finished_at) "
                "VALUES (?, ?, ?, 'passed', 'bench', ?, ?, ?, '{}', '[]', ?, ?, ?)",
                (
                    run,
                    m.train_key,
                    m.name,
                    m.dataset,
                    desired.datasets[m.dataset].content_hash,
                    m.spec_digest,
                    "sha256:" + "0" * 64,
                    stamp,
                    stamp,
                ),
            )
            store.conn.execute(
                "INSERT INTO model_versions (model, version, run_id, stage, artifact_digest, revision, created_at) "
                "VALUES (?, 1, ?, 'Staging', ?, 'bench', ?)",
                (m.name, run, "sha256:" + "0" * 64, stamp),
            )
            store.conn.execute(
                "INSERT INTO cards (model, version, json_path, markdown_path, html_path, at) "
                "VALUES (?, 1, '', '', '', ?)",
                (m.name, stamp),
            )


def planner(root: Path, store: Store) -> tuple[float, object]:
    result = load([str(root / "specs")])
    gc.freeze()  # as the CLI does after loading
    start = time.perf_counter()
    desired = desired_state(result.resources, root, "bench")
    out = plan(desired, observed_state(store))
    return time.perf_counter() - start, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="modelplane-plan-bench-"))
    try:
        make_platform(work, args.models)
        store = Store(work / ".modelplane")
        settle(work, store)
        planner_times, process_times = [], []
        for _ in range(args.repeats):
            elapsed, result = planner(work, store)
            assert result.empty, [a.describe() for a in result.actions[:3]]  # type: ignore[attr-defined]
            planner_times.append(elapsed)
            start = time.perf_counter()
            out = subprocess.run(
                [str(BIN / "modelplane"), "plan", "--format", "json"],
                cwd=work,
                capture_output=True,
                text=True,
                check=True,
            )
            process_times.append(time.perf_counter() - start)
            assert json.loads(out.stdout)["actions"] == []

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
    print(f"{args.models} datasets + {args.models} models, every chain settled; medians of {args.repeats} runs:")
    print(f"  planner (hash data, read state, plan)   {statistics.median(planner_times) * 1000:8.1f} ms")
    print(
        f"  'modelplane plan' process               {statistics.median(process_times) * 1000:8.1f} ms"
        "  (load + validate + policies + plan)"
    )
    print(f"  after editing data/d7.csv: {len(after_data.actions)} actions on {touched_data}")  # type: ignore[attr-defined]
    print(f"  after also editing m42.yaml: {len(after_both.actions)} actions on {touched_both}")  # type: ignore[attr-defined]
    assert touched_data == ["Dataset/bc-7", "Model/bc-model-7"], touched_data
    assert touched_both == ["Dataset/bc-7", "Model/bc-model-42", "Model/bc-model-7"], touched_both


if __name__ == "__main__":
    main()
