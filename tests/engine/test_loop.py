"""The reconcile loop end to end, through the CLI, on the real example and data."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import jsonschema
from loop_helpers import DATA, MODEL, git, modelplane


def counts(repo: Path) -> dict[str, int]:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    try:
        return {
            t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            for t in ("runs", "model_versions", "promotions", "approvals", "data_checks", "audit_log")
        }
    finally:
        conn.close()


def test_example_reaches_production_after_two_approvals(repo: Path, upstream: Path) -> None:
    plan = modelplane(repo, "plan")
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.splitlines()[1:8] == [
        f"  1. data-gate breast-cancer: first check of content {plan.stdout.split('content ')[1][:8]}…",
        "  2. train breast-cancer-classifier: first training",
        "  3. metric-gate breast-cancer-classifier: evaluate gates on the held-out split",
        "  4. register breast-cancer-classifier: gates passed; register the version",
        "  5. promote breast-cancer-classifier -> Staging: after the gates pass",
        "  6. model-card breast-cancer-classifier: card for the new Staging version",
        "6 action(s) on 2 resource(s).",
    ]
    first = modelplane(repo, "apply")
    assert first.returncode == 0, first.stdout + first.stderr
    assert "trial 2/2: roc_auc=" in first.stdout  # search progress is shown
    status = modelplane(repo, "status").stdout
    assert "Model/breast-cancer-classifier: NotReady (AwaitingApproval) v1 is in Staging with 0/2 approvals" in status

    assert modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", "alice").returncode == 0
    again = modelplane(repo, "approve", "breast-cancer-classifier", "1", "--as", "alice")
    assert "had already approved" in again.stdout
    assert "NotReady (AwaitingApproval) v1 is in Staging with 1/2 approvals" in modelplane(repo, "plan").stdout
    modelplane(repo, "approve", "breast-cancer-classifier", "1", "--as", "bob")
    second = modelplane(repo, "apply")
    assert "ok: v1 -> Production" in second.stdout
    head = git(repo, "rev-parse", "HEAD").strip()
    status = json.loads(modelplane(repo, "status", "--format", "json").stdout)
    ready = next(c for c in status["Model/breast-cancer-classifier"]["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"], ready["message"]) == ("True", "Succeeded", "v1 is in Production")
    assert status["Model/breast-cancer-classifier"]["lastAppliedRevision"] == head

    # The model card: MCT JSON against the real schema, HF front matter, self-contained HTML.
    cards = repo / ".modelplane" / "cards"
    card = json.loads((cards / "breast-cancer-classifier-v1.json").read_text())
    schema = json.loads((upstream / "model-card-toolkit" / "model_card.schema.v0.0.2.json").read_text())
    jsonschema.validate(card, schema)
    assert f"git revision: {head}" in card["model_details"]["documentation"]
    assert "approvals: alice, bob" in card["model_details"]["documentation"]
    markdown = (cards / "breast-cancer-classifier-v1.md").read_text()
    assert markdown.startswith('---\nlicense: "bsd-3-clause"') and "model-index:" in markdown
    html = (cards / "breast-cancer-classifier-v1.html").read_text()
    assert "&gt;= 0.92</td><td>passed</td>" in html  # the ROC-AUC gate with its observed value
    assert "<svg" in html and "<script" not in html and "http://" not in html.replace("http://www.w3.org", "")

    # A second apply is a no-op and writes nothing.
    before = counts(repo)
    third = modelplane(repo, "apply")
    assert third.stdout.strip() == "Nothing to do: every resource is up to date."
    assert counts(repo) == before
    assert modelplane(repo, "audit", "verify").stdout.startswith("audit log intact: ")
    history = modelplane(repo, "registry", "history", "breast-cancer-classifier").stdout.splitlines()
    assert [line.split("  ")[1:3] for line in history] == [["v1", "None -> Staging"], ["v1", "Staging -> Production"]]


def test_editing_data_retrains_and_archives_the_old_production_version(repo: Path) -> None:
    modelplane(repo, "apply")
    modelplane(repo, "approve", "breast-cancer-classifier", "1", "--as", "alice")
    modelplane(repo, "approve", "breast-cancer-classifier", "1", "--as", "bob")
    modelplane(repo, "apply")
    data = repo / DATA
    lines = data.read_text().splitlines()
    data.write_text("\n".join(lines[:-20]) + "\n")  # drop 20 rows
    plan = modelplane(repo, "plan").stdout
    assert "data-gate breast-cancer: dataset content changed" in plan
    assert "train breast-cancer-classifier: dataset content changed" in plan
    assert plan.count("\n  ") >= 5 and "1 resource" not in plan
    out = modelplane(repo, "apply")
    assert out.returncode == 0, out.stdout
    modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", "alice")
    modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", "carol")
    modelplane(repo, "apply")
    listing = modelplane(repo, "registry", "list").stdout
    assert "breast-cancer-classifier v1: Archived" in listing
    assert "breast-cancer-classifier v2: Production" in listing
    runs = modelplane(repo, "runs", "list").stdout.splitlines()
    assert len(runs) == 2
    compare = modelplane(repo, "runs", "compare", runs[0].split()[0], runs[1].split()[0])
    assert compare.returncode == 0 and "metric roc_auc" in compare.stdout and "dataset" in compare.stdout


def test_failed_data_contract_stalls_the_chain_with_gx_evidence(repo: Path) -> None:
    data = repo / DATA
    rows = data.read_text().splitlines()
    broken = [rows[0]] + [("99.0" + row[row.index(",") :]) if i < 40 else row for i, row in enumerate(rows[1:])]
    data.write_text("\n".join(broken) + "\n")
    out = modelplane(repo, "apply")
    assert out.returncode == 1
    assert (
        "STALLED [DataContractFailed]: 5/6 expectations met; failed: "
        "expect_column_values_to_be_between[mean radius] (40 unexpected" in out.stdout
    )
    assert "train breast-cancer-classifier" in out.stdout and "(skipped: an earlier step did not succeed)" in out.stdout
    status = modelplane(repo, "status").stdout
    assert "Dataset/breast-cancer: Stalled (DataContractFailed)" in status
    assert "Model/breast-cancer-classifier: Stalled (DependencyNotReady)" in status
    assert counts(repo)["runs"] == 0
    # The evidence is in the audit log with the GX run id.
    import sqlite3 as db

    conn = db.connect(repo / ".modelplane" / "state.db")
    payload = json.loads(conn.execute("SELECT payload FROM audit_log WHERE event = 'data-gate'").fetchone()[0])
    assert payload["success"] is False and payload["gx_run_id"]
    # Nothing retries until the data changes, and nothing claims to be up to date.
    again = modelplane(repo, "apply")
    assert again.returncode == 1
    assert again.stdout.splitlines()[:3] == [
        "Nothing to apply; 2 resource(s) stalled until their inputs change (or --retry):",
        "  stalled: Dataset/breast-cancer: DataContractFailed: 5/6 expectations met; failed: "
        "expect_column_values_to_be_between[mean radius] (40 unexpected of 569)",
        "  stalled: Model/breast-cancer-classifier: DependencyNotReady: Dataset breast-cancer failed its gate",
    ]


def test_removed_column_trips_the_schema_circuit_breaker(repo: Path) -> None:
    import pandas as pd

    frame = pd.read_csv(repo / DATA).drop(columns=["mean area"])
    frame.to_csv(repo / DATA, index=False)
    out = modelplane(repo, "apply")
    assert "STALLED [DataContractFailed]: schema changed: missing column(s) mean area" in out.stdout


def test_failing_gate_stalls_with_gate_failed(repo: Path) -> None:
    model = repo / MODEL
    model.write_text(model.read_text().replace("threshold: 0.9\n", "threshold: 0.999\n"))
    out = modelplane(repo, "apply")
    assert out.returncode == 1
    assert "STALLED [GateFailed]: recall " in out.stdout and ">= 0.999 is false" in out.stdout
    status = modelplane(repo, "status").stdout
    assert "Model/breast-cancer-classifier: Stalled (GateFailed) recall" in status
    assert counts(repo)["model_versions"] == 0


def test_policy_denial_stalls_the_resource(repo: Path) -> None:
    model = repo / MODEL
    model.write_text(model.read_text().replace("threshold: 0.92", "threshold: 0.80"))
    plan = modelplane(repo, "plan")
    assert plan.returncode == 1
    assert "Model/breast-cancer-classifier: NotStalled" not in plan.stdout
    assert "Stalled (PolicyDenied) models.medical_min_auc:" in plan.stdout
    assert "train breast-cancer-classifier" not in plan.stdout
    assert "data-gate breast-cancer" in plan.stdout


def test_plan_at_a_revision_ignores_the_work_tree(repo: Path) -> None:
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / MODEL).write_text((repo / MODEL).read_text().replace("threshold: 0.92", "threshold: 0.80"))
    assert "PolicyDenied" in modelplane(repo, "plan").stdout
    at_rev = modelplane(repo, "plan", "--revision", first, "--format", "json")
    plan = json.loads(at_rev.stdout)
    assert plan["revision"] == first
    assert [a["action"] for a in plan["actions"]][:2] == ["data-gate", "train"]


def audit_events(repo: Path) -> list[tuple[str, str, dict]]:
    conn = sqlite3.connect(repo / ".modelplane" / "state.db")
    try:
        rows = conn.execute("SELECT event, subject, payload FROM audit_log ORDER BY seq").fetchall()
        return [(e, s, json.loads(p)) for e, s, p in rows]
    finally:
        conn.close()


def test_broken_data_file_is_a_clear_error_in_status_and_audit(repo: Path) -> None:
    (repo / DATA).write_bytes(b'mean radius,target\n"17.99,0\n')
    out = modelplane(repo, "apply")
    assert out.returncode == 1
    status = modelplane(repo, "status").stdout
    assert "Dataset/breast-cancer: Stalled (DataUnavailable) cannot read 'data/breast-cancer.csv' as csv" in status
    gate = [p for e, _, p in audit_events(repo) if e == "data-gate"]
    assert len(gate) == 1 and gate[0]["success"] is False
    assert modelplane(repo, "apply").stdout.startswith("Nothing to apply; 2 resource(s) stalled")
    assert counts(repo)["runs"] == 0


def test_missing_data_file_is_recorded_once(repo: Path) -> None:
    (repo / DATA).unlink()
    assert modelplane(repo, "apply").returncode == 1  # nothing can run: both resources are stalled
    status = modelplane(repo, "status").stdout
    assert (
        "Dataset/breast-cancer: Stalled (DataUnavailable) data file 'data/breast-cancer.csv' does not exist" in status
    )
    assert "Model/breast-cancer-classifier: Stalled (DependencyNotReady)" in status
    modelplane(repo, "apply")
    events = [(e, s) for e, s, _ in audit_events(repo)]
    assert events.count(("data-unavailable", "Dataset/breast-cancer")) == 1


def test_a_feature_the_dataset_does_not_declare_stops_apply_before_anything_runs(repo: Path) -> None:
    """Caught when the specs are validated, at the feature, not after the data gate and a training run."""
    model = repo / MODEL
    model.write_text(
        model.read_text().replace("  target: target\n", "  target: target\n  features: [mean radius, tumour grade]\n")
    )
    out = modelplane(repo, "apply")
    assert out.returncode == 1
    assert (
        f"{MODEL}:16:27: error [invalid-value] Model/breast-cancer-classifier: spec.features[1]: "
        "column 'tumour grade' is not declared by Dataset 'breast-cancer'" in out.stdout
    )
    assert not (repo / ".modelplane" / "artifacts").exists()
    assert counts(repo)["runs"] == counts(repo)["data_checks"] == 0


def test_estimator_off_the_allow_list_stops_apply_before_anything_runs(repo: Path) -> None:
    model = repo / MODEL
    model.write_text(model.read_text().replace("sklearn.ensemble.GradientBoostingClassifier", "os.system"))
    out = modelplane(repo, "apply")
    assert out.returncode == 1
    assert (
        "error [invalid-value] Model/breast-cancer-classifier: spec.estimator.class: estimator 'os.system'"
        in out.stdout
    )
    assert not (repo / ".modelplane" / "artifacts").exists()
    assert counts(repo)["runs"] == counts(repo)["data_checks"] == 0


def test_policies_see_the_changed_files_of_the_work_tree(repo: Path) -> None:
    from controller.triggers.git_source import context_for

    (repo / DATA).write_text((repo / DATA).read_text() + "")
    (repo / "notes.txt").write_text("new")
    (repo / MODEL).write_text((repo / MODEL).read_text() + "\n")
    context = context_for(str(repo))
    assert context.changed_files == ("notes.txt", str(MODEL))
    assert context.revision == git(repo, "rev-parse", "HEAD").strip()
    assert context.author == "Ada Lovelace <ada@example.org>" and context.branch == "main"


def test_plan_as_markdown_for_a_pull_request_comment(repo: Path) -> None:
    out = modelplane(repo, "plan", "--format", "markdown")
    head = git(repo, "rev-parse", "HEAD").strip()
    lines = out.stdout.splitlines()
    assert lines[0] == f"### modelplane plan for `{head[:12]}`"
    assert "| # | action | resource | why |" in lines
    assert "| 5 | promote → Staging | `Model/breast-cancer-classifier` | after the gates pass |" in lines


def test_unreachable_policy_engine_stalls_everything(repo: Path) -> None:
    out = modelplane(repo, "plan", "--opa-url", "http://127.0.0.1:9")
    assert out.returncode == 1  # stalled resources: never reported as fine
    assert "No changes" in out.stdout and "train" not in out.stdout
    assert (
        "Model/breast-cancer-classifier: Stalled (PolicyDenied) policy-engine-error: policy engine failed" in out.stdout
    )
    assert "Dataset/breast-cancer: Stalled (PolicyDenied)" in out.stdout


def test_approvals_by_people_off_the_approvers_list_do_not_promote(repo: Path) -> None:
    """Approvals given before the project listed its approvers (or by someone since taken
    off the list) are not counted: the plan says whose, and apply does not promote."""
    assert modelplane(repo, "apply").returncode == 0
    for who in ("mallory", "eve"):
        assert modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", who).returncode == 0
    (repo / "modelplane.yaml").write_text(
        "apiVersion: modelplane.io/v1alpha1\nkind: Project\nmetadata: {name: platform}\n"
        "spec:\n  approvers: [alice, BOB]\n"
    )
    plan = modelplane(repo, "plan").stdout
    assert (
        "v1 is in Staging with 0/2 approvals for Production (not counted: mallory, eve, not in the project's approvers)"
        in plan
    )
    modelplane(repo, "apply")
    assert "breast-cancer-classifier v1: Staging" in modelplane(repo, "registry", "list").stdout
    said = modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", "alice").stdout
    assert "(1 approval(s) counted; mallory, eve are not in the project's approvers)" in said
    modelplane(repo, "approve", "breast-cancer-classifier", "Staging", "--as", "bob")
    assert "ok: v1 -> Production" in modelplane(repo, "apply").stdout
