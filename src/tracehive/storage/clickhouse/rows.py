"""Mapping between events and ClickHouse rows. JSON fields are orjson text in ``String`` columns
(written once, read back byte for byte); times are ``Float64``, as in PostgreSQL."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson

from tracehive.model.event import Event
from tracehive.storage.clickhouse.schema import EVENT_COLUMNS
from tracehive.storage.event_rows import event_from_row, integral

# The columns a read selects, in the order ``row_to_event`` takes them (then implicit, seq).
READ_COLUMNS = (
    "event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, duration, error, "
    "config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, project_id, implicit, seq"
)

_dumps = orjson.dumps


def dump(value: Any) -> str:
    return _dumps(value).decode()


def number(value: Any) -> Any:
    """A Float64 read back as the other backends give it: integral values as ints. (ClickHouse's
    JSON output already prints integral doubles without a fraction; this covers the rest.)"""
    return integral(value)


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


_READ_ORDER = [EVENT_COLUMNS.index(name) for name in READ_COLUMNS.split(", ")]


def as_read(stored: list[Any]) -> tuple[Any, ...]:
    """A row as ``event_row`` gave it for the insert, as a read of ``READ_COLUMNS`` returns it."""
    return tuple(stored[i] for i in _READ_ORDER)


def tombstone_row(project_id: str, session_id: str, start_time: float, event_id: str, version: int,
                  now: int) -> list[Any]:
    """A row that hides every older version under the key (project, start_time, event): written
    when a rewrite moves an event in time (the key changes) and when an event is deleted."""
    return [
        project_id, session_id, event_id, None, "", "", "", start_time, 0.0, 0.0, None, "{}", "{}", None, "{}", "{}",
        "{}", "{}", "[]", "", "", 0, 0, version, 1, now,
    ]  # fmt: skip


def row_to_event(row: tuple[Any, ...]) -> Event:
    """Inverse of ``READ_COLUMNS`` (its first 21 columns)."""
    return event_from_row(row, number)


@dataclass
class VersionClock:
    """Versions for ReplacingMergeTree: strictly increasing within this store, and past every
    version already stored (``floor`` is read at open), so a clock that steps back between runs
    never lets an old version win. Nanoseconds since the epoch; stores that share a database order
    their writes past each other's through their leases (``advance``, ``leased.py``)."""

    last: int = 0

    def next(self) -> int:
        self.last = max(self.last + 1, time.time_ns())
        return self.last

    def advance(self, floor: int) -> None:
        """Order every later version past ``floor`` (another node's, ``leased.py``)."""
        self.last = max(self.last, floor)


def now_ms() -> int:
    return int(time.time() * 1000)
