"""``POST /v1/sessions/search``: a page of session summaries (for the sessions table of a UI).

The strict body is parsed by ``tracehive.query.session_list`` and answered by
``Store.list_sessions``; filters and ``dateRange`` are those of ``POST /v1/events/search``,
applied to the session events. Reads need a project key (ingestion keys get 403).
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
from tracehive.api.search import SearchDateRange, SearchFilter
from tracehive.model.wire import ResponseBody
from tracehive.query.session_list import (
    SESSION_LIST_DEFAULT_LIMIT,
    SESSION_LIST_MAX_LIMIT,
    SortField,
    parse_session_list_request,
)

router = APIRouter(tags=["sessions"])


# Documentation models (the handler parses the body itself, for precise errors) -----------------


class SessionSearchRequest(BaseModel):
    """Strict: unknown keys are a 400. A null (or absent) member means its default."""

    model_config = ConfigDict(extra="forbid")

    filters: list[SearchFilter] | None = Field(None, description="ANDed; applied to the session events.")
    dateRange: SearchDateRange | None = Field(None, description="On the session's start_time, inclusive.")
    sort_by: SortField | None = Field("start_time", description="duration, num_events, cost and total_tokens are "
                                                                "computed over all of a session's events.")
    sort_order: Literal["asc", "desc"] | None = "desc"
    limit: int | None = Field(SESSION_LIST_DEFAULT_LIMIT, ge=1, le=SESSION_LIST_MAX_LIMIT)
    page: int | None = Field(1, ge=1, description="1-based.")


class SessionSummaryRecord(ResponseBody):
    """One session, summarised over all of its events (the session event included)."""

    session_id: str
    event_name: str
    source: str
    start_time: float = Field(description="The session event's, Unix ms.")
    end_time: float = Field(description="The latest end_time of the session and its events.")
    duration: float = Field(description="end_time - start_time, ms.")
    num_events: int = Field(description="Events of the session, the session event excluded.")
    cost: float = Field(description="Sum of metadata.cost (JSON numbers only); 0 when none.")
    total_tokens: float = Field(description="Sum of metadata.total_tokens (JSON numbers only); 0 when none.")
    has_error: bool = Field(description="An event of the session has a non-empty error.")
    has_feedback: bool = Field(description="An event of the session has non-empty feedback.")
    user_properties: dict[str, Any] = Field(description="The session event's.")
    metadata: dict[str, Any] = Field(description="The session event's.")


class SessionSearchResponse(ResponseBody):
    sessions: list[SessionSummaryRecord]
    totalSessions: int = Field(description="Matching sessions (not the page size).")
    page: int
    limit: int


@router.post("/v1/sessions/search", response_model=SessionSearchResponse, responses=errors(400, 401, 403, 413, 415),
             summary="Search sessions")
@request_body(SessionSearchRequest)
async def search_sessions(request: Request) -> Response:
    """A page of the project's sessions matching the filters, each with its roll-ups, and the total."""
    scope = await authenticate(request, write=False)
    query = parse_session_list_request(await read_json(request, settings_of(request)))
    sessions, total = await heavy_read(request, scope, store_of(request).list_sessions(scope, query))
    return JSONResponse({
        "sessions": [summary.to_dict() for summary in sessions],
        "totalSessions": total,
        "page": query.offset // query.limit + 1,
        "limit": query.limit,
    })
