"""The Prometheus that modelplane runs for the services it serves on this machine.

One per state directory, in ``<state>/prometheus/`` (configuration, targets, log and
TSDB), started by :func:`ensure` when a service with canary analysis is deployed and left running
in the background, as the model servers are: it scrapes every locally served
service, whose endpoints :func:`set_targets` writes (Prometheus picks a change up
within seconds, without a restart). Whether it runs is told by the lock it holds
(inherited from :func:`controller.backends.prometheus.start`); before it is
stopped, the pid in its endpoint file is checked against the process's command line.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

from controller.backends import lockfile, prometheus
from controller.backends.processes import terminate_pid

ENDPOINT_FILE = "endpoint.json"
SCRAPE_INTERVAL = "1s"  # a handful of local targets: cheap, and analysis windows can be short


def workdir(state_dir: Path) -> Path:
    return state_dir / "prometheus"


def running(state_dir: Path) -> bool:
    return lockfile.held(workdir(state_dir) / prometheus.LOCK_FILE)


def _endpoint(state_dir: Path) -> dict[str, object]:
    try:
        value = json.loads((workdir(state_dir) / ENDPOINT_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def url(state_dir: Path) -> str | None:
    """The URL of the running Prometheus (None when none runs)."""
    found = _endpoint(state_dir).get("url")
    return found if isinstance(found, str) and running(state_dir) else None


def ensure(state_dir: Path) -> str:
    """The running Prometheus' URL, starting it first when none runs (raises
    :class:`~controller.backends.prometheus.PrometheusError` when it cannot start)."""
    found = url(state_dir)
    if found is not None:
        return found
    directory = workdir(state_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    targets = directory / prometheus.TARGETS_FILE
    kept = targets.read_text(encoding="utf-8") if targets.exists() else None
    server = prometheus.start(directory, scrape_interval=SCRAPE_INTERVAL)
    if kept is not None:  # start() begins with no targets: give back those written while it was down
        (directory / prometheus.TARGETS_FILE).write_text(kept, encoding="utf-8")
    (directory / ENDPOINT_FILE).write_text(json.dumps({"url": server.url, "pid": server.pid}), encoding="utf-8")
    server.detach()
    return server.url


def set_targets(state_dir: Path, services: Mapping[str, str]) -> None:
    """Scrape these services (name -> URL) and no others."""
    directory = workdir(state_dir)
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    prometheus.write_targets(
        directory, [{"url": u, "labels": {"modelplane_service": name}} for name, u in sorted(services.items())]
    )


def _is_ours(pid: int, state_dir: Path) -> bool:
    """Whether ``pid`` is the Prometheus working in this state directory (by its command line)."""
    try:
        arguments = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    config = f"--config.file={workdir(state_dir).resolve() / prometheus.CONFIG_FILE}".encode()
    return config in arguments


def stop(state_dir: Path, timeout: float = 10.0) -> bool:
    """Stop the running Prometheus; False when none ran."""
    pid = _endpoint(state_dir).get("pid")
    # The lock was taken by whoever started it (and is held by Prometheus through the file it
    # inherited): the pid comes from the endpoint file, so check that it is this Prometheus.
    if not running(state_dir) or not isinstance(pid, int) or not _is_ours(pid, state_dir):
        return False
    terminate_pid(pid, lambda: running(state_dir), timeout)
    return True
