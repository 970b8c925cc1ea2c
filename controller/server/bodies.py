"""Reading request bodies: raw bytes, and JSON that cannot hurt the server.

Called by the route modules (:mod:`controller.server.data_api`; webhooks will read
raw bytes to check signatures). The size limit and the time limit are the app's
(:mod:`controller.server.app`); here a client that disconnects mid-body and JSON that
is malformed, not UTF-8, ``NaN`` or nested deeper than :data:`MAX_JSON_DEPTH` are
turned into HTTP errors (400) instead of exceptions.
"""

from __future__ import annotations

import json
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request

# Objects and arrays nested deeper than this are refused: documents here (resources,
# access requests) are a handful of levels deep, and deep nesting only serves to
# exhaust the recursion of whoever walks the value next (json, the engine).
MAX_JSON_DEPTH = 64


async def read_body(request: Request) -> bytes:
    try:
        return await request.body()
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected before the body was complete") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether ``value`` nests objects/arrays more than ``limit`` deep (iteratively)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(body: bytes, *, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """``body`` as JSON; 400 when it is not JSON, or nests too deep."""
    too_deep = HTTPException(400, f"body is nested deeper than {max_depth} levels")
    try:
        value = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, NaN, over-long integers
        raise HTTPException(400, f"body is not JSON: {exc}") from None
    if isinstance(value, dict | list) and _deeper_than(value, max_depth):
        raise too_deep
    return value
