"""Mapping between events and ClickHouse rows. JSON fields are orjson text in ``String`` columns
(written once, read back byte for byte); times are ``Float64``, as in PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from tracehive.model.event import Event

# The columns a read selects, in the order ``row_to_event`` takes them (then implicit, seq).
READ_COLUMNS = (
    "event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, duration, error, "
    "config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, project_id, implicit, seq"
)

_dumps = orjson.dumps
_loads = orjson.loads
_INT64 = 2**63


def dump(value: Any) -> str:
    return _dumps(value).decode()


def number(value: Any) -> Any:
    """A Float64 read back as the other backends give it: integral values as ints. (ClickHouse's
    JSON output already prints integral doubles without a fraction; this covers the rest.)"""
    if isinstance(value, float) and value.is_integer() and -_INT64 <= value < _INT64:
        return int(value)
    return value


def _time(value: Any) -> float:
    # Float64 column: an int past 2**53 (or past int64, which orjson cannot write) is stored as
    # the nearest double, as PostgreSQL's float8 does.
    return float(value)


def event_row(event: Event, project_id: str, org_id: str, workspace_id: str, *, implicit: bool, seq: int,
              version: int, now: int) -> list[Any]:
    """Values for ``schema.EVENT_COLUMNS`` (in its order)."""
    return [
        project_id, event.session_id, event.event_id, event.parent_id, event.event_type, event.event_name,
        event.source, _time(event.start_time), _time(event.end_time), _time(event.duration), event.error,
        dump(event.config), dump(event.inputs), None if event.outputs is None else dump(event.outputs),
        dump(event.metadata), dump(event.feedback), dump(event.metrics), dump(event.user_properties),
        dump(event.children_ids), org_id, workspace_id, int(implicit), seq, version, 0, now,
    ]  # fmt: skip


def tombstone_row(project_id: str, session_id: str, event_id: str, version: int, now: int) -> list[Any]:
    """A row that hides every older version under (project, session, event): written when a
    rewrite moves an event to another session, whose key differs."""
    return [
        project_id, session_id, event_id, None, "", "", "", 0.0, 0.0, 0.0, None, "{}", "{}", None, "{}", "{}",
        "{}", "{}", "[]", "", "", 0, 0, version, 1, now,
    ]  # fmt: skip


def row_to_event(row: tuple[Any, ...]) -> Event:
    """Inverse of ``READ_COLUMNS`` (its first 21 columns)."""
    return Event(
        event_id=row[0],
        session_id=row[1],
        parent_id=row[2],
        event_type=row[3],
        event_name=row[4],
        source=row[5],
        start_time=number(row[6]),
        end_time=number(row[7]),
        duration=number(row[8]),
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


@dataclass
class VersionClock:
    """Versions for ReplacingMergeTree: strictly increasing within this store, and past every
    version already stored (``floor`` is read at open), so a clock that steps back between runs
    never lets an old version win. Nanoseconds since the epoch, so several stores over one
    database order their writes by time at worst (see store.py on many writers)."""

    last: int = 0

    def next(self) -> int:
        self.last = max(self.last + 1, time.time_ns())
        return self.last


def now_ms() -> int:
    return int(time.time() * 1000)
