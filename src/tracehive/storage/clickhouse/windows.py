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

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from tracehive.query.event_query import EventQuery
from tracehive.storage.clickhouse.compile import Params, where_clause
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.settled import SettledDays, Source, read

T = TypeVar("T")
FIRST_WIDTH_MS = 3_600_000.0
MAX_GROWTH = 16.0


class Page(Generic[T]):
    """What one read gave: how many rows it read, the last row's key, and ``build`` making its
    items (called after the next read was sent, so that the engine reads while Python builds)."""

    __slots__ = ("build", "last", "rows")

    def __init__(self, build: Callable[[], list[T]], rows: int, last: tuple[float, str] | None) -> None:
        self.build, self.rows, self.last = build, rows, last


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


@dataclass(frozen=True, slots=True)
class _Window:
    """Where the next page is read: start times in [lo, upper], below ``cursor`` when set."""

    lo: float
    upper: float
    cursor: tuple[float, str] | None
    width: float
    pages: int  # pages read in this window before this one


async def newest_first(ex: Executor, project_id: str, query: EventQuery, fetch: Fetch[T], chunk: int,
                       settings: str = "", days: SettledDays | None = None) -> AsyncIterator[list[T]]:
    top = await _end(ex, project_id, query, "DESC", settings)
    bottom = await _end(ex, project_id, query, "ASC", settings)
    if top is None or bottom is None:
        return

    async def read_page(w: _Window) -> Page[T]:
        params = Params()
        where = where_clause(project_id, query.date_range, query.conditions, params)
        low = params.add(w.lo, "Float64")
        if w.cursor is None:
            where += f" AND start_time >= {low} AND start_time <= {params.add(w.upper, 'Float64')}"
        else:
            t, e = params.add(w.cursor[0], "Float64"), params.add(w.cursor[1], "String")
            where += f" AND start_time >= {low} AND (start_time < {t} OR (start_time = {t} AND event_id < {e}))"

        def run(source: Source) -> Awaitable[Page[T]]:
            return fetch(where, Params(dict(params.values)), source)  # a copy: a rerun adds its values again

        return await read(days, ex, w.lo, w.upper if w.cursor is None else w.cursor[0], run)

    def after(w: _Window, page: Page[T]) -> _Window | None:
        """The window of the next page; None past the last."""
        if page.rows >= chunk and page.last is not None:  # the window holds more: continue inside it
            return _Window(w.lo, w.upper, page.last, w.width, w.pages + 1)
        if w.lo <= bottom:
            return None
        # Window exhausted: the next one ends just below it; narrower when this one held many
        # pages (each re-resolves the rest of the window), wider when it held less than one.
        pages, width = w.pages + 1, w.width
        if pages > 2:
            width /= pages / 2
        else:
            width *= min(MAX_GROWTH, max(2.0, chunk / max(page.rows, 1)))
        return _Window(max(w.lo - width, bottom), w.lo, (w.lo, ""), width, 0)

    async def send(w: _Window) -> asyncio.Task[Page[T]]:
        task = asyncio.ensure_future(read_page(w))
        await asyncio.sleep(0)  # the task runs up to handing its statement to the engine
        return task

    # The cursor: rows strictly below (t, e) in (start_time, event_id) order; at first, every
    # row at or below ``top``. Each page's statement is sent before the previous page's items
    # are built and handed on: one page ahead, no more.
    window: _Window | None = _Window(max(top - FIRST_WIDTH_MS, bottom), top, None, FIRST_WIDTH_MS, 0)
    pending = await send(window)
    try:
        while window is not None:
            page = await pending
            window = after(window, page)
            if window is not None:
                pending = await send(window)
            items = page.build()
            if items:
                yield items
    finally:
        if window is not None and not pending.done():
            pending.cancel()
            await asyncio.wait([pending])  # (the read's own error or cancellation stays in it)
