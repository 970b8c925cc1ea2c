"""Canary analysis against a real Prometheus (Debian's binary, which ``make test``
installs: these tests fail, never skip, without it) scraping two real exporters on
127.0.0.1 that serve the model servers' metric names with known values.

Prometheus 2.42 hands discovered targets to its scrapers at most every 5 s, so the
scenario is built once per module and every query is evaluated at one fixed time,
which makes the numbers exact and independent of the order the tests run in."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIServer

import pytest
from prometheus_api_client.prometheus_connect import PrometheusConnect
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from controller.backends import prometheus
from controller.backends.prometheus import (
    InferenceMetrics,
    PrometheusError,
    PrometheusServer,
    Thresholds,
    Verdict,
    analyse,
    start,
)

WINDOW = "1m"
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
CODES = ("200", "404", "500", "503")  # created at 0 up front, as an exporter should
THRESHOLDS = Thresholds(max_p99_seconds=0.1, max_error_rate_percent=1.0, min_requests=50)


def eventually(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (result := check()):
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.1)
    return result


class Exporter:
    """One model server's worth of the two metrics, served by prometheus_client on 127.0.0.1."""

    def __init__(self) -> None:
        registry = CollectorRegistry()
        self.duration = Histogram(
            "modelplane_inference_request_duration_seconds",
            "Request duration.",
            ("service", "variant", "version"),
            buckets=BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "modelplane_inference_requests",
            "Requests answered.",
            ("service", "variant", "version", "code"),
            registry=registry,
        )
        self.server: WSGIServer
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=registry)
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def declare(self, service: str, variant: str, version: str = "1") -> None:
        self.duration.labels(service, variant, version)
        for code in CODES:
            self.requests.labels(service, variant, version, code)

    def answer(self, service: str, variant: str, seconds: float, code: str, count: int, version: str = "1") -> None:
        for _ in range(count):
            self.duration.labels(service, variant, version).observe(seconds)
            self.requests.labels(service, variant, version, code).inc()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@dataclass
class Scenario:
    server: PrometheusServer
    metrics: InferenceMetrics
    a: Exporter
    b: Exporter
    at: float  # every query's evaluation time


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Scenario]:
    a, b = Exporter(), Exporter()
    server = None
    try:
        for variant in ("stable", "canary-slow", "canary-errors", "idle"):
            a.declare("fraud", variant)
        b.declare("fraud", "stable")
        b.declare("other", "stable")
        server = start(tmp_path_factory.mktemp("prometheus"))
        server.set_targets([{"url": a.url, "labels": {"replica": "a"}}, {"url": b.url, "labels": {"replica": "b"}}])
        metrics = server.metrics()
        # The zeros are scraped first, so that Prometheus sees every increase that follows.
        eventually(lambda: metrics.query(f"count({prometheus.REQUESTS_METRIC})") == 6 * len(CODES))  # 4 + 2 label sets
        a.answer("fraud", "stable", 0.03, "200", 60)
        b.answer("fraud", "stable", 0.03, "200", 40)
        a.answer("fraud", "canary-slow", 0.3, "200", 100)
        a.answer("fraud", "canary-errors", 0.03, "200", 85)
        a.answer("fraud", "canary-errors", 0.03, "404", 5)  # a client's mistake, not the server's
        a.answer("fraud", "canary-errors", 0.03, "500", 4)
        a.answer("fraud", "canary-errors", 0.03, "503", 6)
        b.answer("other", "stable", 2.0, "500", 50)  # another service's trouble
        eventually(lambda: metrics.request_count("fraud", "stable", WINDOW) >= 100)
        time.sleep(1.2)  # one more scrape of each target
        # At the time of exporter a's last scrape, its increases are counted exactly.
        last = f'timestamp({prometheus.REQUESTS_METRIC}{{variant="canary-errors",code="200"}})'
        at = metrics.query(last)
        assert at is not None
        yield Scenario(server, metrics, a, b, at)
        metrics.close()
    finally:
        if server is not None:
            server.stop()
        a.close()
        b.close()


# --- the queries -----------------------------------------------------------------


def test_p99_is_the_histogram_quantile_over_all_replicas(scenario: Scenario) -> None:
    m, at = scenario.metrics, scenario.at
    # 100 answers in 25-50 ms: Prometheus interpolates inside the bucket, 25 + 25 * 0.99 ms.
    assert m.p99_latency("fraud", "stable", WINDOW, at=at) == pytest.approx(0.04975)
    assert m.p99_latency("fraud", "canary-slow", WINDOW, at=at) == pytest.approx(0.4975)
    assert m.p99_latency("other", "stable", WINDOW, at=at) == pytest.approx(1.0 + 1.5 * 0.99)


def test_error_rate_is_the_share_of_5xx_in_percent(scenario: Scenario) -> None:
    m, at = scenario.metrics, scenario.at
    assert m.error_rate("fraud", "canary-errors", WINDOW, at=at) == pytest.approx(
        10.0
    )  # 4 + 6 of 100; 404s count as answered
    assert m.error_rate("fraud", "stable", WINDOW, at=at) == 0.0
    assert m.error_rate("other", "stable", WINDOW, at=at) == pytest.approx(100.0)


def test_request_count_sums_replicas_and_filters_by_service_and_variant(scenario: Scenario) -> None:
    m, at = scenario.metrics, scenario.at
    assert m.request_count("fraud", "canary-errors", WINDOW, at=at) == pytest.approx(100.0)
    assert m.request_count("fraud", "canary-slow", WINDOW, at=at) == pytest.approx(100.0)
    # 60 on a (exact at a's scrape time) plus 40 on b, which Prometheus may extrapolate
    # by up to one scrape interval: more than a alone, never less than the truth.
    assert 100.0 <= m.request_count("fraud", "stable", WINDOW, at=at) < 140.0
    assert m.request_count("other", "stable", WINDOW, at=at) >= 50.0


def test_no_requests_is_no_data(scenario: Scenario) -> None:
    m, at = scenario.metrics, scenario.at
    for variant in ("idle", "never-deployed"):
        assert m.request_count("fraud", variant, WINDOW, at=at) == 0.0
        assert m.p99_latency("fraud", variant, WINDOW, at=at) is None
        assert m.error_rate("fraud", variant, WINDOW, at=at) is None


def test_data_older_than_the_window_is_no_data(scenario: Scenario) -> None:
    m = scenario.metrics
    later = scenario.at + 120  # the requests are more than the 1m window back
    assert m.request_count("fraud", "canary-errors", WINDOW, at=later) == 0.0
    assert m.p99_latency("fraud", "canary-errors", WINDOW, at=later) is None


def test_a_hostile_label_value_stays_a_label_value(scenario: Scenario) -> None:
    # Pasted into the query as is, this variant would end the selector and add the
    # canary-errors count (100) to the result; quoted, it matches nothing.
    hostile = (
        'stable"}[1m])) * 0 + sum(increase(modelplane_inference_requests_total{service="fraud",variant="canary-errors'
    )
    m, at = scenario.metrics, scenario.at
    assert m.request_count("fraud", hostile, WINDOW, at=at) == 0.0
    assert m.p99_latency("fraud", hostile, WINDOW, at=at) is None
    assert analyse(m, "fraud", hostile, WINDOW, THRESHOLDS, at=at).verdict is Verdict.NO_DATA


@pytest.mark.parametrize(
    ("window", "message"),
    [
        ("1m]) or vector(1", "window '1m]) or vector(1' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"),
        ("", "window '' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"),
        ("60", "window '60' is not a Prometheus duration (e.g. 30s, 5m, 1h30m)"),
        ("0m", "window '0m' is not longer than zero"),
    ],
    ids=["injection", "empty", "no-unit", "zero"],
)
def test_a_bad_window_is_refused(scenario: Scenario, window: str, message: str) -> None:
    with pytest.raises(PrometheusError) as error:
        scenario.metrics.p99_latency("fraud", "stable", window)
    assert str(error.value) == message


# --- the analysis ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "verdict", "reason"),
    [
        ("stable", Verdict.PASSED, "fraud/stable over 1m: p99 latency 0.04975 s, error rate 0%, "),
        ("canary-slow", Verdict.FAILED, "fraud/canary-slow over 1m: p99 latency (s) 0.4975 > 0.1"),
        ("canary-errors", Verdict.FAILED, "fraud/canary-errors over 1m: error rate (%) 10 > 1"),
        ("idle", Verdict.NO_DATA, "fraud/idle over 1m: 0 requests, at least 50 needed"),
        ("never-deployed", Verdict.NO_DATA, "fraud/never-deployed over 1m: 0 requests, at least 50 needed"),
    ],
    ids=["passed", "failed-latency", "failed-errors", "no-requests", "no-series"],
)
def test_verdicts(scenario: Scenario, variant: str, verdict: Verdict, reason: str) -> None:
    analysis = analyse(scenario.metrics, "fraud", variant, WINDOW, THRESHOLDS, at=scenario.at)
    assert analysis.verdict is verdict
    assert analysis.passed is (verdict is Verdict.PASSED)
    assert analysis.reason.startswith(reason)


def test_too_few_requests_is_no_data_not_a_pass(scenario: Scenario) -> None:
    strict = Thresholds(max_p99_seconds=1.0, max_error_rate_percent=50.0, min_requests=1000)
    analysis = analyse(scenario.metrics, "fraud", "stable", WINDOW, strict, at=scenario.at)
    assert analysis.verdict is Verdict.NO_DATA
    assert analysis.reason.endswith("requests, at least 1000 needed")


def test_both_failures_are_reported(scenario: Scenario) -> None:
    analysis = analyse(scenario.metrics, "other", "stable", WINDOW, THRESHOLDS, at=scenario.at)
    assert analysis.verdict is Verdict.FAILED
    assert analysis.reason == "other/stable over 1m: p99 latency (s) 2.485 > 0.1; error rate (%) 100 > 1"


def test_the_evidence_is_plain_json_with_the_promql_that_was_run(scenario: Scenario) -> None:
    analysis = analyse(scenario.metrics, "fraud", "canary-errors", WINDOW, THRESHOLDS, at=scenario.at)
    record = json.loads(json.dumps(analysis.to_dict(), allow_nan=False))
    assert record["verdict"] == "failed"
    assert record["evaluatedAt"] == scenario.at
    assert record["prometheus"] == scenario.server.url
    by_name = {m["name"]: m for m in record["measurements"]}
    assert by_name["requests"] == {
        "name": "requests",
        "query": 'sum(increase(modelplane_inference_requests_total{service="fraud",variant="canary-errors"}[1m]))',
        "value": pytest.approx(100.0),
        "limit": 50,
        "within": True,
    }
    assert by_name["error_rate_percent"]["within"] is False
    assert by_name["p99_latency_seconds"]["within"] is True
    # The recorded PromQL, run again at the recorded time, gives the recorded numbers.
    client = PrometheusConnect(scenario.server.url, timeout=5)
    try:
        for measurement in record["measurements"]:
            result = client.custom_query(measurement["query"], params={"time": record["evaluatedAt"]})
            assert float(result[0]["value"][1]) == pytest.approx(measurement["value"])
    finally:
        client.close()


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"max_p99_seconds": -1.0}, "threshold max_p99_seconds must be a finite number >= 0, got -1.0"),
        (
            {"max_error_rate_percent": math.nan},
            "threshold max_error_rate_percent must be a finite number >= 0, got nan",
        ),
        ({"min_requests": "10"}, "threshold min_requests must be a finite number >= 0, got '10'"),
    ],
    ids=["negative", "nan", "string"],
)
def test_bad_thresholds_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(PrometheusError) as error:
        Thresholds(**{"max_p99_seconds": 0.1, "max_error_rate_percent": 1.0, **fields})
    assert str(error.value) == message


# --- targets -----------------------------------------------------------------------


def _active_targets(server: PrometheusServer) -> list[str]:
    client = PrometheusConnect(server.url, timeout=5)
    try:
        return sorted(t["scrapeUrl"] for t in client.get_targets(state="active")["activeTargets"])
    finally:
        client.close()


def test_targets_change_at_run_time(scenario: Scenario) -> None:
    # The scenario added both exporters after the start; here one goes away, without a restart.
    server = scenario.server
    pid = server.pid
    assert _active_targets(server) == sorted([f"{scenario.a.url}/metrics", f"{scenario.b.url}/metrics"])
    try:
        server.set_targets([{"url": scenario.a.url + "/metrics", "labels": {"replica": "a"}}])
        eventually(lambda: _active_targets(server) == [f"{scenario.a.url}/metrics"])
    finally:
        server.set_targets([{"url": scenario.a.url, "labels": {"replica": "a"}}, {"url": scenario.b.url}])
    assert server.pid == pid and server.alive()


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ({"url": "file:///etc/passwd"}, "scrape target 'file:///etc/passwd' is not an http(s)://HOST:PORT URL"),
        ({"url": "http://127.0.0.1"}, "scrape target 'http://127.0.0.1' is not an http(s)://HOST:PORT URL"),
        ({"url": "http://127.0.0.1:x"}, "scrape target 'http://127.0.0.1:x' is not an http(s)://HOST:PORT URL"),
        (
            {"url": "http://u:p@127.0.0.1:1"},
            "scrape target 'http://u:p@127.0.0.1:1' may not carry a query, fragment or credentials",
        ),
        (
            {"url": "http://127.0.0.1:1", "labels": {"__address__": "10.0.0.1:80"}},
            "scrape target 'http://127.0.0.1:1' has label '__address__': a label name is [A-Za-z_][A-Za-z0-9_]* "
            "and may not start with '__' (reserved by Prometheus)",
        ),
        (
            {"url": "http://127.0.0.1:1", "labels": {"replica": 1}},
            "label 'replica' of scrape target 'http://127.0.0.1:1' must be a string",
        ),
        ({"labels": {}}, "a scrape target needs a 'url' string, got {'labels': {}}"),
    ],
    ids=["scheme", "no-port", "bad-port", "credentials", "reserved-label", "label-value", "no-url"],
)
def test_a_bad_target_is_refused_and_nothing_is_written(
    scenario: Scenario, target: dict[str, Any], message: str
) -> None:
    before = scenario.server.targets_file.read_bytes()
    with pytest.raises(PrometheusError) as error:
        scenario.server.set_targets([{"url": scenario.a.url}, target])
    assert str(error.value) == message
    assert scenario.server.targets_file.read_bytes() == before


# --- starting and stopping ---------------------------------------------------------


def test_it_listens_on_loopback_and_keeps_its_files_in_the_workdir(scenario: Scenario) -> None:
    server = scenario.server
    assert server.url.startswith("http://127.0.0.1:")
    assert sorted(p.name for p in server.workdir.iterdir() if not p.name.startswith(".")) == [
        "data",
        "prometheus.lock",
        "prometheus.log",
        "prometheus.yml",
        "targets.json",
    ]
    assert (server.workdir / "data" / "wal").is_dir()


def test_the_child_gets_a_minimal_environment_and_its_own_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELPLANE_TOKEN", "secret-of-the-controller")
    with start(tmp_path) as server:
        environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
        names = {entry.split(b"=", 1)[0].decode() for entry in environ if entry}
        assert names <= {"PATH", "LANG", "LC_ALL", "TMPDIR", "TZ"}
        assert os.getsid(server.pid) == server.pid  # a Ctrl-C at the caller's terminal does not reach it


def test_queries_ignore_proxies_from_the_environment(scenario: Scenario, monkeypatch: pytest.MonkeyPatch) -> None:
    # A proxy that would see (or here: refuse) every query if the client honoured it.
    for name in ("http_proxy", "HTTP_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    with InferenceMetrics(scenario.server.url) as metrics:
        assert metrics.request_count("fraud", "canary-slow", WINDOW, at=scenario.at) == pytest.approx(100.0)


def test_a_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-prometheus"
    with pytest.raises(PrometheusError) as error:
        start(tmp_path / "work", binary=missing)
    assert str(error.value) == (
        f"the prometheus binary {str(missing)!r} was not found or is not executable; "
        "install Debian's 'prometheus' package (make test does) or pass its path"
    )


def test_a_binary_that_exits_is_reported_with_its_log(tmp_path: Path) -> None:
    fake = tmp_path / "fake-prometheus"
    fake.write_text("#!/bin/sh\necho 'level=error msg=\"cannot do it\"' >&2\nexit 3\n")
    fake.chmod(0o755)
    with pytest.raises(PrometheusError) as error:
        start(tmp_path / "work", binary=fake)
    log = tmp_path / "work" / "prometheus.log"
    assert str(error.value) == (
        f'prometheus exited (status 3) before it was ready; its log ({log}) ends: level=error msg="cannot do it"'
    )


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PrometheusError) as error:
            start(tmp_path, port=port)
    assert str(error.value).startswith("prometheus exited (status 1) before it was ready; its log (")
    assert f"listen tcp 127.0.0.1:{port}: bind: address already in use" in str(error.value)


def test_a_free_port_taken_before_prometheus_binds_it_is_retried(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        ports = iter([taken.getsockname()[1]])
        free_port = prometheus._free_port
        monkeypatch.setattr(prometheus, "_free_port", lambda host: next(ports, None) or free_port(host))
        with start(tmp_path) as server:
            assert server.alive()
            assert not server.url.endswith(f":{taken.getsockname()[1]}")


def test_a_second_prometheus_in_the_same_workdir_is_refused(scenario: Scenario) -> None:
    before = scenario.server.targets_file.read_bytes()
    with pytest.raises(PrometheusError) as error:
        start(scenario.server.workdir)
    assert str(error.value) == f"another Prometheus started by modelplane is running in {scenario.server.workdir}"
    assert scenario.server.targets_file.read_bytes() == before


def test_a_scrape_interval_below_the_floor_is_refused(tmp_path: Path) -> None:
    with pytest.raises(PrometheusError) as error:
        start(tmp_path, scrape_interval="500ms")
    assert str(error.value) == "scrape interval '500ms' is below the floor of 1s"


def test_a_stopped_prometheus_is_a_clear_error_and_no_data(tmp_path: Path) -> None:
    server = start(tmp_path)
    assert server.stop() == 0
    assert not server.alive()
    with InferenceMetrics(server.url, timeout=2) as metrics:
        began = time.monotonic()
        with pytest.raises(PrometheusError) as error:
            metrics.p99_latency("fraud", "stable", WINDOW)
        assert str(error.value) == f"Prometheus at {server.url} did not answer: connection failed (is it running?)"
        analysis = analyse(metrics, "fraud", "stable", WINDOW, THRESHOLDS)
        assert time.monotonic() - began < 2.0  # refused at once, no retries
    assert analysis.verdict is Verdict.NO_DATA
    assert analysis.reason == str(error.value)
    assert [m.value for m in analysis.measurements] == [None, None, None]


def test_a_hung_prometheus_times_out(tmp_path: Path) -> None:
    with start(tmp_path) as server:
        os.kill(server.pid, signal.SIGSTOP)
        try:
            with InferenceMetrics(server.url, timeout=1) as metrics:
                began = time.monotonic()
                analysis = analyse(metrics, "fraud", "stable", WINDOW, THRESHOLDS)
                assert time.monotonic() - began < 3.0
        finally:
            os.kill(server.pid, signal.SIGCONT)
    assert analysis.verdict is Verdict.NO_DATA
    assert analysis.reason == f"Prometheus at {server.url} did not answer: timed out"
