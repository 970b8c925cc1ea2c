"""The local serving target with real processes: a supervisor per service holding the
socket, KServe replicas behind it. Deploy, restart after a crash, reload to a canary
without a gap, refuse a tampered reload, end with the supervisor (even on SIGKILL),
keep the URL, stop, scale to zero and answer 503 while no replica can start."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.linear_model import LogisticRegression

from controller.backends.serving.access import access_data
from controller.backends.serving.config import Caller, ServiceConfig, Variant
from controller.backends.serving.local import LocalServing
from controller.backends.serving.process import ServingError
from controller.state.artifacts import ArtifactStore

SERVICE = "breast-cancer-api"
TOKEN = "a-caller-token-of-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, features: pd.DataFrame) -> ArtifactStore:
    return ArtifactStore(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def digests(store: ArtifactStore, features: pd.DataFrame) -> tuple[str, str]:
    x, y = features.drop(columns="target"), features["target"]
    first = GradientBoostingClassifier(n_estimators=10, max_depth=2, random_state=0).fit(x, y)
    second = LogisticRegression(max_iter=5000).fit(x, y)
    return store.put_model(first), store.put_model(second)


def service_config(store: ArtifactStore, *variants: Variant, idle: float | None = None) -> ServiceConfig:
    doc = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": SERVICE},
        "spec": {"model": {"name": "classifier", "version": 1}, "access": {"groups": ["clinicians"]}},
    }
    return ServiceConfig(
        SERVICE,
        "development",
        str(store.root.resolve()),
        variants,
        (Caller("alice", hashlib.sha256(TOKEN.encode()).hexdigest(), ("clinicians",)),),
        access_data(doc, None, None),
        idle_seconds=idle,
    )


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[LocalServing]:
    local = LocalServing(tmp_path)
    try:
        yield local
    finally:
        for service in local.services():
            local.stop(service)


def predict(url: str, features: pd.DataFrame, timeout: float = 30) -> httpx.Response:
    rows = features.drop(columns="target").head(3).values.tolist()
    return httpx.post(f"{url}/v1/models/{SERVICE}:predict", json={"instances": rows}, headers=AUTH, timeout=timeout)


class Traffic:
    """Calls from another thread on one keep-alive connection, with their codes (0: the
    connection broke) and durations."""

    def __init__(self, url: str, features: pd.DataFrame) -> None:
        self.url, self.rows = url, features.drop(columns="target").head(1).values.tolist()
        self.codes: list[int] = []
        self.seconds: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    answer = client.post(
                        f"{self.url}/v1/models/{SERVICE}:predict", json={"instances": self.rows}, headers=AUTH
                    )
                    self.codes.append(answer.status_code)
                except httpx.TransportError:
                    self.codes.append(0)
                self.seconds.append(time.monotonic() - started)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1].startswith("Z")  # a zombie has ended
    except FileNotFoundError:
        return True


def eventually(check: Callable[[], bool], seconds: float = 15) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.05)
    return check()


@pytest.mark.served
def test_a_service_is_served_restarted_reloaded_and_stopped(
    serving: LocalServing, store: ArtifactStore, digests: tuple[str, str], features: pd.DataFrame
) -> None:
    stable, canary = digests
    status = serving.deploy(service_config(store, Variant("stable", "classifier", 1, stable)))
    assert (status.state, status.generation, len(status.replicas)) == ("ready", 1, 1)
    assert urlsplit(status.url).hostname == "127.0.0.1"
    url = status.url or ""
    assert predict(url, features).status_code == 200
    directory = serving.directory(SERVICE)  # caller digests and access data: for its owner only
    assert (directory.stat().st_mode & 0o777, (directory / "config.json").stat().st_mode & 0o777) == (0o700, 0o600)

    # The same configuration again changes nothing.
    assert serving.deploy(service_config(store, Variant("stable", "classifier", 1, stable))).replicas == status.replicas

    # A replica killed under load: the supervisor restarts it; the call it was answering is
    # lost with it (its connection breaks), the calls after it wait in the socket's backlog.
    (replica,) = status.replicas
    with Traffic(url, features) as traffic:
        assert eventually(lambda: len(traffic.codes) >= 20)
        os.kill(replica, signal.SIGKILL)
        killed_at = len(traffic.codes)
        assert eventually(lambda: len(traffic.codes) >= killed_at + 20)
    assert traffic.codes.count(0) <= 1 and set(traffic.codes) <= {0, 200}
    assert max(traffic.seconds) < 10  # none hung: the longest call waited for the restart
    assert eventually(lambda: serving.status(SERVICE).restarts == 1)
    assert serving.status(SERVICE).replicas != (replica,)

    # A reload to a canary under live keep-alive traffic: new replicas on the same socket; the
    # old one drains (each open connection is answered once more, with Connection: close).
    before = serving.status(SERVICE).replicas
    with_canary = service_config(
        store, Variant("stable", "classifier", 1, stable), Variant("canary", "classifier", 2, canary, 20)
    )
    with Traffic(url, features) as traffic:
        assert eventually(lambda: len(traffic.codes) >= 20)
        reloaded = serving.deploy(with_canary)
        assert eventually(lambda: all(gone(pid) for pid in before))
        after = len(traffic.codes)
        assert eventually(lambda: len(traffic.codes) >= after + 20)
    assert set(traffic.codes) == {200}  # not one call lost to the reload
    assert (reloaded.generation, reloaded.url) == (2, url)
    assert eventually(lambda: all(gone(pid) for pid in before))
    for _ in range(10):
        assert predict(url, features).status_code == 200
    served = {
        sample.labels["variant"]: sample.value
        for family in text_string_to_metric_families(httpx.get(url + "/metrics").text)
        for sample in family.samples
        if sample.name == "modelplane_inference_requests_total" and sample.labels["code"] == "200"
    }
    assert served["canary"] == int((served["canary"] + served["stable"]) * 20 / 100)  # exactly its share

    # A reload the replicas cannot take (a tampered artifact): refused, and the old ones serve on.
    tampered = store.put(b"not a model at all")
    with pytest.raises(ServingError, match=f"generation 3 cannot serve: .*artifact {tampered} is not a model"):
        serving.deploy(
            service_config(
                store, Variant("stable", "classifier", 1, stable), Variant("canary", "classifier", 3, tampered, 20)
            ),
            timeout=60,
        )
    assert serving.status(SERVICE).generation == 2
    assert predict(url, features).status_code == 200

    # Stop: the supervisor and its replicas end, and the port is closed.
    pids = [serving.status(SERVICE).pid, *serving.status(SERVICE).replicas]
    assert serving.stop(SERVICE)
    assert serving.status(SERVICE).state == "down"
    assert eventually(lambda: all(gone(pid) for pid in pids if pid))
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/v2/health/ready")
    assert not serving.stop(SERVICE)  # nothing left to stop


def test_replicas_end_with_a_killed_supervisor_and_a_new_one_keeps_the_url(
    serving: LocalServing, store: ArtifactStore, digests: tuple[str, str], features: pd.DataFrame
) -> None:
    config = service_config(store, Variant("stable", "classifier", 1, digests[0]))
    first = serving.deploy(config)
    assert first.pid is not None
    os.kill(first.pid, signal.SIGKILL)
    assert eventually(lambda: all(gone(pid) for pid in first.replicas))  # no orphan serves on
    assert serving.status(SERVICE).state == "down"
    again = serving.deploy(config)
    assert again.url == first.url and again.pid != first.pid
    assert predict(again.url or "", features).status_code == 200


def test_an_idle_service_scales_to_zero_and_the_next_call_starts_it(
    serving: LocalServing, store: ArtifactStore, digests: tuple[str, str], features: pd.DataFrame
) -> None:
    status = serving.deploy(service_config(store, Variant("stable", "classifier", 1, digests[0]), idle=1.0))
    assert eventually(lambda: serving.status(SERVICE).state == "idle", 20)
    assert serving.status(SERVICE).replicas == ()
    started = time.monotonic()
    assert predict(status.url or "", features).status_code == 200  # waits in the backlog for the cold start
    cold = time.monotonic() - started
    now = serving.status(SERVICE)
    assert now.cold_starts == 1 and now.last_cold_start_s is not None and now.last_cold_start_s <= cold + 0.5


def test_while_no_replica_can_start_calls_get_503_with_the_reason(
    serving: LocalServing, tmp_path: Path, digests: tuple[str, str], features: pd.DataFrame
) -> None:
    own = ArtifactStore(tmp_path / "own-artifacts")
    model = GradientBoostingClassifier(n_estimators=2).fit(features.drop(columns="target"), features["target"])
    digest = own.put_model(model)
    status = serving.deploy(service_config(own, Variant("stable", "classifier", 1, digest)))
    own.path(digest).unlink()  # the artifact is lost after the start
    (replica,) = status.replicas
    os.kill(replica, signal.SIGKILL)
    assert eventually(lambda: serving.status(SERVICE).state == "failing", 30)
    answer = predict(status.url or "", features, timeout=10)
    assert answer.status_code == 503
    assert answer.json()["error"] == f"{SERVICE} is unavailable: no replica can start; see 'modelplane serve status'"
    assert "missing" in (serving.status(SERVICE).error or "")  # the reason, for its operator only
    assert int(answer.headers["retry-after"]) >= 1


def test_metrics_add_up_every_replica_whichever_answers_the_scrape(
    serving: LocalServing, store: ArtifactStore, digests: tuple[str, str], features: pd.DataFrame
) -> None:
    config = dataclasses.replace(service_config(store, Variant("stable", "classifier", 1, digests[0])), replicas=2)
    status = serving.deploy(config)
    assert len(status.replicas) == 2
    url = status.url or ""
    with httpx.Client() as client:  # a new connection per call: the kernel spreads them over both replicas
        for _ in range(30):
            rows = features.drop(columns="target").head(1).values.tolist()
            answer = client.post(
                f"{url}/v1/models/{SERVICE}:predict",
                json={"instances": rows},
                headers={**AUTH, "Connection": "close"},
            )
            assert answer.status_code == 200

    def total() -> float:
        text = httpx.get(url + "/metrics", headers={"Connection": "close"}).text
        return sum(
            sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
            if sample.name == "modelplane_inference_requests_total" and sample.labels["code"] == "200"
        )

    assert [total() for _ in range(6)] == [30.0] * 6  # every scrape, whichever replica answers it
