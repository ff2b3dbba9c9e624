"""Request and response bodies of the metric definition routes (``/v1/metrics*``, not the
Prometheus ``/metrics``), as honeyhive 1.7.0 sends and reads them (its generated
``CreateMetricRequest``, ``LegacyUpdateMetricRequest``, ``MetricItem`` and ``MetricVersion``)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tracehive.experiments.fields import Id, JsonObject, Label, LenientBody, Name, OpenBody, Text
from tracehive.model.wire import ResponseBody


class SingleFilter(OpenBody):
    """Which events the metric runs on: ``{field, operator, value, type}``, as in event filters."""

    field: Label
    operator: Label
    value: Annotated[str, Field(max_length=1 << 16)] | float | bool | None
    type: Label


class MetricFilters(OpenBody):
    filterArray: Annotated[list[SingleFilter], Field(max_length=1000)]  # the wire's camelCase name


class MetricFields(LenientBody):
    """The optional part of a definition; the defaults answered when absent are in
    ``experiments.metrics.DEFAULTS``."""

    description: Text | None = None
    return_type: Label | None = Field(None, description="e.g. float, boolean, string, categorical; default float.")
    enabled_in_prod: bool | None = None
    sampling_percentage: Annotated[float, Field(ge=0, le=100)] | None = None
    model_provider: Label | None = None
    model_name: Label | None = None
    scale: int | None = None
    threshold: JsonObject | None = Field(None, description="e.g. {min, max} or {pass_when}.")
    categories: Annotated[list[Any], Field(max_length=1000)] | None = None
    needs_ground_truth: bool | None = None
    child_metrics: Annotated[list[Any], Field(max_length=1000)] | None = None
    filters: MetricFilters | None = None


class CreateMetricRequest(MetricFields):
    """``POST /v1/metrics``: ``criteria`` is the evaluator (Python source, an LLM prompt, ...)."""

    name: Name
    type: Label = Field(description="e.g. PYTHON, LLM, HUMAN, COMPOSITE.")
    criteria: Text


class UpdateMetricRequest(MetricFields):
    """``PUT /v1/metrics/{metric_id}``: the fields sent replace the stored ones."""

    name: Name | None = None
    type: Label | None = None
    criteria: Text | None = None


class LegacyUpdateMetricRequest(UpdateMetricRequest):
    """``PUT /v1/metrics`` (what the SDK's ``metrics.update`` sends): the id in the body."""

    id: Id


class CreateMetricVersionRequest(LenientBody):
    """``POST /v1/metrics/{metric_id}/versions``: a snapshot of a full definition."""

    message: Text
    content: CreateMetricRequest
    deploy_immediately: bool | None = Field(None, description="Also make it the live definition.")


# Responses -------------------------------------------------------------------------------------


class MetricItem(ResponseBody):
    id: str
    name: str
    type: str
    criteria: str
    description: str | None
    return_type: str
    enabled_in_prod: bool
    sampling_percentage: float
    model_provider: str | None = None
    model_name: str | None = None
    scale: int | None = None
    threshold: JsonObject | None = None
    categories: list[Any] | None = None
    needs_ground_truth: bool
    child_metrics: list[Any] | None = None
    filters: JsonObject = Field(description="{filterArray: [{field, operator, value, type}]}")
    created_at: str
    updated_at: str | None


class GetMetricsResponse(ResponseBody):
    metrics: list[MetricItem]


class CreateMetricResponse(ResponseBody):
    inserted: bool
    metric_id: str


class UpdateMetricResponse(ResponseBody):
    updated: bool


class DeleteMetricResponse(ResponseBody):
    deleted: bool


class MetricVersion(ResponseBody):
    name: str = Field(description="v1, v2, ... in creation order.")
    full_sha: str = Field(description="SHA-256 of the content, the message and the previous version's sha.")
    message: str
    date: str
    deployed: bool = Field(description="True for the version last deployed (at most one).")
    content: JsonObject


class MetricVersionsResponse(ResponseBody):
    success: bool
    data: list[MetricVersion]


class MetricVersionResponse(ResponseBody):
    success: bool
    data: MetricVersion
