"""Data-file digests remembered by file identity, as git's index does, racy files excepted."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import controller.state.cache as cache_module
import reconcilers.data as data
from controller.api import Dataset
from controller.state.cache import Cache

ROOT = Path(__file__).resolve().parents[2]


def _dataset() -> Dataset:
    from controller.loading import load

    (loaded,) = load([str(ROOT / "specs" / "datasets")]).resources
    assert isinstance(loaded.resource, Dataset)
    return loaded.resource


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "breast-cancer.csv").write_bytes((ROOT / "data" / "breast-cancer.csv").read_bytes())
    return tmp_path


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The data files actually read (the real reader, counted)."""
    seen: list[Path] = []
    real = data._read_bytes

    def counted(path: Path, shown: str) -> bytes:
        seen.append(path)
        return real(path, shown)

    monkeypatch.setattr(data, "_read_bytes", counted)
    return seen


def _hash(repo: Path, cache: Cache | None) -> str:
    dataset = _dataset()
    return data.content_hash(dataset, {dataset.name: dataset}, repo, cache)


def test_an_unchanged_old_file_is_not_read_again(
    repo: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cache_module, "RACY_NS", 50_000_000)  # 50 ms instead of 3 s
    time.sleep(0.1)
    expected = _hash(repo, None)
    cache = Cache(repo / ".state")
    assert _hash(repo, cache) == expected
    cache.flush()
    assert len(reads) == 2
    again = Cache(repo / ".state")  # a later process
    assert _hash(repo, again) == expected
    assert len(reads) == 2, "answered from the cache, not read"


def test_a_file_changed_within_the_racy_window_is_read_every_time(repo: Path, reads: list[Path]) -> None:
    """Just written: a later write in the same timestamp tick could keep its identity, so
    its digest is not remembered (git's racy-clean rule)."""
    path = repo / "data" / "breast-cancer.csv"
    path.write_bytes(path.read_bytes())  # modified now
    for _ in range(3):
        cache = Cache(repo / ".state")
        _hash(repo, cache)
        cache.flush()
    assert len(reads) == 3
    assert cache.remember_digest(str(path), path.stat(), "sha256:x", time.time_ns()) is False


def test_an_edit_that_restores_size_and_modification_time_is_seen(
    repo: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack on a stat cache: rewrite the data with the same size and put its mtime back.
    The change time moves with any write and cannot be set back: the digest is taken again."""
    monkeypatch.setattr(cache_module, "RACY_NS", 50_000_000)
    path = repo / "data" / "breast-cancer.csv"
    time.sleep(0.1)
    cache = Cache(repo / ".state")
    before_hash = _hash(repo, cache)
    cache.flush()
    before = path.stat()
    text = path.read_bytes()
    swapped = text.replace(b"1\n", b"0\n", 1) if b"1\n" in text else text.replace(b"0\n", b"1\n", 1)
    assert swapped != text and len(swapped) == len(text)
    path.write_bytes(swapped)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    later = Cache(repo / ".state")
    assert _hash(repo, later) == _hash(repo, None) != before_hash


def test_a_replaced_file_is_read_again(repo: Path, reads: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "RACY_NS", 50_000_000)
    path = repo / "data" / "breast-cancer.csv"
    time.sleep(0.1)
    cache = Cache(repo / ".state")
    _hash(repo, cache)
    cache.flush()
    other = repo / "data" / "other.csv"
    other.write_bytes(path.read_bytes().replace(b"\n", b"\r\n", 1))
    os.replace(other, path)  # a new file (another inode) at the same path
    assert _hash(repo, Cache(repo / ".state")) == _hash(repo, None)


def test_a_missing_file_is_still_reported(repo: Path) -> None:
    (repo / "data" / "breast-cancer.csv").unlink()
    with pytest.raises(data.DataError, match="does not exist"):
        _hash(repo, Cache(repo / ".state"))


def test_an_unusable_cache_answers_nothing_and_keeps_nothing(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "RACY_NS", 0)
    (repo / ".state").mkdir()
    (repo / ".state" / "cache.db").write_bytes(b"garbage, not SQLite" * 200)
    cache = Cache(repo / ".state")
    assert _hash(repo, cache) == _hash(repo, None)
    cache.flush()
    assert list(cache.rows()) == []
    (repo / ".state" / "cache.db").unlink()
    (repo / ".state" / "cache.db").mkdir()  # cannot even be opened
    assert _hash(repo, Cache(repo / ".state")) == _hash(repo, None)
