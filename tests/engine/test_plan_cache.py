"""plan through the state directory's cache plans exactly what it plans without it."""

from __future__ import annotations

import gc
import json
import os
import sqlite3
import time
from pathlib import Path

import pytest
from loop_helpers import DATA, MODEL, modelplane

import controller.state.cache as cache_module
from controller.engine.events import Events, Phase, StepEvent
from controller.engine.reconcile import Settings, reconcile_revision
from controller.state.store import Store
from controller.triggers.git_source import GitSource


def _plan(repo: Path, store: Store, *, cached: bool) -> dict[str, object]:
    source = GitSource(repo, cache=store.cache if cached else None)
    outcome = reconcile_revision(source, None, store, Settings())
    assert outcome.plan is not None
    return outcome.plan.to_dict()


def _same_size_edit(path: Path, old: bytes, new: bytes) -> None:
    """Edit ``path`` keeping its size, then put its access and modification times back."""
    before = path.stat()
    assert len(old) == len(new)
    text = path.read_bytes()
    assert old in text
    path.write_bytes(text.replace(old, new, 1))
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_cached_plans_match_uncached_ones_through_edits(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cache_module, "RACY_NS", 50_000_000)  # remember files 50 ms old (not 3 s)
    monkeypatch.chdir(repo)  # as the CLI runs: the work tree's files by relative name
    time.sleep(0.1)
    store = Store(repo / ".modelplane")
    first = _plan(repo, store, cached=True)
    assert first == _plan(repo, store, cached=False)
    rows = (
        sqlite3.connect(repo / ".modelplane" / "cache.db")
        .execute("SELECT (SELECT count(*) FROM spec_files), (SELECT count(*) FROM data_digests)")
        .fetchone()
    )
    assert rows == (len([*(repo / "specs").rglob("*.yaml"), *(repo / "chaos").rglob("*.yaml")]), 1)
    assert _plan(repo, store, cached=True) == first

    _same_size_edit(repo / DATA, b"1\n", b"0\n")  # the data: a label flipped
    after_data = _plan(repo, store, cached=True)
    assert after_data == _plan(repo, store, cached=False) != first
    _same_size_edit(repo / MODEL, b"threshold: 0.92", b"threshold: 0.93")  # a spec
    after_spec = _plan(repo, store, cached=True)
    assert after_spec == _plan(repo, store, cached=False) != after_data
    store.close()


def test_the_cli_plans_the_same_with_and_without_its_cache(repo: Path) -> None:
    first = modelplane(repo, "plan", "-o", "json")
    assert first.returncode == 0, first.stderr
    assert (repo / ".modelplane" / "cache.db").is_file()
    again = modelplane(repo, "plan", "-o", "json")
    assert again.stdout == first.stdout
    (repo / ".modelplane" / "cache.db").write_bytes(b"not a database" * 100)
    damaged = modelplane(repo, "plan", "-o", "json")
    assert (damaged.returncode, damaged.stdout) == (0, first.stdout)
    assert json.loads(first.stdout)["actions"], "a fresh state plans the whole chain"


def test_the_cli_switches_the_collector_off_until_a_step_starts() -> None:
    from controller.cli.reconcile import _own_process

    events = Events()
    enabled = gc.isenabled()
    with _own_process(events):
        assert not gc.isenabled()
        events.emit(StepEvent(Phase.PROGRESS, "train", "Model/m", "k", None))
        assert not gc.isenabled()
        events.emit(StepEvent(Phase.STARTED, "train", "Model/m", "k", None))
        assert gc.isenabled() == enabled
    assert gc.isenabled() == enabled
    gc.disable()
    try:  # a caller that had it off keeps it off
        with _own_process(Events()):
            pass
        assert not gc.isenabled()
    finally:
        if enabled:
            gc.enable()
