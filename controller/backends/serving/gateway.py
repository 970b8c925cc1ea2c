"""The gateway: the one endpoint of a locally served InferenceService, in-process.

An ASGI middleware in front of KServe's app inside each model server replica
(:mod:`.modelserver`). Callers use the service's name; the variants (stable,
canary, shadow) are KServe models under internal names that callers cannot reach.
For every request it:

1. lets through the server's health (``/v2/health/live``, ``/v2/health/ready``),
   metadata (``/v2``) and ``/metrics``; anything but the service's own V1 and V2
   paths is 404;
2. authenticates the caller (``Authorization: Bearer <token>``, matched by its
   SHA-256 digest; 401 otherwise) and asks the access decision (the policy
   library's ``access`` package: the caller's groups, consent from the
   ``X-Consent: true`` header) whether the caller may call the service: 403 with
   the policy's reasons otherwise, 503 when the policy cannot be evaluated (fail
   closed);
3. refuses an inference call whose body is not declared JSON (415); reads its
   body (bounded by the body limits in front: 413, 408) and routes it to the canary
   for ``weight`` percent of the calls (exactly: of every 100 calls, ``weight`` go to
   the canary) and to stable for the rest: the call goes straight to
   :class:`~.inference.Inference` with the variant's internal model name, not
   through KServe's app, and an answer not ready within ``call_timeout`` seconds
   (:data:`CALL_TIMEOUT_S`) is a 504; metadata and readiness go to KServe's app, for
   stable, by rewriting the path;
4. mirrors ``weight`` percent of the inference calls to the shadow variant after
   the caller's answer is sent (the shadow's answer is dropped, at most
   :data:`MAX_SHADOW_IN_FLIGHT` at once: more are not mirrored);
5. records the call in :class:`~.metrics.Metrics` by service, variant and
   version (its latency from the moment its body is in, unless the version refused
   it for its input, a 4xx: a caller's bad input is not the version's latency; a call
   refused before a variant answers counts as variant ``none``), and says on an
   inference answer which variant and version gave it (``Modelplane-Variant``,
   ``Modelplane-Version`` headers).

The model sees of a call's headers only its ``Content-Type`` and ``X-Request-Id``
(:func:`_model_headers`): the caller's token stops here.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from starlette.exceptions import HTTPException

from controller.backends.serving.config import Caller, ServiceConfig, Variant
from controller.backends.serving.inference import Answer, error
from controller.backends.serving.metrics import App, Message, Metrics, Receive, Scope, Send, exposition
from controller.http.limits import error_headers

MAX_SHADOW_IN_FLIGHT = 8
PRECREATED_CODES = ("200", "400", "500", "503")
CALL_TIMEOUT_S = 30.0
CONSENT_HEADER = b"x-consent"
_PUBLIC = frozenset({"/v2/health/live", "/v2/health/ready", "/v2", "/metrics"})
_V1_PREDICT = re.compile(r"^/v1/models/([^/]+):predict$")
_V2_INFER = re.compile(r"^/v2/models/([^/]+)/infer$")
_V1_MODEL = re.compile(r"^/v1/models/([^/:]+)$")
_V2_MODEL = re.compile(r"^/v2/models/([^/]+)(/ready)?$")


@dataclass
class Activity:
    """When the last call came and how many are being answered (for scale to zero)."""

    last: float = field(default_factory=time.monotonic)
    in_flight: int = 0
    draining: bool = False  # being replaced: every answer closes its connection


@dataclass(frozen=True)
class Decision:
    allow: bool
    reasons: tuple[str, ...] = ()


class DecisionError(Exception):
    """The access policy could not be evaluated: the call is refused (fail closed)."""


# (caller name, caller groups, consent) -> whether the caller may call the service
Decide = Callable[[str, tuple[str, ...], bool], Decision]
# (model, protocol, body, headers) -> the model's answer (.inference.Inference)
Infer = Callable[[str, str, bytes, dict[str, str]], Awaitable[Answer]]


class WeightedSplit:
    """Exactly ``weight`` of every 100 calls, spread evenly: call ``i`` is picked when
    ``floor((i + 1) * w / 100)`` passes ``floor(i * w / 100)``."""

    def __init__(self, weight: float) -> None:
        self.weight = weight
        self._count = 0

    def pick(self) -> bool:
        i = self._count
        self._count += 1
        return int((i + 1) * self.weight / 100) > int(i * self.weight / 100)


def _closing(send: Send) -> Send:
    """``send`` with ``Connection: close`` on the answer: the client's next call opens a new
    connection, which reaches a replica that is not going away."""

    async def closing(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"connection"]
            message = {**message, "headers": [*headers, (b"connection", b"close")]}
        await send(message)

    return closing


def _json_body(scope: Scope) -> bool:
    """Whether an inference call says its body is JSON, ``application/json`` with any
    parameters (KServe reads other types as binary tensors or CloudEvents, and curl's
    default, a form, gives baffling errors)."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return value.split(b";", 1)[0].strip().lower() == b"application/json"
    return False


async def _body(receive: Receive) -> bytes:
    """The request's whole body (its size and time bounded by the body limits in front)."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise HTTPException(400, "the client went away before its request was complete")
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _model_headers(scope: Scope) -> dict[str, str]:
    """What KServe's data plane and the model see of an admitted call's headers: its content
    type, as KServe's decoder knows it (admitted calls are JSON, whatever their parameters),
    and its request id; never its credentials."""
    seen = {"content-type": "application/json"}
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            seen["x-request-id"] = value.decode("latin-1")
    return seen


async def _send(send: Send, answer: Answer, extra: Sequence[tuple[bytes, bytes]] = ()) -> None:
    """Send ``answer``, with its length and ``extra`` headers."""
    head = [*answer.headers, (b"content-length", str(len(answer.body)).encode()), *extra]
    await send({"type": "http.response.start", "status": answer.status, "headers": head})
    await send({"type": "http.response.body", "body": answer.body})


class Gateway:
    """The ASGI middleware described in the module's docstring."""

    def __init__(
        self,
        app: App,
        config: ServiceConfig,
        decide: Decide,
        infer: Infer,
        metrics: Metrics,
        activity: Activity | None = None,
        call_timeout: float = CALL_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.infer = infer
        self.call_timeout = call_timeout
        self.service = config.service
        self.stable = config.variant("stable")
        assert self.stable is not None
        self.canary = config.variant("canary")
        self.shadow = config.variant("shadow")
        self.canary_split = WeightedSplit(self.canary.weight if self.canary else 0)
        self.shadow_split = WeightedSplit(self.shadow.weight if self.shadow else 0)
        self.callers = {c.token_sha256: c for c in config.callers}
        self.decide = decide
        self.metrics = metrics
        self._decisions: dict[tuple[str, bool], Decision] = {}
        self._shadows: set[asyncio.Task[None]] = set()
        self.activity = activity or Activity()
        # Every series a variant can report starts at zero, so that Prometheus' rate() sees its
        # first errors too (a series born at its first 500 would hide that 500).
        for variant in config.variants:
            for protocol in ("v1", "v2"):
                version = str(variant.version)
                metrics.duration.labels(self.service, variant.role, version, protocol)
                for code in PRECREATED_CODES:
                    metrics.requests.labels(self.service, variant.role, version, protocol, code)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.activity.draining:
            send = _closing(send)
        path = scope.get("path", "")
        if path == "/metrics" and (summed := exposition()) is not None:
            body, content_type = summed
            await send(
                {"type": "http.response.start", "status": 200, "headers": [(b"content-type", content_type.encode())]}
            )
            await send({"type": "http.response.body", "body": body})
            return
        if path in _PUBLIC:
            await self.app(scope, receive, send)
            return
        self.activity.last = time.monotonic()
        self.activity.in_flight += 1
        try:
            await self._serve(scope, receive, send, path)
        finally:
            self.activity.in_flight -= 1
            self.activity.last = time.monotonic()

    async def _serve(self, scope: Scope, receive: Receive, send: Send, path: str) -> None:
        route = self._route(path)
        if route is None:
            await self._answer(send, 404, f"no such endpoint: call /v1/models/{self.service}:predict or "
                               f"/v2/models/{self.service}/infer")  # fmt: skip
            return
        protocol, inference = route
        refused = self._refused(scope)
        if refused is not None:
            status, message, headers = refused
            self.metrics.requests.labels(self.service, "none", "", protocol, str(status)).inc()
            await self._answer(send, status, message, headers)
            return
        if inference and not _json_body(scope):
            self.metrics.requests.labels(self.service, "none", "", protocol, "415").inc()
            await self._answer(send, 415, "send the request as JSON: 'Content-Type: application/json'")
            return
        variant = self.stable
        assert variant is not None
        if not inference:
            await self.app(self._rewritten(scope, variant), receive, send)
            return
        try:
            body = await _body(receive)
        except HTTPException as exc:  # the body limits (controller.http.limits): too large, too slow
            self.metrics.requests.labels(self.service, "none", "", protocol, str(exc.status_code)).inc()
            extra = [(k.lower().encode(), v.encode()) for k, v in error_headers(exc).items()]
            await self._answer(send, exc.status_code, str(exc.detail), extra)
            return
        if self.canary is not None and self.canary_split.pick():
            variant = self.canary
        seen = _model_headers(scope)
        await self._call(variant, protocol, body, seen, send)
        shadow = self.shadow
        if shadow is not None and self.shadow_split.pick() and len(self._shadows) < MAX_SHADOW_IN_FLIGHT:
            task = asyncio.get_running_loop().create_task(self._call(shadow, protocol, body, seen, None))
            self._shadows.add(task)
            task.add_done_callback(self._shadows.discard)

    def _route(self, path: str) -> tuple[str, bool] | None:
        """(protocol, is an inference call) for the service's own paths; None otherwise."""
        for pattern, protocol, inference in (
            (_V1_PREDICT, "v1", True),
            (_V2_INFER, "v2", True),
            (_V1_MODEL, "v1", False),
            (_V2_MODEL, "v2", False),
        ):
            match = pattern.match(path)
            if match:
                return (protocol, inference) if match.group(1) == self.service else None
        return None

    def _refused(self, scope: Scope) -> tuple[int, str, list[tuple[bytes, bytes]]] | None:
        authorization, consent = b"", b""
        seen = {b"authorization": 0, CONSENT_HEADER: 0}
        for name, value in scope.get("headers", []):
            if name == b"authorization":
                authorization = value
            elif name == CONSENT_HEADER:
                consent = value
            else:
                continue
            seen[name] += 1
        if max(seen.values()) > 1:  # which one would count is anyone's guess: neither does
            return 400, "send Authorization and X-Consent once each", []
        scheme, _, token = authorization.strip().partition(b" ")
        if scheme.lower() != b"bearer" or not token.strip():
            return 401, "send a caller token: 'Authorization: Bearer <token>'", [(b"www-authenticate", b"Bearer")]
        caller = self.callers.get(hashlib.sha256(token.strip()).hexdigest())
        if caller is None:
            return 401, "the caller token is not valid", [(b"www-authenticate", b'Bearer error="invalid_token"')]
        decision = self._decision(caller, consent.strip().lower() == b"true")
        if isinstance(decision, str):
            return 503, decision, []
        if not decision.allow:
            message = "; ".join(decision.reasons) or f"{caller.name} may not call {self.service}"
            if "consent" in message and not consent.strip():
                message += " (consent is sent as the header 'X-Consent: true')"
            return 403, message, []
        return None

    def _decision(self, caller: Caller, consent: bool) -> Decision | str:
        key = (caller.name, consent)
        cached = self._decisions.get(key)
        if cached is not None:
            return cached
        try:
            decision = self.decide(caller.name, caller.groups, consent)
        except DecisionError as exc:  # fail closed, and decide again next time
            return f"refused: the access policy could not be evaluated ({exc})"
        self._decisions[key] = decision  # the policy and its data are fixed for this process
        return decision

    def _rewritten(self, scope: Scope, variant: Variant) -> Scope:
        name = variant.internal_name(self.service)
        if name == self.service:
            return scope
        path = scope["path"].replace(f"/models/{self.service}", f"/models/{name}", 1)
        return {**scope, "path": path, "raw_path": path.encode()}

    async def _call(
        self, variant: Variant, protocol: str, body: bytes, headers: dict[str, str], send: Send | None
    ) -> None:
        """Ask ``variant`` for its answer to the call, within :attr:`call_timeout` seconds (504
        otherwise), record it, and send it (a shadow's is dropped: ``send`` is None)."""
        version = str(variant.version)
        in_flight = self.metrics.in_flight.labels(self.service, variant.role)
        in_flight.inc()
        started = time.perf_counter()  # the body is in: a caller's slow upload is not the version's latency
        status = 500  # unless an answer comes
        try:
            try:
                async with asyncio.timeout(self.call_timeout):
                    answer = await self.infer(variant.internal_name(self.service), protocol, body, headers)
            except TimeoutError:
                late = f"version {version} of {self.service} did not answer within {self.call_timeout:g} s"
                answer = error(504, late)
            status = answer.status
            if send is not None:
                said = [(b"modelplane-variant", variant.role.encode()), (b"modelplane-version", version.encode())]
                await _send(send, answer, said)
        finally:
            if not 400 <= status < 500:  # a call refused for its input is the caller's time, not the version's
                self.metrics.duration.labels(self.service, variant.role, version, protocol).observe(
                    time.perf_counter() - started
                )
            self.metrics.requests.labels(self.service, variant.role, version, protocol, str(status)).inc()
            in_flight.dec()

    async def _answer(
        self, send: Send, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        await _send(send, error(status, message), headers or ())
