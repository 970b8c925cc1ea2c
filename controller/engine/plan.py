"""The planner: desired vs observed -> ordered actions, and why. Pure.

Each action carries an idempotency key (resource, spec digest, input
digests), so applying it twice, or again after a crash, has one effect.
Resources that need nothing get a note saying where they stand (Ready,
waiting for approvals, stalled on a failed gate), which is also their status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from controller.engine.desired import Desired, DesiredModel, Observed


@dataclass(frozen=True)
class Action:
    kind: str  # data-gate | train | metric-gate | register | promote | model-card
    resource: str  # "Kind/name"
    reason: str
    key: str
    params: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, ...] = ()  # keys of actions that must succeed first

    def describe(self) -> str:
        target = self.params.get("stage")
        what = f"{self.kind} {self.resource.split('/', 1)[1]}" + (f" -> {target}" if target else "")
        return f"{what}: {self.reason}"


@dataclass(frozen=True)
class Note:
    """Where a resource stands when it needs no action (its status)."""

    condition: str  # Ready | Stalled | Reconciling
    status: bool
    reason: str
    message: str


@dataclass
class Plan:
    revision: str | None
    actions: list[Action] = field(default_factory=list)
    notes: dict[str, Note] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not self.actions

    def to_dict(self) -> dict[str, Any]:
        return {
            "revision": self.revision,
            "actions": [
                {
                    "action": a.kind,
                    "resource": a.resource,
                    "reason": a.reason,
                    "key": a.key,
                    **({"stage": a.params["stage"]} if "stage" in a.params else {}),
                }
                for a in self.actions
            ],
            "resources": {
                ref: {"condition": n.condition, "status": n.status, "reason": n.reason, "message": n.message}
                for ref, n in sorted(self.notes.items())
            },
        }


def _short(digest: str | None) -> str:
    return (digest or "none").removeprefix("sha256:")[:8]


def _train_reason(model: DesiredModel, content_hash: str, observed: Observed) -> str:
    last = observed.last_run.get(model.name)
    if last is None:
        return "first training"
    reasons = []
    if last["dataset_hash"] != content_hash:
        reasons.append(f"dataset content changed {_short(last['dataset_hash'])}…→{_short(content_hash)}…")
    if last["spec_digest"] != model.spec_digest:
        reasons.append("spec changed")
    if last["status"] == "running":
        reasons.append("the last run was interrupted")
    return "; ".join(reasons) or "code version changed"


def plan(desired: Desired, observed: Observed) -> Plan:
    out = Plan(desired.revision)
    planned_checks: set[str] = set()

    for name, dataset in sorted(desired.datasets.items()):
        ref = f"Dataset/{name}"
        if ref in desired.denied:
            out.notes[ref] = Note("Stalled", True, "PolicyDenied", desired.denied[ref])
        elif dataset.error:
            out.notes[ref] = Note("Stalled", True, "DataUnavailable", dataset.error)
        elif dataset.check_key not in observed.data_checks:
            before = observed.last_data_hash.get(name)
            if before is None:
                reason = f"first check of content {_short(dataset.content_hash)}…"
            elif before != dataset.content_hash:
                reason = f"dataset content changed {_short(before)}…→{_short(dataset.content_hash)}…"
            else:
                reason = "data contract changed"
            out.actions.append(
                Action(
                    "data-gate",
                    ref,
                    reason,
                    dataset.check_key or "",
                    {"dataset": name, "hash": dataset.content_hash},
                )
            )
            planned_checks.add(dataset.check_key or "")
        elif not observed.data_checks[dataset.check_key]:
            summary = observed.data_summaries.get(dataset.check_key, "")
            out.notes[ref] = Note("Stalled", True, "DataContractFailed", summary or "the data contract failed")
        else:
            out.notes[ref] = Note(
                "Ready", True, "Succeeded", f"contract met for content {_short(dataset.content_hash)}…"
            )

    for name, model in sorted(desired.models.items()):
        ref = f"Model/{name}"
        dataset = desired.datasets.get(model.dataset)
        if ref in desired.denied:
            out.notes[ref] = Note("Stalled", True, "PolicyDenied", desired.denied[ref])
            continue
        if dataset is None or dataset.content_hash is None or model.train_key is None:
            out.notes[ref] = Note("Stalled", True, "DependencyNotReady", f"Dataset {model.dataset} is not available")
            continue
        dataset_ref = f"Dataset/{model.dataset}"
        if dataset_ref in desired.denied or (
            dataset.check_key in observed.data_checks and not observed.data_checks[dataset.check_key]
        ):
            out.notes[ref] = Note("Stalled", True, "DependencyNotReady", f"Dataset {model.dataset} failed its gate")
            continue
        after = (dataset.check_key,) if dataset.check_key in planned_checks else ()
        run = observed.runs.get(model.train_key)
        key = model.train_key
        actions: list[Action] = []
        if run is None or run["status"] == "running":
            reason = _train_reason(model, dataset.content_hash, observed)
            actions.append(Action("train", ref, reason, key, {"dataset": model.dataset}, after))
            actions.append(
                Action("metric-gate", ref, "evaluate gates on the held-out split", f"{key}/gate", {}, (key,))
            )
            actions += _staging(model, ref, key, "after the gates pass", (f"{key}/gate",))
        elif run["status"] == "failed":
            out.notes[ref] = Note("Stalled", True, "ReconcileFailed", run.get("error") or "training failed")
            continue
        elif run["status"] == "trained":
            actions.append(Action("metric-gate", ref, "training finished; gates not evaluated yet", f"{key}/gate", {}))
            actions += _staging(model, ref, key, "after the gates pass", (f"{key}/gate",))
        elif run["status"] == "gate-failed":
            failed = [g for g in run["gates"] if not g["passed"]]
            text = "; ".join(f"{g['metric']} {g['observed']} {g['operator']} {g['threshold']} is false" for g in failed)
            out.notes[ref] = Note("Stalled", True, "GateFailed", text or "a fairness slice is out of bounds")
            continue
        else:  # passed
            versions = {v.run_id: v for v in observed.versions.get(name, [])}
            version = versions.get(run["id"])
            if version is None:
                actions.append(Action("register", ref, "gates passed; version not registered yet", f"{key}/register"))
                actions += _staging(model, ref, key, "gates passed", (f"{key}/register",))
            else:
                actions += _after_registration(model, ref, version.version, version.stage, observed, out)
        out.actions.extend(actions)
        if not actions and ref not in out.notes:
            out.notes[ref] = Note("Ready", True, "Succeeded", "up to date")
    return out


def _staging(model: DesiredModel, ref: str, key: str, reason: str, after: tuple[str, ...]) -> list[Action]:
    if not model.staging_automatic:
        return []
    return [
        Action("promote", ref, reason, f"{key}/Staging", {"stage": "Staging", "run_key": key}, after),
        Action(
            "model-card",
            ref,
            "card for the new Staging version",
            f"{key}/card/Staging",
            {"run_key": key},
            (f"{key}/Staging",),
        ),
    ]


def _after_registration(
    model: DesiredModel, ref: str, version: int, stage: str, observed: Observed, out: Plan
) -> list[Action]:
    actions: list[Action] = []
    if stage == "None" and model.staging_automatic:
        key = f"{model.name}/v{version}/Staging"
        return [
            Action("promote", ref, "gates passed", key, {"stage": "Staging", "version": version}),
            Action(
                "model-card",
                ref,
                f"card for v{version}",
                f"{model.name}/v{version}/card/Staging",
                {"version": version},
                (key,),
            ),
        ]
    if stage in ("Staging", "Production") and (model.name, version) not in observed.cards:
        actions.append(
            Action(
                "model-card",
                ref,
                f"v{version} in {stage} has no card",
                f"{model.name}/v{version}/card",
                {"version": version},
            )
        )
    if stage == "Staging" and model.production_approvals is not None:
        have = observed.approvals.get((model.name, version), 0)
        need = model.production_approvals
        if have >= need:
            key = f"{model.name}/v{version}/Production"
            actions.append(
                Action(
                    "promote",
                    ref,
                    f"{have}/{need} approvals",
                    key,
                    {"stage": "Production", "version": version, "archive": model.archive_existing},
                )
            )
            actions.append(
                Action(
                    "model-card",
                    ref,
                    f"card for v{version} in Production",
                    f"{model.name}/v{version}/card/Production",
                    {"version": version},
                    (key,),
                )
            )
        elif not actions:
            out.notes[ref] = Note(
                "Ready",
                False,
                "AwaitingApproval",
                f"v{version} is in Staging with {have}/{need} approvals for Production",
            )
    elif not actions:
        out.notes[ref] = Note("Ready", True, "Succeeded", f"v{version} is in {stage}")
    return actions
