"""Datapoint routes (``/v1/datapoints*``), as honeyhive 1.7.0's ``client.datapoints`` and
``evaluate(dataset_id=)`` call them (experiments-wire sections 3.3 and 8).

``GET /v1/datapoints/{id}`` answers ``{"datapoint": [Datapoint]}``, a one-element list under a
singular key: that is what the SDK reads. Lists of ids come bracketed (``datapoint_ids[]=a``).
Every route takes a key that may read (ingestion keys get 403), writes included. A datapoint's
``linked_datasets`` and those datasets' ``datapoints`` lists are kept in step
(``experiments.links``): creating with ``linked_datasets`` appends the datapoint to them, and
deleting a datapoint takes it out of every dataset.
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
from tracehive.experiments import links
from tracehive.experiments.datapoint_models import (
    CreateDatapointRequest,
    CreateDatapointResponse,
    DeleteDatapointResponse,
    GetDatapointResponse,
    GetDatapointsResponse,
    UpdateDatapointRequest,
    UpdateDatapointResponse,
)
from tracehive.experiments.datapoints import changed_content, datapoint_reply, new_datapoint
from tracehive.experiments.datasets import dataset_datapoints
from tracehive.experiments.documents import (
    check_size,
    fetch,
    fetch_all,
    not_found,
    query_list,
    query_parameter,
    query_value,
    record_key,
    unique,
)
from tracehive.experiments.fields import MAX_DATASET_DATAPOINTS
from tracehive.model.errors import ValidationFailed
from tracehive.model.ids import new_id
from tracehive.storage.records import MAX_LIST, Record, RecordChange, RecordKind

router = APIRouter(tags=["datapoints"])

DATASET = RecordKind.DATASET
DATAPOINT = RecordKind.DATAPOINT
READ_ERRORS = errors(400, 401, 403, 404)
WRITE_ERRORS = errors(400, 401, 403, 404, 413, 415, 503)
DELETE_ERRORS = errors(400, 401, 403, 404, 503)


# Reads -----------------------------------------------------------------------------------------


@router.get(
    "/v1/datapoints", response_model=GetDatapointsResponse, responses=READ_ERRORS, summary="List datapoints",
    openapi_extra={"parameters": [
        query_parameter("datapoint_ids", "Only these datapoints, in this order (unknown ids are left out).",
                        array=True),
        query_parameter("dataset_name", "Only the datapoints of the datasets with this name, in dataset order."),
    ]},
)
async def get_datapoints(request: Request) -> Response:
    """The project's datapoints (oldest first), or those named, or those of a dataset."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    wanted = query_list(request, "datapoint_ids", MAX_DATASET_DATAPOINTS)
    dataset_name = query_value(request, "dataset_name")
    ids: list[str] | None = None
    if wanted is not None:
        ids = unique(k for k in map(record_key, wanted) if k is not None)
    if dataset_name is not None:
        datasets = await store.list_records(scope, DATASET, name=dataset_name)
        in_datasets = unique(dp for ds in datasets for dp in dataset_datapoints(ds))
        chosen = set(in_datasets)
        ids = in_datasets if ids is None else [dp for dp in ids if dp in chosen]
    if ids is None:
        records = await store.list_records(scope, DATAPOINT, limit=MAX_LIST)
    else:
        found = {r.id: r for r in await store.list_records(scope, DATAPOINT, ids=ids[:MAX_LIST], limit=MAX_LIST)}
        records = [found[dp] for dp in ids if dp in found]
    return JSONResponse({"datapoints": [datapoint_reply(r) for r in records]})


@router.get("/v1/datapoints/{datapoint_id}", response_model=GetDatapointResponse, responses=READ_ERRORS,
            summary="Get a datapoint")
async def get_datapoint(request: Request, datapoint_id: str) -> Response:
    """The datapoint, as a one-element list under ``datapoint``."""
    scope = await authenticate(request, write=False)
    record = await fetch(store_of(request), scope, DATAPOINT, datapoint_id)
    return JSONResponse({"datapoint": [datapoint_reply(record)]})


# Writes ----------------------------------------------------------------------------------------


@router.post("/v1/datapoints", response_model=CreateDatapointResponse, responses=WRITE_ERRORS,
             summary="Create a datapoint")
@request_body(CreateDatapointRequest)
async def create_datapoint(request: Request) -> Response:
    """A new datapoint, appended to each of its ``linked_datasets`` (404 naming one the project
    lacks, and then nothing is stored)."""
    scope = await authenticate(request, write=False)
    body = validate(CreateDatapointRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    datasets = await fetch_all(store, scope, DATASET, body.linked_datasets or [])
    document = new_datapoint(body, datasets)
    check_size(document, "the datapoint")
    datapoint_id = new_id()
    await store.create_record(scope, DATAPOINT, datapoint_id, None, document)
    try:
        await links.join_datasets(store, scope, datapoint_id, datasets)
    except ValidationFailed:  # a dataset is full: store nothing
        await links.leave_datasets(store, scope, datapoint_id, datasets)
        await store.delete_record(scope, DATAPOINT, datapoint_id)
        raise
    return JSONResponse({"inserted": True, "result": {"insertedIds": [datapoint_id]}})


@router.put("/v1/datapoints/{datapoint_id}", response_model=UpdateDatapointResponse, responses=WRITE_ERRORS,
            summary="Update a datapoint")
@request_body(UpdateDatapointRequest)
async def update_datapoint(request: Request, datapoint_id: str) -> Response:
    """Replace the fields sent. ``linked_datasets`` moves the datapoint: appended to the datasets
    it joins, taken out of those it leaves."""
    scope = await authenticate(request, write=False)
    body = validate(UpdateDatapointRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    stored = await fetch(store, scope, DATAPOINT, datapoint_id)
    datasets = None if body.linked_datasets is None else await fetch_all(store, scope, DATASET, body.linked_datasets)
    check_size({**stored.body, **body.model_dump(exclude_none=True)}, "the datapoint")
    before: list[str] = []
    modified = [False]

    def update(record: Record) -> RecordChange | None:
        # What this run replaced (the last run is the one applied).
        before[:] = record.body.get(links.DATAPOINT_LIST) or []
        change = changed_content(record, body)
        if datasets is not None and datasets != before:
            content = change.body if change is not None else record.body
            change = RecordChange(record.name, {**content, links.DATAPOINT_LIST: datasets})
        modified[0] = change is not None
        return change

    if await store.update_record(scope, DATAPOINT, stored.id, update) is None:
        raise not_found("datapoint", datapoint_id)
    if datasets is not None:
        kept = set(datasets)
        await links.leave_datasets(store, scope, stored.id, [ds for ds in before if ds not in kept])
        was = set(before)
        await links.join_datasets(store, scope, stored.id, [ds for ds in datasets if ds not in was])
    return JSONResponse({"updated": True, "result": {"modifiedCount": 1 if modified[0] else 0}})


@router.delete("/v1/datapoints/{datapoint_id}", response_model=DeleteDatapointResponse, responses=DELETE_ERRORS,
               summary="Delete a datapoint")
async def delete_datapoint(request: Request, datapoint_id: str) -> Response:
    """Delete the datapoint and take it out of every dataset it is in."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    record = await fetch(store, scope, DATAPOINT, datapoint_id)
    if not await store.delete_record(scope, DATAPOINT, record.id):
        raise not_found("datapoint", datapoint_id)
    await links.leave_datasets(store, scope, record.id, list(record.body.get(links.DATAPOINT_LIST) or []))
    return JSONResponse({"deleted": True})
