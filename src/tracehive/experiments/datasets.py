"""Datasets as stored (a ``RecordKind.DATASET`` record) and as answered (HoneyHive's ``Dataset``).

The record's name is the dataset's (so the store can find datasets by name); the body holds the
``description`` and the ordered ``datapoints`` id list.
"""

from __future__ import annotations

from typing import Any

from tracehive.experiments.dataset_models import CreateDatasetRequest, UpdateDatasetRequest
from tracehive.query.chart import iso_ms
from tracehive.storage.records import Record, RecordChange


def default_name(dataset_id: str) -> str:
    # The SDK names an unnamed run "experiment-" + the id's first 8 characters; the same here.
    return f"dataset-{dataset_id[:8]}"


def new_dataset(request: CreateDatasetRequest, datapoints: list[str]) -> dict[str, Any]:
    return {"description": request.description, "datapoints": datapoints}


def changed_fields(record: Record, request: UpdateDatasetRequest, datapoints: list[str] | None) -> RecordChange | None:
    """The record with the sent name, description and datapoints list replaced, or None when
    nothing changes."""
    name = request.name if request.name is not None else record.name
    body = dict(record.body)
    if request.description is not None:
        body["description"] = request.description
    if datapoints is not None:
        body["datapoints"] = datapoints
    if name == record.name and body == record.body:
        return None
    return RecordChange(name, body)


def dataset_datapoints(record: Record) -> list[str]:
    return list(record.body.get("datapoints") or [])


def dataset_reply(record: Record) -> dict[str, Any]:
    return {
        "id": record.id,
        "name": record.name if record.name is not None else default_name(record.id),
        "description": record.body.get("description"),
        "datapoints": dataset_datapoints(record),
        "created_at": iso_ms(record.created_at),
        "updated_at": iso_ms(record.updated_at),
    }
