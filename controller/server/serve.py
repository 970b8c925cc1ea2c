"""What the CLI's serve commands call: assemble the app, bind, announce, run.

Called by ``modelplane policy serve`` (:func:`controller.cli.policy.serve`), as one
call; the CLI only formats the announcement and maps errors to exit codes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from controller.loading import DEFAULT_PATHS, load
from controller.policy.data_api import DataApi
from controller.policy.evaluate import data_for
from controller.policy.sources import discover
from controller.server import data_api
from controller.server.app import create_app
from controller.server.run import DEFAULT_HOST, bind, run, url
from controller.triggers.git_source import context_for


def serve_data_api(
    policies: str | Path | Sequence[str],
    paths: Sequence[str] = (),
    *,
    host: str = DEFAULT_HOST,
    port: int = 8181,
    access_log: bool = False,
    on_ready: Callable[[str, int], None] | None = None,
) -> None:
    """Serve OPA's Data API with the Rego files of ``policies`` (a policy set), and the resources
    under ``paths`` (default: ``specs/`` and ``chaos/`` where present) as
    ``data.modelplane``, until interrupted.

    ``on_ready(url, number of policy files)`` is called once the socket listens.
    Raises :class:`~controller.policy.sources.PolicyLoadError`,
    :class:`~controller.loading.UsageError` (a path that does not exist) or
    :class:`~controller.server.run.ServerError` before serving."""
    sock = bind(host, port)  # first: a port in use is reported before anything loads
    try:
        files = discover(policies)
        chosen = list(paths) or [p for p in DEFAULT_PATHS if Path(p).exists()]
        resources = load(chosen).resources if chosen else []
        data = {"modelplane": data_for(resources, context_for())}
        with DataApi(files, data) as api:
            if on_ready is not None:
                on_ready(url(sock), len(files))
            run(create_app(data_api.routes(api)), sock, access_log=access_log)
    finally:
        sock.close()
