"""``POST /v1/events/export`` and ``POST /events/export`` (contract 4.7): the read the HoneyHive
Python SDK uses for ``events.export()``, ``events.list()`` and ``events.get_by_session_id()``.

The body is lenient (unknown keys such as ``project`` are ignored); the filter language lives in
``tracehive.query.filters`` and the store compiles it. Both totals are returned (contract 9.5).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from tracehive.api.auth import authenticate
from tracehive.api.bodies import read_json
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors, request_body
from tracehive.api.read_gate import heavy_read
from tracehive.api.responses import JSONResponse
from tracehive.model.event import Event, for_readers
from tracehive.model.scope import Scope
from tracehive.model.wire import ResponseBody
from tracehive.query.event_query import DEFAULT_LIMIT, EXPORT_MAX_LIMIT, EventQuery
from tracehive.query.filters import parse_export_request
from tracehive.query.projections import project_event

router = APIRouter(tags=["events"])


# Documentation models (the handler parses the body itself, with index-precise errors) ----------


class ExportFilter(BaseModel):
    model_config = ConfigDict(extra="allow")

    field: str = Field(description="A column (event_type, session_id, start_time, ...) or a dot path into a JSON "
                                   "column (metadata.cost, inputs.chat_history.0.content).")
    operator: Literal["exists", "not exists", "is", "is not", "contains", "not contains", "greater than",
                      "less than", "after", "before"]
    value: str | float | bool | None = Field(None, description="Coerced by type; ignored by exists / not exists.")
    type: Literal["string", "number", "boolean", "datetime", "id"] = Field("string", description="Defaults to string.")


class ExportDateRange(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    gte: str | float | None = Field(None, alias="$gte", description="ISO 8601 or Unix ms, inclusive.")
    lte: str | float | None = Field(None, alias="$lte", description="ISO 8601 or Unix ms, inclusive.")
    relative: str | None = Field(None, description="Instead of bounds: '<int><m|h|d|w>', e.g. '7d'.")


class ExportEventsRequest(BaseModel):
    """Lenient: unknown keys are ignored."""

    model_config = ConfigDict(extra="allow")

    filters: list[ExportFilter] = Field(default_factory=list, description="ANDed.")
    dateRange: ExportDateRange | None = Field(None, description="On start_time.")
    projections: list[str] | None = Field(None, description="Fields or dot paths to return; event_id always is.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, description=f"Clamped to {EXPORT_MAX_LIMIT}.")
    page: int = Field(1, ge=1, description="1-based.")
    ignore_order: bool = Field(False, description="Skip sorting by start_time (newest first).")
    evaluation_id: str | None = Field(None, description="Only events whose metadata.run_id is this run.")
    project: str | None = Field(None, description="Ignored: the project comes from the API key.")


class ExportEventsResponse(ResponseBody):
    events: list[dict[str, Any]] = Field(description="Stored events, or their projected fields.")
    count: int = Field(description="Total matches (not the page size).")
    totalEvents: int = Field(description="Same as count (older clients read this key).")


# Routes ----------------------------------------------------------------------------------------

_ERRORS = errors(400, 401, 403, 413, 415)


_NDJSON = ("application/x-ndjson", "application/ndjson")


def _wants_ndjson(request: Request) -> bool:
    accept = request.headers.get("accept", "").lower()
    return any(kind in accept for kind in _NDJSON)


def _lines(events: list[Event], query: EventQuery) -> bytes:
    """One event (or its projected fields) per line."""
    dumps, option, projections = orjson.dumps, orjson.OPT_APPEND_NEWLINE, query.projections
    if projections is None:
        return b"".join(dumps(e.to_dict(), option=option) for e in events)
    return b"".join(dumps(project_event(e.to_dict(), projections), option=option) for e in events)


async def _ndjson(request: Request, scope: Scope, query: EventQuery, body: dict[str, Any]) -> Response:
    """``Accept: application/x-ndjson``. Without ``limit``/``page`` in the body: every match,
    streamed chunk by chunk in constant memory, newest first (``ignore_order`` changes nothing).
    With either: that page (at most 7500 events), its total in ``X-Total-Count``."""
    store = store_of(request)
    if body.get("limit") is not None or body.get("page") is not None:
        events, total = await heavy_read(request, scope, store.export_events(scope, query))
        return Response(_lines(events, query), media_type=_NDJSON[0], headers={"X-Total-Count": str(total)})

    async def everything() -> AsyncIterator[bytes]:
        if query.projections is not None:
            async for chunk in store.iter_events(scope, query):
                yield _lines(chunk, query)
            return
        async for lines in store.iter_event_lines(scope, query, scope_fields=True):
            yield b"".join(lines)

    return StreamingResponse(everything(), media_type=_NDJSON[0])


async def _export(request: Request) -> Response:
    scope = await authenticate(request, write=False)
    body = await read_json(request, settings_of(request))
    query = parse_export_request(body)
    if _wants_ndjson(request):
        return await _ndjson(request, scope, query, body)
    events, total = await heavy_read(request, scope, store_of(request).export_events(scope, query))
    if query.projections is None:
        rows = [event.to_read_dict() for event in events]
    else:
        rows = [for_readers(project_event(event.to_dict(), query.projections)) for event in events]
    return JSONResponse({"events": rows, "count": total, "totalEvents": total})


@router.post("/v1/events/export", response_model=ExportEventsResponse, responses=_ERRORS, summary="Export events")
@request_body(ExportEventsRequest)
async def export_events(request: Request) -> Response:
    """A page of the project's events matching the filters, newest first, with the total count.
    With ``Accept: application/x-ndjson``: JSONL, one event per line; without ``limit``/``page``
    every matching event is streamed (constant memory), with them that page (total in
    ``X-Total-Count``)."""
    return await _export(request)


@router.post(
    "/events/export", response_model=ExportEventsResponse, responses=_ERRORS, summary="Export events (legacy path)"
)
@request_body(ExportEventsRequest)
async def export_events_legacy(request: Request) -> Response:
    """Same as ``POST /v1/events/export``."""
    return await _export(request)
