"""Dataset routes (``/v1/datasets*``), as honeyhive 1.7.0's ``client.datasets`` and ``evaluate()``
call them (experiments-wire section 8), legacy paths included: the SDK updates with
``PUT /v1/datasets`` (id in the body), deletes with ``DELETE /v1/datasets?dataset_id=`` and
removes a datapoint with ``DELETE /v1/datasets/{dataset_id}/{datapoint_id}``.

Every route takes a key that may read (ingestion keys get 403), writes included: each answers
with stored data. A dataset's ``datapoints`` list and its datapoints' ``linked_datasets`` are
kept in step (``experiments.links``); deleting a dataset unlinks its datapoints, never deletes them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.bodies import read_json, validate
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors, request_body
from tracehive.api.responses import JSONResponse
from tracehive.experiments import links
from tracehive.experiments.datapoints import datapoint_from_row
from tracehive.experiments.dataset_models import (
    AddDatapointsRequest,
    AddDatapointsResponse,
    CreateDatasetRequest,
    CreateDatasetResponse,
    DeleteDatasetResponse,
    GetDatasetsResponse,
    LegacyUpdateDatasetRequest,
    RemoveDatapointResponse,
    UpdateDatasetRequest,
    UpdateDatasetResponse,
)
from tracehive.experiments.datasets import (
    changed_fields,
    dataset_datapoints,
    dataset_reply,
    default_name,
    new_dataset,
)
from tracehive.experiments.documents import (
    check_size,
    fetch,
    fetch_all,
    not_found,
    query_parameter,
    query_value,
    record_key,
    required_query,
)
from tracehive.experiments.fields import MAX_DATASET_DATAPOINTS
from tracehive.model.errors import ValidationFailed
from tracehive.model.ids import new_id
from tracehive.model.scope import Scope
from tracehive.storage.base import Store
from tracehive.storage.records import Record, RecordChange, RecordKind

router = APIRouter(tags=["datasets"])

DATASET = RecordKind.DATASET
DATAPOINT = RecordKind.DATAPOINT
READ_ERRORS = errors(400, 401, 403, 404)
WRITE_ERRORS = errors(400, 401, 403, 404, 413, 415, 503)
DELETE_ERRORS = errors(400, 401, 403, 404, 503)


# Reads -----------------------------------------------------------------------------------------


@router.get(
    "/v1/datasets", response_model=GetDatasetsResponse, responses=READ_ERRORS, summary="List datasets",
    openapi_extra={"parameters": [
        query_parameter("dataset_id", "Only this dataset (an empty list when the project has none with this id)."),
        query_parameter("name", "Only datasets with exactly this name."),
    ]},
)
async def get_datasets(request: Request) -> Response:
    """The project's datasets, oldest first, each with its ordered datapoint ids."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    dataset_id, name = query_value(request, "dataset_id"), query_value(request, "name")
    if dataset_id is not None:
        key = record_key(dataset_id)
        found = None if key is None else await store.get_record(scope, DATASET, key)
        records = [found] if found is not None and (name is None or found.name == name) else []
    else:
        records = await store.list_records(scope, DATASET, name=name)
    return JSONResponse({"datasets": [dataset_reply(r) for r in records]})


# Create and update -----------------------------------------------------------------------------


@router.post("/v1/datasets", response_model=CreateDatasetResponse, responses=WRITE_ERRORS, summary="Create a dataset")
@request_body(CreateDatasetRequest)
async def create_dataset(request: Request) -> Response:
    """A new dataset, optionally holding existing datapoints (404 naming one the project lacks)."""
    scope = await authenticate(request, write=False)
    body = validate(CreateDatasetRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    datapoints = await fetch_all(store, scope, DATAPOINT, body.datapoints or [])
    dataset_id = new_id()
    document = new_dataset(body, datapoints)
    check_size(document, "the dataset")
    name = body.name if body.name is not None else default_name(dataset_id)
    await store.create_record(scope, DATASET, dataset_id, name, document)
    await links.link_datapoints(store, scope, dataset_id, datapoints)
    return JSONResponse({"inserted": True, "result": {"insertedId": dataset_id}})


async def _update(request: Request, scope: Scope, dataset_id: str, body: UpdateDatasetRequest) -> Response:
    store = store_of(request)
    key = (await fetch(store, scope, DATASET, dataset_id)).id
    datapoints = None if body.datapoints is None else await fetch_all(store, scope, DATAPOINT, body.datapoints)
    before: list[str] = []

    def update(record: Record) -> RecordChange | None:
        before[:] = dataset_datapoints(record)  # the list this (last, applied) run replaced
        return changed_fields(record, body, datapoints)

    updated = await store.update_record(scope, DATASET, key, update)
    if updated is None:
        raise not_found("dataset", dataset_id)
    if datapoints is not None:
        kept = set(datapoints)
        await links.unlink_datapoints(store, scope, key, [dp for dp in before if dp not in kept])
        was = set(before)
        await links.link_datapoints(store, scope, key, [dp for dp in datapoints if dp not in was])
        updated = await store.get_record(scope, DATASET, key) or updated
    return JSONResponse({"result": dataset_reply(updated)})


@router.put("/v1/datasets", response_model=UpdateDatasetResponse, responses=WRITE_ERRORS,
            summary="Update a dataset (legacy path: the id in the body)")
@request_body(LegacyUpdateDatasetRequest)
async def update_dataset_legacy(request: Request) -> Response:
    """Replace the dataset's name, description and/or datapoints list; what the SDK's
    ``datasets.update`` sends."""
    scope = await authenticate(request, write=False)
    body = validate(LegacyUpdateDatasetRequest, await read_json(request, settings_of(request)))
    return await _update(request, scope, body.dataset_id, body)


@router.put("/v1/datasets/{dataset_id}", response_model=UpdateDatasetResponse, responses=WRITE_ERRORS,
            summary="Update a dataset")
@request_body(UpdateDatasetRequest)
async def update_dataset(request: Request, dataset_id: str) -> Response:
    """Replace the dataset's name, description and/or datapoints list."""
    scope = await authenticate(request, write=False)
    body = validate(UpdateDatasetRequest, await read_json(request, settings_of(request)))
    return await _update(request, scope, dataset_id, body)


# Delete ----------------------------------------------------------------------------------------


async def _delete(request: Request, scope: Scope, dataset_id: str) -> Response:
    store = store_of(request)
    record = await fetch(store, scope, DATASET, dataset_id)
    if not await store.delete_record(scope, DATASET, record.id):
        raise not_found("dataset", dataset_id)
    await links.unlink_datapoints(store, scope, record.id, dataset_datapoints(record))
    return JSONResponse({"result": {"id": record.id}})


@router.delete(
    "/v1/datasets", response_model=DeleteDatasetResponse, responses=DELETE_ERRORS,
    summary="Delete a dataset (legacy path: the id in the query)",
    openapi_extra={"parameters": [
        {**query_parameter("dataset_id", "The dataset to delete."), "required": True}]},
)
async def delete_dataset_legacy(request: Request) -> Response:
    """Delete the dataset; its datapoints stay (unlinked from it). What ``datasets.delete`` sends."""
    scope = await authenticate(request, write=False)
    return await _delete(request, scope, required_query(request, "dataset_id"))


@router.delete("/v1/datasets/{dataset_id}", response_model=DeleteDatasetResponse, responses=DELETE_ERRORS,
               summary="Delete a dataset")
async def delete_dataset(request: Request, dataset_id: str) -> Response:
    """Delete the dataset; its datapoints stay (unlinked from it)."""
    scope = await authenticate(request, write=False)
    return await _delete(request, scope, dataset_id)


# Datapoints of a dataset -----------------------------------------------------------------------


@router.post("/v1/datasets/{dataset_id}/datapoints", response_model=AddDatapointsResponse,
             responses=WRITE_ERRORS, summary="Add datapoints to a dataset from rows")
@request_body(AddDatapointsRequest)
async def add_datapoints(request: Request, dataset_id: str) -> Response:
    """Make one datapoint per row (the mapping says which columns are inputs, ground truth and
    history; the rest is metadata) and append them to the dataset, in row order."""
    scope = await authenticate(request, write=False)
    body = validate(AddDatapointsRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    dataset = await fetch(store, scope, DATASET, dataset_id)
    if len(dataset_datapoints(dataset)) + len(body.data) > MAX_DATASET_DATAPOINTS:
        raise links.too_many(dataset.id)
    documents = [datapoint_from_row(row, body.mapping, i, dataset.id) for i, row in enumerate(body.data)]
    for i, document in enumerate(documents):
        check_size(document, f"data[{i}] as a datapoint")
    if not documents:
        return JSONResponse({"inserted": False, "datapoint_ids": []})
    ids = [new_id() for _ in documents]

    async def create(pair: tuple[str, dict[str, Any]]) -> None:
        await store.create_record(scope, DATAPOINT, pair[0], None, pair[1])

    await links.each(list(zip(ids, documents)), create)
    try:
        appended = await links.append_to_dataset(store, scope, dataset.id, ids)
    except ValidationFailed:  # filled up meanwhile: the rows made for it go
        await _discard(store, scope, ids)
        raise
    if appended is None:  # the dataset was deleted meanwhile: so are the rows made for it
        await _discard(store, scope, ids)
        raise not_found("dataset", dataset_id)
    return JSONResponse({"inserted": True, "datapoint_ids": ids})


async def _discard(store: Store, scope: Scope, ids: list[str]) -> None:
    async def delete(dp: str) -> None:
        await store.delete_record(scope, DATAPOINT, dp)

    await links.each(ids, delete)


async def _remove(request: Request, dataset_id: str, datapoint_id: str) -> Response:
    scope = await authenticate(request, write=False)
    store = store_of(request)
    dataset = await fetch(store, scope, DATASET, dataset_id)
    datapoint = await fetch(store, scope, DATAPOINT, datapoint_id)
    was_in: list[bool] = [False]

    def update(record: Record) -> RecordChange | None:
        was_in[0] = datapoint.id in dataset_datapoints(record)
        return links.removing(links.DATASET_LIST, [datapoint.id])(record)

    if await store.update_record(scope, DATASET, dataset.id, update) is None:
        raise not_found("dataset", dataset_id)
    await store.update_record(scope, DATAPOINT, datapoint.id, links.removing(links.DATAPOINT_LIST, [dataset.id]))
    if not was_in[0]:
        return JSONResponse({"dereferenced": False,
                             "message": f"datapoint {datapoint.id} is not in dataset {dataset.id}"})
    return JSONResponse({"dereferenced": True, "message": f"datapoint {datapoint.id} removed from dataset {dataset.id}"})


@router.delete("/v1/datasets/{dataset_id}/datapoints/{datapoint_id}", response_model=RemoveDatapointResponse,
               responses=DELETE_ERRORS, summary="Remove a datapoint from a dataset")
async def remove_datapoint(request: Request, dataset_id: str, datapoint_id: str) -> Response:
    """Take the datapoint out of the dataset (the datapoint itself stays)."""
    return await _remove(request, dataset_id, datapoint_id)


@router.delete("/v1/datasets/{dataset_id}/{datapoint_id}", response_model=RemoveDatapointResponse,
               responses=DELETE_ERRORS, summary="Remove a datapoint from a dataset (legacy path)")
async def remove_datapoint_legacy(request: Request, dataset_id: str, datapoint_id: str) -> Response:
    """Take the datapoint out of the dataset (the datapoint itself stays); what the SDK's
    ``datasets.remove_datapoint`` sends."""
    return await _remove(request, dataset_id, datapoint_id)

