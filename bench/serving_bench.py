"""Benchmark: serving the example model, modelplane against plain KServe and MLServer.

Trains the example's model (scikit-learn's breast-cancer data, GradientBoostingClassifier
with n_estimators 100, max_depth 3, random_state 42, on the example's 75% split), stores
it with ``ArtifactStore.put_model`` (and with joblib for the others), and measures side
by side in one run, one row of FP64 features per call:

* the in-process floor: ``predict`` and ``predict_proba`` on one row, no HTTP;
* plain KServe: a minimal ``kserve.Model`` in KServe's Python ModelServer, its own
  process, nothing of modelplane's (``bench/kserve_plain_server.py``), with KServe's
  default event loop (uvloop) and with ``asyncio`` (as modelplane's replicas run it);
* MLServer with its scikit-learn runtime, from its own virtualenv
  (``bench/requirements-mlserver.txt``; ``parallel_workers: 0``);
* modelplane: the model deployed with ``LocalServing.deploy`` (supervisor, one replica,
  the gateway with a caller token and the access policy), called as a user calls it.

Load comes from ``wrk`` (Debian's package) with a Lua script for the body and headers,
at each concurrency for ``--duration`` seconds, ``--repeats`` times, targets
interleaved; medians of the runs' p50, p99 and requests/s. Every server runs on CPU
``--server-cpu`` (this process pins itself there; servers inherit it), wrk on CPU
``--load-cpu``: each server gets the same single core. Servers get the same minimal
environment as modelplane's replicas (PATH, HOME, LANG, LC_ALL, TMPDIR).

Also: server CPU per request (from /proc during the runs), the gateway's own cost per
request in-process (around a trivial inner app), the RSS of each server, the time
from ``deploy()`` to ready, cold starts after scale to zero, KServe's own start, and
in-process timings of the pieces of a request (DataFrame construction, JSON parsing;
ONNX Runtime with ``--tools-venv``, see ``bench/requirements-profile.txt``).

Every process it starts is stopped on exit, Ctrl-C or failure; a modelplane service
left by a killed run (``bench/.out/serving-state``) is stopped at the next start.

Usage: python bench/serving_bench.py [--duration 10] [--repeats 3] [--concurrency 1 8 32]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer
from sklearn.ensemble import GradientBoostingClassifier
from sklearn.model_selection import train_test_split

from controller.backends.serving.access import access_data, access_decider
from controller.backends.serving.config import Caller, ServiceConfig, Variant
from controller.backends.serving.local import LocalServing
from controller.state.artifacts import ArtifactStore

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / ".out"
STATE = OUT / "serving-state"
MLSERVER_VENV = OUT / "mlserver-venv"
SERVICE = "breast-cancer-api"
MODEL = "breast-cancer-classifier"
TOKEN = "serving-bench-caller-token"
SERVER_ENV = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
TICKS = os.sysconf("SC_CLK_TCK")


# --- the model and the requests -------------------------------------------------------


@dataclass
class Example:
    estimator: Any
    frame: pd.DataFrame  # held-out rows
    row: list[float]
    expected: int

    def v1(self) -> bytes:
        return json.dumps({"instances": [self.row]}).encode()

    def v2(self) -> bytes:
        tensor = {"name": "input-0", "shape": [1, len(self.row)], "datatype": "FP64", "data": self.row}
        return json.dumps({"inputs": [tensor]}).encode()


def train() -> Example:
    x, y = load_breast_cancer(as_frame=True, return_X_y=True)
    x_train, x_test, y_train, _ = train_test_split(x, y, test_size=0.25, random_state=42, stratify=y)
    estimator = GradientBoostingClassifier(n_estimators=100, max_depth=3, random_state=42).fit(x_train, y_train)
    row = [float(v) for v in x_test.iloc[0]]
    return Example(estimator, x_test, row, int(estimator.predict(x_test.iloc[:1])[0]))


# --- processes ------------------------------------------------------------------------


def _end_with_us() -> None:
    """In a child before exec: SIGTERM when the benchmark ends, however it ends."""
    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def listening_socket() -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    return sock


def post(url: str, body: bytes, headers: dict[str, str], timeout: float = 60) -> tuple[int, Any]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_ready(url: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                if answer.status == 200:
                    return
        except (OSError, urllib.error.URLError):
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{url} was not ready within {timeout:g} s")
        time.sleep(0.05)


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the process group it leads, SIGKILL after 10 s."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as handle:
                    todo.extend(int(c) for c in handle.read().split())
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError), open(f"/proc/{pid}/stat") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / TICKS


def rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


@dataclass
class Target:
    """One server and protocol under load."""

    name: str
    url: str
    body: bytes
    headers: dict[str, str]
    pids: Callable[[], list[int]]
    check: Callable[[Any], bool]


@dataclass
class Server:
    name: str
    base: str
    pid: int
    targets: list[Target] = field(default_factory=list)


class Servers:
    """Starts the servers; stops every process it started, whatever happens."""

    def __init__(self, work: Path, example: Example) -> None:
        self.work = work
        self.example = example
        self.processes: list[subprocess.Popen[bytes]] = []
        self.serving = LocalServing(STATE)
        self.store = ArtifactStore(work / "artifacts")
        self.digest = self.store.put_model(example.estimator)
        self.joblib_path = work / "model.joblib"
        joblib.dump(example.estimator, self.joblib_path)

    def close(self) -> None:
        for process in self.processes:
            stop_group(process)
        for service in self.serving.services():
            self.serving.stop(service)

    # plain KServe
    def start_plain_kserve(self, event_loop: str) -> tuple[subprocess.Popen[bytes], str]:
        sock = listening_socket()
        env = {
            **SERVER_ENV,
            "KSERVE_LOGLEVEL": "WARNING",
            "BENCH_LISTEN_FD": str(sock.fileno()),
            "BENCH_MODEL": str(self.joblib_path),
            "BENCH_MODEL_NAME": MODEL,
            "BENCH_EVENT_LOOP": event_loop,
        }
        process = subprocess.Popen(
            [sys.executable, "-I", str(ROOT / "bench" / "kserve_plain_server.py")],
            env=env,
            cwd=self.work,
            pass_fds=(sock.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=_end_with_us,
        )
        self.processes.append(process)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        sock.close()  # the server holds it now
        return process, base

    def plain_kserve(self, event_loop: str) -> Server:
        process, base = self.start_plain_kserve(event_loop)
        wait_ready(f"{base}/v2/models/{MODEL}/ready")
        label = "plain KServe" + ("" if event_loop == "auto" else f" ({event_loop} loop)")
        server = Server(label, base, process.pid)
        json_headers = {"Content-Type": "application/json"}
        pids = lambda: tree(process.pid)  # noqa: E731
        server.targets = [
            Target(f"{label}, V2", f"{base}/v2/models/{MODEL}/infer", self.example.v2(), json_headers, pids,
                   lambda a: a["outputs"][0]["data"][0] == self.example.expected),
            Target(f"{label}, V1", f"{base}/v1/models/{MODEL}:predict", self.example.v1(), json_headers, pids,
                   lambda a: a["predictions"][0] == self.example.expected),
        ]  # fmt: skip
        return server

    # MLServer
    def mlserver(self, venv: Path) -> Server:
        repo = self.work / "mlserver"
        model_dir = repo / MODEL
        model_dir.mkdir(parents=True)
        shutil.copy(self.joblib_path, model_dir / "model.joblib")
        http_port = free_port()
        settings = {
            "host": "127.0.0.1",
            "http_port": http_port,
            "grpc_port": free_port(),
            "metrics_port": free_port(),
            "parallel_workers": 0,  # its default (1) fails with uvloop here
            "debug": False,  # no access log, as the other servers
        }
        (repo / "settings.json").write_text(json.dumps(settings))
        model_settings = {
            "name": MODEL,
            "implementation": "mlserver_sklearn.SKLearnModel",
            "parameters": {"uri": "./model.joblib", "version": "v1"},
        }
        (model_dir / "model-settings.json").write_text(json.dumps(model_settings))
        process = subprocess.Popen(
            [str(venv / "bin" / "mlserver"), "start", str(repo)],
            env=SERVER_ENV,
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(self.work / "mlserver.log", "wb"),  # noqa: SIM115 (the child's)
            start_new_session=True,
            preexec_fn=_end_with_us,
        )
        self.processes.append(process)
        base = f"http://127.0.0.1:{http_port}"
        wait_ready(f"{base}/v2/models/{MODEL}/ready")
        server = Server("MLServer", base, process.pid)
        server.targets = [
            Target("MLServer, V2", f"{base}/v2/models/{MODEL}/infer", self.example.v2(),
                   {"Content-Type": "application/json"}, lambda: tree(process.pid),
                   lambda a: a["outputs"][0]["data"][0] == self.example.expected),
        ]  # fmt: skip
        return server

    # modelplane
    def config(self, service: str, idle: float | None = None) -> ServiceConfig:
        doc = {
            "apiVersion": "modelplane.io/v1alpha1",
            "kind": "InferenceService",
            "metadata": {"name": service},
            "spec": {
                "model": {"name": MODEL, "version": 1},
                "environment": "production",
                "access": {"groups": ["clinicians"]},
            },
        }
        return ServiceConfig(
            service,
            "production",
            str(self.store.root.resolve()),
            (Variant("stable", MODEL, 1, self.digest),),
            (Caller("bench-clinician", hashlib.sha256(TOKEN.encode()).hexdigest(), ("clinicians",)),),
            access_data(doc, None, None),
            idle_seconds=idle,
        )

    def modelplane(self) -> Server:
        status = self.serving.deploy(self.config(SERVICE))
        assert status.url and status.pid and len(status.replicas) == 1, status
        base = status.url
        server = Server("modelplane", base, status.pid)
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}

        def pids() -> list[int]:
            return list(self.serving.status(SERVICE).replicas)

        server.targets = [
            Target("modelplane, V2", f"{base}/v2/models/{SERVICE}/infer", self.example.v2(), headers, pids,
                   lambda a: a["outputs"][0]["data"][0] == self.example.expected),
            Target("modelplane, V1", f"{base}/v1/models/{SERVICE}:predict", self.example.v1(), headers, pids,
                   lambda a: a["predictions"][0] == self.example.expected),
        ]  # fmt: skip
        return server


def stop_leftovers() -> None:
    """Services a killed run of this benchmark left serving."""
    serving = LocalServing(STATE)
    for service in serving.services():
        if serving.stop(service):
            print(f"stopped {service}, left serving by an earlier run", file=sys.stderr)
    shutil.rmtree(STATE, ignore_errors=True)


# --- load -----------------------------------------------------------------------------


@dataclass
class Load:
    p50_ms: float
    p99_ms: float
    rps: float
    requests: int
    cpu_ms_per_request: float


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def _lua(target: Target, directory: Path) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(target.body.decode())}"]
    lines += [f"wrk.headers[{json.dumps(k)}] = {json.dumps(v)}" for k, v in target.headers.items()]
    path = directory / (re.sub(r"[^a-z0-9]+", "-", target.name.lower()) + ".lua")
    path.write_text("\n".join(lines) + "\n")
    return path


def wrk(target: Target, script: Path, connections: int, seconds: float, load_cpu: int) -> Load:
    pids = target.pids()
    cpu_before = cpu_seconds(pids)
    out = subprocess.run(
        ["taskset", "-c", str(load_cpu), "wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency",
         "-s", str(script), target.url],
        capture_output=True, text=True, timeout=seconds + 60, check=True,
    ).stdout  # fmt: skip
    cpu = cpu_seconds(pids) - cpu_before
    if "Non-2xx" in out or "Socket errors" in out:
        raise RuntimeError(f"{target.name} at c={connections} had errors:\n{out}")
    latency = {
        m.group(1): float(m.group(2)) * _UNITS[m.group(3)]
        for m in re.finditer(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
    }
    if set(latency) != {"50", "99"}:
        raise RuntimeError(f"{target.name} at c={connections}: no latency distribution in wrk's output:\n{out}")
    requests = int(re.search(r"^\s+(\d+) requests in", out, re.M).group(1))  # type: ignore[union-attr]
    rps = float(re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M).group(1))  # type: ignore[union-attr]
    return Load(latency["50"], latency["99"], rps, requests, cpu * 1000 / max(requests, 1))


# --- in-process measurements ----------------------------------------------------------


def timed(call: Callable[[], Any], count: int) -> list[float]:
    """Wall time of each of ``count`` calls, in ms."""
    times = []
    for _ in range(count):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def floor(example: Example, count: int) -> dict[str, list[float]]:
    row = np.array([example.row])
    frame = example.frame.iloc[:1]
    estimator = example.estimator
    columns = list(example.frame.columns)
    with_names = {"predict, one row (DataFrame)": lambda: estimator.predict(frame)}
    nameless = copy.deepcopy(estimator)
    del nameless.feature_names_in_  # what sklearn checks a DataFrame's columns (and warns on NumPy) against
    calls: dict[str, Callable[[], Any]] = {
        "predict, one row (NumPy)": lambda: estimator.predict(row),
        **with_names,
        "predict, one row (NumPy, estimator without feature_names_in_)": lambda: nameless.predict(row),
        "predict_proba, one row (NumPy)": lambda: estimator.predict_proba(row),
        "pd.DataFrame(row, columns=30 names)": lambda: pd.DataFrame(row, columns=columns),
    }
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # NumPy rows to an estimator fitted on named columns
        for call in calls.values():
            timed(call, 200)  # warm
        return {name: timed(call, count) for name, call in calls.items()}


def json_pieces(example: Example, count: int) -> dict[str, list[float]]:
    import orjson
    from kserve.protocol.rest.v2_datamodels import InferenceRequest

    body = example.v2()
    return {
        "json.loads(V2 body)": timed(lambda: json.loads(body), count),
        "orjson.loads(V2 body)": timed(lambda: orjson.loads(body), count),
        "KServe's InferenceRequest.model_validate_json(V2 body)": timed(
            lambda: InferenceRequest.model_validate_json(body), count
        ),
    }


def gateway_cost(servers: Servers, example: Example, count: int) -> dict[str, Any]:
    """The gateway (and the body limits in front of it) around a trivial answer, in-process."""
    from prometheus_client import CollectorRegistry

    from controller.backends.serving.gateway import Gateway
    from controller.backends.serving.inference import Answer
    from controller.backends.serving.metrics import Metrics
    from controller.backends.serving.modelserver import BODY_TIMEOUT_S, MAX_BODY_BYTES, _error
    from controller.http.limits import BodyLimits

    config = servers.config(SERVICE)
    body = example.v2()

    async def infer(model: str, protocol: str, body: bytes, headers: dict[str, str]) -> Answer:
        return Answer(200, b"{}")

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        """What is left without the gateway: read the body, ask for the answer, send it."""
        answer = await infer(SERVICE, "v2", (await receive())["body"], {})
        await send({"type": "http.response.start", "status": answer.status, "headers": list(answer.headers)})
        await send({"type": "http.response.body", "body": answer.body})

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        return None

    path = f"/v2/models/{SERVICE}/infer"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "server": ("127.0.0.1", 8080), "client": ("127.0.0.1", 50000),
        "headers": [(b"host", b"127.0.0.1:8080"), (b"content-type", b"application/json"),
                    (b"authorization", f"Bearer {TOKEN}".encode()), (b"content-length", str(len(body)).encode())],
    }  # fmt: skip
    decide = access_decider(config.service, config.environment, config.access_data)
    gateway = Gateway(inner, config, decide, infer, Metrics(CollectorRegistry()))
    stack = BodyLimits(gateway, max_bytes=MAX_BODY_BYTES, seconds=BODY_TIMEOUT_S, respond=_error)
    apps = {"inner app alone": inner, "gateway + inner": gateway, "body limits + gateway + inner": stack}
    statuses: list[int] = []

    async def check(message: Any) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    async def run(app: Any) -> tuple[list[float], float]:
        for _ in range(500):
            await app(dict(scope), receive, send)  # warm
        times = []
        cpu = time.thread_time_ns()
        for _ in range(count):
            fresh = dict(scope)
            start = time.perf_counter_ns()
            await app(fresh, receive, send)
            times.append((time.perf_counter_ns() - start) / 1e6)
        return times, (time.thread_time_ns() - cpu) / 1e6 / count

    async def everything() -> dict[str, tuple[list[float], float]]:
        await stack(dict(scope), receive, check)
        assert statuses == [200], statuses  # the caller is let through
        results: dict[str, tuple[list[float], float]] = {}
        for _ in range(3):  # interleaved
            for name, app in apps.items():
                times, cpu = await run(app)
                previous = results.get(name, ([], 0.0))
                results[name] = (previous[0] + times, previous[1] + cpu / 3)
        return results

    results = asyncio.run(everything())
    caller = config.callers[0]
    first = timed(lambda: decide(caller.name, caller.groups, False), 200)
    return {"layers": results, "decision": first}


def onnx_pieces(example: Example, servers: Servers, tools: Path, count: int) -> str:
    """ONNX Runtime against scikit-learn on one row, in the tools virtualenv."""
    code = f"""
import time, joblib, numpy as np, statistics, warnings
warnings.simplefilter("ignore")
from skl2onnx import to_onnx
import onnxruntime as ort
est = joblib.load({str(servers.joblib_path)!r})
row = np.array([{example.row!r}], dtype=np.float64)
onx = to_onnx(est, row[:1].astype(np.float32), options={{id(est): {{"zipmap": False}}}}, target_opset=17)
opts = ort.SessionOptions(); opts.intra_op_num_threads = 1; opts.inter_op_num_threads = 1
sess = ort.InferenceSession(onx.SerializeToString(), opts, providers=["CPUExecutionProvider"])
name = sess.get_inputs()[0].name
row32 = row.astype(np.float32)
label = int(sess.run(None, {{name: row32}})[0][0])
assert label == {example.expected}, label
def t(f, n):
    for _ in range(200): f()
    out = []
    for _ in range(n):
        s = time.perf_counter_ns(); f(); out.append((time.perf_counter_ns() - s) / 1e6)
    out.sort(); return statistics.median(out), out[int(0.99 * n)]
for label, f in (("sklearn predict, one row (NumPy)", lambda: est.predict(row)),
                 ("onnxruntime run, one row (FP32; label + probabilities)", lambda: sess.run(None, {{name: row32}}))):
    m, q = t(f, {count})
    print(f"  {{label:58s}} p50 {{m:7.3f}} ms  p99 {{q:7.3f}} ms")
"""
    out = subprocess.run([str(tools / "bin" / "python"), "-c", code], capture_output=True, text=True, env=SERVER_ENV)
    return out.stdout if out.returncode == 0 else f"  (failed: {out.stderr.strip().splitlines()[-1:]})\n"


# Where a request's time goes, by the innermost frame of these files or packages (the
# first that matches, scanning from the leaf); the rest is counted as "other".
# And the share of samples inside these calls (with all they call).
PROFILE_CALLS = (
    ("the estimator's predict, all of it", ("GradientBoostingClassifier.predict ",)),
    ("  of which scikit-learn's input checks (validate_data)", ("validate_data ",)),
    ("pd.DataFrame built from the rows", ("DataFrame.__init__ ",)),
    ("KServe's TimingMiddleware naming the route (a second route match)", ("StarletteScopeToName.__call__ ",)),
    ("KServe's TimingMiddleware reading CPU time (getrusage)", ("get_cpu_time ",)),
    ("FastAPI's request parameters (solve_dependencies)", ("solve_dependencies ",)),
    ("the request body's JSON (Request.json, model_validate_json)", ("Request.json ", "model_validate_json")),
    ("modelplane's gateway, with all it calls (not the batches)", ("Gateway.__call__ ",)),
    ("  of which its metrics (prometheus_client)", ("prometheus_client/",)),
    ("modelplane's batches (MicroBatcher._flush: the model's predict)", ("MicroBatcher._flush ",)),
    ("logging calls (filtered or not)", ("Logger.info ", "Logger.debug ", "Logger.isEnabledFor ")),
)
PROFILE_GROUPS = (
    ("scikit-learn: predict", ("sklearn/ensemble", "sklearn/tree")),
    ("scikit-learn: input validation (check_array, feature names)", ("sklearn/",)),
    ("pandas", ("pandas/",)),
    ("NumPy", ("numpy/",)),
    ("modelplane (controller/: gateway, inference path, batching, metrics)", ("controller/",)),
    ("prometheus_client", ("prometheus_client/",)),
    ("KServe: model, data plane, codecs", ("kserve/",)),
    ("MLServer", ("mlserver", "mlserver_sklearn")),
    ("pydantic", ("pydantic",)),
    ("FastAPI, Starlette", ("fastapi/", "starlette", "timing_asgi")),
    ("uvicorn, HTTP parsing", ("uvicorn/", "httptools", "h11/")),
    ("asyncio, uvloop", ("asyncio/", "uvloop")),
    ("JSON", ("json/", "orjson")),
    ("logging", ("logging/",)),
)


def profile(target: Target, script: Path, args: argparse.Namespace, work: Path) -> str:
    """py-spy samples of the server's process while wrk loads it (c=8), by group (py-spy
    leaves out idle threads: an event loop waiting for events is not counted)."""
    out = work / f"profile-{re.sub(r'[^a-z0-9]+', '-', target.name.lower())}.txt"
    pid = target.pids()[0]
    spy = subprocess.Popen(
        ["taskset", "-c", str(args.load_cpu), str(args.tools_venv / "bin" / "py-spy"), "record", "--pid", str(pid),
         "--duration", f"{args.profile:g}", "--rate", "250", "--format", "raw", "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True, preexec_fn=_end_with_us,
    )  # fmt: skip
    time.sleep(1.0)
    wrk(target, script, 8, args.profile - 2, args.load_cpu)
    _, errors = spy.communicate(timeout=args.profile + 60)
    if spy.returncode != 0 or not out.exists():
        return f"  (py-spy failed: {errors.decode(errors='replace').strip()[-300:]})\n"
    counts: dict[str, int] = {}
    inside: dict[str, int] = {}
    busy = 0
    for line in out.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        busy += int(number)
        for name, keys in PROFILE_CALLS:
            if any(k in stack for k in keys) and not (name.startswith("  of which its") and "Gateway" not in stack):
                inside[name] = inside.get(name, 0) + int(number)
        group = "other"
        for frame in reversed(frames):
            group = next((g for g, keys in PROFILE_GROUPS if any(k in frame for k in keys)), "")
            if group:
                break
        counts[group or "other"] = counts.get(group or "other", 0) + int(number)
    shutil.copy(out, OUT / out.name)
    share = lambda n: f"{100 * n / max(busy, 1):5.1f}%"  # noqa: E731
    lines = ["  by the innermost frame of:"]
    lines += [f"    {name:68s} {share(n)}" for name, n in sorted(counts.items(), key=lambda i: -i[1])]
    lines += ["  inside these calls:"]
    lines += [f"    {name:68s} {share(inside[name])}" for name, _ in PROFILE_CALLS if name in inside]
    return "\n".join([*lines, f"  ({busy} busy samples; stacks in bench/.out/{out.name})"]) + "\n"


# --- start-up -------------------------------------------------------------------------


def startup(servers: Servers, example: Example, repeats: int) -> dict[str, list[float]]:
    results: dict[str, list[float]] = {"deploy": [], "cold": [], "cold_supervisor": [], "kserve": []}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"}
    service = "deploy-time-api"
    for _ in range(repeats):
        started = time.perf_counter()
        status = servers.serving.deploy(servers.config(service))
        results["deploy"].append(time.perf_counter() - started)
        assert status.state == "ready"
        servers.serving.stop(service)
    cold = "cold-start-api"
    status = servers.serving.deploy(servers.config(cold, idle=1.0))
    url = f"{status.url}/v2/models/{cold}/infer"
    for _ in range(repeats):
        deadline = time.monotonic() + 30
        while servers.serving.status(cold).state != "idle":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cold} did not scale to zero")
            time.sleep(0.05)
        started = time.perf_counter()
        code, answer = post(url, example.v2(), headers)
        results["cold"].append(time.perf_counter() - started)
        assert code == 200 and answer["outputs"][0]["data"][0] == example.expected, (code, answer)
        results["cold_supervisor"].append(servers.serving.status(cold).last_cold_start_s or 0.0)
    servers.serving.stop(cold)
    for _ in range(repeats):
        started = time.perf_counter()
        process, base = servers.start_plain_kserve("auto")
        wait_ready(f"{base}/v2/models/{MODEL}/ready")
        results["kserve"].append(time.perf_counter() - started)
        stop_group(process)
        servers.processes.remove(process)
    return results


# --- main -----------------------------------------------------------------------------


def _stop_on_sigterm() -> None:
    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def _ms(values: list[float]) -> str:
    return f"p50 {statistics.median(values):7.3f} ms  p99 {p(values, 0.99):7.3f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of each wrk run")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load on each target first")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--server-cpu", type=int, default=1)
    parser.add_argument("--load-cpu", type=int, default=0)
    parser.add_argument("--startup-repeats", type=int, default=5)
    parser.add_argument("--mlserver-venv", type=Path, default=MLSERVER_VENV)
    parser.add_argument("--tools-venv", type=Path, help="a virtualenv with skl2onnx and onnxruntime")
    parser.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="then profile each server under load (c=8, V2) with py-spy from --tools-venv",
    )
    parser.add_argument("--skip", nargs="*", default=[], choices=["mlserver", "asyncio", "startup"])
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed: apt-get install -y wrk")
    if "mlserver" not in args.skip and not (args.mlserver_venv / "bin" / "mlserver").exists():
        sys.exit(
            f"no MLServer in {args.mlserver_venv}: python3 -m venv {args.mlserver_venv} && "
            f"{args.mlserver_venv}/bin/pip install -r bench/requirements-mlserver.txt (or --skip mlserver)"
        )
    if {args.server_cpu, args.load_cpu} - os.sched_getaffinity(0) or args.server_cpu == args.load_cpu:
        sys.exit(f"--server-cpu and --load-cpu must be two different CPUs of {sorted(os.sched_getaffinity(0))}")
    _stop_on_sigterm()
    os.sched_setaffinity(0, {args.server_cpu})  # every server started from here inherits it
    import threadpoolctl

    print(
        f"servers on CPU {args.server_cpu}, wrk on CPU {args.load_cpu}; "
        f"BLAS kernel here: {[i.get('architecture') for i in threadpoolctl.threadpool_info()]}",
        flush=True,
    )
    stop_leftovers()
    example = train()
    OUT.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="serving-bench-", dir=OUT))
    servers = Servers(work, example)
    try:
        run(args, servers, example, work)
    finally:
        servers.close()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(STATE, ignore_errors=True)


def run(args: argparse.Namespace, servers: Servers, example: Example, work: Path) -> None:
    started: list[Server] = [servers.plain_kserve("auto")]
    if "asyncio" not in args.skip:
        started.append(servers.plain_kserve("asyncio"))
    if "mlserver" not in args.skip:
        started.append(servers.mlserver(args.mlserver_venv))
    started.append(servers.modelplane())
    targets = [t for s in started for t in s.targets]
    scripts = {t.name: _lua(t, work) for t in targets}
    for target in targets:  # every target answers right, then is warmed up
        code, answer = post(target.url, target.body, target.headers)
        assert code == 200 and target.check(answer), f"{target.name}: {code} {answer}"
        wrk(target, scripts[target.name], 8, args.warmup, args.load_cpu)
    print(f"warm; {len(targets)} targets x {len(args.concurrency)} concurrencies x {args.repeats} runs "
          f"of {args.duration:g} s", flush=True)  # fmt: skip
    loads: dict[tuple[str, int], list[Load]] = {}
    for repeat in range(args.repeats):
        for connections in args.concurrency:
            order = targets[repeat % len(targets) :] + targets[: repeat % len(targets)]  # rotated each run
            for target in order:
                load = wrk(target, scripts[target.name], connections, args.duration, args.load_cpu)
                loads.setdefault((target.name, connections), []).append(load)
                print(f"  run {repeat + 1}: {target.name:36s} c={connections:<3d} {load.rps:8.0f} req/s  "
                      f"p50 {load.p50_ms:6.2f} ms  p99 {load.p99_ms:6.2f} ms", flush=True)  # fmt: skip
    memory = {s.name: {pid: rss_mb(pid) for pid in tree(s.pid)} for s in started}
    if args.profile:
        if not args.tools_venv:
            sys.exit("--profile needs --tools-venv (py-spy)")
        for server in started:
            target = server.targets[0]
            print(f"\nProfile of {target.name} at c=8 ({args.profile:g} s, py-spy)")
            print(profile(target, scripts[target.name], args, work), end="", flush=True)
    modelplane = next(s for s in started if s.name == "modelplane")
    replica = modelplane.targets[0].pids()[0]

    median = statistics.median
    print(f"\nLoad: one row of 30 FP64 features per call; medians of {args.repeats} runs of {args.duration:g} s")
    for connections in args.concurrency:
        base_v2 = {"MLServer": "MLServer, V2", "KServe": "plain KServe, V2"}
        print(f"\n  c={connections:<3d}{'':34s} {'p50':>9s} {'p99':>9s} {'req/s':>8s} {'CPU/req':>8s}  ratios")
        for target in targets:
            runs = loads[(target.name, connections)]
            rps = median([r.rps for r in runs])
            ratios = []
            for label, other in base_v2.items():
                protocol = target.name.rsplit(", ", 1)[1]
                other_name = other.replace("V2", protocol)
                if (other_name, connections) in loads and other_name != target.name:
                    ratios.append(f"{rps / median([r.rps for r in loads[(other_name, connections)]]):.2f}x {label}")
            p50, p99 = median([r.p50_ms for r in runs]), median([r.p99_ms for r in runs])
            cpu = median([r.cpu_ms_per_request for r in runs])
            print(f"  {target.name:38s} {p50:6.2f} ms {p99:6.2f} ms {rps:8.0f} {cpu:5.2f} ms  {', '.join(ratios)}")

    count = 20000
    print("\nIn-process floor and pieces (one call at a time)")
    for name, times in {**floor(example, count), **json_pieces(example, count)}.items():
        print(f"  {name:58s} {_ms(times)}  ({1000 / statistics.mean(times):7.0f} calls/s)")
    if args.tools_venv:
        print(onnx_pieces(example, servers, args.tools_venv, count), end="")

    gateway = gateway_cost(servers, example, count)
    print(f"\nThe gateway in-process, around a trivial inner app ({count} calls x 3, interleaved)")
    alone = gateway["layers"]["inner app alone"]
    for name, (times, cpu) in gateway["layers"].items():
        extra = ""
        if name != "inner app alone":
            extra = (f"  own: p50 {median(times) - median(alone[0]):.4f} ms, "
                     f"CPU {cpu - alone[1]:.4f} ms/request")  # fmt: skip
        print(f"  {name:32s} {_ms(times)}  CPU {cpu:.4f} ms/request{extra}")
    print(f"  an access decision, uncached (once per caller and consent): {_ms(gateway['decision'])}")

    print("\nMemory (RSS after the load runs)")
    for name, processes in memory.items():
        for pid, rss in processes.items():
            role = ""
            if name == "modelplane":
                role = " replica" if pid == replica else " supervisor" if pid == modelplane.pid else " other"
            print(f"  {name + role:32s} pid {pid:<8d} {rss:6.0f} MB")

    if "startup" not in args.skip:
        for server in started:  # the load is over; the start-up runs alone
            if server.name != "modelplane":
                process = next(p for p in servers.processes if p.pid == server.pid)
                stop_group(process)
                servers.processes.remove(process)
        servers.serving.stop(SERVICE)
        times = startup(servers, example, args.startup_repeats)
        print(f"\nStart-up, medians of {args.startup_repeats}")
        print(f"  LocalServing.deploy() to ready (supervisor + replica)   {median(times['deploy']):6.2f} s  "
              f"(all: {', '.join(f'{t:.2f}' for t in times['deploy'])})")  # fmt: skip
        print(f"  first call after scale to zero, its latency            {median(times['cold']):6.2f} s  "
              f"(all: {', '.join(f'{t:.2f}' for t in times['cold'])})")  # fmt: skip
        print(f"  the same, the supervisor's cold start                  {median(times['cold_supervisor']):6.2f} s")
        print(f"  plain KServe process start to ready                    {median(times['kserve']):6.2f} s")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every process it started was stopped")
