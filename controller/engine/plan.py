"""The planner: the per-kind planners in dependency order. Pure.

``plan(desired, observed)`` -> an ordered :class:`~controller.engine.actions.Plan`:
actions (each with its idempotency key and why) and a note per resource that
needs none (its status). ChaosExperiment has no planner yet: it is validated and
policy-checked, not reconciled.
"""

from __future__ import annotations

from controller.engine.actions import Plan
from controller.engine.desired import Desired, Observed
from controller.engine.planners.dataset import plan_datasets
from controller.engine.planners.model import plan_models
from controller.engine.planners.service import plan_services

# Dependency order: a Model needs its Dataset; an InferenceService serves what the registry holds.
PLANNERS = (plan_datasets, plan_models, plan_services)


def plan(desired: Desired, observed: Observed, *, retry: bool = False) -> Plan:
    out = Plan(desired.revision)
    for planner in PLANNERS:
        planner(desired, observed, out, retry=retry)
    return out
