"""A local Prometheus for canary analysis, and the analysis itself.

:func:`start` runs the real ``prometheus`` binary (Debian's package; ``make test``
installs it) as a child process of the caller, listening on 127.0.0.1, with its
configuration, scrape targets and TSDB in one working directory. Its scrape targets
come from a file_sd file that :meth:`PrometheusServer.set_targets` rewrites atomically,
so model servers are added and removed without a restart. Like
:mod:`.serving.process`, a library call with no process-wide side effects.

:class:`InferenceMetrics` queries any Prometheus (this one or a user's) through
``prometheus_api_client`` for the metrics that the model servers export:

- ``modelplane_inference_request_duration_seconds_bucket{service, variant, version, le}``
- ``modelplane_inference_requests_total{service, variant, version, code}``

summed over every process that serves the same service and variant. :func:`analyse`
compares them with a canary's thresholds and returns an :class:`Analysis`: a verdict
(passed, failed, no-data) with its evidence, plain data for an audit record. The
canary steps run it against the Prometheus of :mod:`.local_prometheus`.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import requests
import yaml
from prometheus_api_client import PrometheusApiClientException
from prometheus_api_client.prometheus_connect import PrometheusConnect
from urllib3.util.retry import Retry

from controller.backends.processes import terminate

DEFAULT_HOST = "127.0.0.1"
DEFAULT_BINARY = "prometheus"
START_TIMEOUT = 15.0  # Prometheus 2.42 is ready in well under a second on an empty TSDB
STOP_GRACE = 10.0
QUERY_TIMEOUT = 5  # seconds for one PromQL query (prometheus_api_client takes an int)
PORT_ATTEMPTS = 3  # a free port can be taken by someone else before Prometheus binds it
MIN_SCRAPE_INTERVAL = 1.0  # seconds: the floor, low enough for tests

CONFIG_FILE = "prometheus.yml"
TARGETS_FILE = "targets.json"
LOG_FILE = "prometheus.log"
LOCK_FILE = "prometheus.lock"
DATA_DIR = "data"
JOB = "modelplane-inference"

DURATION_METRIC = "modelplane_inference_request_duration_seconds_bucket"
REQUESTS_METRIC = "modelplane_inference_requests_total"

_DURATION = re.compile(r"^(?:[0-9]+(?:ms|s|m|h|d|w|y))+$")
_DURATION_PART = re.compile(r"([0-9]+)(ms|s|m|h|d|w|y)")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800, "y": 31536000}
_LABEL_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PrometheusError(Exception):
    """Prometheus could not start, or did not answer a query, with the reason."""


# --- the server ------------------------------------------------------------------


@dataclass
class PrometheusServer:
    """A running Prometheus: its process, the URL it answers on and its working directory."""

    process: subprocess.Popen[bytes] = field(repr=False)
    url: str
    workdir: Path
    scrape_interval: str
    _log: IO[bytes] = field(repr=False)
    _lock: int = field(repr=False)  # held (with the child) while this Prometheus runs

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def targets_file(self) -> Path:
        return self.workdir / TARGETS_FILE

    def alive(self) -> bool:
        return self.process.poll() is None

    def set_targets(self, targets: Iterable[Mapping[str, Any]]) -> None:
        """Scrape exactly these targets from now on: each ``{"url": "http://127.0.0.1:PORT",
        "labels": {...}}`` (labels optional; a path in the URL is the metrics path, default
        ``/metrics``). The file is replaced atomically; Prometheus notices the change
        without a restart. Raises :class:`PrometheusError` on a bad target, before
        writing anything."""
        write_targets(self.workdir, targets)

    def metrics(self, timeout: int = QUERY_TIMEOUT) -> InferenceMetrics:
        """A query client for this server."""
        return InferenceMetrics(self.url, timeout=timeout)

    def stop(self, grace: float = STOP_GRACE) -> int:
        """SIGTERM, then SIGKILL after ``grace`` seconds; the exit status (0 when it shut
        down cleanly on the SIGTERM)."""
        code = terminate(self.process, grace)
        self._log.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1
        return code if code is not None else -signal.SIGKILL

    def detach(self) -> None:
        """Leave it running on its own (its child keeps the lock): this object lets go of
        its log and its copy of the lock, and stops and waits for nothing."""
        self._log.close()
        if self._lock >= 0:
            os.close(self._lock)
            self._lock = -1

    def __enter__(self) -> PrometheusServer:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.stop()


def start(
    workdir: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    scrape_interval: str = "1s",
    timeout: float = START_TIMEOUT,
    binary: str | Path = DEFAULT_BINARY,
) -> PrometheusServer:
    """Start Prometheus with its configuration, targets file, log and TSDB in ``workdir``
    (created if missing; the TSDB in ``workdir/data`` is kept across starts), listening on
    ``host:port`` (port 0: a free one), scraping every ``scrape_interval`` (a Prometheus
    duration, at least 1s) and no targets until :meth:`PrometheusServer.set_targets`.
    Waits until it is ready; raises :class:`PrometheusError` with the reason (and the end
    of its log) when it cannot start."""
    executable = _find_binary(binary)
    if _duration_seconds(scrape_interval, "scrape interval") < MIN_SCRAPE_INTERVAL:
        raise PrometheusError(f"scrape interval {scrape_interval!r} is below the floor of {MIN_SCRAPE_INTERVAL:g}s")
    workdir = workdir.resolve()
    (workdir / DATA_DIR).mkdir(parents=True, exist_ok=True)
    lock = _lock(workdir)
    try:
        _write_atomically(workdir / TARGETS_FILE, "[]\n")
        _write_atomically(workdir / CONFIG_FILE, _config(workdir, scrape_interval))
        attempts = PORT_ATTEMPTS if port == 0 else 1
        for attempt in range(1, attempts + 1):
            listen = port or _free_port(host)
            try:
                return _start_once(executable, workdir, host, listen, scrape_interval, timeout, lock)
            except _PortTaken as taken:
                if attempt == attempts:
                    raise PrometheusError(str(taken)) from None
        raise AssertionError("unreachable")
    except BaseException:
        os.close(lock)
        raise


def _lock(workdir: Path) -> int:
    """An exclusive lock on ``workdir``, taken before anything in it is rewritten; the
    child inherits it, so it is held for as long as this Prometheus runs."""
    fd = os.open(workdir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise PrometheusError(f"another Prometheus started by modelplane is running in {workdir}") from None
    return fd


class _PortTaken(Exception):
    pass


def _start_once(
    executable: str, workdir: Path, host: str, port: int, scrape_interval: str, timeout: float, lock: int
) -> PrometheusServer:
    address = f"{host}:{port}"
    log_path = workdir / LOG_FILE
    log = log_path.open("wb")
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "LC_ALL", "TMPDIR", "TZ")}
    try:
        process = subprocess.Popen(
            [
                executable,
                f"--config.file={workdir / CONFIG_FILE}",
                f"--storage.tsdb.path={workdir / DATA_DIR}",
                f"--web.listen-address={address}",
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            pass_fds=(lock,),
            start_new_session=True,  # a Ctrl-C at the controller's terminal is the controller's to handle
        )
    except OSError as error:
        log.close()
        raise PrometheusError(f"{executable} could not be run: {error.strerror or error}") from None
    server = PrometheusServer(process, f"http://{_url_host(host)}:{port}", workdir, scrape_interval, log, lock)
    try:
        _wait_ready(server, timeout)
    except BaseException:
        server._lock = -1  # still start()'s to release
        server.stop(grace=1.0)
        raise
    return server


def _wait_ready(server: PrometheusServer, timeout: float) -> None:
    split = urlsplit(server.url)
    assert split.hostname is not None and split.port is not None
    deadline = time.monotonic() + timeout
    while True:
        if server.process.poll() is not None:
            tail = _log_tail(server.workdir / LOG_FILE)
            reason = f"prometheus exited (status {server.process.returncode}) before it was ready; {tail}"
            if "address already in use" in tail:
                raise _PortTaken(reason)
            raise PrometheusError(reason)
        if _ready(split.hostname, split.port):
            return
        if time.monotonic() > deadline:
            tail = _log_tail(server.workdir / LOG_FILE)
            raise PrometheusError(f"prometheus was not ready at {server.url} within {timeout:g} s; {tail}")
        time.sleep(0.05)


def _ready(host: str, port: int) -> bool:
    connection = http.client.HTTPConnection(host, port, timeout=1.0)  # no proxies from the environment
    try:
        connection.request("GET", "/-/ready")
        return connection.getresponse().status == 200
    except OSError:
        return False
    finally:
        connection.close()


def _log_tail(path: Path, lines: int = 3) -> str:
    try:
        text = path.read_text(errors="replace").strip()
    except OSError:
        text = ""
    if not text:
        return f"its log ({path}) is empty"
    return f"its log ({path}) ends: " + " | ".join(text.splitlines()[-lines:])


def _find_binary(binary: str | Path) -> str:
    found = shutil.which(str(binary))
    if found is None:
        raise PrometheusError(
            f"the prometheus binary {str(binary)!r} was not found or is not executable; "
            "install Debian's 'prometheus' package (make test does) or pass its path"
        )
    return found


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _config(workdir: Path, scrape_interval: str) -> str:
    config = {
        "global": {
            "scrape_interval": scrape_interval,
            "scrape_timeout": scrape_interval,  # may not exceed the interval (its default, 10s, would)
            "evaluation_interval": scrape_interval,
        },
        "scrape_configs": [
            {
                "job_name": JOB,
                "honor_labels": True,  # the model servers' own service/variant/version labels win
                "file_sd_configs": [{"files": [str(workdir / TARGETS_FILE)], "refresh_interval": "5s"}],
            }
        ],
    }
    return "# Written by modelplane (controller/backends/prometheus.py); rewritten at every start.\n" + yaml.safe_dump(
        config, sort_keys=False
    )


def write_targets(workdir: Path, targets: Iterable[Mapping[str, Any]]) -> None:
    """Replace the scrape targets of the Prometheus working in ``workdir`` (running or not;
    see :meth:`PrometheusServer.set_targets`)."""
    groups = [_target_group(target) for target in targets]
    _write_atomically(workdir / TARGETS_FILE, json.dumps(groups, indent=2, sort_keys=True) + "\n")


def _target_group(target: Mapping[str, Any]) -> dict[str, Any]:
    """One file_sd group for one ``{"url", "labels"}`` target."""
    if not isinstance(target, Mapping) or not isinstance(target.get("url"), str):
        raise PrometheusError(f"a scrape target needs a 'url' string, got {target!r}")
    url = target["url"]
    split = urlsplit(url)
    try:
        port = split.port
    except ValueError:
        port = None
    if split.scheme not in ("http", "https") or not split.hostname or port is None:
        raise PrometheusError(f"scrape target {url!r} is not an http(s)://HOST:PORT URL")
    if split.query or split.fragment or split.username or split.password:
        raise PrometheusError(f"scrape target {url!r} may not carry a query, fragment or credentials")
    labels = target.get("labels") or {}
    if not isinstance(labels, Mapping):
        raise PrometheusError(f"the labels of scrape target {url!r} must be a mapping")
    group_labels: dict[str, str] = {}
    for name, value in labels.items():
        if not isinstance(name, str) or not _LABEL_NAME.match(name) or name.startswith("__"):
            raise PrometheusError(
                f"scrape target {url!r} has label {name!r}: a label name is [A-Za-z_][A-Za-z0-9_]* "
                "and may not start with '__' (reserved by Prometheus)"
            )
        if not isinstance(value, str):
            raise PrometheusError(f"label {name!r} of scrape target {url!r} must be a string")
        group_labels[name] = value
    group_labels["__scheme__"] = split.scheme
    group_labels["__metrics_path__"] = split.path or "/metrics"
    return {"targets": [f"{_url_host(split.hostname)}:{port}"], "labels": group_labels}


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` in one step: Prometheus never reads half a file."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


# --- the queries -----------------------------------------------------------------


def _duration_seconds(value: str, what: str) -> float:
    if not isinstance(value, str) or not _DURATION.match(value):
        raise PrometheusError(f"{what} {value!r} is not a Prometheus duration (e.g. 30s, 5m, 1h30m)")
    seconds = sum(int(n) * _SECONDS[unit] for n, unit in _DURATION_PART.findall(value))
    if seconds <= 0:
        raise PrometheusError(f"{what} {value!r} is not longer than zero")
    return seconds


def _string(value: str) -> str:
    """A PromQL string literal for ``value``: whatever it holds stays a label value."""
    if not isinstance(value, str):
        raise PrometheusError(f"a label value must be a string, got {value!r}")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise PrometheusError(f"label value {value!r} is not valid Unicode text") from None
    return json.dumps(value, ensure_ascii=False)  # JSON's escapes are a subset of PromQL's (Go's)


def _selector(metric: str, service: str, variant: str, extra: str = "") -> str:
    return f"{metric}{{service={_string(service)},variant={_string(variant)}{extra}}}"


def p99_latency_query(service: str, variant: str, window: str) -> str:
    """PromQL: the 99th percentile of request duration (seconds) over ``window``, all processes together."""
    _duration_seconds(window, "window")
    return f"histogram_quantile(0.99, sum by (le) (rate({_selector(DURATION_METRIC, service, variant)}[{window}])))"


def error_rate_query(service: str, variant: str, window: str) -> str:
    """PromQL: the share of 5xx answers among all answers over ``window``, in percent."""
    _duration_seconds(window, "window")
    server_errors = _selector(REQUESTS_METRIC, service, variant, ',code=~"5.."')
    errors = f"sum(rate({server_errors}[{window}])) or vector(0)"  # no 5xx series at all: 0, not no data
    return f"100 * ({errors}) / sum(rate({_selector(REQUESTS_METRIC, service, variant)}[{window}]))"


def request_count_query(service: str, variant: str, window: str) -> str:
    """PromQL: the requests answered over ``window`` (Prometheus' increase(), which extrapolates)."""
    _duration_seconds(window, "window")
    return f"sum(increase({_selector(REQUESTS_METRIC, service, variant)}[{window}]))"


class InferenceMetrics:
    """The model servers' request metrics, read from the Prometheus at ``url``.

    Every query is evaluated at ``at`` (Unix seconds; now when None), over the trailing
    ``window`` (a Prometheus duration such as ``5m``). No data is None: the caller decides
    (:func:`analyse` makes it a no-data verdict). A Prometheus that cannot be reached or
    does not answer within ``timeout`` seconds raises :class:`PrometheusError`; requests
    are not retried, and proxies from the environment are not used.
    """

    def __init__(self, url: str, *, timeout: int = QUERY_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        session = requests.Session()
        session.trust_env = False  # no proxy or netrc from the environment for a local Prometheus
        # No retries (a canary analysis must not stall); a read timeout stays a timeout, not a connection error.
        self._client = PrometheusConnect(self.url, session=session, timeout=timeout, retry=Retry(total=0, read=False))

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> InferenceMetrics:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def query(self, promql: str, at: float | None = None) -> float | None:
        """The value of a PromQL expression that yields one sample (or none: None; NaN: None)."""
        params = {"time": f"{at:.3f}"} if at is not None else {}
        try:
            result = self._client.custom_query(promql, params=params)
        except requests.RequestException as error:
            raise PrometheusError(f"Prometheus at {self.url} did not answer: {_reason(error)}") from None
        except PrometheusApiClientException as error:
            raise PrometheusError(f"Prometheus at {self.url} refused {promql}: {error}") from None
        if not result:
            return None
        if not isinstance(result, list) or not isinstance(result[0], dict) or len(result) > 1:
            raise PrometheusError(f"{promql} did not give one series: {str(result)[:200]}")
        value = float(result[0]["value"][1])
        return None if math.isnan(value) else value

    def p99_latency(self, service: str, variant: str, window: str, *, at: float | None = None) -> float | None:
        """Seconds; None when there were no requests in the window."""
        return self.query(p99_latency_query(service, variant, window), at)

    def error_rate(self, service: str, variant: str, window: str, *, at: float | None = None) -> float | None:
        """Percent of answers that were 5xx; None when there were no requests in the window."""
        return self.query(error_rate_query(service, variant, window), at)

    def request_count(self, service: str, variant: str, window: str, *, at: float | None = None) -> float:
        """Requests answered in the window (0 when none)."""
        return self.query(request_count_query(service, variant, window), at) or 0.0


def _reason(error: requests.RequestException) -> str:
    if isinstance(error, requests.Timeout):
        return "timed out"
    if isinstance(error, requests.ConnectionError):
        return "connection failed (is it running?)"
    return type(error).__name__


# --- the analysis ----------------------------------------------------------------


class Verdict(StrEnum):
    PASSED = "passed"
    FAILED = "failed"
    NO_DATA = "no-data"  # the caller treats it as a failed analysis (fail safe)


@dataclass(frozen=True)
class Thresholds:
    """What a canary must show over the window: p99 latency and 5xx share at most these,
    and at least ``min_requests`` requests for the numbers to count."""

    max_p99_seconds: float
    max_error_rate_percent: float
    min_requests: float = 1

    def __post_init__(self) -> None:
        for name in ("max_p99_seconds", "max_error_rate_percent", "min_requests"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
                raise PrometheusError(f"threshold {name} must be a finite number >= 0, got {value!r}")


@dataclass(frozen=True)
class Measurement:
    """One number of the evidence: what was measured, by which PromQL, and the limit."""

    name: str
    query: str
    value: float | None
    limit: float
    within: bool | None  # None: no data

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "query": self.query,
            "value": _json_number(self.value),
            "limit": self.limit,
            "within": self.within,
        }


@dataclass(frozen=True)
class Analysis:
    """The verdict on one variant of one service, and its evidence."""

    verdict: Verdict
    reason: str
    service: str
    variant: str
    window: str
    evaluated_at: float  # Unix seconds: the queries' evaluation time
    prometheus: str
    measurements: tuple[Measurement, ...]

    @property
    def passed(self) -> bool:
        return self.verdict is Verdict.PASSED

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable data for an audit record."""
        return {
            "verdict": self.verdict.value,
            "reason": self.reason,
            "service": self.service,
            "variant": self.variant,
            "window": self.window,
            "evaluatedAt": self.evaluated_at,
            "prometheus": self.prometheus,
            "measurements": [m.to_dict() for m in self.measurements],
        }


def analyse(
    metrics: InferenceMetrics,
    service: str,
    variant: str,
    window: str,
    thresholds: Thresholds,
    *,
    at: float | None = None,
) -> Analysis:
    """Judge ``variant`` of ``service`` over the trailing ``window`` (all queries at one
    evaluation time, ``at`` or now). Fewer requests than ``thresholds.min_requests``, no
    data, or a Prometheus that does not answer give :attr:`Verdict.NO_DATA`, never passed."""
    at = time.time() if at is None else at
    queries = {
        "requests": request_count_query(service, variant, window),
        "p99_latency_seconds": p99_latency_query(service, variant, window),
        "error_rate_percent": error_rate_query(service, variant, window),
    }
    values: dict[str, float | None] = dict.fromkeys(queries)
    problem = None
    try:
        for name, promql in queries.items():
            values[name] = metrics.query(promql, at)
    except PrometheusError as error:
        problem = str(error)
    else:
        values["requests"] = values["requests"] or 0.0  # no series: no requests
    count, p99, errors = values["requests"], values["p99_latency_seconds"], values["error_rate_percent"]
    measurements = (
        Measurement("requests", queries["requests"], count, thresholds.min_requests,
                    None if count is None else count >= thresholds.min_requests),
        Measurement("p99_latency_seconds", queries["p99_latency_seconds"], p99, thresholds.max_p99_seconds,
                    None if p99 is None else p99 <= thresholds.max_p99_seconds),
        Measurement("error_rate_percent", queries["error_rate_percent"], errors, thresholds.max_error_rate_percent,
                    None if errors is None else errors <= thresholds.max_error_rate_percent),
    )  # fmt: skip
    subject = f"{service}/{variant} over {window}"
    failures = [m for m in measurements[1:] if m.within is False]
    if problem is not None:
        verdict, reason = Verdict.NO_DATA, problem
    elif count is None or count < thresholds.min_requests:
        verdict, reason = (
            Verdict.NO_DATA,
            f"{subject}: {count or 0:g} requests, at least {thresholds.min_requests:g} needed",
        )
    elif p99 is None or errors is None:
        verdict, reason = Verdict.NO_DATA, f"{subject}: {count:g} requests but no latency or error data"
    elif failures:
        verdict = Verdict.FAILED
        reason = f"{subject}: " + "; ".join(f"{_LABELS[m.name]} {m.value:g} > {m.limit:g}" for m in failures)
    else:
        verdict = Verdict.PASSED
        reason = f"{subject}: p99 latency {p99:g} s, error rate {errors:g}%, {count:g} requests"
    return Analysis(verdict, reason, service, variant, window, at, metrics.url, measurements)


_LABELS = {"p99_latency_seconds": "p99 latency (s)", "error_rate_percent": "error rate (%)"}


def _json_number(value: float | None) -> float | str | None:
    """JSON has no infinities: Prometheus' +Inf (a quantile in the +Inf bucket) as a string."""
    if value is None or math.isfinite(value):
        return value
    return "+Inf" if value > 0 else "-Inf"
