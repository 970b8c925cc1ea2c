"""Benchmark: the in-process policy engine (regorus) on the whole Rego library.

Measures, side by side in one run:
  * one decision: one resource against every package that defines finding rules
    (what ``evaluate`` asks the engine for each resource), p50/p99/max per example kind;
  * 1,000 and 10,000 resources: ``evaluate(EmbeddedEngine(files), resources)`` end to
    end, building the engine included (loading the YAML is not timed), in one process
    (the library's default) and with ``workers=2`` (what ``modelplane validate`` asks
    for); its parts (build, set_data, decisions); writing out the decision log records;
    and the time per resource at each size, to show the policy step is linear;
  * the baseline: a fresh engine per resource (parse and compile the library, set
    the data, evaluate every package for that one resource), timed on a sample of
    the smallest corpus and extrapolated linearly when the sample is smaller than it.

The corpus is the example chain (Dataset, Model, InferenceService, ChaosExperiment,
PolicyException) copied and renamed per group, as in ``validate_bench.py``. It must
produce exactly one ``datasets.retention_required`` finding per dataset, each waived
by its group's PolicyException; anything else stops the run.

Usage: python bench/policy_bench.py [--resources 1000 10000] [--repeats 5] [--decisions 2000] [--fresh-sample 100]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

# bench/ is on sys.path when this file is run as a script: reuse the validation benchmark's corpus.
from validate_bench import EXAMPLES, ROOT, make_corpus

from controller.loading import LoadedResource, load
from controller.policy.embedded import EmbeddedEngine
from controller.policy.evaluate import Context, PolicyOutcome, data_for, evaluate, input_for
from controller.policy.sources import PolicyFile, discover

# Inside the example PolicyException's window (approved 2026-11-01, expires 2027-04-30),
# so the waivers, and the findings checked below, do not change with the calendar.
TODAY = date(2026, 12, 1)
CONTEXT = Context()
WARMUP = 200
RULE = "datasets.retention_required"


def finding_packages(engine: EmbeddedEngine) -> list[str]:
    """The packages ``evaluate`` asks about for every resource, in its order."""
    return sorted({r.package for r in engine.rules() if r.is_finding})


def decide(engine: EmbeddedEngine, item: LoadedResource) -> dict[str, Any]:
    """One decision: one resource against every package with finding rules (one query)."""
    return engine.decide(input_for(item))


def percentiles(samples_ns: list[int]) -> tuple[float, float, float]:
    """p50, p99 and max, in microseconds."""
    cuts = statistics.quantiles(samples_ns, n=100, method="inclusive")
    return cuts[49] / 1000, cuts[98] / 1000, max(samples_ns) / 1000


def time_decisions(cases: dict[str, Callable[[], object]], rounds: int) -> dict[str, tuple[float, float, float]]:
    """Each case ``rounds`` times after a warm-up; cases interleaved so all see the same machine state."""
    for _ in range(WARMUP):
        for run in cases.values():
            run()
    samples: dict[str, list[int]] = {name: [] for name in cases}
    clock = time.perf_counter_ns
    for _ in range(rounds):
        for name, run in cases.items():
            start = clock()
            run()
            samples[name].append(clock() - start)
    return {name: percentiles(values) for name, values in samples.items()}


def shared_engine_run(
    files: list[PolicyFile], data: dict[str, Any], items: list[LoadedResource]
) -> tuple[list[Any], dict[str, float]]:
    """Only what the engine does in ``evaluate``: one engine, the data once, every package per resource."""
    clock = time.perf_counter
    start = clock()
    engine = EmbeddedEngine(files)
    built = clock()
    engine.set_data(data)
    loaded = clock()
    results = [decide(engine, item) for item in items]
    done = clock()
    return results, {"build": built - start, "set_data": loaded - built, "calls": done - loaded}


def fresh_engine_run(files: list[PolicyFile], data: dict[str, Any], items: list[LoadedResource]) -> list[Any]:
    """The baseline: for every resource, a new engine (parse + compile), the data, every package."""
    results = []
    for item in items:
        engine = EmbeddedEngine(files)
        engine.set_data(data)
        results.append(decide(engine, item))
    return results


def check_outcome(outcome: PolicyOutcome, resources: list[LoadedResource], finding_rules: int) -> None:
    """Exactly one waived ``datasets.retention_required`` finding per dataset, nothing else."""
    problems = []
    datasets = [r for r in resources if r.resource.kind == "Dataset"]
    if outcome.evaluated != len(resources):
        problems.append(f"evaluated {outcome.evaluated} resources, expected {len(resources)}")
    if len(outcome.decisions) != len(resources) * finding_rules:
        problems.append(f"{len(outcome.decisions)} decisions, expected {len(resources)} x {finding_rules}")
    expected = {f"Dataset/{d.resource.name}" for d in datasets}
    for finding in outcome.findings:
        group = (finding.resource or "").rpartition("-")[2]
        waiver = f"PolicyException/breast-cancer-retention-{group} "
        if finding.rule != RULE or finding.resource not in expected:
            problems.append(f"unexpected finding {finding.rule} on {finding.resource}: {finding.message}")
        elif not (finding.waived_by or "").startswith(waiver):
            problems.append(
                f"{finding.resource}: {RULE} not waived by {waiver.strip()} (waived_by={finding.waived_by})"
            )
    found = [f.resource for f in outcome.findings if f.rule == RULE]
    if sorted(found) != sorted(expected):
        problems.append(
            f"{len(found)} {RULE} findings on {len(set(found))} datasets, expected one on each of {len(expected)}"
        )
    if problems:
        raise SystemExit("policy outcome is not what the corpus should produce:\n  " + "\n  ".join(problems[:20]))


def load_corpus(directory: Path, count: int) -> list[LoadedResource]:
    """The corpus as ``modelplane validate`` loads it: in parallel, keeping each resource's
    data and positions (its typed model is rebuilt only if asked for)."""
    result = load([str(directory)], workers=os.cpu_count() or 1, keep="data")
    if result.findings or len(result.resources) != count:
        raise SystemExit(f"corpus did not load cleanly: {len(result.resources)} resources, {result.findings[:3]}")
    return result.resources


def row(label: str, seconds: float, note: str = "") -> None:
    print(f"   {label:58s} {seconds * 1000:9.1f} ms  {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resources", type=int, nargs="+", default=[1000, 10000], help="corpus sizes (multiples of 5)")
    parser.add_argument("--repeats", type=int, default=5, help="runs of the corpus measurements (medians)")
    parser.add_argument("--decisions", type=int, default=2000, help="timed single decisions per kind")
    parser.add_argument("--fresh-sample", type=int, default=100, help="resources timed with a fresh engine each")
    args = parser.parse_args()
    if any(n <= 0 or n % len(EXAMPLES) for n in args.resources):
        parser.error(f"--resources must be a positive multiple of {len(EXAMPLES)} (whole example chains)")
    if args.repeats < 1 or args.decisions < 2 or args.fresh_sample < 1:
        parser.error("--repeats and --fresh-sample must be >= 1, --decisions >= 2")

    library = discover(ROOT / "controller" / "policy" / "library")  # the built-in library
    files = [f for f in library if not f.is_test]  # what validate and audit load for deciding
    engine = EmbeddedEngine(files)
    rules = engine.rules()
    packages = finding_packages(engine)
    finding_rules = sum(r.is_finding for r in rules)
    print(
        f"library: {len(files)} policy files (and {len(library) - len(files)} *_test.rego, not loaded for "
        f"decisions), {len({r.package for r in rules})} packages, "
        f"{len(packages)} with finding rules ({', '.join(packages)}), {finding_rules} finding rules"
    )

    # 1. One decision: each example kind against the whole library, one engine, data set once.
    examples = load([str(p) for p in EXAMPLES])
    if examples.findings or len(examples.resources) != len(EXAMPLES):
        raise SystemExit(f"examples did not load cleanly: {examples.findings[:3]}")
    engine.set_data(data_for(examples.resources, CONTEXT))
    cases: dict[str, Callable[[], object]] = {
        f"{item.resource.kind:16s} {item.resource.name}": lambda item=item: decide(engine, item)
        for item in sorted(examples.resources, key=lambda r: r.resource.kind != "Model")
    }
    decisions = time_decisions(cases, args.decisions)

    # 2 and 3. The corpora: evaluate() with one engine vs a fresh engine per resource. Each measurement
    # gets the corpus freshly loaded (not timed), as ``modelplane validate`` has it.
    sizes = sorted(args.resources)
    names = ["evaluate", "evaluate, 2 processes", "decision log", "build", "set_data", "calls", "engine", "fresh"]
    med: dict[int, dict[str, float]] = {}
    counts: dict[int, tuple[int, int]] = {}
    sample = min(args.fresh_sample, sizes[0])
    for n in sizes:
        work = Path(tempfile.mkdtemp(prefix="modelplane-policy-bench-"))
        samples: dict[str, list[float]] = {name: [] for name in names}
        try:
            make_corpus(work, n)
            for repeat in range(args.repeats):  # interleaved, so all see the same machine state
                resources = load_corpus(work, n)
                start = time.perf_counter()
                outcome = evaluate(EmbeddedEngine(files), resources, context=CONTEXT, today=TODAY)
                samples["evaluate"].append(time.perf_counter() - start)
                start = time.perf_counter()
                written = outcome.decisions
                samples["decision log"].append(time.perf_counter() - start)
                if repeat == 0:
                    check_outcome(outcome, resources, finding_rules)
                    counts[n] = (len(outcome.findings), len(outcome.exceptions))
                start = time.perf_counter()  # the same resources, decided in two processes
                forked = evaluate(EmbeddedEngine(files), resources, context=CONTEXT, today=TODAY, workers=2)
                samples["evaluate, 2 processes"].append(time.perf_counter() - start)
                if forked.findings != outcome.findings or [d.result for d in forked.decisions] != [
                    d.result for d in written
                ]:
                    raise SystemExit("two processes decided differently from one")

                resources = load_corpus(work, n)
                shared, parts = shared_engine_run(files, data_for(resources, CONTEXT), resources)
                for name, value in parts.items():
                    samples[name].append(value)
                samples["engine"].append(sum(parts.values()))

                if n == sizes[0]:
                    data = data_for(resources, CONTEXT)
                    start = time.perf_counter()
                    fresh = fresh_engine_run(files, data, resources[:sample])
                    samples["fresh"].append(time.perf_counter() - start)
                    if fresh != shared[:sample]:
                        raise SystemExit("a fresh engine per resource decided differently from one shared engine")
        finally:
            shutil.rmtree(work)
        med[n] = {name: statistics.median(values) for name, values in samples.items() if values}

    print()
    print(f"1. One decision: one resource x {len(packages)} packages ({finding_rules} finding rules) in one query,")
    print(f"   data set once; {args.decisions} timed per line after {WARMUP} warm-up, interleaved")
    print(f"   {'resource':50s} {'p50':>9s} {'p99':>9s} {'max':>9s}")
    for name, (p50, p99, top) in decisions.items():
        print(f"   {name:50s} {p50 / 1000:6.3f} ms {p99 / 1000:6.3f} ms {top / 1000:6.3f} ms")
    p99s = [p99 / 1000 for _, p99, _ in list(decisions.values())[: len(examples.resources)]]
    verdict = "met" if max(p99s) < 1 else "MISSED"
    print(f"   target p99 < 1 ms: {verdict} (Model p99 {p99s[0]:.3f} ms; worst kind {max(p99s):.3f} ms)")

    for n in sizes:
        m = med[n]
        total = m["evaluate"]
        print()
        print(f"2. {n} resources against the whole library, medians of {args.repeats} runs (loading not timed):")
        row("evaluate(EmbeddedEngine(files), resources): one process", total, "1.00x")
        row(
            "  the same, workers=2 (forked deciders)",
            m["evaluate, 2 processes"],
            f"{m['evaluate, 2 processes'] / total:.2f}x",
        )
        row("  then outcome.decisions (records for the decision log)", m["decision log"])
        row("  engine work only (build, set_data, decide per resource)", m["engine"], f"{m['engine'] / total:.2f}x")
        row("    EmbeddedEngine(files): parse + compile the library", m["build"])
        row(f"    set_data: {n} resources", m["set_data"])
        row(
            f"    one decision ({len(packages)} packages) x {n} resources",
            m["calls"],
            f"{m['calls'] / n * 1000:.3f} ms each",
        )
        findings, waived = counts[n]
        print(f"   per resource, end to end: {total / n * 1000:.3f} ms (one process)")
        print(
            f"   findings: {findings}, all {RULE}, one per Dataset, {waived} waived by their group's "
            f"PolicyException: as expected"
        )
    if len(sizes) > 1:
        small, large = sizes[0], sizes[-1]
        factor = large / small
        print()
        print(f"   linearity, {large} vs {small} resources ({factor:g}x the resources):")
        for name in ("evaluate", "evaluate, 2 processes", "set_data", "calls", "decision log"):
            grow = med[large][name] / med[small][name]
            print(f"     {name:40s} {grow:5.1f}x the time ({grow / factor:4.2f}x per resource)")
        print(f"   target 1,000 resources < 2 s wall: {'met' if med[small]['evaluate'] < 2 else 'MISSED'}")

    n = sizes[0]
    total = med[n]["evaluate"]
    estimated = med[n]["fresh"] * n / sample
    print()
    if sample < n:
        print(f"3. Fresh engine per resource, timed on the first {sample} resources and EXTRAPOLATED x{n / sample:g}:")
    else:
        print(f"3. Fresh engine per resource, all {n} resources timed:")
    row(f"{sample} resources: new engine, set_data, one decision each", med[n]["fresh"])
    row("  per resource", med[n]["fresh"] / sample)
    row(f"{n} resources" + (" (extrapolated)" if sample < n else ""), estimated)
    print(f"   fresh engine per resource / evaluate() with one engine = {estimated / total:.1f}x")
    print(
        f"   fresh engine per resource / engine work only, one engine = {estimated / med[n]['engine']:.1f}x"
        " (like for like)"
    )


if __name__ == "__main__":
    main()
