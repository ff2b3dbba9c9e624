"""Datapoints as stored (a ``RecordKind.DATAPOINT`` record) and as answered (HoneyHive's
``Datapoint``), and the datapoints a dataset upload makes from flat rows and a column mapping.

The stored body holds ``inputs``, ``history``, ``ground_truth``, ``metadata``, ``linked_event``
and ``linked_datasets`` (the datasets it is in; ``experiments.links`` keeps that list and the
datasets' own lists in step).
"""

from __future__ import annotations

from typing import Any

from tracehive.experiments.datapoint_models import CreateDatapointRequest, UpdateDatapointRequest
from tracehive.experiments.dataset_models import DatapointMapping
from tracehive.experiments.documents import field_error
from tracehive.query.chart import iso_ms
from tracehive.storage.records import Record, RecordChange

# The content fields an update replaces when sent (``linked_datasets`` goes through the links).
CONTENT = ("inputs", "history", "ground_truth", "metadata", "linked_event")


def new_datapoint(request: CreateDatapointRequest, linked_datasets: list[str]) -> dict[str, Any]:
    return {
        "inputs": request.inputs,
        "history": request.history or [],
        "ground_truth": request.ground_truth,
        "metadata": request.metadata if request.metadata is not None else {},
        "linked_event": request.linked_event,
        "linked_datasets": linked_datasets,
    }


def changed_content(record: Record, request: UpdateDatapointRequest) -> RecordChange | None:
    """The record with the sent content fields replaced, or None when they change nothing."""
    sent = {k: getattr(request, k) for k in CONTENT if getattr(request, k) is not None}
    body = {**record.body, **sent}
    return None if body == record.body else RecordChange(record.name, body)


def datapoint_reply(record: Record) -> dict[str, Any]:
    body = record.body
    return {
        "id": record.id,
        "inputs": body.get("inputs") or {},
        "history": body.get("history") or [],
        "ground_truth": body.get("ground_truth"),
        "metadata": body.get("metadata"),
        "linked_event": body.get("linked_event"),
        "linked_datasets": list(body.get("linked_datasets") or []),
        "created_at": iso_ms(record.created_at),
        "updated_at": iso_ms(record.updated_at),
    }


def datapoint_from_row(row: dict[str, Any], mapping: DatapointMapping, index: int,
                       dataset_id: str) -> dict[str, Any]:
    """One uploaded row as a datapoint body: the mapped columns become ``inputs``,
    ``ground_truth`` (null when the mapping names none) and ``history``; the others, ``metadata``.
    A column the row lacks is left out."""
    inputs_keys = mapping.inputs or []
    truth_keys = mapping.ground_truth or []
    history_keys = mapping.history or []
    history: list[Any] = []
    for key in history_keys:
        if key not in row:
            continue
        value = row[key]
        if isinstance(value, dict):
            history.append(value)
        elif isinstance(value, list) and all(isinstance(m, dict) for m in value):
            history.extend(value)
        else:
            raise field_error(f"data[{index}].{key}",
                              "a history column must hold a JSON object or a list of JSON objects")
    mapped = {*inputs_keys, *truth_keys, *history_keys}
    return {
        "inputs": {k: row[k] for k in inputs_keys if k in row},
        "history": history,
        "ground_truth": {k: row[k] for k in truth_keys if k in row} if truth_keys else None,
        "metadata": {k: v for k, v in row.items() if k not in mapped},
        "linked_event": None,
        "linked_datasets": [dataset_id],
    }
