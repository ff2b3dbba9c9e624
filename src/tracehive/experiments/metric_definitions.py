"""Metric definitions as stored (a ``RecordKind.METRIC`` record, its name the metric's) and as
answered (HoneyHive's ``MetricItem``), and their version history.

The body holds the definition (every ``MetricItem`` field but the id, name and times) and
``versions``: snapshots of full definitions, ``v1``, ``v2``, ... in creation order, at most one of
them ``deployed``. Deploying a version makes its content the live definition; editing the live
definition (``PUT``) makes no version.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from pydantic import BaseModel

from tracehive.experiments.metric_models import CreateMetricRequest, MetricFields, UpdateMetricRequest
from tracehive.query.chart import iso_ms
from tracehive.storage.records import Record, RecordChange

# What a definition answers for a field never sent (the SDK's MetricItem requires most of them).
DEFAULTS: dict[str, Any] = {
    "description": None,
    "return_type": "float",
    "enabled_in_prod": False,
    "sampling_percentage": 100,
    "model_provider": None,
    "model_name": None,
    "scale": None,
    "threshold": None,
    "categories": None,
    "needs_ground_truth": False,
    "child_metrics": None,
    "filters": {"filterArray": []},
}
DEFINITION = ("type", "criteria", *DEFAULTS)
VERSIONS = "versions"
MAX_VERSIONS = 1000


def _dump(value: Any) -> Any:
    # Whole nested objects as sent (a filter's null ``value`` is required by the SDK's model,
    # so nothing inside them is dropped).
    return value.model_dump() if isinstance(value, BaseModel) else value


def sent_fields(request: MetricFields) -> dict[str, Any]:
    return {f: _dump(getattr(request, f)) for f in DEFINITION if getattr(request, f, None) is not None}


def definition(request: CreateMetricRequest) -> dict[str, Any]:
    """A full definition (defaults filled in), without the name."""
    return {**DEFAULTS, **sent_fields(request)}


def new_metric(request: CreateMetricRequest) -> dict[str, Any]:
    return {**definition(request), VERSIONS: []}


def changed_metric(record: Record, request: UpdateMetricRequest) -> RecordChange | None:
    body = {**record.body, **sent_fields(request)}
    name = request.name if request.name is not None else record.name
    if name == record.name and body == record.body:
        return None
    return RecordChange(name, body)


def metric_reply(record: Record) -> dict[str, Any]:
    body = record.body
    reply: dict[str, Any] = {"id": record.id, "name": record.name or ""}
    reply.update({f: body.get(f, DEFAULTS.get(f, "")) for f in DEFINITION})
    reply["created_at"] = iso_ms(record.created_at)
    reply["updated_at"] = iso_ms(record.updated_at)
    return reply


# Versions --------------------------------------------------------------------------------------


def versions(record: Record) -> list[dict[str, Any]]:
    return list(record.body.get(VERSIONS) or [])


def new_version(record: Record, request: CreateMetricRequest, message: str, deploy: bool, now_ms: int) -> RecordChange:
    """The record with one more version (and, when ``deploy``, that version live)."""
    history = versions(record)
    content = {"name": request.name, **definition(request)}
    parent = history[-1]["full_sha"] if history else ""
    digest = hashlib.sha256(orjson.dumps({"content": content, "message": message, "parent": parent},
                                         option=orjson.OPT_SORT_KEYS)).hexdigest()
    version = {"name": f"v{len(history) + 1}", "full_sha": digest, "message": message, "date": iso_ms(now_ms),
               "deployed": False, "content": content}
    change = RecordChange(record.name, {**record.body, VERSIONS: [*history, version]})
    return deployed(record_with(record, change), version["name"]) if deploy else change


def record_with(record: Record, change: RecordChange) -> Record:
    return Record(record.kind, record.id, change.name, change.body, record.created_at, record.updated_at)


def find_version(record: Record, name: str) -> dict[str, Any] | None:
    return next((v for v in versions(record) if v.get("name") == name), None)


def deployed(record: Record, name: str) -> RecordChange:
    """The record with version ``name`` (which exists) live: its content is the definition."""
    history = [{**v, "deployed": v.get("name") == name} for v in versions(record)]
    content = dict(next(v for v in history if v["deployed"])["content"])
    metric_name = content.pop("name", record.name)
    return RecordChange(metric_name, {**record.body, **content, VERSIONS: history})
