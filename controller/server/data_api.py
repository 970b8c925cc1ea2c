"""OPA's Data API over HTTP: the routes that map requests onto :class:`DataApi`.

Called by :mod:`controller.server.serve` (``modelplane policy serve``) and tests, as
``create_app(routes(api))``. The same paths, methods, answers and error codes as
OPA's REST API, so OPA clients (``opa-python-client`` among them) work unchanged:

- ``POST /v1/data/{path}`` with ``{"input": ...}`` (or ``GET``, without input)
  answers ``{"result": ...}``, or ``{}`` when the path is undefined;
- ``PUT /v1/data/{path}`` replaces a document (204);
- ``GET /v1/policies`` lists the policies, ``GET|PUT /v1/policies/{id}`` reads or
  replaces one (a policy that does not compile is refused, 400, and nothing changes).

Every engine call is awaited on the engine's own thread (see
:mod:`controller.policy.data_api`), so the event loop keeps serving meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from controller.policy.data_api import DataApi, InvalidRequest
from controller.policy.engine import EngineError
from controller.policy.sources import PolicyLoadError
from controller.server.bodies import parse_json, read_body


@contextmanager
def _answering() -> Iterator[None]:
    """The Data API's errors as OPA's statuses."""
    try:
        yield
    except (InvalidRequest, PolicyLoadError) as exc:
        raise HTTPException(400, str(exc)) from None
    except EngineError as exc:
        raise HTTPException(500, str(exc)) from None


def routes(api: DataApi) -> list[BaseRoute]:
    async def data(request: Request) -> Response:
        path = request.path_params.get("path", "")
        if request.method == "PUT":
            body = await read_body(request)
            value = parse_json(body) if body else None
            with _answering():
                await api.put_data(path, value)
            return Response(status_code=204)
        input_doc = None
        if request.method == "POST":
            body = await read_body(request)
            if body.strip():
                doc = parse_json(body)
                if not isinstance(doc, dict):
                    raise HTTPException(400, 'body must be {"input": ...}')
                input_doc = doc.get("input")
        with _answering():
            value = await api.query(path, input_doc)
        return JSONResponse({} if value is None else {"result": value})

    async def policies(request: Request) -> Response:
        policy_id = request.path_params.get("id", "").strip("/")
        if not policy_id:
            if request.method != "GET":
                raise HTTPException(405)
            return JSONResponse({"result": [{"id": p.path, "raw": p.text} for p in api.policies()]})
        if request.method == "PUT":
            try:
                text = (await read_body(request)).decode("utf-8")
            except UnicodeDecodeError:
                raise HTTPException(400, "policy is not UTF-8 text") from None
            with _answering():
                await api.put_policy(policy_id, text)
            return JSONResponse({})
        policy = api.policy(policy_id)
        if policy is None:
            raise HTTPException(404, f"storage_not_found_error: policy id {policy_id!r}")
        return JSONResponse({"result": {"id": policy.path, "raw": policy.text}})

    data_methods = ["GET", "POST", "PUT"]
    policy_methods = ["GET", "PUT"]
    return [
        Route("/v1/data", data, methods=data_methods),
        Route("/v1/data/{path:path}", data, methods=data_methods),
        Route("/v1/policies", policies, methods=policy_methods),
        Route("/v1/policies/{id:path}", policies, methods=policy_methods),
    ]
