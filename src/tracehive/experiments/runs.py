"""Runs as stored (a ``RecordKind.RUN`` record) and as answered (HoneyHive's ``ExperimentRunObject``).

The stored body keeps what the client sent (name and status also in their own keys); the scope
fields, ``id``/``run_id`` and the ISO times are added when answering, so a run moved to another
project (export/import) answers with that project.
"""

from __future__ import annotations

from typing import Any

from tracehive.experiments.run_models import CreateRunRequest, UpdateRunRequest
from tracehive.model.errors import ValidationFailed
from tracehive.model.event import deep_merge
from tracehive.model.ids import is_uuid, normalize_id
from tracehive.model.scope import Scope
from tracehive.query.chart import iso_ms
from tracehive.storage.records import Record, RecordChange

# Dict fields an update merges into (the SDK's final PUT resends metadata with only
# ``offline_dataset_id``: replacing it would lose ``metadata.git``).
MERGED = ("metadata", "configuration", "results", "passing_ranges")
# Fields an update replaces when sent.
REPLACED = ("name", "description", "status", "event_ids", "evaluators", "datapoint_ids")


def session_ids(values: list[Any] | None, field: str) -> list[str] | None:
    """Session (event) ids as UUID strings, lower-cased, order kept, duplicates dropped."""
    if values is None:
        return None
    out: list[str] = []
    seen: set[str] = set()
    for i, value in enumerate(values):
        if not is_uuid(value):
            raise ValidationFailed(f"{field}[{i}]: must be a UUID string",
                                   details=[{"field": f"{field}[{i}]", "message": "must be a UUID string"}])
        sid = normalize_id(value)
        if sid not in seen:
            seen.add(sid)
            out.append(sid)
    return out


def _event_ids(request: CreateRunRequest | UpdateRunRequest) -> list[str] | None:
    events = session_ids(request.event_ids, "event_ids")
    sessions = session_ids(request.session_ids, "session_ids")
    if sessions is None:
        return events
    return [*(events or []), *(s for s in sessions if s not in set(events or []))]


def new_run(request: CreateRunRequest) -> dict[str, Any]:
    return {
        "name": request.name,
        "description": request.description,
        "status": request.status or "pending",
        "metadata": request.metadata or {},
        "results": request.results or {},
        "event_ids": _event_ids(request) or [],
        "configuration": request.configuration or {},
        "evaluators": request.evaluators or [],
        "datapoint_ids": request.datapoint_ids or [],
        "passing_ranges": request.passing_ranges or {},
        "dataset_id": request.dataset_id,
    }


def run_update(request: UpdateRunRequest) -> Any:
    """The pure function ``Store.update_record`` applies: merge the dicts, replace the rest."""
    sent = request.model_dump(exclude_none=True, include={*MERGED, *REPLACED})
    events = _event_ids(request)
    if events is not None:
        sent["event_ids"] = events

    def apply(record: Record) -> RecordChange:
        body = dict(record.body)
        for key, value in sent.items():
            if key in MERGED:
                body[key] = deep_merge(body.get(key) or {}, value)
            else:
                body[key] = value
        return RecordChange(body.get("name"), body)

    return apply


def run_object(record: Record, scope: Scope, dataset_name: str | None = None) -> dict[str, Any]:
    body = record.body
    return {
        "id": record.id,
        "run_id": record.id,
        "name": body.get("name"),
        "description": body.get("description"),
        "status": body.get("status"),
        "metadata": body.get("metadata") or {},
        "results": body.get("results") or {},
        "event_ids": body.get("event_ids") or [],
        "configuration": body.get("configuration") or {},
        "evaluators": body.get("evaluators") or [],
        "datapoint_ids": body.get("datapoint_ids") or [],
        "passing_ranges": body.get("passing_ranges") or {},
        "is_active": True,
        "created_at": iso_ms(record.created_at),
        "updated_at": iso_ms(record.updated_at),
        "scope_type": "project",
        "scope_id": scope.project_id,
        "dataset_id": body.get("dataset_id"),
        "dataset_name": dataset_name,
    }


def offline_dataset_id(record: Record) -> str | None:
    """The dataset id a run's sessions carry: the server dataset's, or the SDK's ``EXT-`` id of
    an inline dataset (kept in ``metadata.offline_dataset_id``)."""
    metadata = record.body.get("metadata") or {}
    value = record.body.get("dataset_id") or metadata.get("offline_dataset_id")
    return value if isinstance(value, str) else None
