"""Benchmark: validate 1,000 spec files (schema + references).

Compares, side by side in one run and on the same files:
  * ``modelplane validate --no-policy DIR`` as a process (what a user or CI runs; schema and references),
  * ``modelplane validate DIR`` with the Rego policies too,
  * the loader in-process (``controller.loading.load``: parse, models, references),
    on one process and on two (a worker process parses half the files),
  * ``check-jsonschema`` against the same generated schema (schema only, no references).

Usage: python bench/validate_bench.py [--files 1000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = sorted([*ROOT.glob("specs/**/*.yaml"), *ROOT.glob("chaos/**/*.yaml")])


def make_corpus(target: Path, count: int) -> list[Path]:
    """``count`` files: copies of the example chain, renamed so every reference resolves."""
    names = [
        "breast-cancer-classifier",
        "breast-cancer-retention",
        "breast-cancer-api-replica-kill",
        "breast-cancer-api",
        "breast-cancer",
    ]  # longest first, so replacements do not overlap
    texts = [p.read_text() for p in EXAMPLES]
    files = []
    for i in range(count):
        text = texts[i % len(texts)]
        group = i // len(texts)
        text = re.sub("|".join(names), lambda m, g=group: f"{m.group(0)}-{g}", text)
        text = text.replace("../../schemas/", str(ROOT / "schemas") + "/").replace(
            "../schemas/", str(ROOT / "schemas") + "/"
        )
        path = target / f"{i:04d}.yaml"
        path.write_text(text)
        files.append(path)
    return files


def timed(cmd: list[str], expect: int = 0) -> float:
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if out.returncode != expect:
        raise SystemExit(f"{cmd[0]} exited {out.returncode}:\n{out.stdout[-2000:]}{out.stderr[-2000:]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="modelplane-bench-"))
    try:
        files = make_corpus(work, args.files)
        in_process = (
            "import sys, time; from controller.loading import load\n"
            "t = time.perf_counter(); r = load([sys.argv[1]], workers=int(sys.argv[3])); e = time.perf_counter() - t\n"
            "assert not r.findings and len(r.resources) == int(sys.argv[2]), r.findings[:3]\n"
            "print(e)"
        )
        commands = {
            "modelplane validate --no-policy": [str(BIN / "modelplane"), "validate", "--no-policy", str(work)],
            "modelplane validate (+ policies)": [
                str(BIN / "modelplane"),
                "validate",
                "--policies",
                str(ROOT / "policies"),
                str(work),
            ],
            "check-jsonschema (process)": [
                str(BIN / "check-jsonschema"),
                "--schemafile",
                str(ROOT / "schemas/modelplane.schema.json"),
                *map(str, files),
            ],
        }
        loader_names = ["loader in-process, 1 process", "loader in-process, 2 processes"]
        samples: dict[str, list[float]] = {name: [] for name in [*commands, *loader_names]}
        for _ in range(args.repeats):  # interleaved, so both see the same machine state
            for name, cmd in commands.items():
                samples[name].append(timed(cmd))
            for workers, name in enumerate(loader_names, start=1):  # each in a fresh process
                cmd = [sys.executable, "-c", in_process, str(work), str(args.files), str(workers)]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True)
                samples[name].append(float(out.stdout))
    finally:
        shutil.rmtree(work)

    medians = {name: statistics.median(values) for name, values in samples.items()}
    base = medians["modelplane validate --no-policy"]
    print(f"{args.files} files, {args.repeats} runs each, medians:")
    for name, value in medians.items():
        print(f"  {name:34s} {value * 1000:8.1f} ms   ({value / base:5.2f}x validate --no-policy)")
    ratio = medians["check-jsonschema (process)"] / base
    print(f"check-jsonschema / modelplane validate --no-policy (same checks and more) = {ratio:.1f}x")


if __name__ == "__main__":
    main()
