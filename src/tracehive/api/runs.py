"""Experiment runs (``/v1/runs*``), as HoneyHive 1.7.0's ``evaluate()`` and its experiments
client call them: create, update (dicts merged), get, list, delete, the result and comparison
(``experiments.results`` / ``experiments.compare`` say what they compute), the run's metric
events, and the events of two runs side by side.

Every route needs a project key (ingestion keys get 403: the answers carry stored data). Runs
live in the store's control part (``RecordKind.RUN``); their events are the project's events
whose ``metadata.run_id`` is the run's id.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.bodies import read_json, validate
from tracehive.api.context import settings_of, store_of
from tracehive.api.documented import errors
from tracehive.api.read_gate import heavy_read
from tracehive.api.responses import JSONResponse
from tracehive.experiments.compare import compare
from tracehive.experiments.results import Datapoint, datapoints_of, parse_aggregate, rules_for, run_result
from tracehive.experiments.run_models import (
    CompareEventsResponse,
    CompareResponse,
    CreateRunRequest,
    DeleteRunResponse,
    ListRunsResponse,
    ResultResponse,
    RunMetricsResponse,
    RunResponse,
    UpdateRunRequest,
)
from tracehive.experiments.run_models import CreateRunResponse as CreateRunReply
from tracehive.experiments.runs import new_run, run_object, run_update
from tracehive.ingest.journal_applier import wait_applied
from tracehive.model.errors import Conflict, NotFound, StoreUnavailable, ValidationFailed
from tracehive.model.event import Event
from tracehive.model.ids import is_uuid, new_id, normalize_id
from tracehive.model.scope import Scope
from tracehive.query.event_query import EventQuery
from tracehive.query.filters import parse_filters
from tracehive.query.values import parse_positive_int
from tracehive.storage.base import Store
from tracehive.storage.records import Record, RecordKind

router = APIRouter(tags=["experiments"])

RUN = RecordKind.RUN
# A run id is the client's (the SDK sends a UUIDv4, or evaluate(run_id=...)): any short printable id.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# How long /result waits for OTLP spans acknowledged before it was asked to be indexed (journal
# mode acks before indexing; the SDK asks ~0.1 s after its last export).
JOURNAL_WAIT_SECONDS = 10.0
MAX_LIST_LIMIT = 1000


def run_id_of(value: Any, field: str = "run_id") -> str:
    if is_uuid(value):
        return normalize_id(value)
    if isinstance(value, str) and _RUN_ID.fullmatch(value):
        return value
    raise ValidationFailed(f"{field}: must be a UUID or an id of letters, digits, '.', '_', ':' or '-' "
                           "(at most 64)", details=[{"field": field, "message": "must be a run id"}])


async def stored_run(store: Store, scope: Scope, run_id: str, field: str = "run_id") -> Record:
    record = await store.get_record(scope, RUN, run_id)
    if record is None:
        raise NotFound(f"no run with id {run_id} in this project", details=[{"field": field, "message": "not found"}])
    return record


async def dataset_name(store: Store, scope: Scope, record: Record) -> str | None:
    dataset_id = record.body.get("dataset_id")
    if not isinstance(dataset_id, str):
        return None
    dataset = await store.get_record(scope, RecordKind.DATASET, dataset_id)
    return dataset.name if dataset is not None else None


async def answer_run(store: Store, scope: Scope, record: Record) -> dict[str, Any]:
    return run_object(record, scope, await dataset_name(store, scope, record))


# ------------------------------------------------------------------------------------------------
# CRUD
# ------------------------------------------------------------------------------------------------


@router.post("/v1/runs", response_model=CreateRunReply, responses=errors(400, 401, 403, 409),
             summary="Create a run")
async def create_run(request: Request) -> Response:
    """Create an experiment run (status ``pending`` unless sent). Answers 200 with ``run_id`` and
    the run object; the same ``run_id`` twice is a 409."""
    scope = await authenticate(request, write=False)
    body = validate(CreateRunRequest, await read_json(request, settings_of(request)))
    run_id = run_id_of(body.run_id) if body.run_id is not None else new_id()
    store = store_of(request)
    record = await store.create_record(scope, RUN, run_id, body.name, new_run(body))
    if record is None:
        raise Conflict(f"a run with id {run_id} already exists in this project; update it with PUT /v1/runs/{run_id}")
    return JSONResponse({"run_id": run_id, "evaluation": await answer_run(store, scope, record)})


@router.put("/v1/runs/{run_id}", response_model=RunResponse, responses=errors(400, 401, 403, 404),
            summary="Update a run")
async def update_run(request: Request, run_id: str) -> Response:
    """Update a run: ``metadata``, ``configuration``, ``results`` and ``passing_ranges`` are merged
    into the stored ones; the other fields sent replace theirs."""
    scope = await authenticate(request, write=False)
    run_id = run_id_of(run_id)
    body = validate(UpdateRunRequest, await read_json(request, settings_of(request)))
    store = store_of(request)
    record = await store.update_record(scope, RUN, run_id, run_update(body))
    if record is None:
        raise NotFound(f"no run with id {run_id} in this project", details=[{"field": "run_id", "message": "not found"}])
    return JSONResponse({"evaluation": await answer_run(store, scope, record)})


@router.get("/v1/runs/compare/events", response_model=CompareEventsResponse, responses=errors(400, 401, 403, 404),
            summary="Two runs' events side by side")
async def compare_run_events(request: Request) -> Response:
    """Per datapoint both runs have, the event of each (``event_name``/``event_type`` pick which;
    by default the one carrying the metrics), paged (``limit``, ``page``)."""
    scope = await authenticate(request, write=False)
    params = request.query_params
    first = run_id_of(params.get("run_id_1"), "run_id_1") if params.get("run_id_1") else _missing("run_id_1")
    second = run_id_of(params.get("run_id_2"), "run_id_2") if params.get("run_id_2") else _missing("run_id_2")
    limit = parse_positive_int(params.get("limit"), "limit", default=100, maximum=MAX_LIST_LIMIT, clamp=True)
    page = parse_positive_int(params.get("page"), "page", default=1)
    store = store_of(request)
    await stored_run(store, scope, first, "run_id_1")
    await stored_run(store, scope, second, "run_id_2")
    await _acknowledged_spans_indexed(request)
    events_1 = await heavy_read(request, scope, run_events(store, scope, first))
    events_2 = await heavy_read(request, scope, run_events(store, scope, second))
    picked_1 = _pick(events_1, params.get("event_name"), params.get("event_type"))
    picked_2 = _pick(events_2, params.get("event_name"), params.get("event_type"))
    # In the first run's event order; datapoints whose events started together, by id.
    common = sorted((dp for dp in picked_1 if dp in picked_2), key=lambda dp: (picked_1[dp].start_time, dp))
    rows = [{"datapoint_id": dp, "event_1": picked_1[dp].to_read_dict(), "event_2": picked_2[dp].to_read_dict()}
            for dp in common[(page - 1) * limit: page * limit]]
    return JSONResponse({"events": rows, "totalEvents": len(common)})


def _missing(field: str) -> str:
    raise ValidationFailed(f"{field}: required", details=[{"field": field, "message": "field required"}])


def _pick(events: Sequence[Event], event_name: str | None, event_type: str | None) -> dict[str, Event]:
    """datapoint id -> the first (oldest) event of that datapoint matching the name/type, or, with
    neither given, carrying metrics."""
    picked: dict[str, Event] = {}
    datapoint_of = {e.session_id: e.metadata.get("datapoint_id") for e in events if e.is_session}
    for event in sorted(events, key=lambda e: (e.start_time, e.event_id)):
        if event.is_session and event_type != "session":
            continue
        if event_name is not None and event.event_name != event_name:
            continue
        if event_type is not None and event.event_type != event_type:
            continue
        if event_name is None and event_type is None and not event.metrics:
            continue
        dp = event.metadata.get("datapoint_id") or datapoint_of.get(event.session_id) or event.session_id
        if isinstance(dp, str):
            picked.setdefault(dp, event)
    return picked


@router.get("/v1/runs", response_model=ListRunsResponse, responses=errors(400, 401, 403), summary="List runs")
async def list_runs(request: Request) -> Response:
    """The project's runs, newest first by default, filtered by ``dataset_id``, ``run_ids``
    (``run_ids[]=a&run_ids[]=b`` or repeated ``run_ids``), ``name`` (contains, any case) and
    ``status``, sorted by ``sort_by`` (``created_at``, ``updated_at`` or ``name``) and
    ``sort_order`` (``asc``/``desc``), paged by ``page`` and ``limit``."""
    scope = await authenticate(request, write=False)
    params = request.query_params
    limit = parse_positive_int(params.get("limit"), "limit", default=100, maximum=MAX_LIST_LIMIT, clamp=True)
    page = parse_positive_int(params.get("page"), "page", default=1)
    ids = [run_id_of(v, "run_ids") for v in [*params.getlist("run_ids[]"), *params.getlist("run_ids")]]
    sort_by = params.get("sort_by") or "created_at"
    if sort_by not in ("created_at", "updated_at", "name"):
        raise ValidationFailed("sort_by: must be created_at, updated_at or name",
                               details=[{"field": "sort_by", "message": "must be created_at, updated_at or name"}])
    order = (params.get("sort_order") or "desc").lower()
    if order not in ("asc", "desc"):
        raise ValidationFailed("sort_order: must be asc or desc", details=[{"field": "sort_order", "message": "must be asc or desc"}])
    store = store_of(request)
    records = await heavy_read(request, scope, store.list_records(scope, RUN, ids=ids or None))
    everything = len(records)
    name, status, dataset = params.get("name"), params.get("status"), params.get("dataset_id")
    if name:
        records = [r for r in records if name.lower() in (r.name or "").lower()]
    if status:
        records = [r for r in records if r.body.get("status") == status]
    if dataset:
        records = [r for r in records if dataset in (r.body.get("dataset_id"), (r.body.get("metadata") or {}).get("offline_dataset_id"))]
    key = {"created_at": lambda r: (r.created_at, r.id), "updated_at": lambda r: (r.updated_at, r.id),
           "name": lambda r: ((r.name or "").lower(), r.id)}[sort_by]
    records.sort(key=key, reverse=order == "desc")
    total = len(records)
    shown = records[(page - 1) * limit: page * limit]
    names = sorted({m for r in shown for m in (r.body.get("results") or {}).get("metric_names", [])
                    if isinstance(m, str)})
    pages = math.ceil(total / limit) if total else 0
    return JSONResponse({
        "evaluations": [await answer_run(store, scope, r) for r in shown],
        "pagination": {"page": page, "limit": limit, "total": total, "total_unfiltered": everything,
                       "total_pages": pages, "has_next": page < pages, "has_prev": page > 1},
        "metrics": names,
    })


@router.get("/v1/runs/{run_id}", response_model=RunResponse, responses=errors(400, 401, 403, 404), summary="Get a run")
async def get_run(request: Request, run_id: str) -> Response:
    scope = await authenticate(request, write=False)
    store = store_of(request)
    record = await stored_run(store, scope, run_id_of(run_id))
    return JSONResponse({"evaluation": await answer_run(store, scope, record)})


@router.delete("/v1/runs/{run_id}", response_model=DeleteRunResponse, responses=errors(400, 401, 403, 404),
               summary="Delete a run")
async def delete_run(request: Request, run_id: str) -> Response:
    """Delete the run (its events stay: they are the project's traces)."""
    scope = await authenticate(request, write=False)
    run_id = run_id_of(run_id)
    if not await store_of(request).delete_record(scope, RUN, run_id):
        raise NotFound(f"no run with id {run_id} in this project", details=[{"field": "run_id", "message": "not found"}])
    return JSONResponse({"id": run_id, "deleted": True})


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------


async def run_events(store: Store, scope: Scope, run_id: str) -> list[Event]:
    query = EventQuery(conditions=parse_filters(
        [{"field": "metadata.run_id", "operator": "is", "value": run_id, "type": "string"}]))
    events: list[Event] = []
    async for chunk in store.iter_events(scope, query):
        events.extend(chunk)
    return events


async def _acknowledged_spans_indexed(request: Request) -> None:
    """In OTLP journal mode an export is acknowledged before it is indexed: wait until every span
    acknowledged before this request is readable (read-your-writes for ``/result``)."""
    journal = getattr(request.app.state, "otlp_journal", None)
    if journal is None:
        return
    if not await wait_applied(journal, JOURNAL_WAIT_SECONDS):
        raise StoreUnavailable("spans acknowledged before this request are still being indexed; retry shortly")


async def _judged(request: Request, scope: Scope, record: Record) -> tuple[list[Datapoint], dict[str, Any]]:
    """The run's datapoints (judged) and the metric types by name."""
    store = store_of(request)
    events, definitions = await asyncio.gather(
        heavy_read(request, scope, run_events(store, scope, record.id)),
        store.list_records(scope, RecordKind.METRIC),
    )
    named = [(d.name, d.body) for d in definitions if d.name]
    rules = rules_for(record.body.get("passing_ranges") or {}, named)
    types = {name: str(body.get("type")) for name, body in named if isinstance(body.get("type"), str)}
    return datapoints_of(record.body.get("event_ids") or [], events, rules), {"rules": rules, "types": types}


async def _result(request: Request, run_id: str) -> Response:
    scope = await authenticate(request, write=False)
    function = parse_aggregate(request.query_params.get("aggregate_function"))
    store = store_of(request)
    record = await stored_run(store, scope, run_id_of(run_id))
    await _acknowledged_spans_indexed(request)
    points, judged = await _judged(request, scope, record)
    body = run_result(str(record.body.get("status") or "pending"), points, judged["rules"], judged["types"], function)
    body["run_object"] = await answer_run(store, scope, record)
    return JSONResponse(body)


@router.get("/v1/runs/{run_id}/result", response_model=ResultResponse, responses=errors(400, 401, 403, 404, 503),
            summary="A run's result")
async def get_run_result(request: Request, run_id: str) -> Response:
    """The run's metrics aggregated (``aggregate_function``: average, sum, min, max, median, p90,
    p95, p99, count) per metric and event, every datapoint's values, and pass/fail decided here:
    see the README's "Experiments" section."""
    return await _result(request, run_id)


@router.get("/v1/runs/{run_id}/summary", response_model=ResultResponse, responses=errors(400, 401, 403, 404, 503),
            summary="A run's result (newer path)")
async def get_run_summary(request: Request, run_id: str) -> Response:
    """The same answer as ``/v1/runs/{run_id}/result``."""
    return await _result(request, run_id)


@router.get("/v1/runs/{run_id}/metrics", response_model=RunMetricsResponse, responses=errors(400, 401, 403, 404, 503),
            summary="A run's metric events")
async def get_run_metrics(request: Request, run_id: str) -> Response:
    """Every event of the run that carries metrics: name, type, session, datapoint id, metrics."""
    scope = await authenticate(request, write=False)
    store = store_of(request)
    record = await stored_run(store, scope, run_id_of(run_id))
    await _acknowledged_spans_indexed(request)
    events = await heavy_read(request, scope, run_events(store, scope, record.id))
    datapoint_of = {e.session_id: e.metadata.get("datapoint_id") for e in events if e.is_session}
    rows = [{"event_name": e.event_name, "event_type": e.event_type, "session_id": e.session_id,
             "metadata": {"datapoint_id": e.metadata.get("datapoint_id") or datapoint_of.get(e.session_id)},
             "metrics": e.metrics}
            for e in sorted(events, key=lambda e: (e.start_time, e.event_id)) if e.metrics]
    return JSONResponse({"events": rows, "totalEvents": len(rows)})


async def _compare(request: Request, new_run_id: str, old_run_id: str) -> Response:
    scope = await authenticate(request, write=False)
    function = parse_aggregate(request.query_params.get("aggregate_function"))
    store = store_of(request)
    new = await stored_run(store, scope, run_id_of(new_run_id, "new_run_id"), "new_run_id")
    old = await stored_run(store, scope, run_id_of(old_run_id, "old_run_id"), "old_run_id")
    await _acknowledged_spans_indexed(request)
    new_points, new_judged = await _judged(request, scope, new)
    old_points, _ = await _judged(request, scope, old)
    body = compare(new_points, old_points, function, new_judged["types"])
    body["old_run"] = await answer_run(store, scope, old)
    body["new_run"] = await answer_run(store, scope, new)
    return JSONResponse(body)


@router.get("/v1/runs/{new_run_id}/compare-with/{old_run_id}", response_model=CompareResponse,
            responses=errors(400, 401, 403, 404, 503), summary="Compare two runs")
async def compare_runs(request: Request, new_run_id: str, old_run_id: str) -> Response:
    """Per metric, both runs' aggregates and, over the datapoints both have, which improved,
    degraded or stayed the same (higher is better)."""
    return await _compare(request, new_run_id, old_run_id)


@router.get("/v1/runs/{new_run_id}/compare/{old_run_id}", response_model=CompareResponse,
            responses=errors(400, 401, 403, 404, 503), summary="Compare two runs (newer path)")
async def compare_runs_v2(request: Request, new_run_id: str, old_run_id: str) -> Response:
    """The same answer as ``/v1/runs/{new_run_id}/compare-with/{old_run_id}``."""
    return await _compare(request, new_run_id, old_run_id)
