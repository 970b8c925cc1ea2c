"""OPA's Data API over HTTP: the routes that map requests onto :class:`DataApi`.

Called by :mod:`controller.server.serve` (``modelplane policy serve``) and tests, as
``create_app(routes(api))``. The same paths, methods, answers and error codes as
OPA's REST API, so OPA clients (``opa-python-client`` among them) work unchanged:

- ``POST /v1/data/{path}`` with ``{"input": ...}`` (or ``GET``, without input)
  answers ``{"result": ...}``, or ``{}`` when the path is undefined;
- ``PUT /v1/data/{path}`` replaces a document (204);
- ``GET /v1/policies`` lists the policies, ``GET|PUT|DELETE /v1/policies/{id}`` reads,
  replaces or removes one (a policy that does not compile is refused, 400, and nothing
  changes).

Writes are refused (403, naming the flag that allows them) unless the server allows
them: policy writes and data writes each have their own flag. An allowed write needs
a named client (a token; see :mod:`controller.server.auth`) and is recorded in the
store's audit log (:class:`~controller.state.policy_writes.PolicyWrites`) with that
name and the digest of what was written, in the same step that makes it live.

Every engine call is awaited on the engine's own thread (see
:mod:`controller.policy.data_api`), so the event loop keeps serving meanwhile. The
engine answers one query at a time, each within the time limit; a client may have
at most :data:`MAX_QUERIES_PER_CLIENT` queries waiting or running (429 beyond), so one
client cannot hold the queue.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from controller.policy.data_api import DataApi, InvalidRequest
from controller.policy.data_api import policy_id as validated_policy_id
from controller.policy.engine import EngineError
from controller.policy.sources import PolicyLoadError
from controller.server.auth import client_of
from controller.server.bodies import parse_json, read_body
from controller.state.db import StateError
from controller.state.policy_writes import PolicyWrites

MAX_QUERIES_PER_CLIENT = 4


@contextmanager
def _answering() -> Iterator[None]:
    """The Data API's errors as OPA's statuses."""
    try:
        yield
    except (InvalidRequest, PolicyLoadError) as exc:
        raise HTTPException(400, str(exc)) from None
    except EngineError as exc:
        raise HTTPException(500, str(exc)) from None
    except StateError as exc:  # the audit log refused the record (state lost, unreadable): nothing changed
        raise HTTPException(500, f"the write was not recorded, so it was not made: {exc}") from None


def _writer(request: Request, allowed: bool, flag: str, what: str) -> str:
    """The client allowed to write, or 403."""
    if not allowed:
        raise HTTPException(
            403, f"{what} are disabled on this server: start it with {flag} (and a token) to allow them"
        )
    client = client_of(request)
    if client is None:
        raise HTTPException(403, f"{what} need a token: this server runs without authentication")
    return client


def routes(
    api: DataApi,
    recorder: PolicyWrites | None = None,
    *,
    allow_policy_writes: bool = False,
    allow_data_writes: bool = False,
) -> list[BaseRoute]:
    """The Data API's routes over ``api``; allowed writes are recorded by ``recorder``."""
    if (allow_policy_writes or allow_data_writes) and recorder is None:
        raise ValueError("writes are recorded: allowing them needs a recorder")
    in_flight: dict[str, int] = {}  # queries waiting or running, by client (only touched on the event loop)

    async def data(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if request.method == "PUT":
            client = _writer(request, allow_data_writes, "--allow-data-writes", "data writes (PUT /v1/data)")
            body = await read_body(request)
            value = parse_json(body) if body else None
            assert recorder is not None
            with _answering():
                await api.put_data(path, value, commit=lambda: recorder.data_written(path.strip("/"), body, client))
            return Response(status_code=204)
        input_doc = None
        if request.method == "POST":
            body = await read_body(request)
            if body.strip():
                doc = parse_json(body)
                if not isinstance(doc, dict):
                    raise HTTPException(400, 'body must be {"input": ...}')
                input_doc = doc.get("input")
        client = client_of(request) or ""
        if in_flight.get(client, 0) >= MAX_QUERIES_PER_CLIENT:
            # The engine answers one query at a time, each up to the time limit: one client
            # must not hold the queue (abandoned requests would still be evaluated).
            raise HTTPException(
                429,
                f"{MAX_QUERIES_PER_CLIENT} queries of this client are already waiting for the policy engine; "
                "retry when one is answered",
                headers={"Retry-After": "1"},
            )
        in_flight[client] = in_flight.get(client, 0) + 1
        try:
            with _answering():
                value = await api.query(path, input_doc)
        finally:
            in_flight[client] -= 1
        return JSONResponse({} if value is None else {"result": value})

    async def policies(request: Request) -> Response:
        raw_id = request.path_params.get("id", "")
        if not raw_id.strip("/"):
            if request.method != "GET":
                raise HTTPException(405)
            return JSONResponse({"result": [{"id": p.path, "raw": p.text} for p in api.policies()]})
        if request.method in ("PUT", "DELETE"):
            client = _writer(
                request, allow_policy_writes, "--allow-policy-writes", "policy writes (PUT and DELETE /v1/policies)"
            )
            assert recorder is not None
            with _answering():
                policy_id = validated_policy_id(raw_id)
                if request.method == "DELETE":
                    found = await api.delete_policy(policy_id, commit=lambda: recorder.delete(policy_id, client))
                    if not found:
                        raise HTTPException(404, f"storage_not_found_error: policy id {policy_id!r}")
                    return JSONResponse({})
                try:
                    text = (await read_body(request)).decode("utf-8")
                except UnicodeDecodeError:
                    raise HTTPException(400, "policy is not UTF-8 text") from None
                await api.put_policy(policy_id, text, commit=lambda: recorder.write(policy_id, text, client))
            return JSONResponse({})
        policy = api.policy(raw_id)
        if policy is None:
            raise HTTPException(404, f"storage_not_found_error: policy id {raw_id.strip('/')!r}")
        return JSONResponse({"result": {"id": policy.path, "raw": policy.text}})

    data_methods = ["GET", "POST", "PUT"]
    policy_methods = ["GET", "PUT", "DELETE"]
    return [
        Route("/v1/data", data, methods=data_methods),
        Route("/v1/data/{path:path}", data, methods=data_methods),
        Route("/v1/policies", policies, methods=policy_methods),
        Route("/v1/policies/{id:path}", policies, methods=policy_methods),
    ]
