"""Errors raised by the tracehive Python client."""

from __future__ import annotations

from typing import Any

__all__ = ["ApiError", "AuthenticationError", "NotFoundError", "ValidationError", "NetworkError", "ConfigurationError"]


class TracehiveClientError(Exception):
    """Base of every error the client raises."""


class ConfigurationError(TracehiveClientError, ValueError):
    """The client was constructed without what it needs (an API key, a usable URL)."""


class ApiError(TracehiveClientError):
    """The server answered with an error body: ``status``, ``error_code`` and ``message``."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        *,
        details: list[dict[str, Any]] | None = None,
        body: Any = None,
    ) -> None:
        super().__init__(f"{status} {error_code}: {message}")
        self.status = status
        self.error_code = error_code
        self.message = message
        self.details = details
        self.body = body


class AuthenticationError(ApiError):
    """401 or 403: the key is missing, wrong, or not allowed to do this."""


class NotFoundError(ApiError):
    """404: no such event or session."""


class ValidationError(ApiError):
    """400 from the server, or a request the client refused before sending (``status`` 0).

    ``field`` names the first offending field (a dot path) when known."""

    def __init__(self, status: int, error_code: str, message: str, *, field: str | None = None, **kwargs: Any) -> None:
        super().__init__(status, error_code, message, **kwargs)
        self.field = field


class NetworkError(TracehiveClientError):
    """The server could not be reached (connection refused, reset, timed out), after any retries."""


def error_from_response(status: int, body: Any, text: str) -> ApiError:
    """Map an error response to the matching ``ApiError`` subclass."""
    code = "UNKNOWN"
    message = text[:500]
    details = None
    if isinstance(body, dict):
        code = str(body.get("errorCode") or code)
        message = str(body.get("message") or message)
        raw = body.get("errors")
        details = raw if isinstance(raw, list) else None
    if status in (401, 403):
        return AuthenticationError(status, code, message, details=details, body=body)
    if status == 404:
        return NotFoundError(status, code, message, details=details, body=body)
    if status in (400, 422):
        field = None
        if details:
            first = details[0]
            loc = first.get("loc") or first.get("field")
            if isinstance(loc, (list, tuple)):
                field = ".".join(str(p) for p in loc)
            elif loc is not None:
                field = str(loc)
        return ValidationError(status, code, message, field=field, details=details, body=body)
    return ApiError(status, code, message, details=details, body=body)
