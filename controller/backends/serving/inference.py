"""A replica's inference calls, answered through KServe's data plane without its web app.

The gateway (:mod:`.gateway`) hands every inference call it has admitted and routed
here, with the body already read: V1 (``/v1/models/NAME:predict``) and V2
(``/v2/models/NAME/infer``, the Open Inference Protocol, JSON). :class:`Inference` does
what KServe's REST endpoints do with it, through the same KServe objects: its
``DataPlane`` decodes the body (V2 into an ``InferRequest``), calls the model
(``kserve.Model.__call__``: ``preprocess``, ``predict``, ``postprocess``, with KServe's
own timing metrics), and encodes the answer (``InferResponse.to_rest``), serialized with
orjson. What it leaves out is KServe's FastAPI application on that path: its routing, its
pydantic request and response models, its dependency injection and its middlewares,
which cost more CPU than the example model's prediction (docs/benchmarks.md, "where the
time goes"). Metadata and readiness still go to KServe's app.

A V2 body is checked against the protocol's request shape first (what KServe's pydantic
``InferenceRequest`` checked), so a malformed one is a 400 that says what is wrong. The
binary tensor extension is not served (its bodies are not JSON, which the gateway refuses
with 415; asking for binary outputs is a 400). Errors have KServe's shape,
``{"error": message}``: a bad input is 400, an unknown model 404, a model not ready 503;
a failure of the model itself is a 500 that names no path or value (it is logged, in the
service's ``server.log``, a line per :data:`LOG_EVERY_S` at most).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import orjson

log = logging.getLogger(__name__)

JSON = (b"content-type", b"application/json")
LOG_EVERY_S = 10.0
MAX_INPUTS = 4096  # one tensor per feature (content_type pd) at most: wider tables are not a call
DATATYPES = frozenset(
    {"BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES"}
)


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes
    headers: tuple[tuple[bytes, bytes], ...] = (JSON,)


def error(status: int, message: str) -> Answer:
    return Answer(status, orjson.dumps({"error": message}))


class Inference:
    """Answers inference calls with KServe's ``DataPlane`` (``kserve.protocol.dataplane``)."""

    def __init__(self, dataplane: Any) -> None:
        self.dataplane = dataplane
        self._logged_at = -LOG_EVERY_S
        self._unlogged = 0

    async def __call__(self, model: str, protocol: str, body: bytes, headers: dict[str, str]) -> Answer:
        """The answer of ``model`` (a KServe model's name) to one call's ``body``.
        ``headers`` are what the model may see of the call's headers (never its credentials)."""
        from kserve.errors import InvalidInput, ModelNotFound, ModelNotReady

        try:
            if protocol == "v2":
                request = self._v2_request(model, body)
            else:
                request, _ = self.dataplane.decode(body=body, headers=headers)
            response, _ = await self.dataplane.infer(model_name=model, request=request, headers=headers)
            payload, _ = self.dataplane.encode(model_name=model, response=response, headers=headers, req_attributes={})
            return Answer(200, orjson.dumps(payload, option=orjson.OPT_SERIALIZE_NUMPY))
        except InvalidInput as exc:
            return error(400, str(exc))
        except ModelNotFound as exc:
            return error(404, str(exc))
        except ModelNotReady as exc:
            return error(503, str(exc))
        except Exception as exc:  # the model's failure: logged, never echoed
            self._log_failure(model, exc)
            return error(500, "the model failed to answer (an error in the model: see the server's log)")

    def _log_failure(self, model: str, exc: Exception) -> None:
        """One line per :data:`LOG_EVERY_S` at most, with how many failures it stands for:
        callers who make a model fail cannot fill the disk with its log."""
        now = time.monotonic()
        self._unlogged += 1
        if now - self._logged_at < LOG_EVERY_S:
            return
        also = f" (and {self._unlogged - 1} more failures since the last line)" if self._unlogged > 1 else ""
        log.error("%s failed to answer: %s: %s%s", model, type(exc).__name__, exc, also)
        self._logged_at, self._unlogged = now, 0

    @staticmethod
    def _v2_request(model: str, body: bytes) -> Any:
        from kserve.errors import InvalidInput
        from kserve.protocol.infer_type import InferRequest

        try:
            document = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidInput("the body is not JSON") from None
        problem = v2_problem(document)
        if problem:
            raise InvalidInput(f"not a V2 inference request: {problem} (see docs/serving.md)")
        return InferRequest.from_bytes(body, len(body), model)


def _all_bool(data: Any) -> bool:
    """Whether every value in ``data`` (nested lists) is a JSON boolean; iterative, since
    JSON nests deeper than Python recurses."""
    stack = [data]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif not isinstance(item, bool):
            return False
    return True


def v2_problem(document: Any) -> str | None:
    """What makes ``document`` not a V2 inference request (the protocol's
    ``$inference_request``), or None."""
    if not isinstance(document, dict):
        return "the body must be a JSON object"
    if "id" in document and not isinstance(document["id"], str | None):
        return "'id' must be a string"
    if not isinstance(document.get("parameters") or {}, dict):
        return "'parameters' must be an object"
    inputs = document.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        return "'inputs' must be a list of input tensors"
    columns = (document.get("parameters") or {}).get("content_type") == "pd"
    if len(inputs) > 1 and not columns:
        return (
            "send one input tensor holding the rows (or one tensor per feature, named after it, "
            'with "parameters": {"content_type": "pd"})'
        )
    if len(inputs) > MAX_INPUTS:
        return f"at most {MAX_INPUTS} input tensors, not {len(inputs)}"
    for i, tensor in enumerate(inputs):
        where = f"inputs[{i}]"
        if not isinstance(tensor, dict):
            return f"{where} must be an object with name, shape, datatype and data"
        if not isinstance(tensor.get("name"), str):
            return f"{where}.name must be a string"
        shape = tensor.get("shape")
        if not isinstance(shape, list) or not all(type(n) is int and n >= 0 for n in shape):
            return f"{where}.shape must be a list of non-negative integers"
        if tensor.get("datatype") not in DATATYPES:
            return f"{where}.datatype must be one of {', '.join(sorted(DATATYPES))}"
        if not isinstance(tensor.get("parameters") or {}, dict):
            return f"{where}.parameters must be an object"
        if "data" not in tensor:
            return f"{where}.data is missing (the binary tensor extension is not served)"
        if tensor["datatype"] == "BOOL" and not _all_bool(tensor["data"]):
            return f"{where}.data must be JSON booleans (true, false) for datatype BOOL"
    outputs = document.get("outputs")
    if outputs is not None:
        if not isinstance(outputs, list):
            return "'outputs' must be a list"
        for i, wanted in enumerate(outputs):
            if not isinstance(wanted, dict) or not isinstance(wanted.get("name"), str):
                return f"outputs[{i}] must be an object with a name"
            parameters = wanted.get("parameters") or {}
            if not isinstance(parameters, dict):
                return f"outputs[{i}].parameters must be an object"
            if parameters.get("binary_data"):
                return f"outputs[{i}] asks for binary data: the binary tensor extension is not served"
    return None
