"""The event reads besides export: ``POST /v1/events/search`` (contract 4.6, strict body, limit
1..1000, always newest first) and ``GET /v1/events`` / ``GET /events`` (contract 4.8, query
parameters in bracket, repeated or JSON form, parsed by ``tracehive.query.params``).

All three run the same backend-neutral ``EventQuery`` through ``Store.export_events`` and return
both totals (contract 9.5). Reads need a project key (ingestion keys get 403).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.bodies import read_json
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors, request_body
from tracehive.api.read_gate import heavy_read
from tracehive.api.responses import JSONResponse
from tracehive.model.event import for_readers
from tracehive.model.wire import ResponseBody
from tracehive.query.event_query import DEFAULT_LIMIT, EXPORT_MAX_LIMIT, EventQuery
from tracehive.query.params import parse_events_params
from tracehive.query.projections import project_event
from tracehive.query.search import SEARCH_MAX_LIMIT, parse_search_request

router = APIRouter(tags=["events"])


# Documentation models (handlers parse bodies and parameters themselves) -------------------------


class SearchFilter(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="A column (event_type, session_id, start_time, ...) or a dot path into a JSON "
                                   "column (metadata.cost, inputs.chat_history.0.content).")
    operator: Literal["exists", "not exists", "is", "is not", "contains", "not contains", "greater than",
                      "less than", "after", "before"]
    value: str | float | bool | None = Field(description="Coerced by type; ignored by exists / not exists.")
    type: Literal["string", "number", "boolean", "datetime"] | None = Field(
        None, description="Inferred when absent: datetime for after/before, string on string columns and for "
                          "contains, else from the JSON type of value.")


class SearchDateRange(BaseModel):
    """One of the forms every date range takes: ``{start_time, end_time}`` (both, ISO 8601),
    ``{$gte, $lte}`` (ISO 8601 or Unix ms, either optional) or ``{relative: "7d"}`` (m, h, d, w)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start_time: str | None = Field(None, description="ISO 8601 date-time, inclusive; with end_time.")
    end_time: str | None = Field(None, description="ISO 8601 date-time, inclusive; with start_time.")
    gte: str | int | None = Field(None, alias="$gte", description="From (inclusive): ISO 8601 or Unix ms.")
    lte: str | int | None = Field(None, alias="$lte", description="Until (inclusive): ISO 8601 or Unix ms.")
    relative: str | None = Field(None, description="The last 30m, 12h, 7d, 2w...; alone.")


class SearchEventsRequest(BaseModel):
    """Strict: unknown keys (including projections and project) are a 400."""

    model_config = ConfigDict(extra="forbid")

    filters: list[SearchFilter] = Field(default_factory=list, description="ANDed.")
    dateRange: SearchDateRange | None = Field(None, description="On start_time.")
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=SEARCH_MAX_LIMIT)
    page: int = Field(1, ge=1, description="1-based.")
    ignore_order: bool | None = Field(None, description="Deprecated, ignored: results are always newest first.")
    evaluation_id: str | None = Field(None, description="Only events whose metadata.run_id is this run.")


class SearchEventsResponse(ResponseBody):
    events: list[dict[str, Any]] = Field(description="Stored events, newest start_time first.")
    count: int = Field(description="Total matches (not the page size).")
    totalEvents: int = Field(description="Same as count.")


class GetEventsResponse(ResponseBody):
    events: list[dict[str, Any]] = Field(description="Stored events, or their projected fields.")
    totalEvents: int = Field(description="Total matches (not the page size).")
    count: int = Field(description="Same as totalEvents.")


def _param(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": schema or {"type": "string"}}


QUERY_PARAMETERS = [
    _param("filters", "Filter objects {field, operator, value, type}: bracket form filters[0][field]=..., or a JSON "
                      "array string."),
    _param("dateRange", "On start_time: dateRange[$gte]=...&dateRange[$lte]=... (ISO or Unix ms), "
                        "dateRange[relative]=7d, a JSON object string, or one datetime meaning since."),
]
EVENTS_PARAMETERS = [
    *QUERY_PARAMETERS,
    _param("projections", "Fields or dot paths to return (projections[]=a&projections[]=b, repeated, or JSON); "
                          "event_id always is."),
    _param("ignore_order", "true = skip sorting (newest first otherwise).", {"type": "boolean"}),
    _param("limit", f"Page size, default {DEFAULT_LIMIT}, clamped to {EXPORT_MAX_LIMIT}.", {"type": "integer"}),
    _param("page", "1-based page.", {"type": "integer"}),
    _param("evaluation_id", "Only events whose metadata.run_id is this run."),
]


# Routes ----------------------------------------------------------------------------------------


async def _rows(request: Request, query: EventQuery, scope: Any) -> tuple[list[dict[str, Any]], int]:
    events, total = await heavy_read(request, scope, store_of(request).export_events(scope, query))
    if query.projections is None:
        return [event.to_read_dict() for event in events], total
    return [for_readers(project_event(event.to_dict(), query.projections)) for event in events], total


@router.post("/v1/events/search", response_model=SearchEventsResponse, responses=errors(400, 401, 403, 413, 415),
             summary="Search events")
@request_body(SearchEventsRequest)
async def search_events(request: Request) -> Response:
    """A page of the project's events matching the filters, always newest first, with the total."""
    scope = await authenticate(request, write=False)
    query = parse_search_request(await read_json(request, settings_of(request)))
    rows, total = await _rows(request, query, scope)
    return JSONResponse({"events": rows, "count": total, "totalEvents": total})


async def _get_events(request: Request) -> Response:
    scope = await authenticate(request, write=False)
    query = parse_events_params(request.query_params.multi_items())
    rows, total = await _rows(request, query, scope)
    return JSONResponse({"events": rows, "totalEvents": total, "count": total})


@router.get("/v1/events", response_model=GetEventsResponse, responses=errors(400, 401, 403),
            summary="List events", openapi_extra={"parameters": EVENTS_PARAMETERS})
async def get_events(request: Request) -> Response:
    """Like export, with the request in query parameters."""
    return await _get_events(request)


@router.get("/events", response_model=GetEventsResponse, responses=errors(400, 401, 403),
            summary="List events (legacy path)", openapi_extra={"parameters": EVENTS_PARAMETERS})
async def get_events_legacy(request: Request) -> Response:
    """Same as ``GET /v1/events``."""
    return await _get_events(request)
