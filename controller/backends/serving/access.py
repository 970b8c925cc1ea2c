"""The runtime access decision of a served model, by the policy library's ``access`` package.

The same rules ``modelplane policy serve`` answers on ``POST /v1/data/access``
(``controller/policy/library/access.rego``), evaluated in-process by the embedded
engine in each model server replica, over the data the deployer wrote into the
service's configuration: the InferenceService, its Model and that model's Dataset.
The gateway asks once per caller and consent (and keeps the answer: the policy and
its data do not change while a replica runs).
"""

from __future__ import annotations

from typing import Any

from controller.backends.serving.gateway import Decide, Decision, DecisionError
from controller.policy.engine import EngineError
from controller.policy.sources import library

ACCESS_PACKAGE = "access"


def access_decider(service: str, environment: str, data: dict[str, Any]) -> Decide:
    """A :data:`~.gateway.Decide` for ``service``; ``data`` is ``data.modelplane``."""
    from controller.policy.embedded import EmbeddedEngine

    files = [f for f in library() if not f.is_test and f.path.endswith(f"{ACCESS_PACKAGE}.rego")]
    if not files:
        raise DecisionError("the policy library has no access package")
    engine = EmbeddedEngine(files)
    engine.set_data(data)
    path = f"/models/{environment}/{service}/predict"

    def decide(caller: str, groups: tuple[str, ...], consent: bool) -> Decision:
        query = {"method": "POST", "path": path, "user": caller, "groups": list(groups), "consent": consent}
        try:
            answer = engine.query(ACCESS_PACKAGE, query)
        except EngineError as exc:
            raise DecisionError(str(exc)) from None
        if not isinstance(answer, dict):
            raise DecisionError("the access package gave no answer")
        reasons = answer.get("reasons") or []
        return Decision(answer.get("allow") is True, tuple(sorted(str(r) for r in reasons)))

    return decide


def access_data(
    service: dict[str, Any], model: dict[str, Any] | None, dataset: dict[str, Any] | None
) -> dict[str, Any]:
    """``data.modelplane`` for the access package: the service, its model and dataset."""
    resources: dict[str, dict[str, Any]] = {"InferenceService": {service["metadata"]["name"]: service}}
    if model is not None:
        resources["Model"] = {model["metadata"]["name"]: model}
    if dataset is not None:
        resources["Dataset"] = {dataset["metadata"]["name"]: dataset}
    return {"resources": resources}
