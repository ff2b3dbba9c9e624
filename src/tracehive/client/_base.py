"""What the sync and async clients share: configuration, request building, retry policy."""

from __future__ import annotations

import email.utils
import os
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel

from tracehive.client.errors import ConfigurationError, ValidationError
from tracehive.model.wire import (
    PostEventBatchRequest,
    PostEventRequest,
    SessionEventBatchRequest,
    StartSessionRequest,
    UpdateEventRequest,
)

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


def _field_of(error: Mapping[str, Any]) -> str:
    return ".".join(str(p) for p in error.get("loc", ())) or "<body>"


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
        field = _field_of(first)
        raise ValidationError(
            0,
            "CLIENT_VALIDATION_ERROR",
            f"{field}: {first.get('msg')}",
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


def event_dicts(events: Sequence[Any]) -> list[dict[str, Any]]:
    out = []
    for e in events:
        out.append(merge(e, {}))
    return out


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


def search_body(
    request: Any,
    filters: Sequence[Mapping[str, Any]] | None,
    date_range: Mapping[str, Any] | None,
    limit: int | None,
    page: int | None,
    evaluation_id: str | None,
) -> dict[str, Any]:
    from tracehive.api.search import SearchEventsRequest

    data = merge(request, {"filters": list(filters) if filters is not None else None, "dateRange": date_range,
                           "limit": limit, "page": page, "evaluation_id": evaluation_id})
    if "date_range" in data:
        data["dateRange"] = data.pop("date_range")
    return body_of(validate(SearchEventsRequest, data))


# Request bodies: the id rules and validation shared by Client and AsyncClient, so the two only
# differ in how they send.


def session_create_body(request: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    """A validated session start; the ``session_id`` is made here so a retry cannot duplicate."""
    data = merge(request, fields)
    data["session_id"] = data.get("session_id") or new_id()
    return body_of(validate(StartSessionRequest, data))


def session_batch_body(session_id: str, events: Sequence[Any]) -> dict[str, Any]:
    evs = [with_event_ids({**e, "session_id": session_id}) for e in event_dicts(events)]
    return body_of(validate(SessionEventBatchRequest, {"events": evs}))


def event_create_body(request: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    return body_of(validate(PostEventRequest, with_event_ids(merge(request, fields))))


def event_batch_body(
    events: Sequence[Any], single_session: bool, session_properties: Mapping[str, Any] | None
) -> dict[str, Any]:
    """With ``single_session`` the batch's session id is made here and given to every event."""
    evs = [with_event_ids(e) for e in event_dicts(events)]
    data: dict[str, Any] = {"events": evs, "single_session": single_session}
    if single_session:
        props = dict(session_properties or {})
        props["session_id"] = props.get("session_id") or new_id()
        data["session_properties"] = props
        for e in evs:
            e["session_id"] = props["session_id"]
    elif session_properties is not None:
        data["session_properties"] = dict(session_properties)
    return body_of(validate(PostEventBatchRequest, data))


def update_body(request: Any, fields: Mapping[str, Any]) -> dict[str, Any]:
    return body_of(validate(UpdateEventRequest, merge(request, fields)))
