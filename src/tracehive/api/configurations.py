"""Configuration routes (``/v1/configurations*``): prompt and model configurations, as honeyhive
1.7.0's ``client.configurations`` calls them (experiments-wire section 8). There is no single
GET: the SDK's ``get_configuration(id)`` lists them all.

Every route takes a key that may read (ingestion keys get 403), writes included: each answers
with stored data. Answers keep the MongoDB-style counters the SDK's models require.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.bodies import read_json, validate
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors, request_body
from tracehive.api.responses import JSONResponse
from tracehive.experiments.configuration_models import (
    CreateConfigurationRequest,
    CreateConfigurationResponse,
    DeleteConfigurationResponse,
    GetConfigurationsResponse,
    UpdateConfigurationRequest,
    UpdateConfigurationResponse,
)
from tracehive.experiments.configurations import (
    changed_configuration,
    configuration_reply,
    matches,
    new_configuration,
)
from tracehive.experiments.documents import check_size, fetch, not_found, query_parameter, query_value
from tracehive.model.ids import new_id
from tracehive.storage.records import Record, RecordChange, RecordKind

router = APIRouter(tags=["configurations"])

CONFIGURATION = RecordKind.CONFIGURATION


@router.get(
    "/v1/configurations", response_model=GetConfigurationsResponse, responses=errors(400, 401, 403),
    summary="List configurations",
    openapi_extra={"parameters": [
        query_parameter("name", "Only configurations with exactly this name."),
        query_parameter("env", "Only configurations deployed to this environment."),
        query_parameter("tags", "Only configurations carrying every one of these comma-separated tags."),
    ]},
)
async def get_configurations(request: Request) -> Response:
    """The project's configurations, oldest first."""
    scope = await authenticate(request, write=False)
    env, tags = query_value(request, "env"), query_value(request, "tags")
    records = await store_of(request).list_records(scope, CONFIGURATION, name=query_value(request, "name"))
    return JSONResponse({"configurations": [configuration_reply(r) for r in records if matches(r, env, tags)]})


@router.post("/v1/configurations", response_model=CreateConfigurationResponse,
             responses=errors(400, 401, 403, 413, 415, 503), summary="Create a configuration")
@request_body(CreateConfigurationRequest)
async def create_configuration(request: Request) -> Response:
    """A new configuration; ``type`` defaults to LLM, ``env`` and ``tags`` to empty lists."""
    scope = await authenticate(request, write=False)
    body = validate(CreateConfigurationRequest, await read_json(request, settings_of(request)))
    document = new_configuration(body)
    check_size(document, "the configuration")
    config_id = new_id()
    await store_of(request).create_record(scope, CONFIGURATION, config_id, body.name, document)
    return JSONResponse({"acknowledged": True, "insertedId": config_id})


@router.put("/v1/configurations/{configId}", response_model=UpdateConfigurationResponse,
            responses=errors(400, 401, 403, 404, 413, 415, 503), summary="Update a configuration")
@request_body(UpdateConfigurationRequest)
async def update_configuration(request: Request, configId: str) -> Response:
    """Set the name and replace the other fields sent. An unknown id is a 404 (never an upsert)."""
    scope = await authenticate(request, write=False)
    body = validate(UpdateConfigurationRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    stored = await fetch(store, scope, CONFIGURATION, configId)
    change = changed_configuration(stored, body)
    if change is not None:
        check_size(change.body, "the configuration")
    modified = [False]

    def update(record: Record) -> RecordChange | None:
        result = changed_configuration(record, body)
        modified[0] = result is not None
        return result

    if await store.update_record(scope, CONFIGURATION, stored.id, update) is None:
        raise not_found("configuration", configId)
    count = 1 if modified[0] else 0
    return JSONResponse({"acknowledged": True, "modifiedCount": count, "upsertedId": None, "upsertedCount": 0,
                         "matchedCount": 1})


@router.delete("/v1/configurations/{configId}", response_model=DeleteConfigurationResponse,
               responses=errors(400, 401, 403, 404, 503), summary="Delete a configuration")
async def delete_configuration(request: Request, configId: str) -> Response:
    """Delete the configuration; an unknown id is a 404."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    record = await fetch(store, scope, CONFIGURATION, configId)
    if not await store.delete_record(scope, CONFIGURATION, record.id):
        raise not_found("configuration", configId)
    return JSONResponse({"acknowledged": True, "deletedCount": 1})
