"""The supervisor of one locally served InferenceService: a small daemon per service.

Started by the deployer (:mod:`.local`) as ``python -I -m
controller.backends.serving.supervisor DIR``, where ``DIR`` is the service's serving
directory holding ``config.json`` (:mod:`.config`). It detaches (a second fork, so
it is nobody's zombie), takes ``DIR/supervisor.lock`` (one supervisor per service:
a second one exits at once; the lock is also how others tell that it runs), and:

- **preloads** KServe, scikit-learn and skops once and **forks** each replica from
  itself (:func:`.process.fork`): a replica starts in a fraction of a second
  instead of the seconds a fresh interpreter spends importing them;
- **holds the service's listening socket** on ``host:port`` and hands it to every
  replica (:mod:`.process`), so the address stays the same across restarts and
  reloads, and calls arriving while no replica runs wait in the socket's backlog
  instead of being refused;
- **restarts a replica that ends**, counting restarts; a replica that fails to
  start is retried with a back-off up to :data:`MAX_BACKOFF_S`, and meanwhile the
  supervisor itself answers calls with ``503`` and the reason, so none hangs;
- **reloads on SIGHUP**: reads ``config.json`` again and, when its ``generation``
  changed, starts replicas of the new configuration on the same socket, and only
  when they serve drains the old ones (they stop accepting, answer each open
  connection once more with ``Connection: close``, then exit).
  When the new ones cannot start, the old ones keep serving and the error is
  reported for that generation;
- **scales to zero**: a replica stopped for want of calls (exit status
  :data:`~.modelserver.EXIT_IDLE`) is not restarted; the next connection to the
  socket starts one (a cold start, timed in the status);
- **stops on SIGTERM or SIGINT**: its replicas first, then itself.

Its standard output and error, and its replicas' (a model's failure, say), go to
``DIR/server.log``, kept under :data:`LOG_MAX_BYTES` (the rest in ``server.log.1``).
It reports in ``DIR/status.json`` (replaced atomically): its pid, the URL, the
generation it serves, its state (``starting``, ``ready``, ``idle``, ``failing``,
``stopped``), its replicas' pids, restarts, cold starts and the last error. Replicas
end with it even when it is killed with SIGKILL (see :mod:`.process`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from controller.backends.serving.config import ConfigError, ServiceConfig, read
from controller.backends.serving.metrics import MULTIPROCESS_ENV
from controller.backends.serving.modelserver import DRAIN_SIGNAL, EXIT_IDLE
from controller.backends.serving.process import ModelServerProcess, ServingError, fork, preload

CONFIG_FILE = "config.json"
STATUS_FILE = "status.json"
LOCK_FILE = "supervisor.lock"
LOG_FILE = "server.log"  # the supervisor's and its replicas' standard output and error
LOG_MAX_BYTES = 10 << 20  # then it becomes server.log.1 (the one before is dropped)
LOG_CHECK_S = 60.0
METRICS_DIR = "metrics"
MAX_BACKOFF_S = 30.0
TICK_S = 1.0


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def write_json(path: Path, value: Any) -> None:
    """Replace ``path`` with ``value`` as JSON, atomically (readers see old or new)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(value, handle, sort_keys=True)
    os.replace(temporary, path)


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        if port == 0:
            sock.close()
            raise
        sock.bind((host, 0))  # the port it had is taken: the status gives the new URL
    sock.listen(2048)
    sock.setblocking(False)  # the replicas' event loops want it so; the supervisor accepts only when free
    return sock


def _forget_gauges(pid: int) -> None:
    """An ended replica's gauges (calls in flight) no longer count; its counters still do."""
    if os.environ.get(MULTIPROCESS_ENV):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@dataclass
class Supervisor:
    directory: Path
    config: ServiceConfig
    sock: socket.socket
    replicas: list[ModelServerProcess] = field(default_factory=list)
    state: str = "starting"
    restarts: int = 0
    cold_starts: int = 0
    last_cold_start_s: float | None = None
    error: str | None = None
    error_generation: int | None = None
    failures: int = 0
    retry_at: float = 0.0
    idle: bool = False
    drained: int = 0  # the generation no older replica serves beside any more

    def report(self) -> None:
        write_json(
            self.directory / STATUS_FILE,
            {
                "pid": os.getpid(),
                "service": self.config.service,
                "url": _url(self.sock),
                "generation": self.config.generation,
                "state": self.state,
                "replicas": [{"pid": r.pid} for r in self.replicas if r.alive()],
                "restarts": self.restarts,
                "cold_starts": self.cold_starts,
                "last_cold_start_s": self.last_cold_start_s,
                "error": self.error,
                "error_generation": self.error_generation,
                "drained": self.drained,
                "updated": _now(),
            },
        )

    def _start_one(self, config: ServiceConfig) -> ModelServerProcess | None:
        try:
            replica = fork(config, self.sock)
        except ServingError as exc:
            self.error, self.error_generation = str(exc), config.generation
            return None
        return replica

    def fill(self) -> None:
        """Start replicas until the configured number serve (unless idle or backing off)."""
        if self.idle or time.monotonic() < self.retry_at:
            return
        while len(self.replicas) < self.config.replicas:
            replica = self._start_one(self.config)
            if replica is None:
                self.failures += 1
                self.retry_at = time.monotonic() + min(MAX_BACKOFF_S, 2.0 ** (self.failures - 1))
                self.state = "failing" if not self.replicas else "ready"
                self.report()
                return
            self.replicas.append(replica)
            self.failures = 0
            if self.error_generation == self.config.generation:
                self.error = self.error_generation = None
        self.state = "ready"
        self.drained = max(self.drained, self.config.generation)
        self.report()

    def reap(self) -> None:
        """Forget replicas that ended; count the restarts; go idle when they all idled."""
        ended = [r for r in self.replicas if not r.alive()]
        if not ended:
            return
        for replica in ended:
            replica.stop()  # closes its pipe
            self.replicas.remove(replica)
            _forget_gauges(replica.pid)
            if replica.process.returncode != EXIT_IDLE:
                self.restarts += 1
        if not self.replicas and all(r.process.returncode == EXIT_IDLE for r in ended):
            self.idle, self.state = True, "idle"
        self.report()

    def wake(self) -> None:
        """A connection arrived while idle: a cold start."""
        began = time.monotonic()
        self.idle = False
        self.cold_starts += 1
        self.fill()
        if self.replicas:
            self.last_cold_start_s = round(time.monotonic() - began, 3)
            self.report()

    def reload(self) -> None:
        """Read the configuration again; when it changed, replace the replicas without a gap."""
        try:
            config = read(self.directory / CONFIG_FILE)
        except (OSError, ConfigError) as exc:
            self.error, self.error_generation = f"cannot read {CONFIG_FILE}: {exc}", None
            self.report()
            return
        if config.generation == self.config.generation:
            return
        if self.idle or not self.replicas:
            self.config, self.retry_at, self.failures = config, 0.0, 0
            self.drained = config.generation
            self.report()
            return
        fresh: list[ModelServerProcess] = []
        for _ in range(config.replicas):
            replica = self._start_one(config)
            if replica is None:
                for started in fresh:
                    started.stop()
                self.report()  # the old generation keeps serving; the error names the new one
                return
            fresh.append(replica)
        old, self.replicas, self.config = self.replicas, fresh, config
        self.error = self.error_generation = None
        self.report()
        for replica in old:
            replica.process.send_signal(DRAIN_SIGNAL)  # all at once: they drain side by side
        for replica in old:
            replica.drain()
            _forget_gauges(replica.pid)
        self.drained = config.generation  # only now does no old replica answer anyone
        self.report()

    def answer_unavailable(self) -> None:
        """While no replica can start, answer a waiting connection with 503 and the reason."""
        try:
            conn, _ = self.sock.accept()
        except BlockingIOError:
            return
        with conn:
            conn.settimeout(1.0)
            with contextlib.suppress(OSError):
                conn.recv(65536)
            # Not the reason itself: it may name paths of the state; its operator sees it in `serve status`.
            message = f"{self.config.service} is unavailable: no replica can start; see 'modelplane serve status'"
            body = json.dumps({"error": message}).encode()
            head = (
                "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nRetry-After: {max(1, int(self.retry_at - time.monotonic()))}\r\n"
                "Connection: close\r\n\r\n"
            )
            with contextlib.suppress(OSError):
                conn.sendall(head.encode() + body)

    def stop(self) -> None:
        for replica in self.replicas:
            replica.process.send_signal(signal.SIGTERM)
        for replica in self.replicas:
            replica.stop()
        self.replicas.clear()
        self.state = "stopped"
        self.report()


def rotate_log(directory: Path) -> None:
    """Keep ``server.log`` under :data:`LOG_MAX_BYTES`: past it, its content moves to
    ``server.log.1`` and it starts again empty (copied, then truncated in place: the
    replicas write to it with O_APPEND and go on at its new end)."""
    log = directory / LOG_FILE
    with contextlib.suppress(FileNotFoundError):
        if log.stat().st_size > LOG_MAX_BYTES:
            shutil.copyfile(log, directory / (LOG_FILE + ".1"))
            os.chmod(directory / (LOG_FILE + ".1"), 0o600)
            os.truncate(log, 0)


def run(directory: Path) -> int:
    config = read(directory / CONFIG_FILE)
    lock = os.open(directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return 0  # another supervisor serves this service
    sock = listen(config.host, config.port)
    supervisor = Supervisor(directory, config, sock)
    supervisor.report()
    metrics = directory / METRICS_DIR  # the replicas' metrics, summed by whichever is scraped
    shutil.rmtree(metrics, ignore_errors=True)
    metrics.mkdir(mode=0o700)
    os.environ[MULTIPROCESS_ENV] = str(metrics)
    from prometheus_client import values

    values.ValueClass = values.get_value_class()  # chosen at import: every metric made from now on is shared
    preload()  # once: every replica is forked from here, in a fraction of a fresh start
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    os.set_blocking(wake_r, False)
    signal.set_wakeup_fd(wake_w)
    pending: set[int] = set()

    def note(signum: int, frame: Any) -> None:
        pending.add(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGCHLD):
        signal.signal(signum, note)
    supervisor.report()
    supervisor.fill()
    rotate_at = time.monotonic() + LOG_CHECK_S
    while True:
        if pending & {signal.SIGTERM, signal.SIGINT}:
            supervisor.stop()
            return 0
        if signal.SIGHUP in pending:
            pending.discard(signal.SIGHUP)
            supervisor.reload()
        pending.discard(signal.SIGCHLD)
        supervisor.reap()
        if not supervisor.idle and len(supervisor.replicas) < supervisor.config.replicas:
            supervisor.fill()
        watch_socket = supervisor.idle or not supervisor.replicas
        ready, _, _ = select.select([wake_r] + ([sock] if watch_socket else []), [], [], TICK_S)
        if wake_r in ready:
            with contextlib.suppress(BlockingIOError):
                os.read(wake_r, 512)
        if time.monotonic() >= rotate_at:
            rotate_log(directory)
            rotate_at = time.monotonic() + LOG_CHECK_S
        if sock in ready:
            if supervisor.idle:
                supervisor.wake()
            elif not supervisor.replicas and time.monotonic() < supervisor.retry_at:
                supervisor.answer_unavailable()


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m controller.backends.serving.supervisor DIR", file=sys.stderr)
        return 2
    directory = Path(argv[0]).resolve()
    if os.fork() > 0:
        return 0  # the launcher's child ends at once; the daemon is the grandchild
    os.setsid()
    try:
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.close(null)
        rotate_log(directory)
        log = os.open(directory / LOG_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        for fd in (1, 2):  # its replicas inherit them: their errors land here too
            os.dup2(log, fd)
        os.close(log)
        return run(directory)
    except Exception as exc:  # reported where the deployer looks, then gone
        with contextlib.suppress(OSError):
            write_json(
                directory / STATUS_FILE,
                {"pid": os.getpid(), "state": "stopped", "error": f"the supervisor failed: {exc}", "updated": _now()},
            )
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
