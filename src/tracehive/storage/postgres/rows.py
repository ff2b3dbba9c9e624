"""Mapping between events and PostgreSQL rows. JSON fields are ``json`` text written by orjson
(parameters are sent as text and cast by the statement), read back as text and parsed with orjson."""

from __future__ import annotations

import re
from typing import Any

import orjson

from tracehive.model.event import Event
from tracehive.storage.event_rows import event_from_row, integral

EVENT_COLUMNS = (
    "event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, duration, error, "
    "config::text, inputs::text, outputs::text, metadata::text, feedback::text, metrics::text, "
    "user_properties::text, children_ids::text, org_id, workspace_id, project_id"
)

# What ``event_params`` gives, in order, and the SQL that casts each placeholder.
INSERT_COLUMNS = (
    "project_id, event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, "
    "duration, error, config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, updated_at"
)
PLACEHOLDERS = (
    "%s, %s, %s, %s, %s, %s, %s, %s::float8, %s::float8, %s::float8, %s, %s::json, %s::json, %s::json, "
    "%s::json, %s::json, %s::json, %s::json, %s::json, %s, %s, %s"
)

_dumps = orjson.dumps
_loads = orjson.loads
_INT64 = 2**63


# PostgreSQL text cannot hold U+0000, and its JSON functions refuse the escape ``\u0000``: the
# backend stores U+0000 as U+FFFD in every string (declared in its capabilities). The pattern
# finds the escape only where its backslash is not itself escaped.
_NUL_ESCAPE = re.compile(rb"(?<!\\)((?:\\\\)*)\\u0000")


def json_text(value: Any) -> str:
    """``value`` as JSON text for a ``json`` column (U+0000 stored as U+FFFD)."""
    data = _dumps(value)
    if b"\\u0000" in data:
        data = _NUL_ESCAPE.sub(rb"\1\\ufffd", data)
    return data.decode()


def text(value: str | None) -> str | None:
    """A string for a ``text`` column (U+0000 stored as U+FFFD)."""
    if value is not None and "\x00" in value:
        return value.replace("\x00", "\ufffd")
    return value


def dump(value: Any) -> str:
    return json_text(value)


def dump_optional(value: Any) -> str | None:
    return None if value is None else json_text(value)


def number(value: float | None) -> Any:
    """A double read back as SQLite's NUMERIC gives it: integral values in int64 range as ints."""
    return integral(value)


def time_param(value: Any) -> Any:
    """Ints beyond a double's exact range are sent as floats (PostgreSQL would refuse an int
    past bigint for a float8 placeholder); the column keeps a double either way."""
    if isinstance(value, int) and not -_INT64 <= value < _INT64:
        return float(value)
    return value


def event_params(event: Event, project_id: str, org_id: str, workspace_id: str, now: int) -> tuple[Any, ...]:
    """Parameters for ``INSERT_COLUMNS`` (in its order)."""
    return (
        project_id,
        text(event.event_id),
        text(event.session_id),
        text(event.parent_id),
        text(event.event_type),
        text(event.event_name),
        text(event.source),
        time_param(event.start_time),
        time_param(event.end_time),
        time_param(event.duration),
        text(event.error),
        json_text(event.config),
        json_text(event.inputs),
        None if event.outputs is None else json_text(event.outputs),
        json_text(event.metadata),
        json_text(event.feedback),
        json_text(event.metrics),
        json_text(event.user_properties),
        json_text(event.children_ids),
        org_id,
        workspace_id,
        now,
    )


def row_to_event(row: tuple[Any, ...] | list[Any]) -> Event:
    """Inverse of ``EVENT_COLUMNS``."""
    return event_from_row(row, number)
