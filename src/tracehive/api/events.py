"""Event routes (contract 4.1 to 4.5): create, batch, get, update, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.batch_decode import decoded, event_batch
from tracehive.api.bodies import read_json, read_json_bytes, validate
from tracehive.api.context import path_id, redacted, redacted_update, settings_of, store_of
from tracehive.api.documented import READ_ERRORS, WRITE_ERRORS, errors, request_body
from tracehive.api.responses import JSONResponse, success
from tracehive.ingest.normalize import event_from_request
from tracehive.model.errors import BadRequest, NotFound
from tracehive.model.event import EventUpdate
from tracehive.model.times import now_ms
from tracehive.model.wire import (
    DeleteResponse,
    GetEventResponse,
    PostEventBatchRequest,
    PostEventBatchResponse,
    PostEventRequest,
    PostEventResponse,
    SuccessResponse,
    UpdateEventRequest,
)
from tracehive.pricing import sent_cost_wins

router = APIRouter(tags=["events"])


@router.post("/v1/events", response_model=PostEventResponse, responses=WRITE_ERRORS, summary="Create an event")
@request_body(PostEventRequest)
async def create_event(request: Request) -> Response:
    """Create one event; ``event_type`` and ``inputs`` are required. An unknown session is created."""
    scope = await authenticate(request, write=True)
    body = validate(PostEventRequest, await read_json(request, settings_of(request)))
    event = event_from_request(body)
    await store_of(request).write_events(scope, redacted(request, scope, [event]))
    return JSONResponse({"success": True, "event_id": event.event_id})


@router.post("/v1/events/batch", response_model=PostEventBatchResponse, responses=WRITE_ERRORS, summary="Create a batch of events")
@request_body(PostEventBatchRequest)
async def create_event_batch(request: Request) -> Response:
    """Create many events in one atomic write. With ``single_session``, one session is made from
    ``session_properties`` and every event is put in it."""
    scope = await authenticate(request, write=True)
    settings = settings_of(request)
    body = await read_json_bytes(request, settings)
    session, events = await decoded(request.app.state.decode_pool, event_batch, body, now_ms(),
                                    settings.max_json_depth, settings.max_batch_events)
    del body
    session_id = None if session is None else session.session_id
    to_write = events if session is None else [session, *events]
    await store_of(request).write_events(scope, redacted(request, scope, to_write))
    if session_id is None:
        distinct = {e.session_id for e in events}
        session_id = distinct.pop() if len(distinct) == 1 else None
    reply: dict[str, Any] = {"event_ids": [e.event_id for e in events], "success": True}
    if session_id is not None:
        reply["session_id"] = session_id
    return JSONResponse(reply)


@router.get("/v1/events/{event_id}", response_model=GetEventResponse, responses=READ_ERRORS, summary="Get an event")
async def get_event(request: Request, event_id: str) -> Response:
    """One event by id; a session id returns the session event itself (no children)."""
    scope = await authenticate(request, write=False)
    eid = path_id(event_id, "event_id")
    event = await store_of(request).get_event(scope, eid)
    if event is None:
        raise NotFound(f"event {eid} not found")
    return JSONResponse({"event": event.to_read_dict()})


def update_from_request(body: UpdateEventRequest) -> EventUpdate:
    return EventUpdate(
        metadata=sent_cost_wins(body.metadata),
        feedback=body.feedback,
        metrics=body.metrics,
        config=body.config,
        user_properties=body.user_properties,
        outputs=body.outputs,
        duration=body.duration,
        end_time=body.end_time,
        children_ids=body.children_ids,
    )


@router.put("/v1/events/{event_id}", response_model=SuccessResponse, responses=errors(400, 401, 403, 404, 413, 415, 503), summary="Update an event")
@request_body(UpdateEventRequest)
async def update_event(request: Request, event_id: str) -> Response:
    """Merge metadata/feedback/metrics/config/user_properties, replace outputs, set duration and
    end_time, set children_ids when non-empty. Unknown keys are ignored. A project key gets 404
    for an unknown event; an ingestion key, which may not learn which ids exist, always gets 200:
    its update for an event not stored yet is kept and applied when the event arrives."""
    scope = await authenticate(request, write=True)
    eid = path_id(event_id, "event_id")
    data = await read_json(request, settings_of(request))
    if not isinstance(data, dict):
        raise BadRequest("request body must be a JSON object")
    body = validate(UpdateEventRequest, data)
    write_only = not scope.can_read
    update = redacted_update(request, scope, update_from_request(body))
    found = await store_of(request).update_event(scope, eid, update, keep_if_missing=write_only)
    if not found and not write_only:
        raise NotFound(f"event {eid} not found")
    return success()


@router.delete("/v1/events/{event_id}", response_model=DeleteResponse, responses=errors(400, 401, 403, 404, 503), summary="Delete an event")
async def delete_event(request: Request, event_id: str) -> Response:
    scope = await authenticate(request, write=False)
    eid = path_id(event_id, "event_id")
    if not await store_of(request).delete_event(scope, eid):
        raise NotFound(f"event {eid} not found")
    return JSONResponse({"success": True, "deleted": eid})
