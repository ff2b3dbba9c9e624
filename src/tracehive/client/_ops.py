"""Every client call as data: method, path, validated body and response parser.

``Client`` and ``AsyncClient`` build the same ``Op`` for a method and differ only in how they send
it, so the id rules, validation and response typing exist once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, Field

from tracehive.client._base import body_of, merge, new_id, validate, with_event_ids
from tracehive.model.wire import (
    DeleteResponse,
    EventRecord,
    GetEventResponse,
    PostEventBatchRequest,
    PostEventBatchResponse,
    PostEventRequest,
    PostEventResponse,
    SessionEventBatchRequest,
    SessionTreeNode,
    StartSessionRequest,
    SuccessResponse,
    UpdateEventRequest,
)

T = TypeVar("T")


@dataclass(frozen=True)
class Op(Generic[T]):
    method: str
    path: str
    body: Any
    parse: Callable[[Any], T]
    # Query parameters as (name, value) pairs (a name may repeat: ``run_ids[]``), or None.
    params: Sequence[tuple[str, str]] | None = None


class SearchResult(BaseModel):
    """One page of ``events.search``: the events (newest first) and the total number of matches."""

    events: list[EventRecord]
    count: int = Field(description="Total matches, not the page size.")


def _model(model: type[BaseModel]) -> Callable[[Any], Any]:
    return model.model_validate


def _event_dicts(events: Sequence[Any]) -> list[dict[str, Any]]:
    return [merge(e, {}) for e in events]


# Sessions ---------------------------------------------------------------------------------------


def session_create(request: Any, fields: Mapping[str, Any]) -> Op[EventRecord]:
    """The ``session_id`` is made here, so a retried start cannot create a second session."""
    data = merge(request, fields)
    data["session_id"] = data.get("session_id") or new_id()
    return Op("POST", "/v1/sessions", body_of(validate(StartSessionRequest, data)), _model(EventRecord))


def session_event_batch(session_id: str, events: Sequence[Any]) -> Op[PostEventBatchResponse]:
    evs = [with_event_ids({**e, "session_id": session_id}) for e in _event_dicts(events)]
    body = body_of(validate(SessionEventBatchRequest, {"events": evs}))
    return Op("POST", f"/v1/sessions/{session_id}/events/batch", body, _model(PostEventBatchResponse))


def session_get(session_id: str) -> Op[SessionTreeNode]:
    return Op("GET", f"/v1/sessions/{session_id}", None, _model(SessionTreeNode))


def session_delete(session_id: str) -> Op[DeleteResponse]:
    return Op("DELETE", f"/v1/sessions/{session_id}", None, _model(DeleteResponse))


# Events -----------------------------------------------------------------------------------------


def event_create(request: Any, fields: Mapping[str, Any]) -> Op[PostEventResponse]:
    body = body_of(validate(PostEventRequest, with_event_ids(merge(request, fields))))
    return Op("POST", "/v1/events", body, _model(PostEventResponse))


def event_batch(
    events: Sequence[Any], single_session: bool, session_properties: Mapping[str, Any] | None
) -> Op[PostEventBatchResponse]:
    """With ``single_session`` the batch's session id is made here and given to every event."""
    evs = [with_event_ids(e) for e in _event_dicts(events)]
    data: dict[str, Any] = {"events": evs, "single_session": single_session}
    if single_session:
        props = dict(session_properties or {})
        props["session_id"] = props.get("session_id") or new_id()
        data["session_properties"] = props
        for e in evs:
            e["session_id"] = props["session_id"]
    elif session_properties is not None:
        data["session_properties"] = dict(session_properties)
    return Op("POST", "/v1/events/batch", body_of(validate(PostEventBatchRequest, data)), _model(PostEventBatchResponse))


def event_get(event_id: str) -> Op[EventRecord]:
    return Op("GET", f"/v1/events/{event_id}", None, lambda data: GetEventResponse.model_validate(data).event)


def event_update(event_id: str, request: Any, fields: Mapping[str, Any]) -> Op[SuccessResponse]:
    body = body_of(validate(UpdateEventRequest, merge(request, fields)))
    return Op("PUT", f"/v1/events/{event_id}", body, _model(SuccessResponse))


def event_delete(event_id: str) -> Op[DeleteResponse]:
    return Op("DELETE", f"/v1/events/{event_id}", None, _model(DeleteResponse))


def event_search(
    request: Any,
    filters: Sequence[Mapping[str, Any]] | None,
    date_range: Mapping[str, Any] | None,
    limit: int | None,
    page: int | None,
    evaluation_id: str | None,
) -> Op[SearchResult]:
    from tracehive.api.search import SearchEventsRequest

    data = merge(request, {"filters": list(filters) if filters is not None else None, "dateRange": date_range,
                           "limit": limit, "page": page, "evaluation_id": evaluation_id})
    if "date_range" in data:
        data["dateRange"] = data.pop("date_range")
    body = body_of(validate(SearchEventsRequest, data))
    return Op("POST", "/v1/events/search", body, _model(SearchResult))


def pages_left(result: SearchResult, seen: int) -> bool:
    """Whether ``events.iter`` should ask for another page after ``seen`` events."""
    return bool(result.events) and seen < result.count
