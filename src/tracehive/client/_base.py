"""What the sync and async clients share: configuration, request building, retry policy."""

from __future__ import annotations

import email.utils
import os
import random
import time
import uuid
from collections.abc import Mapping
from typing import Any, TypeVar

import orjson
import pydantic
from pydantic import BaseModel

from tracehive.client.errors import ConfigurationError, ValidationError, error_from_response
from tracehive.model.error_paths import error_message, format_location

DEFAULT_BASE_URL = "http://127.0.0.1:8520"
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_RETRIES = 3
RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
BACKOFF_BASE = 0.5
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 60.0

M = TypeVar("M", bound=BaseModel)


def resolve_config(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    key = api_key or os.environ.get("TRACEHIVE_API_KEY") or os.environ.get("HH_API_KEY")
    if not key:
        raise ConfigurationError(
            "no API key: pass api_key=... or set TRACEHIVE_API_KEY (or HH_API_KEY)"
        )
    url = base_url or os.environ.get("TRACEHIVE_URL") or os.environ.get("HH_API_URL") or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise ConfigurationError(f"base_url must start with http:// or https://, got {url!r}")
    return key, url.rstrip("/")


def new_id() -> str:
    return str(uuid.uuid4())


def validate(model: type[M], data: Any) -> M:
    """Validate with the server's own model; a failure names the field before anything is sent."""
    if isinstance(data, model):
        data = data.model_dump(exclude_unset=True)
    elif isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = exc.errors(include_url=False, include_context=False, include_input=False)
        first = errors[0]
        # Spelled as the server spells it (model/error_paths.py): "events[0].bogus: unknown field".
        field = format_location(first.get("loc", ()))
        raise ValidationError(
            0,
            "CLIENT_VALIDATION_ERROR",
            f"{field}: {error_message(first)}",
            field=field,
            details=[{"loc": list(e.get("loc", ())), "msg": e.get("msg"), "type": e.get("type")} for e in errors],
        ) from None


def body_of(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude_none=True)


def merge(request: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A request object (model or dict) and/or keyword arguments, as one dict."""
    data: dict[str, Any] = {}
    if request is not None:
        if isinstance(request, BaseModel):
            data.update(request.model_dump(exclude_unset=True))
        elif isinstance(request, Mapping):
            data.update(request)
        else:
            raise TypeError(f"request must be a mapping or a pydantic model, not {type(request).__name__}")
    data.update({k: v for k, v in fields.items() if v is not None})
    return data


def with_event_ids(event: dict[str, Any]) -> dict[str, Any]:
    """Give an event its ids client-side, so a retried write upserts instead of duplicating."""
    event = dict(event)
    if str(event.get("event_type", "")).lower() == "session":
        sid = event.get("session_id") or event.get("event_id") or new_id()
        event["session_id"] = sid
        event["event_id"] = sid
    else:
        event.setdefault("event_id", None)
        event["event_id"] = event["event_id"] or new_id()
        event["session_id"] = event.get("session_id") or new_id()
    return event


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, min(float(value), RETRY_AFTER_CAP))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, min(when.timestamp() - time.time(), RETRY_AFTER_CAP))


def backoff(attempt: int, retry_after: float | None) -> float:
    """Exponential backoff with full jitter; a Retry-After header wins when present."""
    if retry_after is not None:
        return retry_after
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * (2**attempt)))


def retry_delay(attempt: int, max_retries: int, status: int | None, headers: Mapping[str, str]) -> float | None:
    """Seconds to wait before retrying, or None when the answer is final.

    ``status`` None means the request never got an answer (connection refused, reset, timeout)."""
    if attempt >= max_retries:
        return None
    if status is None:
        return backoff(attempt, None)
    if status in RETRY_STATUSES:
        return backoff(attempt, retry_after_seconds(headers))
    return None


def answer(status: int, content: bytes) -> Any:
    """The decoded body of a final response; an error status becomes the matching ``ApiError``."""
    try:
        data = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        data = None
    if status >= 400:
        raise error_from_response(status, data, content[:500].decode("utf-8", "replace"))
    return data
