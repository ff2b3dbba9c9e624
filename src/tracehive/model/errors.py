"""The one error hierarchy. Every client mistake is an ``ApiError`` mapped to HTTP exactly once.

    ApiError                      statusCode   errorCode
      BadRequest                  400          BAD_REQUEST
        MalformedBody             400          MALFORMED_JSON
        ValidationFailed          400          VALIDATION_ERROR
      Unauthorized                401          UNAUTHORIZED
      Forbidden                   403          FORBIDDEN
      NotFound                    404          NOT_FOUND
      Conflict                    409          CONFLICT
      PayloadTooLarge             413          PAYLOAD_TOO_LARGE
      UnsupportedMediaType        415          UNSUPPORTED_MEDIA_TYPE
      Overloaded                  503          OVERLOADED       (carries Retry-After)
        StoreUnavailable          503          STORE_UNAVAILABLE
          StorageFull             503          STORAGE_FULL
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    status_code = 500
    error_code = "INTERNAL_ERROR"

    def __init__(self, message: str, *, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def body(self) -> dict[str, Any]:
        """The contract's error body (section 1.4), plus optional per-field details."""
        body: dict[str, Any] = {
            "statusCode": self.status_code,
            "message": self.message,
            "success": False,
            "errorCode": self.error_code,
        }
        if self.details:
            body["errors"] = self.details
        return body

    def headers(self) -> dict[str, str]:
        return {}


class BadRequest(ApiError):
    status_code = 400
    error_code = "BAD_REQUEST"


class MalformedBody(BadRequest):
    error_code = "MALFORMED_JSON"


class ValidationFailed(BadRequest):
    error_code = "VALIDATION_ERROR"


class IdRoleClash(BadRequest):
    """Events of a write that reuse a session's id, or name another event's id as their session.

    ``ids`` holds every such id, so that a caller able to report partial success (OTLP) can store
    the rest of the batch instead of refusing all of it."""

    def __init__(self, message: str, ids: frozenset[str]) -> None:
        super().__init__(message)
        self.ids = ids


class Unauthorized(ApiError):
    status_code = 401
    error_code = "UNAUTHORIZED"


class Forbidden(ApiError):
    status_code = 403
    error_code = "FORBIDDEN"


class NotFound(ApiError):
    status_code = 404
    error_code = "NOT_FOUND"


class Conflict(ApiError):
    """The resource already exists (a create that names an id in use)."""

    status_code = 409
    error_code = "CONFLICT"


class MethodNotAllowed(ApiError):
    status_code = 405
    error_code = "METHOD_NOT_ALLOWED"


class RequestTimeout(ApiError):
    """The request body arrived too slowly (below the minimum transfer rate)."""

    status_code = 408
    error_code = "REQUEST_TIMEOUT"


class ClientClosedRequest(ApiError):
    """The client went away before its request was read: nobody will see this answer; it is
    counted and logged as a client abort, not as a server error."""

    status_code = 499
    error_code = "CLIENT_CLOSED_REQUEST"


class PayloadTooLarge(ApiError):
    status_code = 413
    error_code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(ApiError):
    status_code = 415
    error_code = "UNSUPPORTED_MEDIA_TYPE"


class Overloaded(ApiError):
    """The writer cannot take more work right now; clients should retry after a pause."""

    status_code = 503
    error_code = "OVERLOADED"

    def __init__(self, message: str, *, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class StoreUnavailable(Overloaded):
    """The store failed to commit (disk full, locked database): a retryable condition."""

    error_code = "STORE_UNAVAILABLE"


class StorageFull(StoreUnavailable):
    """The disk, or the configured size limit of the database, is full: writes are refused until
    space returns (reads keep working). Retryable, but not within a second."""

    error_code = "STORAGE_FULL"
