"""Streaming every match newest first, in time windows (the export, ``iter_events``).

A keyset page ``start_time < t ORDER BY start_time DESC LIMIT n`` over ``events FINAL`` resolves
versions for *every* row below the cursor before it can sort and keep n: each page would cost a
pass over the rest of the project. So pages are read inside a time window ``[lo, cursor)``: the
window's rows are resolved, sorted and cut, and the window moves down when it is exhausted. Its
width adapts to the data: it grows (up to 16x) after a window that held fewer rows than a page,
so a sparse range costs a few reads, and a page never reads much beyond what it returns.
Versions of one row share its key, start time included, so a window resolves them all.

The stream starts at the newest matching start time and stops below the oldest, both read from
the primary key's ends (``ORDER BY start_time LIMIT 1`` reads one granule; without ``FINAL``,
since a stale version only moves where the windows start or end, never what they return).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, TypeVar

from tracehive.query.filters import EventQuery
from tracehive.storage.clickhouse.compile import Params, where_clause
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.settled import SettledDays, Source, read

T = TypeVar("T")
FIRST_WIDTH_MS = 3_600_000.0
MAX_GROWTH = 16.0


class Page(Generic[T]):
    """What one read gave: the items, how many rows it read, and the last row's key."""

    __slots__ = ("items", "rows", "last")

    def __init__(self, items: list[T], rows: int, last: tuple[float, str] | None) -> None:
        self.items, self.rows, self.last = items, rows, last


# fetch(where, params, source) runs the caller's SELECT over ``{source.table} WHERE
# {where}{source.live}`` with ``ORDER BY start_time DESC, event_id DESC LIMIT chunk`` and returns
# its Page.
Fetch = Callable[[str, Params, Source], Awaitable[Page[T]]]


async def _end(ex: Executor, project_id: str, query: EventQuery, direction: str, settings: str) -> float | None:
    params = Params()
    where = where_clause(project_id, query.date_range, (), params)
    rows = await ex.query(f"SELECT start_time FROM events WHERE {where} AND is_deleted = 0 "
                          f"ORDER BY start_time {direction} LIMIT 1{settings}", params.values)
    return float(rows[0][0]) if rows else None


async def newest_first(ex: Executor, project_id: str, query: EventQuery, fetch: Fetch[T], chunk: int,
                       settings: str = "", days: SettledDays | None = None) -> AsyncIterator[list[T]]:
    top = await _end(ex, project_id, query, "DESC", settings)
    bottom = await _end(ex, project_id, query, "ASC", settings)
    if top is None or bottom is None:
        return
    # The cursor: rows strictly below (t, e) in (start_time, event_id) order; at first, every
    # row at or below ``top``.
    cursor: tuple[float, str] | None = None
    upper = top
    width = FIRST_WIDTH_MS
    pages = 0  # pages read in the current window
    while True:
        lo = max(upper - width, bottom)
        params = Params()
        where = where_clause(project_id, query.date_range, query.conditions, params)
        low = params.add(lo, "Float64")
        if cursor is None:
            where += f" AND start_time >= {low} AND start_time <= {params.add(upper, 'Float64')}"
        else:
            t, e = params.add(cursor[0], "Float64"), params.add(cursor[1], "String")
            where += f" AND start_time >= {low} AND (start_time < {t} OR (start_time = {t} AND event_id < {e}))"
        def run(source: Source, where: str = where, values: dict[str, object] = params.values) -> Awaitable[Page[T]]:
            return fetch(where, Params(dict(values)), source)  # a copy: a second run adds its values again

        page = await read(days, ex, lo, upper if cursor is None else cursor[0], run)
        pages += 1
        if page.items:
            yield page.items
        if page.rows >= chunk and page.last is not None:
            cursor = page.last  # the window holds more: continue inside it
            continue
        if lo <= bottom:
            return
        # Window exhausted: the next one ends just below it; narrower when this one held many
        # pages (each re-resolves the rest of the window), wider when it held less than one.
        if pages > 2:
            width /= pages / 2
        else:
            width *= min(MAX_GROWTH, max(2.0, chunk / max(page.rows, 1)))
        cursor, upper, pages = (lo, ""), lo, 0
