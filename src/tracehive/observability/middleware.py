"""``RequestObserver``: request ids, request metrics and the access log line, as plain ASGI.

A pure ASGI wrapper (not Starlette's ``BaseHTTPMiddleware``, which runs the app in another task
and buffers streaming responses): it only wraps ``send`` to read the status and add the
``X-Request-Id`` header. ``create_app`` puts it outside Starlette's error middleware, so a 500 is
counted, logged and carries its request id like any other answer.
"""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from tracehive.observability import context
from tracehive.observability.instruments import ERROR_CODE_KEY, ServerMetrics
from tracehive.observability.logging import ACCESS_LOGGER

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

REQUEST_ID_HEADER = b"x-request-id"
# An incoming id is honoured only if it is a short, plain token: it goes into log lines and back
# into a header, so nothing that could forge a log field or a header gets through. 64 characters
# is also shorter than any API key (92+), so a client cannot get its key logged this way.
_SAFE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")
_MAX_LOGGED_PATH = 512


def new_request_id() -> str:
    return secrets.token_hex(8)


def incoming_request_id(headers: Any) -> str | None:
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            return value.decode("ascii") if _SAFE_REQUEST_ID.fullmatch(value) else None
    return None


class RequestObserver:
    def __init__(self, app: ASGIApp, metrics: ServerMetrics, access_log: logging.Logger | None = None) -> None:
        self.app = app
        self.metrics = metrics
        self.access_log = access_log or logging.getLogger(ACCESS_LOGGER)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = incoming_request_id(scope.get("headers", ())) or new_request_id()
        current = context.RequestContext(request_id, scope["method"], scope)  # type: ignore[arg-type]
        id_header = (REQUEST_ID_HEADER, request_id.encode("ascii"))
        status = 500  # what the client gets if the app fails before answering (the server sends a 500)
        started_response = completed_response = False

        async def send_observed(message: Message) -> None:
            nonlocal status, started_response, completed_response
            if message["type"] == "http.response.start":
                status = message["status"]
                started_response = True
                message = {**message, "headers": [*message.get("headers", ()), id_header]}
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                completed_response = True
            await send(message)

        token = context.enter(current)
        self.metrics.in_flight += 1
        aborted = False
        try:
            await self.app(scope, receive, send_observed)
        except BaseException:
            # A response cut short after its status was sent (a stream that failed midway); a 500
            # sent in full by the error middleware, which then re-raises, is not one.
            aborted = started_response and not completed_response
            raise
        finally:
            context.leave(token)
            self.metrics.in_flight -= 1
            seconds = time.perf_counter() - started
            route = current.route
            self.metrics.request_done(scope["method"], route, status, seconds, scope.get(ERROR_CODE_KEY))
            self._log(current, route, status, seconds, aborted)

    def _log(self, current: context.RequestContext, route: str | None, status: int, seconds: float,
             aborted: bool) -> None:
        level = logging.ERROR if aborted or status >= 500 else logging.INFO
        if not self.access_log.isEnabledFor(level):
            return
        path = current.scope.get("path", "")
        if len(path) > _MAX_LOGGED_PATH:
            path = path[:_MAX_LOGGED_PATH] + "..."
        self.access_log.log(
            level,
            "%s %s %d%s", current.method, path, status, " (response aborted)" if aborted else "",
            extra={"request_id": current.request_id, "method": current.method, "path": path, "route": route,
                   "status": status, "duration_ms": round(seconds * 1000, 3)},
        )


def install(app: Any, metrics: ServerMetrics) -> None:
    """Wrap a Starlette/FastAPI app's whole middleware stack, outside its error middleware: a
    request that ends in a 500 is then counted and logged with its id, and the 500 carries
    ``X-Request-Id`` (``add_middleware`` would put us inside, where an unhandled error escapes
    before its response exists)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestObserver(build(), metrics)
