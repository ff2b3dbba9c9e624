"""The synchronous tracehive client."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from tracehive.client import _base as b
from tracehive.client import _experiments as ex
from tracehive.client import _ops as ops
from tracehive.client._ops import SearchResult
from tracehive.client.errors import ApiError, NetworkError
from tracehive.experiments.datapoint_models import (
    CreateDatapointRequest,
    CreateDatapointResponse,
    Datapoint,
    DeleteDatapointResponse,
    UpdateDatapointRequest,
    UpdateDatapointResponse,
)
from tracehive.experiments.dataset_models import (
    AddDatapointsResponse,
    CreateDatasetRequest,
    CreateDatasetResponse,
    Dataset,
    DeleteDatasetResponse,
    RemoveDatapointResponse,
    UpdateDatasetRequest,
)
from tracehive.experiments.run_models import (
    CompareEventsResponse,
    CompareResponse,
    CreateRunRequest,
    DeleteRunResponse,
    ListRunsResponse,
    ResultResponse,
    RunMetricsResponse,
    RunObject,
    UpdateRunRequest,
)
from tracehive.model.wire import (
    DeleteResponse,
    EventRecord,
    PostEventBatchResponse,
    PostEventRequest,
    PostEventResponse,
    SessionTreeNode,
    StartSessionRequest,
    SuccessResponse,
    UpdateEventRequest,
)

T = TypeVar("T")


class Client:
    """A client for a tracehive server (the HoneyHive data-plane API).

    ``api_key`` defaults to ``TRACEHIVE_API_KEY`` or ``HH_API_KEY``; ``base_url`` to ``TRACEHIVE_URL``
    or ``HH_API_URL``, else ``http://127.0.0.1:8520``. Connection errors, 408, 429 and 5xx are
    retried up to ``max_retries`` times with exponential backoff and jitter (honouring Retry-After).

    Namespaces: ``sessions``, ``events``, and for experiments ``datasets``, ``datapoints`` and ``runs``.
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = b.DEFAULT_TIMEOUT,
        max_retries: int = b.DEFAULT_MAX_RETRIES,
    ) -> None:
        self.api_key, self.base_url = b.resolve_config(api_key, base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        self.sessions = Sessions(self)
        self.events = Events(self)
        self.datasets = Datasets(self)
        self.datapoints = Datapoints(self)
        self.runs = Runs(self)

    def close(self) -> None:
        """Close the underlying connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _send(self, op: ops.Op[T]) -> T:
        attempt = 0
        while True:
            try:
                response = self._http.request(op.method, op.path, json=op.body, params=op.params)
            except httpx.TransportError as exc:
                delay = b.retry_delay(attempt, self.max_retries, None, {})
                if delay is None:
                    raise NetworkError(f"{op.method} {op.path}: {exc!r}") from exc
            else:
                delay = b.retry_delay(attempt, self.max_retries, response.status_code, response.headers)
                if delay is None:
                    return op.parse(b.answer(response.status_code, response.content))
            time.sleep(delay)
            attempt += 1


class Sessions:
    """``client.sessions``: start, add events to, read and delete sessions."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, request: StartSessionRequest | Mapping[str, Any] | None = None, **fields: Any) -> EventRecord:
        """Start a session (a ``session_id`` is generated when absent) and return the session event."""
        return self._c._send(ops.session_create(request, fields))

    def create_event_batch(
        self, session_id: str, events: Sequence[PostEventRequest | Mapping[str, Any]]
    ) -> PostEventBatchResponse:
        """Store ``events`` in session ``session_id`` atomically; returns their ids."""
        return self._c._send(ops.session_event_batch(session_id, events))

    def get(self, session_id: str) -> SessionTreeNode:
        """The session as the root of its event tree."""
        return self._c._send(ops.session_get(session_id))

    def delete(self, session_id: str) -> DeleteResponse:
        """Delete the session and all its events."""
        return self._c._send(ops.session_delete(session_id))


class Events:
    """``client.events``: create, read, update, delete and search events."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, request: PostEventRequest | Mapping[str, Any] | None = None, **fields: Any) -> PostEventResponse:
        """Create one event (``event_type`` and ``inputs`` required); ids are generated when absent."""
        return self._c._send(ops.event_create(request, fields))

    def create_batch(
        self,
        events: Sequence[PostEventRequest | Mapping[str, Any]],
        single_session: bool = False,
        session_properties: Mapping[str, Any] | None = None,
    ) -> PostEventBatchResponse:
        """Create many events in one atomic write; with ``single_session`` they share a new session."""
        return self._c._send(ops.event_batch(events, single_session, session_properties))

    def get(self, event_id: str) -> EventRecord:
        """One event by id."""
        return self._c._send(ops.event_get(event_id))

    def update(
        self, event_id: str, request: UpdateEventRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> SuccessResponse:
        """Merge metadata/feedback/metrics/config/user_properties, replace outputs, set times."""
        return self._c._send(ops.event_update(event_id, request, fields))

    def delete(self, event_id: str) -> DeleteResponse:
        """Delete one event."""
        return self._c._send(ops.event_delete(event_id))

    def search(
        self,
        request: Mapping[str, Any] | None = None,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        date_range: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page: int | None = None,
        evaluation_id: str | None = None,
    ) -> SearchResult:
        """One page of matching events, newest first, with ``count`` = total matches.

        ``filters`` are ``{"field", "operator", "value"}`` objects; ``date_range`` is
        ``{"start_time": iso, "end_time": iso}`` (inclusive); ``limit`` is 1..1000."""
        return self._c._send(ops.event_search(request, filters, date_range, limit, page, evaluation_id))

    def iter(
        self,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        date_range: Mapping[str, Any] | None = None,
        page_size: int = 100,
        evaluation_id: str | None = None,
    ) -> Iterator[EventRecord]:
        """Every matching event, newest first, fetching ``page_size`` at a time."""
        page, seen = 1, 0
        while True:
            result = self.search(filters=filters, date_range=date_range, limit=page_size, page=page,
                                 evaluation_id=evaluation_id)
            yield from result.events
            seen += len(result.events)
            if not ops.pages_left(result, seen):
                return
            page += 1


class Datasets:
    """``client.datasets``: create, list, read, update and delete datasets, and fill them from rows."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self, request: CreateDatasetRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> CreateDatasetResponse:
        """Create a dataset (``name``, ``description``, ``datapoints``: ids of existing datapoints);
        its id is ``.result.insertedId``."""
        return self._c._send(ex.dataset_create(request, fields))

    def list(self, *, dataset_id: str | None = None, name: str | None = None) -> builtins.list[Dataset]:
        """The project's datasets, oldest first, optionally only this id and/or this exact name."""
        return self._c._send(ex.dataset_list(dataset_id, name))

    def get(self, dataset_id: str) -> Dataset:
        """One dataset, with its ordered datapoint ids."""
        return self._c._send(ex.dataset_get(dataset_id))

    def update(
        self, dataset_id: str, request: UpdateDatasetRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> Dataset:
        """Replace the ``name``, ``description`` and/or ``datapoints`` sent; returns the dataset."""
        return self._c._send(ex.dataset_update(dataset_id, request, fields))

    def delete(self, dataset_id: str) -> DeleteDatasetResponse:
        """Delete the dataset (its datapoints stay, unlinked from it)."""
        return self._c._send(ex.dataset_delete(dataset_id))

    def add_datapoints(
        self, dataset_id: str, data: Sequence[Mapping[str, Any]], mapping: Mapping[str, Any]
    ) -> AddDatapointsResponse:
        """One new datapoint per row, appended to the dataset; ``mapping`` names the columns that
        become ``inputs``, ``ground_truth`` and ``history`` (the rest go to ``metadata``)."""
        return self._c._send(ex.dataset_add_datapoints(dataset_id, data, mapping))

    def remove_datapoint(self, dataset_id: str, datapoint_id: str) -> RemoveDatapointResponse:
        """Take a datapoint out of the dataset (the datapoint itself stays)."""
        return self._c._send(ex.dataset_remove_datapoint(dataset_id, datapoint_id))


class Datapoints:
    """``client.datapoints``: create, list, read, update and delete datapoints."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(
        self, request: CreateDatapointRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> CreateDatapointResponse:
        """Create a datapoint (``inputs`` required; ``linked_datasets`` appends it to those
        datasets); its id is ``.result.insertedIds[0]``."""
        return self._c._send(ex.datapoint_create(request, fields))

    def list(
        self, *, datapoint_ids: Sequence[str] | None = None, dataset_name: str | None = None
    ) -> builtins.list[Datapoint]:
        """The project's datapoints (oldest first), or these ids (in this order), or those of the
        datasets with this name."""
        return self._c._send(ex.datapoint_list(datapoint_ids, dataset_name))

    def get(self, datapoint_id: str) -> Datapoint:
        """One datapoint."""
        return self._c._send(ex.datapoint_get(datapoint_id))

    def update(
        self, datapoint_id: str, request: UpdateDatapointRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> UpdateDatapointResponse:
        """Replace the fields sent; ``linked_datasets`` moves the datapoint between datasets."""
        return self._c._send(ex.datapoint_update(datapoint_id, request, fields))

    def delete(self, datapoint_id: str) -> DeleteDatapointResponse:
        """Delete the datapoint and take it out of every dataset."""
        return self._c._send(ex.datapoint_delete(datapoint_id))


class Runs:
    """``client.runs``: experiment runs, their results and comparisons."""

    def __init__(self, client: Client) -> None:
        self._c = client

    def create(self, request: CreateRunRequest | Mapping[str, Any] | None = None, **fields: Any) -> RunObject:
        """Create a run (a ``run_id`` is generated when absent, so a retried create cannot make a
        second run) and return it."""
        op, made = ex.run_create(request, fields)
        try:
            return self._c._send(op)
        except ApiError as exc:
            if made is None or exc.status != 409:
                raise
        return self._c._send(ex.run_get(made))  # an earlier attempt was stored; its answer was lost

    def list(
        self,
        *,
        dataset_id: str | None = None,
        run_ids: Sequence[str] | None = None,
        name: str | None = None,
        status: str | None = None,
        sort_by: str | None = None,
        sort_order: str | None = None,
        page: int | None = None,
        limit: int | None = None,
    ) -> ListRunsResponse:
        """One page of runs (``evaluations``, ``pagination``), newest first unless ``sort_by``
        (created_at, updated_at, name) and ``sort_order`` (asc, desc) say otherwise; ``name``
        matches a part of the name, any case."""
        return self._c._send(ex.run_list(dataset_id, run_ids, name, status, sort_by, sort_order, page, limit))

    def get(self, run_id: str) -> RunObject:
        """One run."""
        return self._c._send(ex.run_get(run_id))

    def update(
        self, run_id: str, request: UpdateRunRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> RunObject:
        """Merge ``metadata``, ``configuration``, ``results`` and ``passing_ranges``; replace the
        other fields sent (``status``, ``event_ids``...). Returns the run."""
        return self._c._send(ex.run_update(run_id, request, fields))

    def delete(self, run_id: str) -> DeleteRunResponse:
        """Delete the run (its events stay)."""
        return self._c._send(ex.run_delete(run_id))

    def result(self, run_id: str, aggregate_function: str = ex.DEFAULT_AGGREGATE) -> ResultResponse:
        """The run's metrics aggregated per metric and event (``aggregate_function``: average, sum,
        min, max, median, p90, p95, p99, count), each datapoint's values, passed and failed."""
        return self._c._send(ex.run_result(run_id, aggregate_function))

    def compare(
        self, new_run_id: str, old_run_id: str, aggregate_function: str = ex.DEFAULT_AGGREGATE
    ) -> CompareResponse:
        """Per metric, both runs' aggregates and which common datapoints improved or degraded."""
        return self._c._send(ex.run_compare(new_run_id, old_run_id, aggregate_function))

    def compare_events(
        self,
        run_id_1: str,
        run_id_2: str,
        *,
        event_name: str | None = None,
        event_type: str | None = None,
        limit: int | None = None,
        page: int | None = None,
    ) -> CompareEventsResponse:
        """Per datapoint both runs have, each run's event (by default the one carrying metrics;
        ``event_name``/``event_type`` pick another), paged."""
        return self._c._send(ex.run_compare_events(run_id_1, run_id_2, event_name, event_type, limit, page))

    def metrics(self, run_id: str) -> RunMetricsResponse:
        """Every event of the run that carries metrics, with its datapoint id."""
        return self._c._send(ex.run_metrics(run_id))
