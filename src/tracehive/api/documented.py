"""Route helpers: request-body documentation and the error responses every route may give.

Handlers decode bodies themselves (``api.bodies``) for speed and for precise error messages, so
FastAPI does not see the body model; ``request_body`` records it for ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from pydantic import BaseModel

from tracehive.model.wire import ErrorResponse

F = TypeVar("F", bound=Callable[..., Any])

BODY_ATTRIBUTE = "__tracehive_request_body__"


def request_body(model: type[BaseModel]) -> Callable[[F], F]:
    def mark(fn: F) -> F:
        setattr(fn, BODY_ATTRIBUTE, model)
        return fn

    return mark


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries with the contract's error body."""
    descriptions = {
        400: "Malformed or invalid request",
        401: "Missing or unknown API key",
        403: "The key may not do this",
        404: "Not found",
        409: "Already exists",
        413: "Body or batch too large",
        415: "Unsupported Content-Type",
        429: "Rate limit of this key exceeded (when configured); see Retry-After",
        503: "Overloaded or store unavailable; see Retry-After",
    }
    # Every route that takes a key can be rate limited (TRACEHIVE_RATE_LIMIT_PER_SECOND).
    documented = sorted(set(codes) | ({429} if 401 in codes else set()))
    return {code: {"model": ErrorResponse, "description": descriptions[code]} for code in documented}


READ_ERRORS = errors(400, 401, 403, 404)
WRITE_ERRORS = errors(400, 401, 403, 413, 415, 503)
