"""The local serving target: deploy, inspect and stop InferenceServices on this machine.

Each service has a serving directory, ``<state>/serving/<service>/``, holding its
configuration (``config.json``, :mod:`.config`), its supervisor's lock and its
status (:mod:`.supervisor`). :meth:`LocalServing.deploy` writes the configuration
and either signals the running supervisor to reload it or launches one, then waits
until the supervisor reports that the new generation serves (or why it cannot).
Whether a supervisor runs is told by its lock, and which process it is by the
kernel's lock table (:mod:`controller.backends.lockfile`), never by a pid in a file:
a supervisor that died (even by SIGKILL) frees the lock, and its replicas end with it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from controller.backends import lockfile
from controller.backends.processes import terminate_pid
from controller.backends.serving.config import ConfigError, ServiceConfig, read
from controller.backends.serving.process import ServingError
from controller.backends.serving.supervisor import CONFIG_FILE, LOCK_FILE, STATUS_FILE, write_json

DEPLOY_TIMEOUT = 120.0
STOP_TIMEOUT = 30.0


@dataclass(frozen=True)
class ServiceStatus:
    """What a service's supervisor last reported, and whether it runs now."""

    service: str
    running: bool
    state: str  # starting, ready, idle, failing, stopped; "down" when no supervisor runs
    url: str | None
    generation: int | None
    pid: int | None
    replicas: tuple[int, ...]
    restarts: int
    cold_starts: int
    last_cold_start_s: float | None
    error: str | None
    config: ServiceConfig | None

    def to_dict(self) -> dict[str, Any]:
        variants = self.config.variants if self.config else ()
        return {
            "service": self.service,
            "state": self.state,
            "url": self.url,
            "generation": self.generation,
            "pid": self.pid,
            "replicas": list(self.replicas),
            "restarts": self.restarts,
            "cold_starts": self.cold_starts,
            "last_cold_start_s": self.last_cold_start_s,
            "error": self.error,
            "variants": [
                {"role": v.role, "model": v.model, "version": v.version, "weight": v.weight} for v in variants
            ],
        }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


class LocalServing:
    """The services served from one state directory."""

    def __init__(self, state_dir: Path) -> None:
        self.root = state_dir / "serving"

    def directory(self, service: str) -> Path:
        return self.root / service

    def services(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if (p / CONFIG_FILE).is_file())

    def running(self, service: str) -> bool:
        """Whether a supervisor holds the service's lock now."""
        return lockfile.held(self.directory(service) / LOCK_FILE)

    def supervisor(self, service: str) -> int | None:
        """The pid of the running supervisor, from the kernel's lock table (not status.json)."""
        return lockfile.holder(self.directory(service) / LOCK_FILE) if self.running(service) else None

    def config(self, service: str) -> ServiceConfig | None:
        try:
            return read(self.directory(service) / CONFIG_FILE)
        except (OSError, ConfigError):
            return None

    def status(self, service: str) -> ServiceStatus:
        raw = _read_json(self.directory(service) / STATUS_FILE)
        running = self.running(service)
        return ServiceStatus(
            service=service,
            running=running,
            state=str(raw.get("state", "starting")) if running else "down",
            url=raw.get("url") if running else None,
            generation=raw.get("generation"),
            pid=self.supervisor(service) if running else None,
            replicas=tuple(r["pid"] for r in raw.get("replicas", []) if isinstance(r, dict)) if running else (),
            restarts=int(raw.get("restarts", 0)),
            cold_starts=int(raw.get("cold_starts", 0)),
            last_cold_start_s=raw.get("last_cold_start_s"),
            error=raw.get("error"),
            config=self.config(service),
        )

    def deploy(self, config: ServiceConfig, timeout: float = DEPLOY_TIMEOUT) -> ServiceStatus:
        """Serve ``config``: reload the running supervisor or start one; return once the
        new configuration serves and no replica of an older one answers any more. Raises
        :class:`ServingError` with the reason when it cannot. Deploying the configuration
        that already serves changes nothing."""
        directory = self.directory(config.service)
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        current = self.config(config.service)
        previous = _read_json(directory / STATUS_FILE)
        # The port it had, so that its URL survives a restart of its supervisor.
        port = config.port or _port_of(previous.get("url")) or (current.port if current else 0)
        config = replace(config, port=port)
        same = current is not None and replace(config, generation=current.generation, port=current.port) == current
        generation = current.generation if same and current else (current.generation + 1 if current else 1)
        config = replace(config, generation=generation)
        if config != current:  # a new generation, or the port it had, kept
            write_json(directory / CONFIG_FILE, json.loads(config.to_json()))
        if self.running(config.service):
            pid = self.supervisor(config.service)
            if not same and pid is not None:
                os.kill(pid, signal.SIGHUP)
        else:
            (directory / STATUS_FILE).unlink(missing_ok=True)  # a dead supervisor's last words are stale
            self._launch(directory)
        return self._wait(config.service, generation, timeout)

    def _launch(self, directory: Path) -> None:
        env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")}
        env["KSERVE_LOGLEVEL"] = "WARNING"
        launcher = subprocess.run(
            [sys.executable, "-I", "-m", "controller.backends.serving.supervisor", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            cwd="/",
            env=env,
            timeout=30,
            check=False,
        )
        if launcher.returncode != 0:
            raise ServingError(f"the supervisor could not start: {launcher.stderr.decode(errors='replace')[-500:]}")

    def _wait(self, service: str, generation: int, timeout: float) -> ServiceStatus:
        deadline = time.monotonic() + timeout
        seen_running = False
        while True:
            status = self.status(service)
            raw = _read_json(self.directory(service) / STATUS_FILE)
            seen_running = seen_running or status.running
            drained = raw.get("drained") == generation  # no replica of an older generation answers
            if status.running and status.generation == generation and status.state in ("ready", "idle") and drained:
                return status
            if raw.get("error") and raw.get("error_generation") == generation:
                raise ServingError(f"{service} generation {generation} cannot serve: {raw['error']}")
            if seen_running and not status.running:
                raise ServingError(f"the supervisor of {service} stopped: {status.error or 'no reason given'}")
            if not status.running and time.monotonic() > deadline - timeout + 10:
                raise ServingError(f"the supervisor of {service} did not start: {status.error or 'no reason given'}")
            if time.monotonic() > deadline:
                raise ServingError(f"{service} did not serve generation {generation} within {timeout:g} s")
            time.sleep(0.05)

    def stop(self, service: str, timeout: float = STOP_TIMEOUT) -> bool:
        """Stop the service's supervisor and replicas; False when none ran."""
        pid = self.supervisor(service)
        if pid is None:
            return False
        terminate_pid(pid, lambda: self.running(service), timeout)  # its replicas end with it
        return True


def _port_of(url: Any) -> int:
    """The port of a URL the service had, to keep it across supervisor restarts (0: none)."""
    if not isinstance(url, str) or ":" not in url.rsplit("/", 1)[-1]:
        return 0
    tail = url.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0
