"""``GET /v1/events/schema`` (contract 4.10): the field paths seen per event type in the matching
events, for UI field pickers. Looks at the newest ``SCHEMA_SAMPLE`` matching events, so it stays
fast on a big project (``Store.schema_fields``; names in ``tracehive.query.schema``).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.context import store_of
from tracehive.api.documented import errors
from tracehive.api.read_gate import heavy_read
from tracehive.api.responses import JSONResponse
from tracehive.api.search import QUERY_PARAMETERS, _param
from tracehive.model.wire import ResponseBody
from tracehive.query.params import parse_schema_params
from tracehive.query.schema import SCHEMA_SAMPLE, schema_reply
from tracehive.storage.records import RecordKind

router = APIRouter(tags=["events"])


class SchemaField(ResponseBody):
    name: str = Field(description="A column or a dot path into a JSON column, usable as a filter field.")
    event_type: str


class SchemaMapping(ResponseBody):
    field_name: str
    event_type: str


class GetEventsSchemaResponse(ResponseBody):
    fields: list[SchemaField] = Field(description="Distinct (name, event_type) pairs, by event_type then name.")
    datasets: list[str] = Field(description="The names of the project's datasets.")
    mappings: dict[str, list[SchemaMapping]] = Field(description="The same fields grouped by event_type.")


SCHEMA_PARAMETERS = [*QUERY_PARAMETERS, _param("evaluation_id", "Only events whose metadata.run_id is this run.")]


@router.get("/v1/events/schema", response_model=GetEventsSchemaResponse, responses=errors(400, 401, 403),
            summary="Fields seen in events", openapi_extra={"parameters": SCHEMA_PARAMETERS})
async def get_events_schema(request: Request) -> Response:
    """The field names seen per event type in the newest matching events."""
    scope = await authenticate(request, write=False)
    query = parse_schema_params(request.query_params.multi_items())
    store = store_of(request)
    fields = await heavy_read(request, scope, store.schema_fields(scope, query, sample=SCHEMA_SAMPLE))
    datasets = await store.list_records(scope, RecordKind.DATASET)
    return JSONResponse(schema_reply(fields, (d.name for d in datasets if d.name)))
