"""Mapping between events and rows. JSON columns are text, serialised once with orjson."""

from __future__ import annotations

from typing import Any

import orjson

from tracehive.model.event import Event, deep_merge

EVENT_COLUMNS = (
    "event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, duration, error, "
    "config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, project_id"
)

_dumps = orjson.dumps
_loads = orjson.loads


def dump(value: Any) -> str:
    return _dumps(value).decode()


def dump_optional(value: Any) -> str | None:
    return None if value is None else _dumps(value).decode()


def event_params(event: Event, project_id: str, org_id: str, workspace_id: str, now: int) -> tuple[Any, ...]:
    """Parameters for ``UPSERT_EVENT`` (in its column order)."""
    return (
        project_id,
        event.event_id,
        event.session_id,
        event.parent_id,
        event.event_type,
        event.event_name,
        event.source,
        event.start_time,
        event.end_time,
        event.duration,
        event.error,
        _dumps(event.config).decode(),
        _dumps(event.inputs).decode(),
        None if event.outputs is None else _dumps(event.outputs).decode(),
        _dumps(event.metadata).decode(),
        _dumps(event.feedback).decode(),
        _dumps(event.metrics).decode(),
        _dumps(event.user_properties).decode(),
        _dumps(event.children_ids).decode(),
        org_id,
        workspace_id,
        now,
    )


def row_to_event(row: tuple[Any, ...]) -> Event:
    """Inverse of ``EVENT_COLUMNS``."""
    return Event(
        event_id=row[0],
        session_id=row[1],
        parent_id=row[2],
        event_type=row[3],
        event_name=row[4],
        source=row[5],
        start_time=row[6],
        end_time=row[7],
        duration=row[8],
        error=row[9],
        config=_loads(row[10]),
        inputs=_loads(row[11]),
        outputs=None if row[12] is None else _loads(row[12]),
        metadata=_loads(row[13]),
        feedback=_loads(row[14]),
        metrics=_loads(row[15]),
        user_properties=_loads(row[16]),
        children_ids=_loads(row[17]),
        org_id=row[18],
        workspace_id=row[19],
        project_id=row[20],
    )


def complete_children(stored: list[str], found: list[str]) -> list[str]:
    """Ids the client sent (in its order) followed by stored children it did not mention."""
    seen = set(stored)
    return stored + [c for c in found if c not in seen]


def merge_json(base: str | None, patch: str | None) -> str | None:
    """SQL function ``th_merge``: deep-merge two JSON objects, ``patch`` winning. Unlike
    ``json_patch`` (RFC 7396), a null in ``patch`` is stored as null instead of deleting the key,
    so re-sending an event with null-valued keys leaves it unchanged."""
    if base is None or patch is None:
        return patch if base is None else base
    old, new = _loads(base), _loads(patch)
    if not isinstance(old, dict) or not isinstance(new, dict):
        return patch
    return _dumps(deep_merge(old, new)).decode()
