"""Metric definition routes (``/v1/metrics*``; ``/metrics`` without ``/v1`` is Prometheus', in
``api.metrics``), as honeyhive 1.7.0's ``client.metrics`` and ``client.metric_versions`` call them
(experiments-wire section 8), legacy paths included: the SDK updates with ``PUT /v1/metrics`` (id
in the body), deletes with ``DELETE /v1/metrics?metric_id=`` and gets one with
``GET /v1/metrics?id=``.

Metrics are computed client-side by ``evaluate()``; these definitions are stored and listed, never
run (there is no ``/v1/metrics/run``). Every route takes a key that may read (ingestion keys get
403), writes included: each answers with stored data.
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
from tracehive.experiments.documents import (
    check_size,
    fetch,
    field_error,
    not_found,
    query_parameter,
    query_value,
    record_key,
    required_query,
    shown,
)
from tracehive.experiments.metric_definitions import (
    MAX_VERSIONS,
    changed_metric,
    deployed,
    find_version,
    metric_reply,
    new_metric,
    new_version,
    versions,
)
from tracehive.experiments.metric_models import (
    CreateMetricRequest,
    CreateMetricResponse,
    CreateMetricVersionRequest,
    DeleteMetricResponse,
    GetMetricsResponse,
    LegacyUpdateMetricRequest,
    MetricVersionResponse,
    MetricVersionsResponse,
    UpdateMetricRequest,
    UpdateMetricResponse,
)
from tracehive.model.ids import new_id
from tracehive.model.scope import Scope
from tracehive.model.times import now_ms
from tracehive.storage.records import Record, RecordChange, RecordKind

router = APIRouter(tags=["metric definitions"])

METRIC = RecordKind.METRIC
READ_ERRORS = errors(400, 401, 403, 404)
WRITE_ERRORS = errors(400, 401, 403, 404, 413, 415, 503)
DELETE_ERRORS = errors(400, 401, 403, 404, 503)


@router.get(
    "/v1/metrics", response_model=GetMetricsResponse, responses=errors(400, 401, 403),
    summary="List metric definitions",
    openapi_extra={"parameters": [
        query_parameter("type", "Only metrics of this type (e.g. PYTHON, LLM, HUMAN, COMPOSITE)."),
        query_parameter("id", "Only this metric (an empty list when the project has none with this id)."),
    ]},
)
async def get_metrics(request: Request) -> Response:
    """The project's metric definitions, oldest first."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    metric_type, metric_id = query_value(request, "type"), query_value(request, "id")
    if metric_id is not None:
        key = record_key(metric_id)
        found = None if key is None else await store.get_record(scope, METRIC, key)
        records = [found] if found is not None else []
    else:
        records = await store.list_records(scope, METRIC)
    if metric_type is not None:
        records = [r for r in records if r.body.get("type") == metric_type]
    return JSONResponse({"metrics": [metric_reply(r) for r in records]})


@router.post("/v1/metrics", response_model=CreateMetricResponse, responses=errors(400, 401, 403, 413, 415, 503),
             summary="Create a metric definition")
@request_body(CreateMetricRequest)
async def create_metric(request: Request) -> Response:
    """A new metric definition; fields not sent get the defaults ``MetricItem`` shows."""
    scope = await authenticate(request, write=False)
    body = validate(CreateMetricRequest, await read_json(request, settings_of(request)))
    document = new_metric(body)
    check_size(document, "the metric")
    metric_id = new_id()
    await store_of(request).create_record(scope, METRIC, metric_id, body.name, document)
    return JSONResponse({"inserted": True, "metric_id": metric_id})


async def _update(request: Request, scope: Scope, metric_id: str, body: UpdateMetricRequest) -> Response:
    store = store_of(request)
    stored = await fetch(store, scope, METRIC, metric_id)
    change = changed_metric(stored, body)
    if change is not None:
        check_size(change.body, "the metric")
    if await store.update_record(scope, METRIC, stored.id, lambda r: changed_metric(r, body)) is None:
        raise not_found("metric", metric_id)
    return JSONResponse({"updated": True})


@router.put("/v1/metrics", response_model=UpdateMetricResponse, responses=WRITE_ERRORS,
            summary="Update a metric definition (legacy path: the id in the body)")
@request_body(LegacyUpdateMetricRequest)
async def update_metric_legacy(request: Request) -> Response:
    """Replace the fields sent; what the SDK's ``metrics.update`` sends."""
    scope = await authenticate(request, write=False)
    body = validate(LegacyUpdateMetricRequest, await read_json(request, settings_of(request)))
    return await _update(request, scope, body.id, body)


@router.put("/v1/metrics/{metric_id}", response_model=UpdateMetricResponse, responses=WRITE_ERRORS,
            summary="Update a metric definition")
@request_body(UpdateMetricRequest)
async def update_metric(request: Request, metric_id: str) -> Response:
    """Replace the fields sent."""
    scope = await authenticate(request, write=False)
    body = validate(UpdateMetricRequest, await read_json(request, settings_of(request)))
    return await _update(request, scope, metric_id, body)


async def _delete(request: Request, scope: Scope, metric_id: str) -> Response:
    store = store_of(request)
    key = record_key(metric_id)
    if key is None or not await store.delete_record(scope, METRIC, key):
        raise not_found("metric", metric_id)
    return JSONResponse({"deleted": True})


@router.delete(
    "/v1/metrics", response_model=DeleteMetricResponse, responses=DELETE_ERRORS,
    summary="Delete a metric definition (legacy path: the id in the query)",
    openapi_extra={"parameters": [{**query_parameter("metric_id", "The metric to delete."), "required": True}]},
)
async def delete_metric_legacy(request: Request) -> Response:
    """Delete the metric definition; what the SDK's ``metrics.delete`` sends."""
    scope = await authenticate(request, write=False)
    return await _delete(request, scope, required_query(request, "metric_id"))


@router.delete("/v1/metrics/{metric_id}", response_model=DeleteMetricResponse, responses=DELETE_ERRORS,
               summary="Delete a metric definition")
async def delete_metric(request: Request, metric_id: str) -> Response:
    """Delete the metric definition."""
    scope = await authenticate(request, write=False)
    return await _delete(request, scope, metric_id)


# Versions --------------------------------------------------------------------------------------


@router.get("/v1/metrics/{metric_id}/versions", response_model=MetricVersionsResponse, responses=READ_ERRORS,
            summary="List a metric's versions")
async def get_metric_versions(request: Request, metric_id: str) -> Response:
    """The metric's versions, oldest first."""
    scope = await authenticate(request, write=False)
    record = await fetch(store_of(request), scope, METRIC, metric_id)
    return JSONResponse({"success": True, "data": versions(record)})


@router.post("/v1/metrics/{metric_id}/versions", response_model=MetricVersionResponse, responses=WRITE_ERRORS,
             summary="Create a metric version")
@request_body(CreateMetricVersionRequest)
async def create_metric_version(request: Request, metric_id: str) -> Response:
    """Snapshot a full definition as the next version (``v1``, ``v2``, ...); with
    ``deploy_immediately`` it also becomes the live definition."""
    scope = await authenticate(request, write=False)
    body = validate(CreateMetricVersionRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    stored = await fetch(store, scope, METRIC, metric_id)
    if len(versions(stored)) >= MAX_VERSIONS:
        raise field_error("content", f"metric {stored.id} already has {MAX_VERSIONS} versions")
    now = now_ms()
    check_size(new_version(stored, body.content, body.message, False, now).body, "the metric with this version")
    made: list[str] = []

    def update(record: Record) -> RecordChange | None:
        made.clear()
        if len(versions(record)) >= MAX_VERSIONS:
            return None
        made.append(f"v{len(versions(record)) + 1}")
        return new_version(record, body.content, body.message, bool(body.deploy_immediately), now)

    updated = await store.update_record(scope, METRIC, stored.id, update)
    if updated is None:
        raise not_found("metric", metric_id)
    version = find_version(updated, made[0]) if made else None
    if version is None:  # filled up by concurrent requests since it was read
        raise field_error("content", f"metric {stored.id} already has {MAX_VERSIONS} versions")
    return JSONResponse({"success": True, "data": version})


@router.post("/v1/metrics/{metric_id}/versions/{version_name}/deploy", response_model=MetricVersionResponse,
             responses=errors(400, 401, 403, 404, 503), summary="Deploy a metric version")
async def deploy_metric_version(request: Request, metric_id: str, version_name: str) -> Response:
    """Make the version's content the live definition; the version is then the one deployed."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    stored = await fetch(store, scope, METRIC, metric_id)
    if find_version(stored, version_name) is None:
        raise not_found(f"version {shown(version_name)} of metric", stored.id)

    def update(record: Record) -> RecordChange | None:
        return deployed(record, version_name) if find_version(record, version_name) is not None else None

    updated = await store.update_record(scope, METRIC, stored.id, update)
    version = None if updated is None else find_version(updated, version_name)
    if version is None or not version.get("deployed"):
        raise not_found(f"version {shown(version_name)} of metric", metric_id)
    return JSONResponse({"success": True, "data": version})
