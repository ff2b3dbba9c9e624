"""Limits on what a connection may send before the app sees a request (issue: hostile networks).

uvicorn's httptools parser buffers a request's URL and headers without bound and waits for them
forever: a client may send a 4 MB ``Authorization`` header, or open connections that trickle half
a header line and hold them. ``GuardedHttpToolsProtocol`` is uvicorn's httptools protocol with two
bounds, applied while parsing, before any routing or key lookup:

- the request line plus headers may hold at most ``max_header_bytes`` (answered ``431`` with the
  contract's JSON error body, then the connection is closed);
- once a request's first byte has arrived, its headers must be complete within
  ``header_timeout`` seconds (else the connection is closed; an idle keep-alive connection is
  already closed by uvicorn's keep-alive timeout).

The body is bounded elsewhere (``api.bodies``: size, in-flight bytes, minimum transfer rate).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger(__name__)


class _HeadersTooLarge(Exception):
    pass


def _json_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = orjson.dumps({"statusCode": status, "message": message, "success": False, "errorCode": code})
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """Set ``max_header_bytes`` and ``header_timeout`` on the class (``guarded_protocol``)."""

    max_header_bytes = 32 * 1024
    header_timeout = 10.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._header_bytes = 0
        # Bytes received while the current request's head was incomplete. httptools hands a header
        # to us only once it is whole, buffering a long value piece by piece until then: counting
        # the raw bytes here refuses a 1 MB header after its first chunk instead of its last one.
        self._head_bytes_received = 0
        self._head_complete = False
        self._header_timer: asyncio.TimerHandle | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_header_timer()  # a new connection must send a whole request head in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self._refused or self._head_complete:
            return
        # Still inside a head after parsing all of ``data``: every byte of it belongs to a head
        # (at most one chunk more, when a chunk ends one pipelined request and starts the next).
        self._head_bytes_received += len(data)
        if self._head_bytes_received > self.max_header_bytes:
            self._refused = True
            self._refuse_headers()

    # httptools wraps an exception raised in a callback as a parser error, which uvicorn answers
    # with a plain 400; a head too large is told apart by the flag set before raising.
    def send_400_response(self, msg: str) -> None:
        if self._refused:
            self._refuse_headers()
            return
        super().send_400_response(msg)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._header_bytes = 0
        self._head_bytes_received = 0
        self._head_complete = False
        if self._header_timer is None:
            self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self._count(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._disarm_header_timer()
        self._head_complete = True
        super().on_headers_complete()

    def _count(self, size: int) -> None:
        self._header_bytes += size
        if self._header_bytes > self.max_header_bytes:
            self._refused = True
            raise _HeadersTooLarge

    def _refuse_headers(self) -> None:
        self._disarm_header_timer()
        if not self.transport.is_closing():
            self.transport.write(_json_response(
                431, "Request Header Fields Too Large", "HEADERS_TOO_LARGE",
                f"the request line and headers exceed {self.max_header_bytes} bytes",
            ))
            self.transport.close()

    def _arm_header_timer(self) -> None:
        self._disarm_header_timer()
        if self.header_timeout > 0:
            self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _disarm_header_timer(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self.transport is None or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            return  # a request is being handled: its body has limits of its own
        # Started or not, the head did not arrive in time: close without reading more.
        self.transport.close()


def guarded_protocol(max_header_bytes: int, header_timeout: float) -> type[GuardedHttpToolsProtocol]:
    """A protocol class for ``uvicorn.run(http=...)`` with these bounds."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout},
    )

