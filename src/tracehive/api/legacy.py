"""Legacy write routes (contract 3.5, 3.6, 4.11): what the honeyhive 1.x client, the tracer's
``enrich_session`` and honeyhive-logger call. Lenient: extra keys are ignored, wrappers may be
JSON strings or missing, invalid ids are replaced, unknown event types become ``tool``.

Batches report per-event failures: the valid events are stored in one atomic write and each
refused event is named in ``errors`` of a 200 reply with ``success: false``; a batch in which no
event is valid is a 400. (The specs answer partial success with a 500, but the Python client raises
on any non-200 and would lose the ids of what was stored.)
"""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter
from pydantic import ValidationError
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.bodies import (
    check_batch_size,
    check_depth,
    format_location,
    read_json,
    validate,
    validation_failed,
)
from tracehive.api.context import redacted, redacted_update, settings_of, store_of
from tracehive.api.documented import WRITE_ERRORS, request_body
from tracehive.api.events import update_from_request
from tracehive.api.responses import JSONResponse, success
from tracehive.api.sessions import start_session
from tracehive.ingest.legacy import (
    IdMap,
    batch_session,
    legacy_events,
    legacy_session,
    resolve_batch_session_id,
)
from tracehive.model.errors import BadRequest, MalformedBody, ValidationFailed
from tracehive.model.event import Event
from tracehive.model.legacy_wire import (
    AddSessionTracesRequest,
    LegacyBatchOptions,
    LegacyBatchResponse,
    LegacyCreateEventRequest,
    LegacyCreateModelEventRequest,
    LegacyEvent,
    LegacyEventBatchRequest,
    LegacyModelEvent,
    LegacyModelEventBatchRequest,
    LegacySession,
    LegacyStartSessionRequest,
    LegacyUpdateEventRequest,
)
from tracehive.model.scope import Scope
from tracehive.model.times import now_ms
from tracehive.model.wire import EventRecord, PostEventResponse, SuccessResponse
from tracehive.settings import Settings
from tracehive.storage.base import Store

router = APIRouter(tags=["legacy"])

# Bodies --------------------------------------------------------------------------------------


def _object(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValidationFailed("request body must be a JSON object", details=[{"field": "body", "message": "must be a JSON object"}])
    return data


def _decoded(value: Any, key: str, settings: Settings) -> Any:
    """A wrapper value that may be a JSON-encoded string (spec-2026-02 typed the legacy wrappers
    as strings). The decoded document obeys the same nesting limit as the body it came in."""
    if not isinstance(value, str):
        return value
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        raise MalformedBody(f"{key}: a string here must hold a JSON object: {exc}") from None
    check_depth(decoded, settings.max_json_depth - 1)
    return decoded


def _unwrap(data: dict[str, Any], key: str, settings: Settings, *, bare: bool) -> tuple[Any, tuple[str, ...]]:
    """The inner object of ``{key: ...}`` (object or JSON string) and its location; the body itself
    when there is no wrapper and ``bare`` allows that."""
    if data.get(key) is not None:
        return _decoded(data[key], key, settings), (key,)
    if bare:
        return data, ()
    raise ValidationFailed(f"{key}: field required", details=[{"field": key, "message": "field required"}])


def _validate_event(model: type[LegacyEvent], item: Any, location: tuple[Any, ...]) -> LegacyEvent:
    """One legacy event; a failure names ``location`` (``event``, ``events[3]``...) and the field."""
    if not isinstance(item, dict):
        where = format_location(location)
        raise ValidationFailed(f"{where}: must be a JSON object", details=[{"field": where, "message": "must be a JSON object"}])
    try:
        parsed = model.model_validate(item)
    except ValidationError as exc:
        raise validation_failed(exc, location) from None
    if isinstance(parsed, LegacyModelEvent) and not (parsed.model_name or parsed.model or parsed.event_name):
        where = format_location((*location, "model_name"))
        message = "field required (a model event needs model_name, model or event_name)"
        raise ValidationFailed(f"{where}: {message}", details=[{"field": where, "message": message}])
    return parsed


# Batches with per-event failures -------------------------------------------------------------


class Refusals:
    """The events of a batch that were not stored, by index."""

    def __init__(self) -> None:
        self.by_index: dict[int, ValidationFailed | BadRequest] = {}

    def add(self, index: int, error: ValidationFailed | BadRequest) -> None:
        self.by_index[index] = error

    def messages(self) -> list[str]:
        return [self.by_index[i].message for i in sorted(self.by_index)]

    def details(self) -> list[dict[str, Any]]:
        out = []
        for index in sorted(self.by_index):
            error = self.by_index[index]
            for detail in error.details or [{"field": "", "message": error.message}]:
                out.append({"index": index, **detail})
        return out


def _validate_all(
    model: type[LegacyEvent], items: list[Any], key: str, refusals: Refusals
) -> list[tuple[int, LegacyEvent]]:
    valid = []
    for index, item in enumerate(items):
        try:
            valid.append((index, _validate_event(model, item, (key, index))))
        except ValidationFailed as exc:
            refusals.add(index, exc)
    return valid


async def _write_batch(
    store: Store, scope: Scope, session: Event | None, events: list[tuple[int, Event]], key: str, refusals: Refusals
) -> list[tuple[int, Event]]:
    """Write the batch atomically. If the store refuses it (an id used as a session id in one place
    and as an event id in another, which only the store can see), write each event on its own,
    together with the batch's session (an idempotent merge), so that only the offending events
    are refused and nothing at all is written when every one of them is."""
    to_write = ([session] if session is not None else []) + [e for _, e in events]
    if not to_write:
        return []
    try:
        await store.write_events(scope, to_write)
        return events
    except BadRequest:
        if not events:
            raise  # the batch's own session was refused
    stored = []
    for index, event in events:
        try:
            await store.write_events(scope, [session, event] if session is not None else [event])
        except BadRequest as exc:
            where = format_location((key, index))
            refusals.add(index, BadRequest(f"{where}: {exc.message}", details=[{"field": where, "message": exc.message}]))
        else:
            stored.append((index, event))
    return stored


def _items(data: dict[str, Any], key: str) -> list[Any]:
    items = data.get(key)
    if items is None:
        raise ValidationFailed(f"{key}: field required", details=[{"field": key, "message": "field required"}])
    if not isinstance(items, list):
        raise ValidationFailed(f"{key}: must be a list", details=[{"field": key, "message": "must be a list"}])
    return items


_OPTION_KEYS = ("single_session", "is_single_session", "session_properties", "session")


def _options(data: dict[str, Any], settings: Settings) -> LegacyBatchOptions:
    raw = {k: data[k] for k in _OPTION_KEYS if k in data}
    for key in ("session_properties", "session"):
        if key in raw:
            raw[key] = _decoded(raw[key], key, settings)
    return validate(LegacyBatchOptions, raw)


async def _ingest_batch(
    request: Request,
    key: str,
    model: type[LegacyEvent],
    *,
    path_session: Any = None,
    traces: bool = False,
) -> Response:
    scope = await authenticate(request, write=True)
    settings = settings_of(request)
    data = _object(await read_json(request, settings))
    if traces:
        present = [k for k in ("logs", "events") if data.get(k) is not None]
        if len(present) != 1:
            message = "exactly one of logs or events is required" if not present else "send logs or events, not both"
            raise ValidationFailed(message, details=[{"field": "events", "message": message}])
        key = present[0]
    check_batch_size(data, key, settings.max_batch_events)
    items = _items(data, key)
    options = _options(data, settings) if not traces else LegacyBatchOptions()

    refusals = Refusals()
    valid = _validate_all(model, items, key, refusals)
    parsed = [p for _, p in valid]
    id_map = IdMap()
    now = now_ms()
    session: Event | None = None
    session_id: str | None = None
    if traces:
        session_id = id_map.session_id(path_session)
    elif options.one_session and (valid or not refusals.by_index):
        session_id = resolve_batch_session_id(options.properties, parsed, id_map)
        session = batch_session(options.properties, session_id, now=now)
    events = legacy_events(parsed, id_map, session_id=session_id, now=now)
    redacted(request, scope, [session, *events] if session is not None else events)
    stored = await _write_batch(
        store_of(request), scope, session, [(i, e) for (i, _), e in zip(valid, events)], key, refusals
    )
    if refusals.by_index and not stored:
        messages = refusals.messages()
        more = f" (and {len(messages) - 1} more refused)" if len(messages) > 1 else ""
        raise ValidationFailed(f"no event was stored: {messages[0]}{more}", details=refusals.details())

    stored_events = [e for _, e in stored]
    if session_id is None:
        distinct = {e.session_id for e in stored_events}
        session_id = distinct.pop() if len(distinct) == 1 else None
    reply: dict[str, Any] = {"event_ids": [e.event_id for e in stored_events], "success": not refusals.by_index}
    if session_id is not None:
        reply["session_id"] = session_id
    if refusals.by_index:
        reply["errors"] = refusals.messages()
    return JSONResponse(reply)


# Routes --------------------------------------------------------------------------------------

@router.post("/session/start", response_model=EventRecord, responses=WRITE_ERRORS, summary="Start a session (legacy)")
@request_body(LegacyStartSessionRequest)
async def start_session_legacy(request: Request) -> Response:
    """``{"session": {...}}`` (object or JSON string) or the bare session. Same defaults and
    idempotency as ``POST /v1/sessions``; extra keys (``project``, ``event_type``...) are ignored.
    Returns the full session event (to an ingestion key: the session as it sent it)."""
    scope = await authenticate(request, write=True)
    settings = settings_of(request)
    data = _object(await read_json(request, settings))
    inner, location = _unwrap(data, "session", settings, bare=True)
    if not isinstance(inner, dict):
        where = format_location(location)
        raise ValidationFailed(f"{where}: must be a JSON object", details=[{"field": where, "message": "must be a JSON object"}])
    try:
        body = LegacySession.model_validate(inner)
    except ValidationError as exc:
        raise validation_failed(exc, location) from None
    return JSONResponse(await start_session(request, scope, legacy_session(body, now=now_ms())))


@router.post(
    "/session/{session_id}/traces",
    response_model=LegacyBatchResponse,
    responses=WRITE_ERRORS,
    summary="Add events to a session (legacy)",
)
@request_body(AddSessionTracesRequest)
async def add_session_traces_legacy(request: Request, session_id: str) -> Response:
    """Exactly one of ``logs`` or ``events``. Every event is stored under the path's session (a
    path id that is not a UUID is replaced by a new one, returned as ``session_id``). Invalid
    events are reported in ``errors``; the others are stored."""
    return await _ingest_batch(request, "events", LegacyEvent, path_session=session_id, traces=True)


@router.post("/events", response_model=PostEventResponse, responses=WRITE_ERRORS, summary="Create an event (legacy)")
@request_body(LegacyCreateEventRequest)
async def create_event_legacy(request: Request) -> Response:
    """``{"event": {...}}`` (object or JSON string), or the bare event (no ``event`` key but an
    ``event_type``). ``event_type`` and ``inputs`` are required; ``project`` and other extra keys
    are ignored."""
    return await _create_one(request, "event", LegacyEvent)


@router.post("/events/model", response_model=PostEventResponse, responses=WRITE_ERRORS, summary="Create a model event (legacy)")
@request_body(LegacyCreateModelEventRequest)
async def create_model_event_legacy(request: Request) -> Response:
    """``{"model_event": {...}}`` (object, JSON string, or bare). Stored as a ``model`` event with
    the deprecated aliases remapped (model -> config.model, messages -> inputs.messages,
    response -> outputs.response, provider/usage/cost/... -> inputs)."""
    return await _create_one(request, "model_event", LegacyModelEvent)


async def _create_one(request: Request, key: str, model: type[LegacyEvent]) -> Response:
    scope = await authenticate(request, write=True)
    settings = settings_of(request)
    data = _object(await read_json(request, settings))
    bare = model is LegacyModelEvent or "event_type" in data
    inner, location = _unwrap(data, key, settings, bare=bare)
    parsed = _validate_event(model, inner, location)
    event = legacy_events([parsed], IdMap(), now=now_ms())[0]
    await store_of(request).write_events(scope, redacted(request, scope, [event]))
    return JSONResponse({"event_id": event.event_id, "success": True})


@router.put("/events", response_model=SuccessResponse, responses=WRITE_ERRORS, summary="Update an event (legacy)")
@request_body(LegacyUpdateEventRequest)
async def update_event_legacy(request: Request) -> Response:
    """The fields of ``PUT /v1/events/{event_id}`` plus ``event_id``. An update for an event that
    does not exist (yet) is kept and applied when it arrives: the tracer's ``enrich_session``
    usually comes before the session's spans. 200 either way."""
    scope = await authenticate(request, write=True)
    data = _object(await read_json(request, settings_of(request)))
    body = validate(LegacyUpdateEventRequest, data)
    update = redacted_update(request, scope, update_from_request(body))
    await store_of(request).update_event(scope, body.event_id, update, keep_if_missing=True)
    return success()


@router.post("/events/batch", response_model=LegacyBatchResponse, responses=WRITE_ERRORS, summary="Create a batch of events (legacy)")
@request_body(LegacyEventBatchRequest)
async def create_event_batch_legacy(request: Request) -> Response:
    """``events`` plus ``single_session`` (alias ``is_single_session``) and ``session_properties``
    (alias ``session``). Valid events are stored in one atomic write; each invalid one is named in
    ``errors`` and makes ``success`` false. No valid event at all: 400."""
    return await _ingest_batch(request, "events", LegacyEvent)


@router.post(
    "/events/model/batch",
    response_model=LegacyBatchResponse,
    responses=WRITE_ERRORS,
    summary="Create a batch of model events (legacy)",
)
@request_body(LegacyModelEventBatchRequest)
async def create_model_event_batch_legacy(request: Request) -> Response:
    """``model_events`` (each forced to ``model`` and remapped as in ``POST /events/model``), with
    the single-session options of ``/events/batch``."""
    return await _ingest_batch(request, "model_events", LegacyModelEvent)
