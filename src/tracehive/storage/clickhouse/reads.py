"""Query reads of the ClickHouse event store: export pages, the keyset stream, schema fields, and
``import_events`` (the write that pairs with the stream).

Every statement reads ``events FINAL``: row versions resolved to the newest, tombstones
(``is_deleted``) hidden, before the WHERE of ``compile.where_clause`` applies, and always
confined to the scope's project. ``settings`` is the store's ``SETTINGS`` suffix (the read
timeout), our text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from typing import Any

import orjson

from tracehive.model.event import Event
from tracehive.query.event_query import EventQuery
from tracehive.query.schema import MAX_SCHEMA_FIELDS, field_name
from tracehive.storage.clickhouse.compile import Params, where_clause
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.rows import READ_COLUMNS, row_to_event
from tracehive.storage.clickhouse.schema import HOUR_OF_START as HOUR
from tracehive.storage.clickhouse.settled import SettledDays, Source, bounds, read
from tracehive.storage.clickhouse.windows import Page, newest_first
from tracehive.storage.clickhouse.writes import Batch
from tracehive.storage.rules import implicit_session, session_spans

STREAM_CHUNK = 1000
HOUR_MS = 3_600_000


async def export_page(ex: Executor, project_id: str, query: EventQuery, settings: str = "",
                      days: SettledDays | None = None) -> tuple[list[Event], int]:
    """One page, newest first (``seq``, the arrival order, breaks ties as SQLite's rowid does),
    and the number of matches. The count is taken per hour of start time
    (``schema.HOUR_OF_START``), which tells which hours hold the page's rows: the page is then
    sorted from those hours alone, not from every match (an hour only holds rows whose start is
    within it, so hours are in the page's order). Per day before: at 10^7 events a first page
    read its whole day, 32 ms, where its hour takes 18. Settled days are read without ``FINAL``
    (``settled.py``)."""
    params = Params()
    where = where_clause(project_id, query.date_range, query.conditions, params)
    lo, hi = bounds(query.date_range)

    async def count(source: Source) -> list[tuple[Any, ...]]:
        return await ex.query(
            f"SELECT {HOUR} AS hour, count() FROM {source.table} WHERE {where}{source.live} "
            f"GROUP BY hour ORDER BY hour DESC{settings}",
            params.values,
        )

    per_hour = await read(days, ex, lo, hi, count, mixed=True)
    total = sum(int(n) for _, n in per_hour)
    if total <= query.offset:
        return [], total
    if query.ignore_order:
        order, skip = "", query.offset
    else:
        first, last, skip = _buckets_of_page(per_hour, query.offset, query.limit)
        lo_hour, hi_hour = params.add(last, "Int64"), params.add(first, "Int64")
        where += f" AND {HOUR} BETWEEN {lo_hour} AND {hi_hour}"
        lo, hi = last * HOUR_MS, first * HOUR_MS + HOUR_MS - 1
        order = " ORDER BY start_time DESC, seq DESC"
    limit, offset = params.add(query.limit, "UInt64"), params.add(skip, "UInt64")

    async def page(source: Source) -> list[tuple[Any, ...]]:
        return await ex.query(
            f"SELECT {READ_COLUMNS} FROM {source.table} WHERE {where}{source.live}{order} "
            f"LIMIT {limit} OFFSET {offset}{settings}",
            params.values,
        )

    return [row_to_event(r) for r in await read(days, ex, lo, hi, page)], total


def _buckets_of_page(buckets: Sequence[tuple[Any, Any]], offset: int, limit: int) -> tuple[int, int, int]:
    """(newest bucket, oldest bucket, offset within them) of the rows at ``offset``.. in a
    newest-first order, from the match counts of each bucket (newest first)."""
    first: int | None = None
    last = 0
    skip, wanted = offset, limit
    for bucket, count in buckets:
        n = int(count)
        if first is None:
            if skip >= n:
                skip -= n
                continue
            first, last = int(bucket), int(bucket)
            wanted -= n - skip
        else:
            last = int(bucket)
            wanted -= n
        if wanted <= 0:
            break
    if first is None:  # offset past every match: the caller returned before
        return 0, 0, skip
    return first, last, skip


def stream(ex: Executor, project_id: str, query: EventQuery, settings: str = "",
           chunk: int = STREAM_CHUNK, days: SettledDays | None = None) -> AsyncIterator[list[Event]]:
    """Every match in chunks, newest first, ties by event_id descending (byte order, so the order
    depends on the data alone): keyset pages in time windows (``windows.py``), so memory stays
    constant whatever the number of matches."""

    async def fetch(where: str, params: Params, source: Source) -> Page[Event]:
        n = params.add(chunk, "UInt64")
        rows = await ex.query(
            f"SELECT {READ_COLUMNS} FROM {source.table} WHERE {where}{source.live} "
            f"ORDER BY start_time DESC, event_id DESC LIMIT {n}{settings}",
            params.values,
        )
        return Page(lambda: [row_to_event(r) for r in rows], len(rows),
                    (float(rows[-1][6]), rows[-1][0]) if rows else None)

    return newest_first(ex, project_id, query, fetch, chunk, settings, days)


async def import_events(batch: Batch, events: Sequence[Event]) -> None:
    """Rows exactly as given (scope ids aside), replacing stored ones (their arrival order
    kept, as SQLite's upsert keeps the rowid); then the sessions they name: made up when unknown,
    widened while made up, otherwise left alone."""
    await batch.load([*(e.event_id for e in events), *(e.session_id for e in events)])
    for given in events:
        event = dataclasses.replace(given)  # the caller's objects stay as they are
        row = batch.get(event.event_id)
        if row is None:
            batch.put(event, implicit=False)
        else:
            scope = batch.scope
            event.org_id, event.workspace_id, event.project_id = scope.org_id, scope.workspace_id, scope.project_id
            row.event, row.implicit, row.changed = event, False, True
    for session_id, (start, end, first) in session_spans(events).items():
        row = batch.get(session_id)
        if row is None:
            batch.put(implicit_session(session_id, start, end, first), implicit=True)
        elif row.implicit and row.event.event_type == "session":
            session = row.event
            session.start_time = min(session.start_time, start)
            session.end_time = max(session.end_time, end)
            session.duration = session.end_time - session.start_time
            row.changed = True


# Schema fields ---------------------------------------------------------------------------------

_SCALAR_COLUMNS = ("event_id", "session_id", "parent_id", "event_type", "event_name", "source", "error",
                   "start_time", "end_time", "duration")  # fmt: skip
_JSON_COLUMNS = ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties", "children_ids")


def _members(value: Any, path: tuple[str, ...], out: set[tuple[str, ...]]) -> None:
    """Paths of the object members (not null) under ``value``, never following arrays."""
    if isinstance(value, dict):
        for key, member in value.items():
            if member is None:
                continue
            here = (*path, key)
            out.add(here)
            _members(member, here, out)


async def schema_fields(ex: Executor, project_id: str, query: EventQuery, sample: int,
                        settings: str = "", days: SettledDays | None = None) -> list[tuple[str, str]]:
    """The newest ``sample`` matches (as SQLite orders them); the database tests the scalar
    columns, Python walks the sample's JSON (bounded by ``sample``, as SQLite's json_tree is)."""
    params = Params()
    where = where_clause(project_id, query.date_range, query.conditions, params)
    scalars = ", ".join(f"isNotNull({c})" for c in _SCALAR_COLUMNS)
    n = params.add(sample, "UInt64")
    lo, hi = bounds(query.date_range)

    async def newest(source: Source) -> list[tuple[Any, ...]]:
        return await ex.query(
            f"SELECT event_type, {scalars}, {', '.join(_JSON_COLUMNS)} FROM {source.table} "
            f"WHERE {where}{source.live} ORDER BY start_time DESC, seq DESC LIMIT {n}{settings}",
            params.values,
        )

    rows = await read(days, ex, lo, hi, newest)
    found: set[tuple[str, str]] = set()
    raw: set[tuple[str, str, tuple[str, ...] | None]] = set()
    for row in rows:
        event_type = row[0]
        for column, present in zip(_SCALAR_COLUMNS, row[1 : 1 + len(_SCALAR_COLUMNS)]):
            if present:
                raw.add((event_type, column, None))
        for column, text in zip(_JSON_COLUMNS, row[1 + len(_SCALAR_COLUMNS) :]):
            if text is None:
                continue
            value = orjson.loads(text)
            if value is not None and value != {} and value != [] and value not in ("{}", "[]"):
                raw.add((event_type, column, ()))
            paths: set[tuple[str, ...]] = set()
            _members(value, (), paths)
            raw.update((event_type, column, p) for p in paths)
        if len(raw) >= MAX_SCHEMA_FIELDS:
            break
    for event_type, column, path in sorted(raw, key=lambda r: (r[0], r[1], r[2] or ()))[:MAX_SCHEMA_FIELDS]:
        if path is None:
            found.add((column, event_type))
            continue
        name = field_name(column, list(path))
        if name is not None:
            found.add((name, event_type))
            if path:
                found.add((column, event_type))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
