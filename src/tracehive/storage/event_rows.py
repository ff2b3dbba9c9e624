"""The event row every backend reads: the 21 columns in one order, back to an ``Event``.

SQLite, PostgreSQL and ClickHouse all select ``event_id, session_id, parent_id, event_type,
event_name, source, start_time, end_time, duration, error``, the seven JSON fields (text),
``children_ids`` (JSON text), ``org_id, workspace_id, project_id`` (each backend's
``EVENT_COLUMNS``/``READ_COLUMNS`` spells its own SQL for them). What differs is how times come
back: SQLite's NUMERIC keeps integers as integers; the others store doubles, and ``integral``
turns integral doubles back into ints so every backend reads the same values.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import orjson

from tracehive.model.event import Event

_loads = orjson.loads
_INT64 = 2**63


def integral(value: Any) -> Any:
    """A double read back as SQLite's NUMERIC gives it: integral values in int64 range as ints
    (anything else, None included, as it is)."""
    if isinstance(value, float) and value.is_integer() and -_INT64 <= value < _INT64:
        return int(value)
    return value


def event_from_row(row: Sequence[Any], number: Callable[[Any], Any] | None = None) -> Event:
    """The event of a row in the shared column order; ``number`` converts the three times."""
    start, end, duration = row[6], row[7], row[8]
    if number is not None:
        start, end, duration = number(start), number(end), number(duration)
    outputs = row[12]
    return Event(
        event_id=row[0],
        session_id=row[1],
        parent_id=row[2],
        event_type=row[3],
        event_name=row[4],
        source=row[5],
        start_time=start,
        end_time=end,
        duration=duration,
        error=row[9],
        config=_loads(row[10]),
        inputs=_loads(row[11]),
        outputs=None if outputs is None else _loads(outputs),
        metadata=_loads(row[13]),
        feedback=_loads(row[14]),
        metrics=_loads(row[15]),
        user_properties=_loads(row[16]),
        children_ids=_loads(row[17]),
        org_id=row[18],
        workspace_id=row[19],
        project_id=row[20],
    )
