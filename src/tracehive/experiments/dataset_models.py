"""Request and response bodies of the dataset routes (``/v1/datasets*``), as honeyhive 1.7.0 sends
and reads them (its generated ``CreateDatasetRequest``, ``LegacyUpdateDatasetRequest``,
``AddDatapointsToDatasetRequest``, ``Dataset``...)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field

from tracehive.experiments.fields import (
    MAX_DATASET_DATAPOINTS,
    Id,
    IdList,
    Label,
    LenientBody,
    Text,
)
from tracehive.model.wire import ResponseBody


class CreateDatasetRequest(LenientBody):
    """``POST /v1/datasets``."""

    name: Label | None = Field(None, description="Defaults to 'dataset-' and the id's first 8 characters.")
    description: Text | None = None
    datapoints: IdList | None = Field(None, description="Ids of existing datapoints to put in the dataset, in order.")


class UpdateDatasetRequest(LenientBody):
    """``PUT /v1/datasets/{dataset_id}``: the fields sent replace the stored ones."""

    name: Label | None = None
    description: Text | None = None
    datapoints: IdList | None = Field(None, description="The dataset's datapoints from now on, in order "
                                                        "(datapoints left out are unlinked, not deleted).")


class LegacyUpdateDatasetRequest(UpdateDatasetRequest):
    """``PUT /v1/datasets`` (what the SDK's ``datasets.update`` sends): the id in the body."""

    dataset_id: Id


class DatapointMapping(LenientBody):
    """Which columns of each row become the datapoint's ``inputs``, ``ground_truth`` and ``history``."""

    inputs: Annotated[list[Label], Field(max_length=1000)] | None = None
    ground_truth: Annotated[list[Label], Field(max_length=1000)] | None = None
    history: Annotated[list[Label], Field(max_length=1000)] | None = Field(
        None, description="Columns holding a chat message object or a list of them, concatenated in order.")


class AddDatapointsRequest(LenientBody):
    """``POST /v1/datasets/{dataset_id}/datapoints``: flat rows and a column mapping. Columns in no
    mapping list go to the datapoint's ``metadata``."""

    data: Annotated[list[dict[str, Any]], Field(max_length=MAX_DATASET_DATAPOINTS)]
    mapping: DatapointMapping


# Responses -------------------------------------------------------------------------------------


class Dataset(ResponseBody):
    id: str
    name: str
    description: str | None = None
    datapoints: list[str] = Field(description="The dataset's datapoint ids, in order.")
    created_at: str | None = None
    updated_at: str | None = None


class GetDatasetsResponse(ResponseBody):
    datasets: list[Dataset]


class InsertedId(ResponseBody):
    insertedId: str  # the wire's camelCase name


class CreateDatasetResponse(ResponseBody):
    inserted: bool
    result: InsertedId


class UpdateDatasetResponse(ResponseBody):
    result: Dataset


class DeletedDataset(ResponseBody):
    id: str


class DeleteDatasetResponse(ResponseBody):
    result: DeletedDataset


class AddDatapointsResponse(ResponseBody):
    inserted: bool = Field(description="False when ``data`` was empty.")
    datapoint_ids: list[str]


class RemoveDatapointResponse(ResponseBody):
    dereferenced: bool = Field(description="False when the datapoint was not in the dataset.")
    message: str
