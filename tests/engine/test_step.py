"""`modelplane step`: one action per fresh process, what a Tekton task runs.

Chained by hand they reach the same end state as `apply`; a forged, stale or
out-of-order action is refused, and an action already done is not done twice."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from loop_helpers import modelplane

from controller.state.store import Store


def end_state(root: Path) -> dict[str, object]:
    store = Store(root / ".modelplane")
    try:
        return {
            # skops artifacts are not byte-reproducible (object ids and times in the zip): compare the runs.
            "versions": [(v.model, v.version, str(v.stage)) for v in store.registry.versions()],
            "runs": [(r.key, r.status, r.params, r.metrics, len(r.trials)) for r in store.runs.all()],
            "ledger": sorted((k, str(e.kind), str(e.outcome), e.attempts) for k, e in store.effects.all().items()),
            "statuses": {ref: str(s.condition("Ready").reason) for ref, s in store.statuses.all().items()},  # type: ignore[arg-type,union-attr]
            "events": sorted(r.event for r in store.audit.records()),
            "cards": sorted(p.name for p in (root / ".modelplane" / "cards").iterdir()),
        }
    finally:
        store.close()


def step(repo: Path, action: dict[str, object]) -> tuple[int, dict[str, object]]:
    path = repo / ".modelplane-action.json"
    path.write_text(json.dumps(action))
    out = modelplane(repo, "step", str(path))
    assert out.stderr == "", out.stderr
    return out.returncode, json.loads(out.stdout)


def test_each_action_kind_in_a_fresh_process_reaches_the_same_end_state_as_apply(repo: Path, tmp_path: Path) -> None:
    twin = tmp_path / "twin"
    shutil.copytree(repo, twin)
    assert modelplane(twin, "apply").returncode == 0

    actions = json.loads(modelplane(repo, "plan", "--format", "json").stdout)["actions"]
    assert [a["action"] for a in actions] == [
        "data-gate",
        "train",
        "metric-gate",
        "register",
        "promote",
        "model-card",
    ]
    # Out of order: the gate before training is refused, and changes nothing.
    code, refused = step(repo, actions[2])
    assert (code, refused["outcome"]) == (1, "Refused") and refused["message"] == f"run {actions[1]['key']} first"
    for action in actions:
        code, outcome = step(repo, action)
        assert (code, outcome["outcome"], outcome["key"]) == (0, "Succeeded", action["key"]), outcome
    assert end_state(repo) == end_state(twin)
    # Run again: already done, nothing doubles.
    code, again = step(repo, actions[1])
    assert (code, again["outcome"]) == (0, "Succeeded") and again["message"].startswith("already done: trained in")
    assert end_state(repo) == end_state(twin)


def test_forged_or_stale_actions_are_refused(repo: Path) -> None:
    actions = json.loads(modelplane(repo, "plan", "--format", "json").stdout)["actions"]
    forged = {**actions[0], "inputs": {**actions[0]["inputs"], "content_hash": "sha256:" + "f" * 64}}
    code, out = step(repo, forged)
    assert (code, out["outcome"]) == (1, "Refused") and "is not in the plan" in out["message"]
    invented = {**actions[3], "key": actions[3]["key"] + "x"}
    assert step(repo, invented)[1]["outcome"] == "Refused"
    assert not (repo / ".modelplane" / "artifacts").exists()

    (repo / "bad.json").write_text('{"action": "scale", "resource": "Model/m", "key": "k", "reason": "r"}')
    bad = modelplane(repo, "step", "bad.json")
    assert bad.returncode == 2 and bad.stderr.startswith("modelplane: bad.json: unknown action 'scale' (one of: ")
    (repo / "bad.json").write_text("{not json")
    assert modelplane(repo, "step", "bad.json").stderr.startswith("modelplane: bad.json: not JSON: ")


def test_step_by_kind_and_resource_runs_that_action_of_the_current_plan(repo: Path) -> None:
    out = modelplane(repo, "step", "data-gate", "Dataset/breast-cancer")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["outcome"] == "Succeeded"
    missing = modelplane(repo, "step", "data-gate", "Dataset/breast-cancer")
    assert (missing.returncode, missing.stderr) == (
        2,
        "modelplane: the plan has no data-gate action for Dataset/breast-cancer\n",
    )
