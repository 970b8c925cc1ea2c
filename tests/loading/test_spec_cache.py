"""Spec files remembered by content: a hit loads exactly what parsing the file loads."""

from __future__ import annotations

import os
import shutil
import sqlite3
from pathlib import Path

import pytest

from controller.loading import LoadResult, load, load_text
from controller.loading.cache import SpecCache
from controller.loading.loader import MAX_FILE_BYTES, PARALLEL_MIN_FILES
from controller.state.cache import Cache

ROOT = Path(__file__).resolve().parents[2]


def _described(result: LoadResult) -> list[object]:
    """Everything a loaded resource and the load's findings say, in order."""
    out: list[object] = [result.files, result.findings, result.rejected]
    for item in result.resources:
        doc = item.document
        out.append(
            (
                item.kind,
                item.name,
                item.name_at,
                item.edges,
                doc.file,
                doc.index,
                doc.line,
                doc.column,
                doc.root,
                doc.positions.tolist(),
                doc.canonical_json(),
                item.location(("spec",)),
                item.model().model_dump(mode="json"),
                item.columns,
            )
        )
    return out


@pytest.fixture
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example specs and the invalid examples (files with findings), loaded by relative name."""
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    shutil.copytree(ROOT / "chaos", tmp_path / "chaos")
    shutil.copytree(ROOT / "tests" / "invalid", tmp_path / "invalid")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _cache(tmp_path: Path) -> SpecCache:
    return SpecCache(Cache(tmp_path / ".state"), max_file_bytes=MAX_FILE_BYTES)


def test_a_hit_loads_what_parsing_loads(tree: Path) -> None:
    paths = ["specs", "chaos", "invalid"]
    plain = load(paths, keep="data")
    first, second = _cache(tree), _cache(tree)
    assert _described(load(paths, keep="data", cache=first)) == _described(plain)
    assert first.hits == 0
    assert _described(load(paths, keep="data", cache=second)) == _described(plain)
    # Only files that load cleanly on their own are remembered (a dangling reference is
    # found across files, every time: those files are remembered too).
    clean = [f for f in plain.files if not (one := load_text(Path(f).read_text(), f)).findings and one.resources]
    assert 0 < len(clean) < len(plain.files) and "invalid/dangling-reference.yaml" in clean
    assert second.hits == len(clean) and second.misses == len(plain.files) - len(clean)
    assert any(f.rule == "dangling-reference" for f in plain.findings)
    references = load(paths, keep="references", cache=_cache(tree))
    assert [(r.key, r.name_at, r.edges) for r in references.resources] == [
        (r.key, r.name_at, r.edges) for r in plain.resources
    ]
    assert references.findings == plain.findings


def test_a_load_that_keeps_typed_models_parses_every_file(tree: Path) -> None:
    """Remembered data is canonical JSON (sorted keys); typed models for steps keep the file's order."""
    cache = _cache(tree)
    load(["specs"], keep="data", cache=cache)
    again = _cache(tree)
    result = load(["specs"], cache=again)
    assert again.hits == 0
    assert list(result.by_kind("Model")[0].raw) == ["apiVersion", "kind", "metadata", "spec"]


def test_an_edit_that_keeps_size_and_timestamps_is_seen(tree: Path) -> None:
    """Entries are keyed by the bytes, read every time: restoring the file's size and
    modification time (as an editor racing the clock, or an attacker, might) hides nothing."""
    name = tree / "specs" / "models" / "breast-cancer-classifier.yaml"
    load(["specs"], keep="data", cache=_cache(tree))
    before = name.stat()
    text = name.read_text()
    name.write_text(text.replace("threshold: 0.92", "threshold: 0.95"))
    os.utime(name, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert name.stat().st_size == before.st_size and name.stat().st_mtime_ns == before.st_mtime_ns
    cache = _cache(tree)
    result = load(["specs"], keep="data", cache=cache)
    (model,) = result.by_kind("Model")
    assert model.raw["spec"]["gates"][0]["threshold"] == 0.95
    assert cache.misses == 1


def test_a_file_that_now_fails_is_reported_not_remembered(tree: Path) -> None:
    name = tree / "specs" / "models" / "breast-cancer-classifier.yaml"
    load(["specs"], keep="data", cache=_cache(tree))
    name.write_text(name.read_text().replace("dataset: breast-cancer", "datset: breast-cancer"))
    cache = _cache(tree)
    result = load(["specs"], keep="data", cache=cache)
    assert "unknown-field" in {f.rule for f in result.findings}
    assert result.findings == load(["specs"], keep="data").findings
    again = _cache(tree)
    load(["specs"], keep="data", cache=again)
    assert again.misses == 1  # still parsed every time, until it loads cleanly


def test_a_damaged_or_foreign_cache_is_ignored(tree: Path) -> None:
    plain = _described(load(["specs"], keep="data"))
    load(["specs"], keep="data", cache=_cache(tree))
    conn = sqlite3.connect(tree / ".state" / "cache.db")
    conn.execute("UPDATE spec_files SET value = 'not json' WHERE name LIKE '%datasets%'")
    conn.commit()
    conn.close()
    cache = _cache(tree)
    assert _described(load(["specs"], keep="data", cache=cache)) == plain
    assert cache.misses == 1
    (tree / ".state" / "cache.db").write_bytes(b"this is not a database" * 100)
    assert _described(load(["specs"], keep="data", cache=_cache(tree))) == plain


def test_a_smaller_size_limit_does_not_reuse_entries(tree: Path) -> None:
    load(["specs"], keep="data", cache=_cache(tree))
    small = SpecCache(Cache(tree / ".state"), max_file_bytes=100)
    result = load(["specs"], keep="data", max_file_bytes=100, cache=small)
    assert small.hits == 0
    assert {f.rule for f in result.findings} == {"file-too-large"}


def test_parallel_misses_are_remembered_and_match(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files loaded by forked workers are remembered by the caller, each under its own bytes."""
    good = (ROOT / "specs" / "datasets" / "breast-cancer.yaml").read_text()
    (tmp_path / "specs").mkdir()
    for i in range(PARALLEL_MIN_FILES + 10):
        (tmp_path / "specs" / f"{i:04d}.yaml").write_text(good.replace("name: breast-cancer", f"name: bc-{i}"))
    monkeypatch.chdir(tmp_path)
    plain = _described(load(["specs"], keep="data"))
    assert _described(load(["specs"], keep="data", workers=2, cache=_cache(tmp_path))) == plain
    cache = _cache(tmp_path)
    assert _described(load(["specs"], keep="data", workers=2, cache=cache)) == plain
    assert cache.hits == PARALLEL_MIN_FILES + 10


def test_column_facts_of_a_remembered_file_are_still_checked(tree: Path) -> None:
    """Columns are checked across files: a Dataset that stops declaring a Model's feature
    is reported even though the Model's file is remembered, not parsed."""
    paths = ["specs", "chaos"]
    assert load(paths, keep="data", cache=_cache(tree)).findings == []
    dataset = tree / "specs" / "datasets" / "breast-cancer.yaml"
    dataset.write_text(dataset.read_text().replace("name: mean radius", "name: mean radios"))
    cache = _cache(tree)
    result = load(paths, keep="references", cache=cache)
    assert cache.hits > 0
    assert [(f.rule, f.location.file) for f in result.findings if "mean radius" in f.message] == [
        ("invalid-value", "specs/models/breast-cancer-classifier.yaml")
    ]
