"""A bound on a request's head (request line and headers) for uvicorn's httptools parser.

uvicorn's h11 parser refuses a head over 16 KiB; its httptools parser, the faster one a
model server replica runs (:mod:`controller.backends.serving.modelserver`), reads a
head of any size into memory (httptools joins a header's pieces before uvicorn sees it),
so one connection sending endless header bytes grows the process without bound.
:class:`BoundedHttpTools` is uvicorn's httptools protocol that counts the bytes received
while a request's head is incomplete and, past :data:`MAX_HEAD_BYTES`, answers 431
(``Request Header Fields Too Large``, RFC 6585) and closes the connection. Memory held
for a head is therefore at most the limit plus one read from the socket.
"""

from __future__ import annotations

import json
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

MAX_HEAD_BYTES = 64 << 10  # tokens and a few headers take a few hundred bytes


def _answer_431(limit: int) -> bytes:
    body = json.dumps({"error": f"request line and headers over {limit} bytes"}).encode()
    head = (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: application/json\r\n"
        + b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body)
    )
    return head + body


class _HeadTooLarge(Exception):
    """Raised in a parser callback: httptools stops, and uvicorn answers through
    :meth:`BoundedHttpTools.send_400_response`."""


class BoundedHttpTools(HttpToolsProtocol):
    """uvicorn's httptools protocol, refusing a head over :attr:`max_head_bytes` with 431.
    Given to uvicorn as ``Config(http=BoundedHttpTools)``.

    Two counts, one limit: the request line and headers as the parser hands them over (a
    complete head that arrived in one read), and the bytes received while a head is still
    incomplete (a head that never ends is refused without waiting for its end)."""

    max_head_bytes = MAX_HEAD_BYTES

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._in_head = False  # a request has begun and its headers are not all in
        self._received = 0  # bytes received while in the head
        self._parsed = 0  # bytes of request line and headers parsed
        self._too_large = False

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._in_head = True
        self._received = self._parsed = 0

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)  # ": " and CRLF
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._parsed += size
        if self._parsed > self.max_head_bytes:
            self._too_large = True
            raise _HeadTooLarge

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if not self._in_head or self.transport.is_closing():
            return
        self._received += len(data)  # counted after parsing: a read holding a small head and a body is fine
        if self._received > self.max_head_bytes:
            self._too_large = True
            self.send_400_response("")

    def send_400_response(self, msg: str) -> None:
        if not self._too_large:
            super().send_400_response(msg)
            return
        self._in_head = False
        self.transport.write(_answer_431(self.max_head_bytes))
        self.transport.close()
