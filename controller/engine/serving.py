"""Served models, outside the reconcile loop: what serves where, stopping, callers.

Library calls behind ``modelplane serve``: :func:`service_statuses` joins what the
state store says each InferenceService serves with what its supervisor reports;
:func:`stop` stops a service's server (the next ``apply`` starts it again, as it
does for a server that crashed) and :func:`stop_monitoring` the Prometheus of canary
analysis; :func:`add_caller` and :func:`remove_caller` change who may call served
models and give the running servers the new list at once (a reload without a gap),
each change in the audit log.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from controller.backends import local_prometheus
from controller.backends.serving.config import Caller, ConfigError, parse
from controller.backends.serving.local import LocalServing
from controller.backends.serving.process import ServingError
from controller.state import lock
from controller.state.store import Store

CALLERS_LOCK_WAIT_S = 60.0  # an apply's step takes seconds; a whole apply --watch may take longer


def service_statuses(store: Store, service: str | None = None) -> list[dict[str, Any]]:
    """Each deployed service (or the one named): its endpoint, what each variant serves
    with its share of the calls, and the health its supervisor reports."""
    serving = LocalServing(store.state_dir)
    deployments = store.deployments.all()
    names = sorted(set(deployments) | set(serving.services()))
    out: list[dict[str, Any]] = []
    for name in names:
        if service is not None and name != service:
            continue
        status = serving.status(name)
        deployment = deployments.get(name)
        out.append(
            {
                **status.to_dict(),
                "deployed": deployment.to_dict() if deployment else None,
            }
        )
    return out


def stop(store: Store, service: str, *, actor: str) -> bool:
    """Stop ``service``'s server and replicas; False when none ran. Audited."""
    stopped = LocalServing(store.state_dir).stop(service)
    if stopped:
        with store.transaction():
            store.audit.append("serving-stopped", f"InferenceService/{service}", {}, actor=actor)
    return stopped


def stop_monitoring(store: Store) -> bool:
    """Stop the Prometheus modelplane runs for canary analysis; False when none ran."""
    return local_prometheus.stop(store.state_dir)


def _refresh_callers(store: Store) -> list[str]:
    """Give every running service the callers the store holds now, with the configuration it
    was deployed with (from the state store: an altered ``config.json`` is not served again);
    problems, one per service. Under the apply lock: an apply between deploying a service and
    recording it would otherwise see its new version replaced by the recorded one."""
    try:
        with lock.exclusive(store.state_dir, wait=True, timeout=CALLERS_LOCK_WAIT_S):
            return _redeploy_with_callers(store)
    except lock.LockHeld:
        return [
            f"an apply has held the state for {CALLERS_LOCK_WAIT_S:g} s: the running services serve the callers "
            "they had until it deploys them again; run 'modelplane apply' once it is done"
        ]


def _redeploy_with_callers(store: Store) -> list[str]:
    serving = LocalServing(store.state_dir)
    callers = tuple(Caller(c.name, c.token_sha256, c.groups) for c in store.deployments.callers())
    problems = []
    for name in serving.services():
        if not serving.running(name):
            continue
        served = store.deployments.served_config(name)
        if served is None:
            problems.append(f"{name}: no deployment of it is recorded; run 'modelplane apply' to serve the callers")
            continue
        try:
            serving.deploy(replace(parse(served), callers=callers))
        except (ServingError, ConfigError) as exc:
            problems.append(f"{name}: {exc}")
    return problems


def add_caller(store: Store, name: str, groups: list[str], *, actor: str) -> tuple[str, list[str]]:
    """Add a caller; returns its token (shown once, stored only as a digest) and the
    running services that could not take it."""
    token = store.deployments.add_caller(name, groups, actor=actor)
    return token, _refresh_callers(store)


def remove_caller(store: Store, name: str, *, actor: str) -> tuple[bool, list[str]]:
    """Remove a caller: its token stops working on the running services at once."""
    removed = store.deployments.remove_caller(name, actor=actor)
    return removed, _refresh_callers(store) if removed else []
