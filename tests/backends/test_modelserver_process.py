"""A model server replica: a registered model served by KServe's ModelServer on 127.0.0.1
behind the gateway, answering V1 and V2 as the model does in-process, refusing bad input
with 4xx, and refusing to start on an artifact that is missing, tampered or holds
untrusted types."""

from __future__ import annotations

import hashlib
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from controller.backends.serving.access import access_data
from controller.backends.serving.config import Caller, ConfigError, ServiceConfig, Variant, parse
from controller.backends.serving.modelserver import MAX_BODY_BYTES
from controller.backends.serving.process import ModelServerProcess, ServingError, start
from controller.state.artifacts import ArtifactStore

NAME = "breast-cancer-api"
TOKEN = "a-caller-token-of-the-tests"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def config(artifacts: Path, digest: str, port: int = 0) -> ServiceConfig:
    service = {
        "apiVersion": "modelplane.io/v1alpha1",
        "kind": "InferenceService",
        "metadata": {"name": NAME},
        "spec": {"model": {"name": "classifier", "version": 1}, "access": {"groups": ["clinicians"]}},
    }
    return ServiceConfig(
        NAME,
        "development",
        str(artifacts.resolve()),
        (Variant("stable", "classifier", 1, digest),),
        (Caller("alice", hashlib.sha256(TOKEN.encode()).hexdigest(), ("clinicians",)),),
        access_data(service, None, None),
        port=port,
    )


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return load_breast_cancer(as_frame=True).frame


@pytest.fixture(scope="module")
def estimator(frame: pd.DataFrame) -> GradientBoostingClassifier:
    features = frame.drop(columns="target")
    return GradientBoostingClassifier(n_estimators=20, max_depth=2, random_state=0).fit(features, frame["target"])


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ArtifactStore:
    return ArtifactStore(tmp_path_factory.mktemp("artifacts"))


@pytest.fixture(scope="module")
def server(store: ArtifactStore, estimator: GradientBoostingClassifier) -> Iterator[ModelServerProcess]:
    running = start(config(store.root, store.put_model(estimator)))
    try:
        yield running
    finally:
        running.stop()


def rows(frame: pd.DataFrame, count: int = 25) -> pd.DataFrame:
    return frame.drop(columns="target").iloc[::20].head(count)


def test_it_listens_on_loopback_only(server: ModelServerProcess) -> None:
    assert urlsplit(server.url).hostname == "127.0.0.1"
    assert httpx.get(server.url + "/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2/models/{NAME}/ready", headers=AUTH).json() == {"name": NAME, "ready": True}


def test_v1_answers_what_the_model_answers_in_process(
    server: ModelServerProcess, frame: pd.DataFrame, estimator: GradientBoostingClassifier
) -> None:
    sample = rows(frame)
    expected = estimator.predict(sample).tolist()
    assert len(set(expected)) == 2  # both classes: a constant answer would not pass by chance
    by_position = httpx.post(
        f"{server.url}/v1/models/{NAME}:predict", json={"instances": sample.values.tolist()}, headers=AUTH
    )
    assert (by_position.status_code, by_position.json()) == (200, {"predictions": expected})
    by_name = httpx.post(
        f"{server.url}/v1/models/{NAME}:predict",
        json={"instances": [{k: [v] for k, v in row.items()} for row in sample.to_dict("records")]},
        headers=AUTH,
    )
    assert (by_name.status_code, by_name.json()) == (200, {"predictions": expected})


def test_v2_answers_what_the_model_answers_in_process(
    server: ModelServerProcess, frame: pd.DataFrame, estimator: GradientBoostingClassifier
) -> None:
    sample = rows(frame)
    values = sample.values.tolist()
    request = {"inputs": [{"name": "x", "shape": list(sample.shape), "datatype": "FP64", "data": values}]}
    response = httpx.post(f"{server.url}/v2/models/{NAME}/infer", json=request, headers=AUTH)
    assert response.status_code == 200
    assert (response.json()["model_name"], response.json()["model_version"]) == (NAME, "1")
    (output,) = response.json()["outputs"]
    assert output["data"] == estimator.predict(sample).tolist()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"instances": [[1, 2, 3]]}', "each row must hold 30 feature values, not 3"),
        (json.dumps({"instances": [["x"] * 30]}).encode(), "feature values must be numbers"),
        (b'{"instances": [1, 2]}', "every row must be a list of feature values"),
        (b'{"instances": [{"mean radius": [1.0]}]}', "row 0 lacks the feature(s) area error"),
        (b"{not json", "Unrecognized request format"),
    ],
    ids=["wrong-width", "strings", "one-dimensional", "missing-feature", "not-json"],
)
def test_bad_requests_get_a_4xx_with_a_message_and_the_server_goes_on(
    server: ModelServerProcess, body: bytes, message: str
) -> None:
    response = httpx.post(
        f"{server.url}/v1/models/{NAME}:predict", content=body, headers={"content-type": "application/json", **AUTH}
    )
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200


def test_an_unknown_model_is_a_404(server: ModelServerProcess) -> None:
    response = httpx.post(f"{server.url}/v1/models/other:predict", json={"instances": [[0.0] * 30]}, headers=AUTH)
    assert response.status_code == 404


def test_a_tampered_artifact_stops_the_start_before_anything_listens(
    tmp_path: Path, estimator: GradientBoostingClassifier
) -> None:
    store = ArtifactStore(tmp_path)
    digest = store.put_model(estimator)
    path = store.path(digest)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed
    path.write_bytes(bytes(data))
    port = _free_port()
    with pytest.raises(ServingError, match=f"artifact {digest} is corrupt"):
        start(config(tmp_path, digest, port))
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v2/health/ready")


def test_a_missing_artifact_stops_the_start(tmp_path: Path) -> None:
    digest = "sha256:" + "ab" * 32
    with pytest.raises(ServingError, match=f"artifact {digest} is missing"):
        start(config(tmp_path, digest))


def test_an_artifact_holding_untrusted_types_is_not_loaded(tmp_path: Path, frame: pd.DataFrame) -> None:
    """A digest proves the bytes are the registered ones, not that they are safe: a model
    whose artifact names a function such as os.system is refused (skops trusted types)."""
    store = ArtifactStore(tmp_path)
    features = frame.drop(columns="target")
    hostile = make_pipeline(FunctionTransformer(os.system), GradientBoostingClassifier(n_estimators=2))
    hostile.steps[1][1].fit(features, frame["target"])
    digest = store.put_model(hostile)
    with pytest.raises(ServingError, match=r"types that are not trusted: .*system"):
        start(config(tmp_path, digest))


def test_stop_ends_the_process_and_frees_the_port(store: ArtifactStore, estimator: GradientBoostingClassifier) -> None:
    running = start(config(store.root, store.put_model(estimator)))
    port = urlsplit(running.url).port
    assert running.alive()
    running.stop()
    assert not running.alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/v2/health/ready")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[]", "must be a JSON object"),
        ("{", "is not JSON"),
        ('{"service": "Bad Name", "environment": "e", "artifacts": "/a", "variants": []}', "'service' must be"),
        ('{"service": "s", "environment": "e", "artifacts": "a", "variants": []}', "absolute path"),
        ('{"service": "s", "environment": "e", "artifacts": "/a", "port": 70000, "variants": []}', "'port' must"),
        ('{"service": "s", "environment": "e", "artifacts": "/a", "port": true, "variants": []}', "'port' must"),
        ('{"service": "s", "environment": "e", "artifacts": "/a", "variants": []}', "at least the stable one"),
        (
            '{"service": "s", "environment": "e", "artifacts": "/a", "variants": '
            '[{"role": "stable", "model": "m", "version": 1, "digest": "d", "weight": 100}]}',
            "needs a sha256 digest",
        ),
        (
            '{"service": "s", "environment": "e", "artifacts": "/a", "variants": '
            f'[{{"role": "canary", "model": "m", "version": 1, "digest": "sha256:{"0" * 64}", "weight": 10}}]}}',
            "exactly one variant must be 'stable'",
        ),
        (
            '{"service": "s", "environment": "e", "artifacts": "/a", "variants": '
            f'[{{"role": "stable", "model": "m", "version": 1, "digest": "sha256:{"0" * 64}", "weight": 100}}],'
            '"callers": [{"name": "a", "token_sha256": "secret", "groups": []}]}',
            "needs a token digest",
        ),
    ],
    ids=[
        "not-an-object",
        "not-json",
        "service",
        "relative-store",
        "port-range",
        "port-bool",
        "no-variant",
        "digest",
        "no-stable",
        "raw-token",
    ],
)
def test_a_wrong_configuration_is_refused_with_its_reason(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(text)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_metrics_count_inference_requests_with_sub_millisecond_buckets(
    server: ModelServerProcess, frame: pd.DataFrame
) -> None:
    def scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        text = httpx.get(server.url + "/metrics").text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def total(seen: dict[tuple[str, tuple[tuple[str, str], ...]], float], code: str) -> float:
        labels = (("code", code), ("protocol", "v1"), ("service", NAME), ("variant", "stable"), ("version", "1"))
        return seen.get(("modelplane_inference_requests_total", labels), 0.0)

    before = scrape()
    sample = rows(frame, 1).values.tolist()
    for _ in range(5):
        answer = httpx.post(f"{server.url}/v1/models/{NAME}:predict", json={"instances": sample}, headers=AUTH)
        assert answer.status_code == 200
    assert (
        httpx.post(f"{server.url}/v1/models/{NAME}:predict", json={"instances": [[1]]}, headers=AUTH).status_code == 400
    )
    httpx.get(server.url + "/v2/health/ready")  # not an inference request: not counted
    after = scrape()
    assert total(after, "200") - total(before, "200") == 5
    assert total(after, "400") - total(before, "400") == 1
    buckets = {dict(labels)["le"] for name, labels in after if name.endswith("_duration_seconds_bucket")}
    assert {"0.0001", "0.0005", "0.001"} <= buckets


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(server: ModelServerProcess) -> None:
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(
            f"POST /v1/models/{NAME}:predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Authorization: Bearer {TOKEN}\r\n"
            f"Content-Length: {MAX_BODY_BYTES + 1}\r\n\r\n".encode()
        )  # no body is sent: the answer must not wait for it
        answer = b""
        while chunk := sock.recv(65536):  # until the server closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 413") and b"connection: close" in head.lower()
    assert json.loads(body) == {"error": f"request body over {MAX_BODY_BYTES} bytes"}


def test_a_chunked_body_growing_past_the_limit_is_refused(server: ModelServerProcess) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"instances": ['
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b" " * 65536

    response = httpx.post(
        f"{server.url}/v1/models/{NAME}:predict", content=chunks(), headers={"content-type": "application/json", **AUTH}
    )
    assert (response.status_code, response.json()) == (413, {"error": f"request body over {MAX_BODY_BYTES} bytes"})
    assert response.headers["connection"] == "close"  # the rest of the body is not read
    assert httpx.get(server.url + "/v2/health/ready").status_code == 200
