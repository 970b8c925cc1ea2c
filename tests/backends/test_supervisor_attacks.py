"""Attacks on the files of a locally served service (its serving directory) and on the
commands that act on them, with real supervisors and replicas.

- ``status.json`` names the supervisor's pid: a stale or altered status must not make
  ``stop`` or ``deploy`` signal another process (the pid comes from the lock's holder).
- ``config.json`` is what the supervisor serves after a reload: adding or removing a
  caller must not serve an altered file again (the configuration comes from the state
  store).
- The 503 of a service that cannot start tells callers nothing of the state's paths.

Written from attacks on the serving target (issue 9); each problem they showed is fixed."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from replica_helpers import record_deployment
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from controller.backends.serving.access import access_data
from controller.backends.serving.config import Caller, ServiceConfig, Variant
from controller.backends.serving.local import LocalServing
from controller.backends.serving.process import ServingError
from controller.backends.serving.supervisor import CONFIG_FILE, STATUS_FILE
from controller.engine.serving import add_caller
from controller.state.store import Store

pytestmark = pytest.mark.served

SERVICE = "breast-cancer-api"
TOKEN = "a-caller-token-of-the-attack-tests"
ROWS = json.loads((Path(__file__).resolve().parents[2] / "docs/examples/predict-v1.json").read_text())


def service_config(artifacts: Path, digest: str, *callers: Caller) -> ServiceConfig:
    doc = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": SERVICE},
        "spec": {"model": {"name": "classifier", "version": 1}, "access": {"groups": ["clinicians"]}},
    }
    return ServiceConfig(
        SERVICE,
        "development",
        str(artifacts.resolve()),
        (Variant("stable", "classifier", 1, digest),),
        callers or (Caller("alice", hashlib.sha256(TOKEN.encode()).hexdigest(), ("clinicians",)),),
        access_data(doc, None, None),
    )


@pytest.fixture
def state(tmp_path: Path) -> Iterator[tuple[Store, str]]:
    """A state store with one registered artifact (the example's classifier, small)."""
    frame = load_breast_cancer(as_frame=True).frame
    estimator = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0)
    estimator.fit(frame.drop(columns="target"), frame["target"])
    store = Store(tmp_path / ".modelplane")
    try:
        yield store, store.artifacts.put_model(estimator)
    finally:
        store.close()


@pytest.fixture
def innocent() -> Iterator[subprocess.Popen[bytes]]:
    """A process of the same user that has nothing to do with serving."""
    process = subprocess.Popen(["sleep", "600"])
    try:
        yield process
    finally:
        process.kill()
        process.wait()


def _point_status_at(serving: LocalServing, pid: int) -> dict[str, object]:
    path = serving.directory(SERVICE) / STATUS_FILE
    original = json.loads(path.read_text())
    path.write_text(json.dumps({**original, "pid": pid}))
    return dict(original)


def _restore_status(serving: LocalServing, original: dict[str, object]) -> None:
    """So that the cleanup stops the real supervisor (it too reads the pid from the status)."""
    path = serving.directory(SERVICE) / STATUS_FILE
    current = json.loads(path.read_text())
    path.write_text(json.dumps({**current, "pid": original["pid"]}))


def test_stop_never_signals_a_process_that_is_not_the_supervisor(
    state: tuple[Store, str], innocent: subprocess.Popen[bytes]
) -> None:
    """Today: the innocent process gets SIGTERM, the real supervisor serves on, and after
    the timeout ``stop`` SIGKILLs the (now gone) pid and raises ProcessLookupError, which
    ``modelplane serve stop`` prints as a traceback."""
    store, digest = state
    serving = LocalServing(store.state_dir)
    serving.deploy(service_config(store.artifacts.root, digest))
    original = _point_status_at(serving, innocent.pid)
    try:
        problem: BaseException | None = None
        try:
            serving.stop(SERVICE, timeout=3)
        except Exception as exc:  # a traceback for the user
            problem = exc
        assert innocent.poll() is None, f"stop ended pid {innocent.pid}, which is not the supervisor"
        assert problem is None, f"stop raised {problem!r}"
        assert not serving.running(SERVICE), "the service still runs after stop"
    finally:
        if serving.running(SERVICE):
            _restore_status(serving, original)


def test_a_redeploy_never_signals_a_process_that_is_not_the_supervisor(
    state: tuple[Store, str], innocent: subprocess.Popen[bytes]
) -> None:
    """Today: the reload's SIGHUP goes to the pid in ``status.json``; it ends the innocent
    process, and the supervisor never reloads (the deploy waits out its timeout)."""
    store, digest = state
    serving = LocalServing(store.state_dir)
    serving.deploy(service_config(store.artifacts.root, digest))
    original = _point_status_at(serving, innocent.pid)
    try:
        bob = Caller("bob", hashlib.sha256(b"bob-token").hexdigest(), ("clinicians",))
        problem: ServingError | None = None
        try:
            serving.deploy(service_config(store.artifacts.root, digest, bob), timeout=15)
        except ServingError as exc:
            problem = exc
        assert innocent.poll() is None, f"the reload signalled pid {innocent.pid}, which is not the supervisor"
        assert problem is None, str(problem)
    finally:
        _restore_status(serving, original)


def test_a_callers_change_does_not_serve_an_altered_configuration_again(state: tuple[Store, str]) -> None:
    """``config.json`` altered by hand (the access data: one more group), then a caller added
    with ``modelplane serve caller add``: the new callers are served with the configuration
    recorded in the state store when the service was deployed, not with the altered file."""
    store, digest = state
    serving = LocalServing(store.state_dir)
    config = service_config(store.artifacts.root, digest)
    status = serving.deploy(config)
    record_deployment(store, config, status.url)
    path = serving.directory(SERVICE) / CONFIG_FILE
    raw = json.loads(path.read_text())
    spec = raw["access_data"]["resources"]["InferenceService"][SERVICE]["spec"]
    spec["access"] = {"groups": ["clinicians", "anyone"]}
    path.write_text(json.dumps(raw))  # no reload asked for: nothing should serve it

    token, problems = add_caller(store, "outsider", ["anyone"], actor="attacker")
    assert problems == []
    answer = httpx.post(
        f"{status.url}/v1/models/{SERVICE}:predict",
        json=ROWS,
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    assert answer.status_code == 403, f"a caller of group 'anyone' was answered {answer.status_code}: {answer.text}"


def test_a_service_with_no_recorded_deployment_is_not_given_callers_from_its_files(state: tuple[Store, str]) -> None:
    store, digest = state
    serving = LocalServing(store.state_dir)
    serving.deploy(service_config(store.artifacts.root, digest))
    _, problems = add_caller(store, "newcomer", ["clinicians"], actor="tester")
    assert problems == [f"{SERVICE}: no deployment of it is recorded; run 'modelplane apply' to serve the callers"]


def test_the_503_of_a_service_that_cannot_start_does_not_tell_anyone_where_the_state_is(
    state: tuple[Store, str],
) -> None:
    """While no replica can start, the supervisor answers every connection (no token needed,
    any path) with ``503`` and the reason; for a missing artifact the reason holds the
    absolute path of the state store's artifacts. The reason belongs in ``serve status``,
    not in answers to callers."""
    store, _ = state
    serving = LocalServing(store.state_dir)
    missing = "sha256:" + "ab" * 32
    with pytest.raises(ServingError, match="is missing"):
        serving.deploy(service_config(store.artifacts.root, missing), timeout=30)
    url = serving.status(SERVICE).url
    assert url is not None, "the supervisor does not run"
    answer = httpx.get(url + "/anything", timeout=10)
    assert answer.status_code == 503
    assert str(store.state_dir.resolve()) not in answer.text, answer.text


def test_stop_stops_a_running_service_whose_status_file_is_gone(state: tuple[Store, str]) -> None:
    """Whether a supervisor runs is told by its lock; which process it is, only by
    ``status.json``. Without that file, ``stop`` answers "was not running" and leaves the
    service serving (and a redeploy never signals it: it waits out its timeout)."""
    store, digest = state
    serving = LocalServing(store.state_dir)
    status = serving.deploy(service_config(store.artifacts.root, digest))
    (serving.directory(SERVICE) / STATUS_FILE).unlink()
    stopped = serving.stop(SERVICE, timeout=10)
    still = serving.running(SERVICE)
    if still and status.pid is not None:  # so that nothing outlives the test
        os.kill(status.pid, signal.SIGTERM)
    assert stopped and not still, "stop left the service running"


def test_a_removed_callers_token_stops_working_once_the_removal_returns(state: tuple[Store, str]) -> None:
    """Docs: "``modelplane serve caller remove clara``: the token stops working at once".
    The deploy of the configuration without the caller returns once the new replicas
    serve, while the old ones still drain: each connection the caller holds open is
    answered once more by an old replica, with the old callers (200)."""
    store, digest = state
    serving = LocalServing(store.state_dir)
    alice = Caller("alice", hashlib.sha256(TOKEN.encode()).hexdigest(), ("clinicians",))
    bob = Caller("bob", hashlib.sha256(b"bob-token").hexdigest(), ("clinicians",))
    url = serving.deploy(service_config(store.artifacts.root, digest, alice, bob)).url
    headers = {"Authorization": "Bearer bob-token"}
    with httpx.Client(timeout=30) as client:  # one keep-alive connection
        assert client.post(f"{url}/v1/models/{SERVICE}:predict", json=ROWS, headers=headers).status_code == 200
        serving.deploy(service_config(store.artifacts.root, digest, alice))  # bob removed
        after = client.post(f"{url}/v1/models/{SERVICE}:predict", json=ROWS, headers=headers)
    assert after.status_code == 401, f"bob, removed, was answered {after.status_code}"
