"""Shared fixtures: paths to the repo, the example specs and the upstream reference data."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UPSTREAM = ROOT / "tests" / "fixtures" / "upstream"


@pytest.fixture(autouse=True)
def _repo_cwd(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test from the repo root, as a user runs the CLI."""
    monkeypatch.chdir(ROOT)


@pytest.fixture
def upstream() -> Path:
    """Real upstream formats (the SARIF schema, the Model Card Toolkit schema), copied from
    ``../shared/upstream`` into ``tests/fixtures/upstream`` so that CI needs no ``../shared``.
    ``tests/fixtures/test_upstream_fixtures.py`` keeps the copies equal to the originals."""
    return UPSTREAM


@pytest.fixture(autouse=True)
def _no_server_outlives_its_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test that applies the example serves it (a supervisor and a KServe replica, and for
    a canary a Prometheus, in the background, as for a user): stop what it started under its
    temporary directory."""
    scratch = request.getfixturevalue("tmp_path") if "tmp_path" in request.fixturenames else None
    yield
    if scratch is not None:
        stop_served(scratch)


def stop_served(root: Path) -> None:
    """Stop the model servers and the Prometheus of every state directory under ``root``."""
    from controller.backends import local_prometheus
    from controller.backends.serving.local import LocalServing
    from controller.backends.serving.supervisor import LOCK_FILE

    for lock in root.glob(f"**/serving/*/{LOCK_FILE}"):
        LocalServing(lock.parent.parent.parent).stop(lock.parent.name)
    for lock in root.glob("**/prometheus/prometheus.lock"):
        local_prometheus.stop(lock.parent.parent)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest tests (those that serve the example) first, so that the two workers of
    ``pytest -n 2`` do not end waiting on one of them."""
    items.sort(key=lambda item: item.get_closest_marker("served") is None)
