"""Request and response bodies of the runs routes (``/v1/runs*``), as HoneyHive 1.7.0 sends and
reads them (its generated ``PostExperimentRunRequest``, ``ExperimentRunObject``, ...).

Requests are lenient about keys we do not know (the SDK's models allow extras) and strict about
the types of those we do: a wrong type is a 400 naming the field, never a 500.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tracehive.model.wire import MAX_ID_LENGTH, MAX_NAME_LENGTH, ResponseBody

RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]
Id = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
Name = Annotated[str, Field(max_length=MAX_NAME_LENGTH)]
# Run ids listed per run (its sessions, datapoints): bounded so a run stays a sane document.
MAX_RUN_IDS = 100_000


class LenientBody(BaseModel):
    model_config = ConfigDict(extra="ignore")


class RunFields(LenientBody):
    """What both create and update may carry."""

    name: Name | None = None
    description: Annotated[str, Field(max_length=1 << 16)] | None = None
    status: RunStatus | None = None
    metadata: dict[str, Any] | None = None
    results: dict[str, Any] | None = None
    event_ids: Annotated[list[Any], Field(max_length=MAX_RUN_IDS)] | None = None
    configuration: dict[str, Any] | None = None
    evaluators: list[Any] | None = None
    session_ids: Annotated[list[Any], Field(max_length=MAX_RUN_IDS)] | None = None
    datapoint_ids: Annotated[list[Id], Field(max_length=MAX_RUN_IDS)] | None = None
    passing_ranges: dict[str, Any] | None = None


class CreateRunRequest(RunFields):
    """``POST /v1/runs``. ``run_id`` is the client's (the SDK makes a UUIDv4); a new one when absent."""

    run_id: Annotated[str, Field(json_schema_extra={"format": "uuid"})] | None = None
    dataset_id: Id | None = None


class UpdateRunRequest(RunFields):
    """``PUT /v1/runs/{run_id}``: metadata, configuration, results and passing ranges are merged
    into the stored ones (the SDK resends only part of its metadata); lists replace."""


class RunObject(ResponseBody):
    id: str
    run_id: str
    name: str | None = None
    description: str | None = None
    status: str | None = None
    metadata: dict[str, Any]
    results: dict[str, Any]
    event_ids: list[str]
    configuration: dict[str, Any]
    is_active: bool
    created_at: str
    updated_at: str | None = None
    scope_type: str
    scope_id: str
    dataset_id: str | None = None
    dataset_name: str | None = None


class CreateRunResponse(ResponseBody):
    run_id: str
    evaluation: RunObject


class RunResponse(ResponseBody):
    evaluation: RunObject


class Pagination(ResponseBody):
    page: int
    limit: int
    total: int
    total_unfiltered: int
    total_pages: int
    has_next: bool
    has_prev: bool


class ListRunsResponse(ResponseBody):
    evaluations: list[RunObject]
    pagination: Pagination
    metrics: list[str] = Field(description="Names of the metrics found on the listed runs' results.")


class DeleteRunResponse(ResponseBody):
    id: str
    deleted: bool


class ResultResponse(ResponseBody):
    """``GET /v1/runs/{run_id}/result``: see ``experiments.results`` for what it computes."""

    status: str
    success: bool
    passed: list[str]
    failed: list[str]
    metrics: dict[str, Any]
    datapoints: list[dict[str, Any]]
    event_details: list[dict[str, Any]]
    run_object: RunObject


class CompareResponse(ResponseBody):
    metrics: list[dict[str, Any]]
    commonDatapoints: list[str]  # noqa: N815 - the wire's name
    event_details: list[dict[str, Any]]
    old_run: RunObject
    new_run: RunObject


class CompareEventsResponse(ResponseBody):
    events: list[dict[str, Any]]
    totalEvents: int  # noqa: N815 - the wire's name


class RunMetricsResponse(ResponseBody):
    events: list[dict[str, Any]]
    totalEvents: int  # noqa: N815 - the wire's name
