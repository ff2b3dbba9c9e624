"""Request and response bodies of the datapoint routes (``/v1/datapoints*``), as honeyhive 1.7.0
sends and reads them (its generated ``CreateDatapointRequest``, ``UpdateDatapointRequest`` and
``Datapoint``, whose ``ground_truth``, ``metadata`` and ``linked_event`` keys are required even
when null: the SDK's ``evaluate()`` fails on a datapoint without them)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from tracehive.experiments.fields import Id, JsonObject, Label, LenientBody
from tracehive.model.wire import ResponseBody

History = Annotated[list[JsonObject], Field(max_length=100_000, description="Chat messages, e.g. {role, content}.")]
LinkedDatasets = Annotated[list[Id], Field(max_length=1000)]


class CreateDatapointRequest(LenientBody):
    """``POST /v1/datapoints``: ``inputs`` is required (it is what ``evaluate()`` feeds the function)."""

    inputs: JsonObject
    history: History | None = None
    ground_truth: JsonObject | None = None
    metadata: JsonObject | None = None
    linked_event: Label | None = Field(None, description="The id of the event the datapoint was made from.")
    linked_datasets: LinkedDatasets | None = Field(None, description="Datasets the datapoint is appended to.")


class UpdateDatapointRequest(LenientBody):
    """``PUT /v1/datapoints/{datapoint_id}``: the fields sent replace the stored ones (null keeps
    them); ``linked_datasets`` moves the datapoint in and out of datasets."""

    inputs: JsonObject | None = None
    history: History | None = None
    ground_truth: JsonObject | None = None
    metadata: JsonObject | None = None
    linked_event: Label | None = None
    linked_datasets: LinkedDatasets | None = None


# Responses -------------------------------------------------------------------------------------


class Datapoint(ResponseBody):
    id: str
    inputs: JsonObject
    history: list[JsonObject]
    ground_truth: JsonObject | None
    metadata: JsonObject | None
    linked_event: str | None
    linked_datasets: list[str] = Field(description="The datasets the datapoint is in.")
    created_at: str
    updated_at: str | None = None


class GetDatapointsResponse(ResponseBody):
    datapoints: list[Datapoint]


class GetDatapointResponse(ResponseBody):
    datapoint: list[Datapoint] = Field(description="A one-element list (the SDK reads it so).")


class InsertedIds(ResponseBody):
    insertedIds: list[str]  # the wire's camelCase name


class CreateDatapointResponse(ResponseBody):
    inserted: bool
    result: InsertedIds


class ModifiedCount(ResponseBody):
    modifiedCount: int  # the wire's camelCase name


class UpdateDatapointResponse(ResponseBody):
    updated: bool
    result: ModifiedCount


class DeleteDatapointResponse(ResponseBody):
    deleted: bool
