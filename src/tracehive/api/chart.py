"""``GET /v1/events/chart`` (contract 4.9): the project's events aggregated per time bucket.

The documented response (``{events, totalEvents}``) is a placeholder (contract 9.13); the best
call is one row per bucket (and group) inside ``events``, ``totalEvents`` being the number of rows.
Semantics (buckets, percentiles, groups, limits) are in ``tracehive.query.chart``.

Query parameters may come in bracket form (``dateRange[$gte]=...``, ``filters[0][field]=...``),
as repeated keys or as JSON strings, read by the same qs-style parser as ``GET /v1/events``
(``tracehive.query.params``).

Registered before the events router, so that ``/v1/events/{event_id}`` does not capture it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.context import store_of
from tracehive.api.documented import errors
from tracehive.api.read_gate import heavy_read
from tracehive.api.responses import JSONResponse
from tracehive.model.wire import ResponseBody
from tracehive.query.chart import parse_chart_params

router = APIRouter(tags=["events"])


class ChartRowBody(ResponseBody):
    bucket: int = Field(description="Start of the bucket, Unix ms (UTC).")
    bucket_iso: str = Field(description="Start of the bucket, ISO 8601 (UTC).")
    group: Any = Field(None, description="The groupBy value; null without groupBy or for events without it.")
    value: float | None = Field(description="The aggregation over the numeric metric values; null when none.")
    count: int = Field(description="Events in the bucket (and group).")


class ChartResponse(ResponseBody):
    events: list[ChartRowBody] = Field(description="One row per bucket and group, by bucket then group.")
    totalEvents: int = Field(description="The number of rows.")


_BUCKETS = ["minute", "minutes", "1m", "hour", "hours", "1h", "day", "days", "1d", "week", "weeks", "1w",
            "month", "months", "1M"]
_AGGREGATIONS = ["avg", "average", "mean", "p50", "p75", "p90", "p95", "p99", "count", "sum", "min", "max", "median"]


def _param(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


# Documented by hand: the handler reads the raw query string itself (FastAPI would neither nest
# the bracket form nor name the problem as precisely).
_PARAMETERS = [
    _param("dateRange", "JSON {$gte,$lte} (ISO or Unix ms) or {relative:'7d'}, bracket form dateRange[$gte]=..., "
           "or one datetime (= since).", {"type": "string"}),
    _param("filters", "JSON array of filters, repeated JSON objects, or bracket form filters[0][field]=...",
           {"type": "string"}),
    _param("metric", "A number column or a dot path into a JSON column (metadata.cost).",
           {"type": "string", "default": "duration"}),
    _param("bucket", "Bucket size; all in UTC, weeks start on Monday.",
           {"type": "string", "enum": _BUCKETS, "default": "hour"}),
    _param("aggregation", "Percentiles interpolate linearly between closest ranks; median = p50.",
           {"type": "string", "enum": _AGGREGATIONS, "default": "avg"}),
    _param("groupBy", "A column or JSON dot path to split each bucket by.", {"type": "string"}),
    _param("evaluation_id", "Only events of this run (metadata.run_id).", {"type": "string"}),
    _param("only_experiments", "Only events of experiment runs (metadata.run_id exists).",
           {"type": "boolean", "default": False}),
]


@router.get(
    "/v1/events/chart",
    response_model=ChartResponse,
    responses=errors(400, 401, 403),
    summary="Chart events",
    openapi_extra={"parameters": _PARAMETERS},
)
async def chart_events(request: Request) -> Response:
    """The project's events matching the filters, aggregated per time bucket (and group)."""
    scope = await authenticate(request, write=False)
    query = parse_chart_params(request.query_params.multi_items())
    rows = await heavy_read(request, scope, store_of(request).chart_events(scope, query))
    return JSONResponse({"events": [row.to_dict() for row in rows], "totalEvents": len(rows)})
