"""The loader on the real example and on edge cases of files and YAML."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from fork_counter import count_forks

from controller.api import Dataset, Model
from controller.loading import UsageError, load, load_text

DATASET = """\
apiVersion: modelplane.io/v1alpha1
kind: Dataset
metadata:
  name: iris
spec:
  source: {sklearn: iris}
"""


def test_example_specs_load_without_findings() -> None:
    result = load(["specs", "chaos"])
    assert result.findings == []
    kinds = sorted(r.resource.kind for r in result.resources)
    assert kinds == ["ChaosExperiment", "Dataset", "InferenceService", "Model", "PolicyException"]


def test_example_model_is_typed_and_keeps_positions() -> None:
    result = load(["specs"])
    (model,) = result.by_kind("Model")
    assert isinstance(model.resource, Model)
    spec = model.resource.spec
    assert spec.dataset == "breast-cancer"
    gate = spec.gates[0]
    assert (gate.metric.value, gate.operator.value, gate.threshold) == ("roc_auc", ">=", 0.92)
    assert spec.promotion.production is not None and spec.promotion.production.approvals == 2
    text = Path(model.document.file).read_text().splitlines()
    loc = model.location(("spec", "gates", 0, "threshold"))
    assert text[loc.line - 1][loc.column - 1 :].startswith("0.92")


def test_default_paths_are_specs_and_chaos() -> None:
    assert {Path(f).parts[0] for f in load().files} == {"specs", "chaos"}


def test_missing_path_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match=r"nope\.yaml: no such file or directory"):
        load(["nope.yaml"])


def test_directories_are_walked_recursively_skipping_hidden(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / "b" / "iris.yml").write_text(DATASET)
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "x.yaml").write_text("not: [valid")
    (tmp_path / "notes.txt").write_text("ignored")
    result = load([str(tmp_path)])
    assert result.files == [str(tmp_path / "a" / "b" / "iris.yml")]
    assert result.findings == []


def test_stdin_is_read_with_dash() -> None:
    result = load(["-"], stdin=io.BytesIO(DATASET.encode()))
    assert result.files == ["<stdin>"]
    assert [r.ref for r in result.resources] == ["Dataset/iris"]


def test_file_over_size_limit_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    big.write_text(DATASET + "#" * 2000 + "\n")
    result = load([str(big)], max_file_bytes=1000)
    assert [(f.rule, f.message) for f in result.findings] == [
        ("file-too-large", "file is larger than the 1000-byte limit")
    ]


def test_unreadable_file_is_an_io_error() -> None:
    result = load(["/proc/self/mem"])
    assert [f.rule for f in result.findings] == ["io-error"]
    assert result.findings[0].message.startswith("cannot read file: ")


def test_invalid_utf8_is_reported_with_its_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(DATASET.encode() + b"# caf\xe9\n")
    (finding,) = load([str(bad)]).findings
    assert (finding.rule, finding.location.line, finding.message) == ("yaml-syntax", 7, "file is not valid UTF-8")


def test_empty_file_holds_no_documents(tmp_path: Path) -> None:
    empty = tmp_path / "empty.yaml"
    empty.write_text("# only a comment\n")
    assert [(f.rule, f.message) for f in load([str(empty)]).findings] == [
        ("empty-document", "file holds no YAML documents")
    ]


def test_trailing_document_separator_is_fine() -> None:
    result = load_text(DATASET + "---\n", "x.yaml")
    assert result.findings == [] and len(result.resources) == 1


def test_crlf_line_endings_keep_positions() -> None:
    text = DATASET.replace("sklearn: iris", "sklearn: iriss").replace("\n", "\r\n")
    (finding,) = load_text(text, "x.yaml").findings
    assert (finding.location.line, finding.location.column) == (6, 21)


def test_dates_stay_text_until_the_model_parses_them() -> None:
    result = load_text(
        """\
apiVersion: modelplane.io/v1alpha1
kind: PolicyException
metadata: {name: w}
spec:
  rules: [models.gates_required]
  resources: [{kind: Model, name: m}]
  reason: Exploratory model, never deployed.
  approvedBy: a
  approvedAt: 2026-12-01
  expires: 2027-01-31
""",
        "w.yaml",
    )
    assert result.findings == []
    assert result.resources[0].raw["spec"]["expires"] == "2027-01-31"
    assert str(result.resources[0].resource.spec.expires) == "2027-01-31"


def test_merge_keys_fill_in_missing_keys() -> None:
    text = """\
apiVersion: modelplane.io/v1alpha1
kind: Dataset
metadata:
  name: iris
  labels: &common {owner: ml-platform, team: vision}
spec:
  source: {sklearn: iris}
---
apiVersion: modelplane.io/v1alpha1
kind: Dataset
metadata:
  name: wine
  labels:
    <<: {owner: ml-platform, team: vision}
    team: tabular
spec:
  source: {sklearn: wine}
"""
    result = load_text(text, "x.yaml")
    assert result.findings == []
    wine = result.resources[1].resource
    assert isinstance(wine, Dataset)
    assert wine.metadata.labels == {"owner": "ml-platform", "team": "tabular"}


def test_several_errors_in_one_document_are_all_reported() -> None:
    text = DATASET.replace("source: {sklearn: iris}", "source: {sklearn: iris, format: xml}\n  colums: []")
    rules = sorted(f.rule for f in load_text(text, "x.yaml").findings)
    assert rules == ["invalid-value", "unknown-field"]


def test_a_thousand_node_document_without_aliases_is_accepted() -> None:
    columns = "\n".join(f"    - {{name: c{i}, type: float}}" for i in range(3000))
    text = DATASET + f"  columns:\n{columns}\n"
    result = load_text(text, "wide.yaml")
    assert result.findings == []
    assert len(result.resources[0].resource.spec.columns) == 3000


def test_parallel_load_matches_serial_load(tmp_path: Path) -> None:
    """Worker processes ship documents back without node graphs; positions still resolve."""
    from controller.loading.loader import PARALLEL_MIN_FILES

    good = Path("specs/datasets/breast-cancer.yaml").read_text()
    for i in range(PARALLEL_MIN_FILES + 10):
        text = good.replace("name: breast-cancer", f"name: breast-cancer-{i}")
        if i % 50 == 7:  # a typo now and then, at a known place
            text = text.replace("schemaMatch: exact", "schemaMach: exact")
        (tmp_path / f"{i:04d}.yaml").write_text(text)
    serial = load([str(tmp_path)], workers=1)
    parallel = load([str(tmp_path)], workers=2)
    assert parallel.files == serial.files
    assert [r.ref for r in parallel.resources] == [r.ref for r in serial.resources]
    assert parallel.findings == serial.findings
    line = next(i for i, text in enumerate(good.splitlines(), 1) if "schemaMatch:" in text)
    assert len(serial.findings) == 5 and {f.location.line for f in serial.findings} == {line}
    first = parallel.resources[-1]
    assert first.location(("spec", "contract", "schemaMatch")) == serial.resources[-1].location(
        ("spec", "contract", "schemaMatch")
    )


def _tree(tmp_path: Path, count: int) -> Path:
    good = Path("specs/datasets/breast-cancer.yaml").read_text()
    for i in range(count):
        (tmp_path / f"{i:04d}.yaml").write_text(good.replace("name: breast-cancer", f"name: breast-cancer-{i}"))
    return tmp_path


def test_load_never_touches_the_garbage_collector(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The collector is process-wide: a load in one server thread must not switch it off for the others."""
    import gc

    from controller.loading import load_blobs
    from controller.loading.loader import PARALLEL_MIN_FILES

    tree = _tree(tmp_path, PARALLEL_MIN_FILES)
    calls: list[str] = []
    for name in ("disable", "enable", "freeze", "unfreeze", "collect", "set_threshold"):
        monkeypatch.setattr(gc, name, lambda *args, name=name: calls.append(name))
    enabled = gc.isenabled()
    load([str(tree)])
    load([str(tree)], workers=2)
    load_text(DATASET, "x.yaml")
    load_blobs([("x.yaml", DATASET.encode())])
    assert calls == []
    assert gc.isenabled() == enabled


def test_load_forks_no_worker_unless_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import multiprocessing

    from controller.loading.loader import PARALLEL_MIN_FILES

    tree = _tree(tmp_path, PARALLEL_MIN_FILES + 1)
    forks = count_forks(monkeypatch)
    result = load([str(tree)])
    assert forks == [] and multiprocessing.active_children() == []
    assert len(result.resources) == PARALLEL_MIN_FILES + 1
    # Asked for two workers in a single-threaded process (a fresh one: test runners keep threads).
    script = (
        "import os, sys\n"
        "from controller.loading import load\n"
        "forks = []\n"
        "real = os.fork\n"
        "os.fork = lambda: forks.append(1) or real()\n"
        "result = load([sys.argv[1]], workers=2)\n"
        "print(len(forks), len(result.resources))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, str(tree)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", str(PARALLEL_MIN_FILES + 1)], "asked for two workers: one process is forked"


def test_load_from_a_thread_never_forks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server thread asking for workers gets the same result, loaded in its own process."""
    import multiprocessing
    from concurrent.futures import ThreadPoolExecutor

    from controller.loading.loader import PARALLEL_MIN_FILES

    tree = _tree(tmp_path, PARALLEL_MIN_FILES + 1)
    serial = load([str(tree)])
    forks = count_forks(monkeypatch)
    with ThreadPoolExecutor(1) as pool:
        threaded = pool.submit(load, [str(tree)], workers=2).result()
    assert forks == [] and multiprocessing.active_children() == []
    assert [r.ref for r in threaded.resources] == [r.ref for r in serial.resources]
    assert threaded.findings == serial.findings


INVALID_AND_EXAMPLES = ["tests/invalid", "specs", "chaos"]


def test_what_a_load_keeps_does_not_change_what_it_finds() -> None:
    full = load(INVALID_AND_EXAMPLES)
    assert full.findings, "the invalid examples must produce findings"
    for keep in ("data", "references"):
        lean = load(INVALID_AND_EXAMPLES, keep=keep)
        assert lean.findings == full.findings, keep
        assert (lean.files, lean.rejected) == (full.files, full.rejected)
        assert [(r.ref, r.name_at, r.edges) for r in lean.resources] == [
            (r.ref, r.name_at, r.edges) for r in full.resources
        ]


def test_keep_data_rebuilds_the_model_when_asked() -> None:
    full = {r.ref: r for r in load(["specs", "chaos"]).resources}
    data = load(["specs", "chaos"], keep="data")
    for item in data.resources:
        assert item._model is None
        assert item.raw == full[item.ref].raw
        assert item.location(("metadata", "name")) == full[item.ref].location(("metadata", "name"))
        assert item.resource == full[item.ref].resource
        assert item.resource is item.resource  # rebuilt once


def test_keep_references_keeps_no_data() -> None:
    from controller.loading.loader import DataNotKept

    (item,) = load(["specs/models"], keep="references").resources
    assert (item.kind, item.name) == ("Model", "breast-cancer-classifier")
    assert [(e.kind, e.name, e.path) for e in item.edges] == [("Dataset", "breast-cancer", ("spec", "dataset"))]
    with pytest.raises(DataNotKept, match="Model/breast-cancer-classifier: loaded with keep='references'"):
        _ = item.raw
    with pytest.raises(ValueError, match="keep must be one of"):
        load(["specs"], keep="everything")  # type: ignore[arg-type]


def _rglob_oracle(root: str) -> list[str]:
    """How the loader walked a directory before: pathlib's rglob, filtered and sorted (and,
    since dangling links are reported rather than skipped, keeping those)."""
    base = Path(root)

    def hidden(p: Path) -> bool:
        return any(part.startswith(".") for part in p.relative_to(base).parts)

    return [
        str(p)
        for p in sorted(
            p
            for p in base.rglob("*")
            if p.suffix in (".yaml", ".yml") and (p.is_file() or (p.is_symlink() and not p.exists())) and not hidden(p)
        )
    ]


def test_directory_walk_finds_what_rglob_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from controller.loading.loader import discover

    tree = tmp_path / "tree"
    for name in [
        "a-b.yaml",
        "a/b.yaml",
        "a/c/d.yml",
        "a.b.yml",
        "x.YAML",
        "trailing.yaml.",
        "z.yaml.txt",
        ".hidden.yaml",
        ".git/config.yaml",
        "b/.hidden/deep.yaml",
        "dir.yaml/inner.yaml",
        "é/ü.yaml",
        "10.yaml",
        "9.yaml",
    ]:
        (tree / name).parent.mkdir(parents=True, exist_ok=True)
        (tree / name).write_text("a: 1\n")
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "linked.yaml").write_text("a: 1\n")
    (outside / "sub" / "in-linked-dir.yaml").write_text("a: 1\n")
    (tree / "link-to-file.yaml").symlink_to(outside / "linked.yaml")
    (tree / "link-to-dir").symlink_to(outside / "sub")
    (tree / "broken.yaml").symlink_to(tmp_path / "nowhere.yaml")
    found = list(discover([str(tree)]))
    assert found == _rglob_oracle(str(tree))
    assert str(tree / "link-to-file.yaml") in found and str(tree / "dir.yaml" / "inner.yaml") in found
    assert not [f for f in found if "/." in f or "in-linked-dir" in f]
    assert str(tree / "broken.yaml") in found  # a dangling link is listed, so that reading it reports it
    assert list(discover([str(tree) + "/"])) == found
    monkeypatch.chdir(tree)
    assert list(discover(["."])) == _rglob_oracle(".") == [str(Path(f).relative_to(tree)) for f in found]
