"""The request being served, as a context variable: its id for log lines, its route for metrics.

The middleware sets it for the duration of an HTTP request; code running in that request's task
(handlers, the store's coroutines) sees it, other threads and the gRPC server see ``None``.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class RequestContext:
    request_id: str
    method: str
    scope: dict[str, Any]  # the ASGI scope: the router writes the matched route into it later

    @property
    def route(self) -> str | None:
        return route_template(self.scope)


def route_template(scope: dict[str, Any]) -> str | None:
    """The path template of the matched route (``/v1/events/{event_id}``), never the raw path, so
    that metric labels stay few; None before routing or when nothing matched."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else None


_current: ContextVar[RequestContext | None] = ContextVar("tracehive_request", default=None)


def current_request() -> RequestContext | None:
    return _current.get()


def current_request_id() -> str | None:
    context = _current.get()
    return context.request_id if context is not None else None


def enter(context: RequestContext) -> Any:
    """Make ``context`` current; returns the token for ``leave``."""
    return _current.set(context)


def leave(token: Any) -> None:
    _current.reset(token)
