"""Attacks on the new inference path of a replica (round 2): the gateway calling KServe's
data plane directly, micro-batching, the bounds on request heads, the replica's log.

Each test performs the attack against a real replica (KServe's ModelServer behind the
gateway, on 127.0.0.1, started with :func:`controller.backends.serving.process.start`, or
deployed by :class:`~controller.backends.serving.local.LocalServing` under a supervisor) and
asserts what the docs promise. Written while each problem was open (marked xfail); each
passes since its fix.

What held up (no test here): no caller ever got another caller's predictions, or a wrong
number of them, with 400 concurrent V1 (lists and objects in shuffled order) and V2 (flat,
nested, FP32) calls of 1 to 300 rows mixed with bad ones (NaN, strings, wrong width,
nulls, 1e308); V2 shape checks (negative, huge, 2**63, bool, mismatched, 3-D, 0 rows),
deep nesting, duplicate keys and non-UTF-8 bodies are all 400; no memory growth over
6,000 calls."""

from __future__ import annotations

import json
import resource
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from replica_helpers import NAME, consenting_service, record_deployment
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier

from controller.backends.serving.local import LocalServing
from controller.backends.serving.process import ModelServerProcess, start
from controller.engine.serving import add_caller
from controller.state import lock
from controller.state.artifacts import ArtifactStore
from controller.state.store import Store

pytestmark = pytest.mark.served

TOKEN = "a-caller-token-of-the-round-2-attacks"
AUTH = {"Authorization": f"Bearer {TOKEN}", "X-Consent": "true", "Content-Type": "application/json"}
ROWS = json.loads((Path(__file__).resolve().parents[2] / "docs/examples/predict-v1.json").read_text())["instances"]
FEATURES = [str(f) for f in load_breast_cancer().feature_names]
V1 = f"/v1/models/{NAME}:predict"
V2 = f"/v2/models/{NAME}/infer"


def _estimator(broken: bool = False, trees: int = 10) -> GradientBoostingClassifier:
    frame = load_breast_cancer(as_frame=True).frame
    estimator = GradientBoostingClassifier(n_estimators=trees, max_depth=2, random_state=0)
    estimator.fit(frame.drop(columns="target"), frame["target"])
    if broken:  # its predict raises AttributeError: a failure of the model itself (a 500)
        estimator.init_ = None
    return estimator


def _start(tmp: Path) -> ModelServerProcess:
    store = ArtifactStore(tmp)
    return start(consenting_service(store.root, store.put_model(_estimator()), TOKEN))


def _cap_memory(pid: int, extra: int = 2 << 30) -> None:
    """Let the replica grow by at most ``extra`` bytes of address space: an attack that
    succeeds kills the replica instead of the machine (which is shared)."""
    limit = _status_kib(pid, "VmSize") * 1024 + extra
    resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))


def _status_kib(pid: int, field: str) -> int:
    line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith(field + ":"))
    return int(line.split()[1])


def _peak_mib(pid: int) -> int:
    return _status_kib(pid, "VmHWM") >> 10


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModelServerProcess]:
    running = _start(tmp_path_factory.mktemp("artifacts"))
    _cap_memory(running.pid)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def fresh(tmp_path: Path) -> Iterator[ModelServerProcess]:
    """A replica of its own, for a test that measures its peak memory."""
    running = _start(tmp_path / "artifacts")
    _cap_memory(running.pid)
    try:
        yield running
    finally:
        running.stop()


def _samples(url: str, name: str) -> list[tuple[dict[str, str], float]]:
    text = httpx.get(url + "/metrics", timeout=30).text
    return [
        (s.labels, s.value) for family in text_string_to_metric_families(text) for s in family.samples if s.name == name
    ]


def _errors(url: str) -> float:
    return sum(v for labels, v in _samples(url, "modelplane_inference_requests_total") if labels["code"][0] == "5")


def _latency_sum(url: str) -> float:
    return sum(
        v
        for labels, v in _samples(url, "modelplane_inference_request_duration_seconds_sum")
        if labels["variant"] == "stable"
    )


# --- high ---------------------------------------------------------------------------------


def test_object_rows_naming_distinct_keys_are_refused_without_seconds_or_memory(fresh: ModelServerProcess) -> None:
    """Docs (serving.md): V1 takes rows as ``{"feature name": [value]}`` objects. KServe's
    ``get_predict_input`` builds a DataFrame per row and ``pd.concat``s them, reindexing each to
    every key of every row, before modelplane looks for the model's features: 500 rows of one
    made-up key each (7 KB) hold the replica's event loop for seconds and add hundreds of MB;
    1,000 rows of 10 keys (143 KB) killed a replica capped at 3 GB of address space (uncapped,
    the 8 MiB a body may hold would take the machine's memory). Any token holder can do it."""
    body = json.dumps({"instances": [{f"k{i}": [0]} for i in range(500)]}).encode()
    peak = _peak_mib(fresh.pid)
    began = time.monotonic()
    response = httpx.post(fresh.url + V1, content=body, headers=AUTH, timeout=120)
    took = time.monotonic() - began
    grew = _peak_mib(fresh.pid) - peak
    assert response.status_code == 400, (response.status_code, response.text[:200])
    assert took < 0.5 and grew < 64, f"{len(body)} bytes of object rows: refused after {took:.1f} s, +{grew} MiB"


@pytest.mark.parametrize("path", [V1, V2], ids=["v1", "v2"])
def test_a_json_content_type_the_gateway_admits_is_never_a_5xx(server: ModelServerProcess, path: str) -> None:
    """``Content-Type: application/cloudevents+json`` passes the gateway's JSON check
    (``+json``) and the body is a good request, yet the answer is ``500 the model failed to
    answer``. The canary analysis counts 5xx as the version's errors (``maxErrorRate: 1`` in
    the example): a caller can roll back any canary, at will, with one header."""
    body = Path(__file__).resolve().parents[2] / "docs/examples" / f"predict-{'v1' if path == V1 else 'v2'}.json"
    before = _errors(server.url)
    headers = {**AUTH, "Content-Type": "application/cloudevents+json"}
    response = httpx.post(server.url + path, content=body.read_bytes(), headers=headers, timeout=30)
    assert response.status_code < 500, (response.status_code, response.text)
    assert _errors(server.url) == before


# --- medium -------------------------------------------------------------------------------


@pytest.mark.parametrize("content_type", ["application/json; charset=utf-8", "Application/JSON"])
def test_a_v1_call_declaring_json_with_a_charset_is_answered(server: ModelServerProcess, content_type: str) -> None:
    """Many clients (.NET's ``JsonContent``, Spring, browsers' ``fetch`` set by hand) send
    ``application/json; charset=utf-8``. The gateway admits it as JSON (it is), but a good V1
    body is then a ``400 inputs must be rows of feature values (a 2-dimensional array)``.
    (V2 calls with the same header are answered.)"""
    body = json.dumps({"instances": ROWS}).encode()
    plain = httpx.post(server.url + V1, content=body, headers=AUTH, timeout=30)
    assert plain.status_code == 200, plain.text
    response = httpx.post(server.url + V1, content=body, headers={**AUTH, "Content-Type": content_type}, timeout=30)
    assert response.status_code == 200, (response.status_code, response.text)
    assert response.json() == plain.json()


def test_object_rows_cannot_carry_more_than_10000_rows(server: ModelServerProcess) -> None:
    """Docs (serving.md): ``400`` for "more than 10,000 rows". One V1 object row
    ``{"mean radius": [v1, ..., v60000], ...}`` is one instance to the check and 60,000 rows
    to pandas: answered 200 with 60,000 predictions (up to ~140,000 fit in 8 MiB)."""
    body = json.dumps({"instances": [{f: [v] * 10_001 for f, v in zip(FEATURES, ROWS[0], strict=True)}]}).encode()
    response = httpx.post(server.url + V1, content=body, headers=AUTH, timeout=60)
    assert response.status_code == 400, (response.status_code, len(response.json().get("predictions", [])))


def test_a_refused_call_is_not_charged_to_the_versions_latency(server: ModelServerProcess) -> None:
    """The canary is judged on the p99 of ``modelplane_inference_request_duration_seconds``
    for its variant, and the gateway observes every answer of the variant there, 4xx included.
    A V2 body of 140,000 one-value tensors whose first tensor is one feature short is refused
    (400) after a second and more of the replica's work, all of it charged to the version: with
    the split exact (every tenth call goes to a 10 % canary), three such calls among the 200
    the analysis needs put its p99 over ``maxLatencyP99: 50ms``. Callers' bad input should not
    be the version's latency, as it is not the version's error rate."""
    first = {"name": "x", "shape": [2, 29], "datatype": "FP64", "data": [row[:29] for row in ROWS]}
    extra = [{"name": "e", "shape": [1], "datatype": "FP64", "data": [0]}] * 140_000
    body = json.dumps({"inputs": [first, *extra]}, separators=(",", ":")).encode()
    before = _latency_sum(server.url)
    response = httpx.post(server.url + V2, content=body, headers=AUTH, timeout=60)
    assert response.status_code == 400, (response.status_code, response.text[:200])
    charged = _latency_sum(server.url) - before
    assert charged < 0.25, f"a refused call was charged {charged:.2f} s of the version's latency"


def test_a_caller_added_during_an_apply_does_not_bring_back_the_version_it_replaces(tmp_path: Path) -> None:
    """An apply's deploy step (``_go_live``) serves the new configuration, waits until it serves,
    then records it (``served_config``), all under the state's apply lock. ``serve caller add``
    does not take that lock: run in that window (a replica's start, or any canary step of an
    ``apply --watch``), it redeploys the *recorded* configuration, the version being replaced,
    with the new caller. The service then serves v1 while the state store, once the apply
    records, says v2 (and the canary analysis judges v2 on v1's answers). Here the apply's step
    is played by hand, with the lock held as the apply holds it."""
    store = Store(tmp_path / ".modelplane")
    serving = LocalServing(store.state_dir)
    try:
        v1 = consenting_service(store.artifacts.root, store.artifacts.put_model(_estimator()), TOKEN, 1)
        v2 = consenting_service(store.artifacts.root, store.artifacts.put_model(_estimator(trees=11)), TOKEN, 2)
        record_deployment(store, v1, serving.deploy(v1).url)
        problems: list[str] = []
        adder = threading.Thread(
            target=lambda: problems.extend(add_caller(store, "bob", ["clinicians"], actor="bob")[1]), daemon=True
        )
        with lock.exclusive(store.state_dir):  # the apply
            url = serving.deploy(v2).url  # v2 serves ...
            adder.start()  # ... and a caller is added meanwhile
            adder.join(1)  # it waits for the lock
            record_deployment(store, v2, url)  # ... then the apply records v2
        adder.join(30)
        assert not adder.is_alive() and problems == [], problems
        served = serving.config(NAME)
        assert served is not None
        recorded = store.deployments.get(NAME)
        assert recorded is not None
        assert [v.version for v in served.variants] == [recorded.stable_version] == [2], (
            f"serving v{served.variants[0].version}, recorded v{recorded.stable_version}"
        )
        assert "bob" in [c.name for c in served.callers]
    finally:
        serving.stop(NAME)
        store.close()


# --- low ----------------------------------------------------------------------------------


@pytest.fixture
def broken_service(tmp_path: Path) -> Iterator[tuple[LocalServing, str]]:
    """A service deployed as modelplane deploys it (supervisor, forked replica), whose model
    fails on every prediction."""
    store = ArtifactStore(tmp_path / "artifacts")
    serving = LocalServing(tmp_path / "state")
    status = serving.deploy(consenting_service(store.root, store.put_model(_estimator(broken=True)), TOKEN))
    try:
        assert status.url is not None
        yield serving, status.url
    finally:
        serving.stop(NAME)


def test_a_models_failure_is_in_the_replicas_log(broken_service: tuple[LocalServing, str]) -> None:
    """Docs (serving.md, the table of answers): ``500`` "the model itself failed; the answer
    names nothing of it, the replica's log has the error", and the answer says "see the
    server's log". ``Inference`` logs the error, but no log exists: the supervisor points its
    standard streams at /dev/null and its forked replicas inherit them, so an operator has no
    way to learn why a version answers 500 (and the canary rolls it back)."""
    serving, url = broken_service
    response = httpx.post(url + V1, json={"instances": ROWS}, headers=AUTH, timeout=30)
    assert response.status_code == 500, (response.status_code, response.text)
    assert "log" in response.json()["error"]
    directory = serving.directory(NAME)
    logged = [
        path
        for path in directory.rglob("*")
        if path.is_file() and "metrics" not in path.parts and b"NoneType" in path.read_bytes()
    ]
    assert logged, f"no file under {directory} holds the model's error: {sorted(p.name for p in directory.iterdir())}"


def _answers(data: bytes) -> list[bytes]:
    return [part.split(b"\r\n", 1)[0] for part in data.split(b"HTTP/1.1 ")[1:]]


def test_a_pipelined_call_after_a_large_body_is_answered_not_431(server: ModelServerProcess) -> None:
    """HTTP/1.1 lets a client send its next request before the answer (pipelining). When one
    read from the socket holds the end of a 1.4 MB body and the start of the next request's
    head, ``data_received`` counts the whole read (the body's tail) as head bytes: over 64 KiB,
    the connection gets ``431`` and is closed, and the first call, a good one, is never answered."""
    address = urlsplit(server.url)

    def request(body: bytes, extra: str = "") -> bytes:
        return (
            f"POST {V1} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nX-Consent: true\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
        ).encode() + body

    big = json.dumps({"instances": ROWS * 3000}).encode()
    second = request(json.dumps({"instances": ROWS}).encode(), "Connection: close\r\n")
    data = b""
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(request(big) + second[:40])
        time.sleep(0.3)
        try:
            sock.sendall(second[40:])
            while chunk := sock.recv(1 << 20):
                data += chunk
        except OSError:
            pass
    assert _answers(data) == [b"200 OK", b"200 OK"], _answers(data)


def test_a_connection_that_never_completes_its_head_is_closed(server: ModelServerProcess) -> None:
    """security.md: a request line and headers not complete within 5 s are ``408`` (a head
    that never ends *slowly*, slowloris: a few bytes, then nothing, was held open with no
    time limit, by anyone who can connect, no token being read before the head is complete)."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Slow: a")
        began = time.monotonic()
        answer = b""
        try:
            answer = sock.recv(1024)  # an answer or the end of the stream
            closed = True
        except TimeoutError:
            closed = False
        assert closed, f"a connection with an incomplete head was still open after {time.monotonic() - began:.0f} s"
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout"), answer[:80]


def test_a_connection_that_sends_nothing_is_closed_without_an_answer(server: ModelServerProcess) -> None:
    """An answer to a call nobody sent could be read as the answer to the next one: the
    connection is closed, silently, within the head's 5 s."""
    address = urlsplit(server.url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        assert sock.recv(1024) == b""


def test_a_v2_call_of_two_input_tensors_is_not_half_answered(server: ModelServerProcess) -> None:
    """Two V2 input tensors of one row each (a caller sending one row per tensor) get one
    prediction, for the first: the second row is silently dropped. A call the model cannot
    take should be a 400, not a shorter answer."""
    tensors = [{"name": f"row-{i}", "shape": [1, 30], "datatype": "FP64", "data": row} for i, row in enumerate(ROWS)]
    response = httpx.post(server.url + V2, json={"inputs": tensors}, headers=AUTH, timeout=30)
    answered = response.json()["outputs"][0]["shape"][0] if response.status_code == 200 else None
    assert response.status_code == 400 or answered == 2, (response.status_code, response.text)


def test_a_bool_tensor_of_strings_is_refused(server: ModelServerProcess) -> None:
    """The protocol's BOOL data are JSON booleans. ``{"datatype": "BOOL", "data": ["false", ...]}``
    is predicted (200), and differently from ``[false, ...]``: the model is fed values the
    caller did not send."""
    tensor = {"name": "x", "shape": [2, 30], "datatype": "BOOL", "data": ["false"] * 60}
    response = httpx.post(server.url + V2, json={"inputs": [tensor]}, headers=AUTH, timeout=30)
    assert response.status_code == 400, (response.status_code, response.text)


def test_a_400_does_not_name_the_models_internals(server: ModelServerProcess) -> None:
    """A row of nulls (or "NaN" strings) is a 400 whose message is scikit-learn's, verbatim:
    ``Input X contains NaN. GradientBoostingClassifier does not accept missing values encoded as
    NaN natively. For supervised learning, you might want to consider
    sklearn.ensemble.HistGradientBoostingClassifier ...``: any caller learns what the model is
    (and gets advice meant for its developer). A 500 names nothing of the model; a 400 should
    say what is wrong with the input, not what the model is."""
    response = httpx.post(server.url + V1, json={"instances": [[None] * 30]}, headers=AUTH, timeout=30)
    assert response.status_code == 400, (response.status_code, response.text)
    assert "GradientBoosting" not in response.json()["error"], response.json()["error"]
