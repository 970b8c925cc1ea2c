"""The read-side commands in-process, on a state built through the store's API:
``runs list|show|compare``, ``registry list|history``, ``status --format json``, ``approve``."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.api.status import (
    Condition,
    ConditionStatus,
    ConditionType,
    Reason,
    ResourceStatus,
    RunStatus,
    Stage,
)
from controller.cli import main
from controller.state.store import Store


def settled(state: Path) -> Store:
    store = Store(state)
    for i, (run, roc) in enumerate((("aaaa11112222", 0.95), ("bbbb33334444", 0.97)), start=1):
        store.runs.start(run, f"k{i}", "m", f"rev{i}", "d", "sha256:" + str(i) * 64, "spec")
        store.runs.finish(
            f"k{i}",
            status=RunStatus.TRAINED,
            params={"max_depth": i},
            metrics={"roc_auc": roc},
            fairness={},
            trials=[{"params": {"max_depth": i}, "score": roc}],
            environment={"python": "3.11"},
            artifact_digest="sha256:" + "a" * 64,
            duration_s=1.5,
            error=None,
            revision=f"rev{i}",
        )
        store.runs.record_gates(f"k{i}", passed=True, gates=[], fairness={}, revision=f"rev{i}")
        store.registry.register("m", run, "sha256:" + "a" * 64, f"rev{i}")
        store.registry.promote(
            "m",
            i,
            Stage.STAGING,
            key=f"k{i}/Staging",
            actor="modelplane",
            reason="gates passed",
            revision=None,
            archive_existing=True,
        )
    store.statuses.set(
        "Model/m",
        ResourceStatus(
            conditions=[
                Condition(
                    type=t,
                    status=ConditionStatus.TRUE if t == ConditionType.STALLED else ConditionStatus.FALSE,
                    reason=Reason.GATE_FAILED,
                    message="recall 0.8 >= 0.9 is false",
                    lastTransitionTime=datetime(2026, 11, 23, tzinfo=UTC),
                )
                for t in ConditionType
            ],
            observedRevision="rev2",
        ),
    )
    return store


@pytest.fixture
def state(tmp_path: Path) -> Path:
    settled(tmp_path / "state").close()
    return tmp_path / "state"


def test_runs_show_prints_the_whole_run_as_json(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "aaaa", "--state-dir", str(state)]) == 0
    run = json.loads(capsys.readouterr().out)
    assert (run["id"], run["status"], run["params"], run["metrics"]) == (
        "aaaa11112222",
        "passed",
        {"max_depth": 1},
        {"roc_auc": 0.95},
    )
    assert run["trials"] == [{"params": {"max_depth": 1}, "score": 0.95}] and run["revision"] == "rev1"


def test_runs_show_an_unknown_or_ambiguous_id_is_a_usage_error(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--state-dir", str(state), "runs", "show", "zzz"]) == 2
    assert capsys.readouterr().err == "modelplane: no run (or more than one) matches zzz\n"


def test_runs_compare_shows_deltas(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "compare", "aaaa", "bbbb", "--state-dir", str(state)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert next(line for line in lines if line.startswith("metric roc_auc")).split() == [
        "metric",
        "roc_auc",
        "0.95",
        "0.97",
        "+0.0200",
    ]


def test_status_json_is_the_typed_status(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["status", "--format", "json", "--state-dir", str(state)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert list(status) == ["Model/m"]
    assert ResourceStatus.model_validate(status["Model/m"]).condition(ConditionType.STALLED).status == "True"  # type: ignore[union-attr]
    assert main(["status", "--state-dir", str(state)]) == 0
    assert capsys.readouterr().out == "Model/m: Stalled (GateFailed) recall 0.8 >= 0.9 is false [applied -]\n"


def test_registry_history_and_list(state: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["registry", "history", "m", "--state-dir", str(state)]) == 0
    history = [line.split("  ", 1)[1] for line in capsys.readouterr().out.splitlines()]
    assert history == [
        "v1  None -> Staging  by modelplane: gates passed",
        "v1  Staging -> Archived  by modelplane: replaced by version 2",
        "v2  None -> Staging  by modelplane: gates passed",
    ]
    assert main(["registry", "list", "--state-dir", str(state)]) == 0
    assert [line.split("  ")[0] for line in capsys.readouterr().out.splitlines()] == [
        "m v1: Archived",
        "m v2: Staging",
    ]


def test_approve_counts_a_person_once_and_names_a_missing_version(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["approve", "m", "Staging", "--as", "alice", "--state-dir", str(state)]) == 0
    assert main(["approve", "m", "2", "--as", "alice", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[1] == "alice had already approved m v2; still 1 approval(s)."
    assert main(["approve", "m", "Production", "--as", "bob", "--state-dir", str(state)]) == 2
    assert capsys.readouterr().err == "modelplane: m has no version in Production\n"
