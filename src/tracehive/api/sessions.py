"""Session routes (contract section 3): create, add a batch of events, tree, delete."""

from __future__ import annotations

import copy
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.batch_decode import decoded, session_batch
from tracehive.api.bodies import read_json, read_json_bytes, validate
from tracehive.api.context import path_id, redacted, settings_of, store_of
from tracehive.api.documented import READ_ERRORS, WRITE_ERRORS, errors, request_body
from tracehive.api.read_gate import heavy_read
from tracehive.api.responses import JSONResponse
from tracehive.ingest.normalize import session_from_request
from tracehive.model.errors import NotFound
from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.model.times import now_ms
from tracehive.model.wire import (
    DeleteResponse,
    EventRecord,
    SessionEventBatchRequest,
    SessionTreeNode,
    StartSessionRequest,
    SuccessResponse,
)
from tracehive.query.tree import build_tree

router = APIRouter(tags=["sessions"])


async def start_session(request: Request, scope: Scope, session: Event) -> dict[str, Any]:
    """Store a session start; the answer: what is stored for a key that may read, else only what
    the caller sent (with the ids), so a write-only key learns nothing about stored sessions."""
    redacted(request, scope, [session])
    sent = copy.deepcopy(session) if not scope.can_read else None
    stored = await store_of(request).create_session(scope, session)
    if sent is None:
        return stored.to_read_dict()
    sent.org_id, sent.workspace_id, sent.project_id = scope.org_id, scope.workspace_id, scope.project_id
    return sent.to_read_dict()


@router.post("/v1/sessions", response_model=EventRecord, responses=WRITE_ERRORS, summary="Start a session")
@request_body(StartSessionRequest)
async def create_session(request: Request) -> Response:
    """Create a session event, or merge metadata/user_properties into an existing one with the same
    ``session_id`` and return it (idempotent). An ingestion key, which may not read, gets back the
    session as it sent it, never what was stored before.

    A ``session_id`` that is missing or not a UUID is replaced by a new UUIDv4 (the contract's
    rule, kept for the SDKs): use the ``session_id`` of the reply. Sending the same non-UUID string
    twice makes two sessions. The routes with a session id in their path answer 400 to it instead.
    A negative ``duration``, or an ``end_time`` before ``start_time``, counts as not sent."""
    scope = await authenticate(request, write=True)
    body = validate(StartSessionRequest, await read_json(request, settings_of(request)))
    return JSONResponse(await start_session(request, scope, session_from_request(body)))


@router.post(
    "/v1/sessions/{session_id}/events/batch",
    response_model=SuccessResponse,
    responses=WRITE_ERRORS,
    summary="Add a batch of events to a session",
)
@request_body(SessionEventBatchRequest)
async def create_session_event_batch(request: Request, session_id: str) -> Response:
    """Store every event under the path's session (overriding the body's), in order, atomically.
    An unknown session is created."""
    scope = await authenticate(request, write=True)
    sid = path_id(session_id, "session_id")
    settings = settings_of(request)
    body = await read_json_bytes(request, settings)
    events = await decoded(request.app.state.decode_pool, session_batch, body, sid, now_ms(),
                           settings.max_json_depth, settings.max_batch_events)
    del body
    await store_of(request).write_events(scope, redacted(request, scope, events))
    return JSONResponse({"success": True, "event_ids": [e.event_id for e in events], "session_id": sid})


async def _get_tree(request: Request, session_id: str) -> Response:
    scope = await authenticate(request, write=False)
    sid = path_id(session_id, "session_id")
    events = await heavy_read(request, scope, store_of(request).session_events(scope, sid))
    root = next((e for e in events if e.event_id == sid and e.event_type == "session"), None)
    if root is None:
        raise NotFound(f"session {sid} not found")
    return JSONResponse(build_tree(root, events, scope.project_name))


@router.get("/v1/sessions/{session_id}", response_model=SessionTreeNode, responses=READ_ERRORS, summary="Session tree")
async def get_session(request: Request, session_id: str) -> Response:
    """The session event as the root of its tree, with roll-ups in the root's ``metadata``."""
    return await _get_tree(request, session_id)


@router.get("/v1/session/{session_id}", response_model=SessionTreeNode, responses=READ_ERRORS, include_in_schema=False)
async def get_session_singular(request: Request, session_id: str) -> Response:
    return await _get_tree(request, session_id)


@router.get("/session/{session_id}", response_model=SessionTreeNode, responses=READ_ERRORS, summary="Session tree (legacy path)")
async def get_session_legacy(request: Request, session_id: str) -> Response:
    return await _get_tree(request, session_id)


async def _delete(request: Request, session_id: str) -> Response:
    scope = await authenticate(request, write=False)
    sid = path_id(session_id, "session_id")
    if await store_of(request).delete_session(scope, sid) == 0:
        raise NotFound(f"session {sid} not found")
    return JSONResponse({"success": True, "deleted": sid})


@router.delete("/v1/sessions/{session_id}", response_model=DeleteResponse, responses=errors(400, 401, 403, 404, 503), summary="Delete a session")
async def delete_session(request: Request, session_id: str) -> Response:
    """Delete the session event and every event of the session."""
    return await _delete(request, session_id)


@router.delete("/v1/session/{session_id}", response_model=DeleteResponse, responses=errors(400, 401, 403, 404, 503), include_in_schema=False)
async def delete_session_singular(request: Request, session_id: str) -> Response:
    return await _delete(request, session_id)
