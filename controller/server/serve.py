"""What the CLI's serve commands call: check, assemble the app, bind, announce, run.

Called by ``modelplane policy serve`` (:func:`controller.cli.policy.serve`) and
``modelplane controller`` (:func:`serve_controller`), each as one call; the CLI only
formats the announcement and maps errors to exit codes.

The order matters: the address is resolved and cleared by
:mod:`controller.server.guard` (tokens, TLS, loopback) before a socket listens, and
the socket listens before anything loads, so a refusal or a port in use is reported
at once. Policies written over HTTP (``--allow-policy-writes``) are recorded in the
state directory's audit log and replayed at every start over the repo's policies,
whether or not writes are allowed this time: they are part of what the server serves,
and the announcement names each one.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from controller.engine.reconcile import Settings
from controller.loading import DEFAULT_PATHS, load
from controller.policy.data_api import DataApi
from controller.policy.engine import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT
from controller.policy.evaluate import data_for
from controller.policy.sources import PolicyFile, PolicyLoadError, discover
from controller.server import data_api, webhooks
from controller.server.app import create_app
from controller.server.guard import Guard, check
from controller.server.run import DEFAULT_HOST, ServerError, listen, resolve, run, url
from controller.server.webhooks import WebhookSecrets
from controller.state.artifacts import ArtifactError
from controller.state.db import StateError
from controller.state.policy_writes import WrittenPolicy
from controller.state.store import DEFAULT_STATE_DIR, Store, open_anchored
from controller.triggers.git_source import GitRepo, GitSource, context_for
from controller.triggers.webhooks import DEFAULT_PATHS as WATCHED_PATHS
from controller.triggers.webhooks import Filters
from controller.triggers.worker import Worker
from controller.triggers.worker import start as start_worker


@dataclass(frozen=True)
class Replayed:
    """A policy written (or deleted) over HTTP before this start, served over the repo's."""

    write: WrittenPolicy
    in_repo: bool  # the repo has a policy of that id, which this write replaces or removes


@dataclass(frozen=True)
class Started:
    """What the server announces once it listens."""

    url: str
    policy_files: int
    clients: list[str]  # the names holding tokens; empty without authentication
    replayed: list[Replayed] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    state_dir: Path | None = None
    writes: list[str] = field(default_factory=list)  # the write flags given


def _replay(files: list[PolicyFile], store: Store) -> tuple[list[PolicyFile], list[Replayed]]:
    """The repo's policies with the written ones over them."""
    by_id = {f.path.strip("/"): f for f in files}
    replayed = []
    try:
        writes = store.policy_writes.current()
    except ArtifactError as exc:
        raise ArtifactError(f"a policy written over HTTP cannot be replayed: {exc}") from None
    if writes:
        verification = store.audit.verify()
        if not verification.ok:
            raise StateError(
                f"the audit log of {store.state_dir} does not verify ({verification.problem}), so the policies "
                "written over HTTP it records cannot be trusted: see 'modelplane audit verify'"
            )
    for write in writes:
        replayed.append(Replayed(write, write.id in by_id))
        if write.text is None:
            by_id.pop(write.id, None)
        else:
            by_id[write.id] = PolicyFile(write.id, write.text)
    return list(by_id.values()), replayed


def _named_written(exc: PolicyLoadError, replayed: list[Replayed]) -> PolicyLoadError:
    """``exc`` saying so when a policy written over HTTP is at fault (or is the other side
    of a conflict), and how to serve without it."""
    involved = [r.write for r in replayed if r.write.id == exc.file or f"{r.write.id}:" in exc.message]
    if not involved:
        return exc
    notes = "; ".join(
        f"{w.id} was {'written' if w.text is not None else 'deleted'} over HTTP by {w.client} at {w.at}"
        for w in involved
    )
    remedy = " or ".join(f"'modelplane policy forget {w.id} --as YOU'" for w in involved)
    return PolicyLoadError(
        f"{exc.message} ({notes}: the repo's policies no longer load with it; to serve the repo's policies "
        f"without it, run {remedy}, audited)",
        exc.file,
        exc.line,
        exc.column,
    )


def serve_data_api(
    policies: str | Path | Sequence[str],
    paths: Sequence[str] = (),
    *,
    guard: Guard,
    host: str = DEFAULT_HOST,
    port: int = 8181,
    state_dir: Path = DEFAULT_STATE_DIR,
    access_log: bool = False,
    timeout: float | None = None,
    memory_mb: int | None = None,
    environ: Mapping[str, str] = os.environ,
    on_ready: Callable[[Started], None] | None = None,
) -> None:
    """Serve OPA's Data API with the Rego files of ``policies`` (a policy set) (and those written
    over HTTP, recorded under ``state_dir``), and the resources under ``paths``
    (default: ``specs/`` and ``chaos/`` where present) as ``data.modelplane``, until
    interrupted. Each query is stopped after ``timeout`` seconds (default
    ``DEFAULT_TIMEOUT``), and the engine's process is limited to ``memory_mb``
    (default ``DEFAULT_MEMORY_MB``; see :mod:`controller.policy.worker`).

    ``on_ready`` is called once the socket listens. Raises
    :class:`~controller.server.run.ServerError` (refused by the guard, a port in use),
    :class:`~controller.policy.sources.PolicyLoadError`,
    :class:`~controller.loading.UsageError` (a path that does not exist),
    :class:`~controller.state.db.StateError` or
    :class:`~controller.state.artifacts.ArtifactError` before serving."""
    address = resolve(host, port)
    cleared = check(guard, address, environ)  # before listening: a refused server never opens the port
    sock = listen(address)  # then: a port in use is reported before anything loads
    store = None
    try:
        writes = guard.allow_policy_writes or guard.allow_data_writes
        exported = GitRepo(".").read_anchor()
        if writes or exported or state_dir.exists():  # what was written over HTTP is replayed: never lost quietly
            store = open_anchored(state_dir, exported)
        files = discover(policies)
        replayed: list[Replayed] = []
        if store is not None:
            files, replayed = _replay(files, store)
        chosen = list(paths) or [p for p in DEFAULT_PATHS if Path(p).exists()]
        resources = load(chosen).resources if chosen else []
        data = {"modelplane": data_for(resources, context_for())}
        limit, memory = timeout or DEFAULT_TIMEOUT, memory_mb or DEFAULT_MEMORY_MB
        try:
            api = DataApi(files, data, timeout=limit, memory_mb=memory, check=True)
        except PolicyLoadError as exc:
            raise _named_written(exc, replayed) from None
        with api:
            routes = data_api.routes(
                api,
                store.policy_writes if store is not None else None,
                allow_policy_writes=guard.allow_policy_writes,
                allow_data_writes=guard.allow_data_writes,
            )
            app = create_app(routes, tokens=cleared.tokens)
            if on_ready is not None:
                on_ready(
                    Started(
                        url=url(sock, tls=cleared.tls is not None),
                        policy_files=len(files),
                        clients=cleared.tokens.names if cleared.tokens else [],
                        replayed=replayed,
                        warnings=cleared.warnings,
                        state_dir=state_dir if store is not None else None,
                        writes=guard.write_flags,
                    )
                )
            run(app, sock, access_log=access_log, tls=cleared.tls)
    finally:
        sock.close()
        if store is not None:
            store.close()


WORKER_STOP_S = 30.0  # a reconcile under way is waited for this long at shutdown, then left to its lease
WEBHOOK_SECRET_ENV = {"github": "MODELPLANE_GITHUB_WEBHOOK_SECRET", "gitlab": "MODELPLANE_GITLAB_WEBHOOK_SECRET"}
MIN_SECRET_CHARS = 16


@dataclass(frozen=True)
class ControllerStarted:
    """What ``modelplane controller`` announces once it listens."""

    url: str
    sources: list[str]  # the webhook sources it accepts (those with a secret)
    clients: list[str]  # the names holding tokens for the other routes; empty without authentication
    warnings: list[str]
    state_dir: Path
    worker: bool


def webhook_secrets(environ: Mapping[str, str]) -> WebhookSecrets:
    """The shared secrets from the environment (never from a flag: it would show in ``ps``)."""
    found: dict[str, bytes] = {}
    for source, name in WEBHOOK_SECRET_ENV.items():
        value = environ.get(name)
        if value is None:
            continue
        if len(value) < MIN_SECRET_CHARS:
            raise ServerError(f"{name} is {len(value)} characters; use at least {MIN_SECRET_CHARS}")
        found[source] = value.encode()
    if not found:
        raise ServerError(
            f"no webhook secret: set {' or '.join(WEBHOOK_SECRET_ENV.values())} to the secret the webhook is "
            "configured with"
        )
    return WebhookSecrets(**found)


def serve_controller(
    *,
    guard: Guard,
    host: str = DEFAULT_HOST,
    port: int = 8080,
    state_dir: Path = DEFAULT_STATE_DIR,
    branches: Sequence[str] = (),
    watch_paths: Sequence[str] = (),
    environ: Mapping[str, str] = os.environ,
    on_ready: Callable[[ControllerStarted], None] | None = None,
    settings: Callable[[], Settings] | None = None,
) -> None:
    """Serve the webhook routes (:mod:`controller.server.webhooks`) until interrupted:
    deliveries are authenticated, recorded and queued in the state under ``state_dir``;
    with ``settings`` (how to reconcile), a worker thread reconciles the queued commits of
    the repository in the current directory (:mod:`controller.triggers.worker`).
    Raises :class:`~controller.server.run.ServerError` (refused by the guard, no webhook
    secret, a port in use) or a state error before serving."""
    address = resolve(host, port)
    cleared = check(guard, address, environ)
    secrets = webhook_secrets(environ)
    sock = listen(address)
    store = None
    stop, thread = threading.Event(), None
    try:
        store = open_anchored(state_dir, GitRepo(".").read_anchor())
        filters = Filters(tuple(branches) or None, tuple(watch_paths) or WATCHED_PATHS)
        app = create_app(webhooks.routes(store, secrets, filters), tokens=cleared.tokens)
        if on_ready is not None:
            sources = [s for s in WEBHOOK_SECRET_ENV if getattr(secrets, s) is not None]
            clients = cleared.tokens.names if cleared.tokens else []
            address_url = url(sock, tls=cleared.tls is not None)
            on_ready(
                ControllerStarted(address_url, sources, clients, cleared.warnings, state_dir, settings is not None)
            )
        if settings is not None:
            thread = start_worker(Worker(store, GitSource(Path(".")), settings), stop)
        run(app, sock, tls=cleared.tls)
    finally:
        stop.set()
        if thread is not None:
            thread.join(timeout=WORKER_STOP_S)
        sock.close()
        if store is not None:
            store.close()
