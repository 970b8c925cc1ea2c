"""Helpers for the attack tests of served replicas: the service they attack, and the
deployment record the engine's deploy step writes."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from pathlib import Path

from controller.backends.serving.access import access_data
from controller.backends.serving.config import Caller, ServiceConfig, Variant
from controller.state.clock import now
from controller.state.records import Deployment
from controller.state.store import Store

NAME = "breast-cancer-api"


def consenting_service(artifacts: Path, digest: str, token: str, version: int = 1) -> ServiceConfig:
    """``breast-cancer-api`` in production, for group ``clinicians`` with consent, serving
    ``digest`` as ``version``; one caller, ``alice`` (a clinician), holding ``token``."""
    service = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": NAME},
        "spec": {
            "model": {"name": "classifier", "version": 1},
            "environment": "production",
            "access": {"groups": ["clinicians"], "requireConsent": True},
        },
    }
    return ServiceConfig(
        NAME,
        "production",
        str(artifacts.resolve()),
        (Variant("stable", "classifier", version, digest),),
        (Caller("alice", hashlib.sha256(token.encode()).hexdigest(), ("clinicians",)),),
        access_data(service, None, None),
    )


def record_deployment(store: Store, served: ServiceConfig, url: str | None) -> None:
    """What the engine's deploy step (``_go_live``) records once ``served`` serves."""
    version = served.variants[0].version
    deployment = Deployment(
        served.service, "local", "classifier", version, None, 0.0, 0, None, None, None, "digest", url, 1, 1, None, now()
    )
    store.deployments.record(deployment, "deployed", {}, served_config=replace(served, callers=()).to_json())
