"""Benchmark: validation at 1,000 and 10,000 spec files, and start-up, as whole processes.

Measures, side by side in one run and on the same files (each command a fresh
process; wall time and the process's peak RSS, medians of interleaved runs):
  * ``modelplane validate --no-policy DIR`` (schema, names, references),
  * ``modelplane validate DIR`` with the Rego policies too,
  * ``check-jsonschema`` against the same generated schema (schema only, no references),
  * the floor: libyaml (``yaml.CSafeLoader``) and a compiled JSON Schema validator
    (``jsonschema_rs``), streaming file by file (schema only),
  * with ``--compare-with REV``: the same two ``modelplane validate`` commands run
    on the code at git revision REV ("before"), from a scratch export of it,
  * start-up: ``modelplane --version`` and ``modelplane validate FILE`` (with and
    without policies) on one example file, what a pre-commit hook pays, the floor
    for one file, the top import costs of ``validate FILE`` (``python -X importtime``),
    and its time phase by phase.

The corpus is copies of the example chain (Dataset, Model, InferenceService,
ChaosExperiment, PolicyException), renamed so that every reference resolves; every
command must report it valid (exit 0), or the run stops. Python's bytecode cache
is written and used, as after a normal install (PYTHONDONTWRITEBYTECODE is unset
for the measured processes, and both trees are compiled first).

Usage: python bench/validate_bench.py [--files 1000 10000] [--repeats 5] [--peer-repeats N]
                                      [--startup-repeats 15] [--compare-with REV]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
EXAMPLES = sorted([*ROOT.glob("specs/**/*.yaml"), *ROOT.glob("chaos/**/*.yaml")])
ONE_FILE = ROOT / "specs/datasets/breast-cancer.yaml"  # what a pre-commit hook hands over: one changed file
SCHEMA = ROOT / "schemas/modelplane.schema.json"
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}

FLOOR = r"""
import sys, json, pathlib, yaml, jsonschema_rs
class Loader(yaml.CSafeLoader):  # dates stay text, as in modelplane (JSON has no dates)
    pass
Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:timestamp"]
    for k, v in yaml.CSafeLoader.yaml_implicit_resolvers.items()
}
validator = jsonschema_rs.validator_for(json.loads(pathlib.Path(sys.argv[1]).read_text()))
errors = 0
for name in sys.argv[2:]:
    path = pathlib.Path(name)
    files = sorted(path.rglob("*.yaml")) if path.is_dir() else [path]
    for file in files:  # streaming: one file's documents at a time
        for doc in yaml.load_all(file.read_bytes(), Loader=Loader):
            errors += sum(1 for _ in validator.iter_errors(doc))
print(errors)
sys.exit(1 if errors else 0)
"""


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
        path = target / f"{i:05d}.yaml"
        path.write_text(text)
        files.append(path)
    return files


def _drain(proc: subprocess.Popen[bytes]) -> tuple[bytes, bytes]:
    """Read both pipes to the end (without waiting for the process: wait4 reaps it)."""
    import threading

    assert proc.stdout is not None and proc.stderr is not None
    err: list[bytes] = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()))  # type: ignore[union-attr]
    reader.start()
    out = proc.stdout.read()
    reader.join()
    return out, err[0]


def timed(cmd: list[str], expect: tuple[int, ...] = (0,), env: dict[str, str] | None = None) -> tuple[float, float]:
    """(wall seconds, peak RSS in MB) of one process, reaped with wait4 for its own usage."""
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env or ENV, cwd=ROOT)
    out, err = _drain(proc)
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    proc.returncode = code = os.waitstatus_to_exitcode(status)
    if code not in expect:
        raise SystemExit(
            f"{' '.join(map(str, cmd[:5]))} ... exited {code}:\n{out.decode()[-2000:]}{err.decode()[-2000:]}"
        )
    return elapsed, usage.ru_maxrss / 1024


def before_tree(revision: str, scratch: Path) -> tuple[list[str], dict[str, str]]:
    """The ``modelplane`` command for the code at ``revision`` (exported, not checked out)."""
    tree = scratch / "before"
    tree.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "controller")], check=True, env=ENV)
    env = {**ENV, "PYTHONPATH": str(tree)}
    # The same launcher as the installed command (a script run as __main__ is compiled on
    # every start: a ``-c`` one-liner would start faster and flatter the old code), and -P:
    # neither the script's directory nor this checkout goes ahead of PYTHONPATH.
    launcher = tree / "modelplane"
    launcher.write_text((BIN / "modelplane").read_text())
    return [sys.executable, "-P", str(launcher)], env


# `modelplane validate FILE` phase by phase, as the command runs them, in a fresh process.
PHASES = r"""
import sys, time
clock = time.perf_counter
marks = [clock()]
names = []
def mark(name):
    names.append(name)
    marks.append(clock())
from controller.loading import load
from controller.loading.loader import rest_of_repo
mark("imports: loading (pydantic, the API models, PyYAML)")
import pydantic.plugin._loader as plugins
list(plugins.get_plugins())
mark("pydantic's plugin discovery (imports importlib.metadata), done at the first validator")
paths = [sys.argv[1]]
load(paths, keep="data")
mark("the file: parsed, its kind's validator built")
result = load(paths, keep="data", context=rest_of_repo(paths))
mark("again with the rest of the repo (the other kinds' validators)")
from controller.engine.checks import open_engine
from controller.policy.evaluate import evaluate, parallel
from controller.policy.sources import BUILTIN, discover
from controller.triggers.git_source import context_for
mark("imports: policies, regorus, git")
context = context_for()
mark("git context")
engine = open_engine([f for f in discover((BUILTIN,)) if not f.is_test])
mark("policy engine: the library compiled")
with parallel(2):
    evaluate(engine, result.resources, context=context, others=result.context)
mark("decisions (in a forked decider)")
for name, a, b in zip(names, marks, marks[1:]):
    print(f"{(b - a) * 1000:.3f}\t{name}")
"""


def phase_costs(repeats: int) -> list[tuple[str, float]]:
    """Where ``modelplane validate FILE`` spends its time after start-up, phase by phase
    (:data:`PHASES`, each run a fresh process), medians in ms."""
    costs: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        out = subprocess.run(
            [sys.executable, "-c", PHASES, str(ONE_FILE.relative_to(ROOT))],
            capture_output=True,
            text=True,
            env=ENV,
            cwd=ROOT,
            check=True,
        ).stdout
        for line in out.splitlines():
            ms, name = line.split("\t")
            costs[name].append(float(ms))
    return [(name, statistics.median(values)) for name, values in costs.items()]


def import_costs(repeats: int) -> list[tuple[str, float]]:
    """Import time of ``modelplane validate FILE`` by top-level package (the sum of
    its modules' own times, so nothing counts twice), medians in ms."""
    costs: dict[str, list[float]] = defaultdict(list)
    for _ in range(repeats):
        cmd = [sys.executable, "-X", "importtime", str(BIN / "modelplane"), "validate", str(ONE_FILE)]
        err = subprocess.run(cmd, capture_output=True, text=True, env=ENV, cwd=ROOT).stderr
        totals: dict[str, float] = defaultdict(float)
        for line in err.splitlines():
            match = re.match(r"import time:\s+(\d+) \|\s+\d+ \|\s+(\S+)$", line)
            if match:
                name = match.group(2)
                package = ".".join(name.split(".")[:2]) if name.startswith("controller.") else name.split(".")[0]
                totals[package] += int(match.group(1)) / 1000
        for package, ms in totals.items():
            costs[package].append(ms)
        costs["(all imports)"].append(sum(totals.values()))
    ranked = sorted(((name, statistics.median(v)) for name, v in costs.items()), key=lambda kv: -kv[1])
    return ranked


def row(name: str, walls: list[float], rsss: list[float], base: float | None) -> str:
    wall = statistics.median(walls)
    rss = statistics.median(rsss)
    ratio = f"{wall / base:6.2f}x" if base else "       "
    return f"  {name:46s} {wall * 1000:9.1f} ms {rss:7.0f} MB  {ratio}   (runs: {len(walls)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, nargs="+", default=[1000, 10000], help="corpus sizes")
    parser.add_argument("--repeats", type=int, default=5, help="runs of each command (medians)")
    parser.add_argument("--peer-repeats", type=int, help="runs of check-jsonschema (default: --repeats)")
    parser.add_argument("--startup-repeats", type=int, default=15, help="runs of each one-file command")
    parser.add_argument("--compare-with", metavar="REV", help="also run the code at this git revision ('before')")
    args = parser.parse_args()
    peer_repeats = args.peer_repeats or args.repeats
    try:
        import jsonschema_rs  # noqa: F401
    except ImportError:
        raise SystemExit("the floor needs jsonschema_rs: .venv/bin/pip install jsonschema-rs") from None

    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "controller")], check=True, env=ENV)
    scratch = Path(tempfile.mkdtemp(prefix="modelplane-bench-"))
    modelplane = [str(BIN / "modelplane")]
    policies = ["--policies", str(ROOT / "controller" / "policy" / "library")]  # the built-in library, by path
    try:
        before = before_tree(args.compare_with, scratch) if args.compare_with else None
        print(
            f"python {sys.version.split()[0]}, {os.cpu_count()} cores; medians of interleaved runs; "
            "RSS = peak of the process"
        )
        for count in args.files:
            corpus = scratch / f"corpus-{count}"
            corpus.mkdir()
            make_corpus(corpus, count)
            commands: dict[str, tuple[list[str], dict[str, str] | None, int]] = {
                "modelplane validate --no-policy DIR": ([*modelplane, "validate", "--no-policy", str(corpus)], None, 0),
                "modelplane validate DIR (+ policies)": ([*modelplane, "validate", *policies, str(corpus)], None, 0),
            }
            if before is not None:
                cmd, env = before
                commands[f"  before ({args.compare_with}): --no-policy"] = (
                    [*cmd, "validate", "--no-policy", str(corpus)],
                    env,
                    0,
                )
                commands[f"  before ({args.compare_with}): + policies"] = (
                    [*cmd, "validate", *policies, str(corpus)],
                    env,
                    0,
                )
            commands["check-jsonschema --schemafile ... DIR/*"] = (
                [str(BIN / "check-jsonschema"), "--schemafile", str(SCHEMA), *map(str, sorted(corpus.iterdir()))],
                None,
                peer_repeats,
            )
            commands["floor: libyaml + jsonschema_rs, streaming"] = (
                [sys.executable, "-c", FLOOR, str(SCHEMA), str(corpus)],
                None,
                0,
            )
            walls: dict[str, list[float]] = defaultdict(list)
            rsss: dict[str, list[float]] = defaultdict(list)
            for repeat in range(args.repeats):  # interleaved, so all see the same machine state
                for name, (cmd, env, limit) in commands.items():
                    if limit and repeat >= limit:
                        continue
                    wall, rss = timed(cmd, env=env)
                    walls[name].append(wall)
                    rsss[name].append(rss)
            base = statistics.median(walls["modelplane validate --no-policy DIR"])
            print(f"\n{count} files ({sum(p.stat().st_size for p in corpus.iterdir()) / 1e6:.1f} MB):")
            print(f"  {'command':46s} {'wall':>12s} {'peak RSS':>10s}  vs --no-policy")
            for name in commands:
                print(row(name, walls[name], rsss[name], base))
            shutil.rmtree(corpus)

        one = {
            "modelplane --version": ([*modelplane, "--version"], None, (0,)),
            "modelplane validate FILE": ([*modelplane, "validate", *policies, str(ONE_FILE)], None, (0, 1)),
            "modelplane validate --no-policy FILE": (
                [*modelplane, "validate", "--no-policy", str(ONE_FILE)],
                None,
                (0,),
            ),
        }
        if before is not None:
            cmd, env = before
            one[f"  before ({args.compare_with}): --version"] = ([*cmd, "--version"], env, (0,))
            one[f"  before ({args.compare_with}): validate FILE"] = (
                [*cmd, "validate", *policies, str(ONE_FILE)],
                env,
                (0, 1),
            )
        one["floor: python + libyaml + jsonschema_rs, one file"] = (
            [sys.executable, "-c", FLOOR, str(SCHEMA), str(ONE_FILE)],
            None,
            (0,),
        )
        one["floor: python -c pass"] = ([sys.executable, "-c", "pass"], None, (0,))
        walls = defaultdict(list)
        rsss = defaultdict(list)
        for _ in range(args.startup_repeats):
            for name, (cmd, env, expect) in one.items():
                wall, rss = timed(cmd, expect, env)
                walls[name].append(wall)
                rsss[name].append(rss)
        print(f"\nstart-up, one file ({ONE_FILE.relative_to(ROOT)}):")
        for name in one:
            print(row(name, walls[name], rsss[name], None))
        print("\n  imports of `modelplane validate FILE` by package (python -X importtime, self times, medians):")
        for name, ms in import_costs(min(args.startup_repeats, 7))[:12]:
            print(f"    {ms:7.1f} ms  {name}")
        print("\n  `modelplane validate FILE` phase by phase (in a fresh process, medians):")
        for name, ms in phase_costs(min(args.startup_repeats, 11)):
            print(f"    {ms:7.1f} ms  {name}")
    finally:
        shutil.rmtree(scratch)


if __name__ == "__main__":
    main()
