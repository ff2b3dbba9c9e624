"""Mapping every failure to the contract's error body, in one place."""

from __future__ import annotations

import logging

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from tracehive.api.responses import JSONResponse
from tracehive.model.errors import ApiError, ClientClosedRequest, MethodNotAllowed, NotFound, ValidationFailed
from tracehive.observability.instruments import ERROR_CODE_KEY

log = logging.getLogger("tracehive.api")


def _render(request: Request, error: ApiError) -> Response:
    # The request middleware reads this to count the rejection by reason (validation, too_large...).
    request.scope[ERROR_CODE_KEY] = error.error_code
    return JSONResponse(error.body(), status_code=error.status_code, headers=error.headers())


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _render(request, exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return _render(request, NotFound(f"no route for {request.method} {request.url.path}"))
    if exc.status_code == 405:
        return _render(request, MethodNotAllowed(f"{request.method} is not allowed on {request.url.path}"))
    error = ApiError(str(exc.detail))
    error.status_code = exc.status_code
    error.error_code = "HTTP_ERROR"
    return _render(request, error)


async def _request_validation(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = [{"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()]
    first = details[0] if details else {"field": "request", "message": "invalid"}
    return _render(request, ValidationFailed(f"{first['field']}: {first['message']}", details=details))


async def _unexpected(request: Request, exc: Exception) -> Response:
    # A 500 is a bug: log it with the route (never the payload or the key) and answer in shape.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _render(request, ApiError("internal error"))


async def _client_disconnect(request: Request, exc: Exception) -> Response:
    # The client hung up mid-body: not a server error (no traceback, not a 500 in /metrics).
    return _render(request, ClientClosedRequest("the client closed the connection before its request was read"))


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(ClientDisconnect, _client_disconnect)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(Exception, _unexpected)
