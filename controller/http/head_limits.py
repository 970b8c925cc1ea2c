"""A bound on a request's head (request line and headers) for uvicorn's httptools parser.

uvicorn's h11 parser refuses a head over 16 KiB; its httptools parser, the faster one a
model server replica runs (:mod:`controller.backends.serving.modelserver`), reads a
head of any size into memory (httptools joins a header's pieces before uvicorn sees it),
so one connection sending endless header bytes grows the process without bound.
:class:`BoundedHttpTools` is uvicorn's httptools protocol that counts the bytes received
while a request's head is incomplete and, past :data:`MAX_HEAD_BYTES`, answers 431
(``Request Header Fields Too Large``, RFC 6585) and closes the connection, so memory held
for a head is at most the limit plus a read or two from the socket; and it closes a
connection whose head is not complete within :data:`HEAD_TIMEOUT_S` with 408 (uvicorn
has no such limit: a client sending a few bytes now and then holds a connection, and a
file descriptor, for ever).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 << 10  # tokens and a few headers take a few hundred bytes
HEAD_TIMEOUT_S = 5.0  # a client sends its head at once; waiting longer holds a connection for nothing


def _answer(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
    return head.encode() + b"connection: close\r\n\r\n" + body


def _answer_431(limit: int) -> bytes:
    return _answer(431, "Request Header Fields Too Large", f"request line and headers over {limit} bytes")


class _HeadTooLarge(Exception):
    """Raised in a parser callback: httptools stops, and uvicorn answers through
    :meth:`BoundedHttpTools.send_400_response`."""


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a head over :attr:`max_head_bytes` with 431
    and closing a connection whose head is not complete within :attr:`head_seconds`.
    Given to uvicorn as ``Config(http=BoundedHttpTools)``.

    Two counts, one limit: the request line and headers as the parser hands them over (a
    complete head that arrived in one read), and the bytes of the reads that find a head
    already begun and leave it incomplete (a head that never ends is refused without
    waiting for its end; a read that ends one request's body and begins the next head is
    not counted, so at most two reads beyond the limit are held). The clock starts when the
    connection opens or a pipelined head begins, and stops when a head is complete: a head
    sent a few bytes at a time is answered 408 and closed, a new connection that sends
    nothing is closed (between calls, uvicorn's keep-alive timeout closes idle ones)."""

    max_head_bytes = MAX_HEAD_BYTES
    head_seconds = HEAD_TIMEOUT_S

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # a request has begun and its headers are not all in
        self._received = 0  # bytes received while in the head
        self._parsed = 0  # bytes of request line and headers parsed
        self._refusal = b""  # the answer to send instead of uvicorn's 400
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._start_clock()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_clock()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._received = self._parsed = 0
        if self._head_timer is None:  # pipelined: the clock of this head starts now
            self._start_clock()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        self._stop_clock()
        super().on_headers_complete()

    def _start_clock(self) -> None:
        self._stop_clock()
        self._head_timer = self.loop.call_later(self.head_seconds, self._too_slow)

    def _stop_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._in_head:
            message = f"request line and headers not received within {self.head_seconds:g} s"
            self._refuse(_answer(408, "Request Timeout", message))
        else:  # nothing sent: an answer could be mistaken for that of a call being sent now
            self.transport.close()

    def _count(self, size: int) -> None:
        self._parsed += size
        if self._parsed > self.max_head_bytes:
            self._refusal = _answer_431(self.max_head_bytes)
            raise _HeadTooLarge

    def data_received(self, data: bytes) -> None:
        began_in_head = self._in_head
        super().data_received(data)
        if not (began_in_head and self._in_head) or self.transport.is_closing():
            return
        self._received += len(data)
        if self._received > self.max_head_bytes:
            self._refuse(_answer_431(self.max_head_bytes))

    def send_400_response(self, msg: str) -> None:
        if not self._refusal:
            super().send_400_response(msg)
            return
        self._refuse(self._refusal)

    def _refuse(self, answer: bytes) -> None:
        self._in_head = False
        self._stop_clock()
        self.transport.write(answer)
        self.transport.close()
