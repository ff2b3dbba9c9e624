"""Reading settled days without ``FINAL``.

``FINAL`` is what a read pays at volume: it reads the version columns of every row in range, and
it keeps the engine from filtering on other columns before reading the rest (``PREWHERE`` may
only use the sorting key under ``FINAL``). Measured at 10^7 events, a 7-day count by day went from
169 to 102 ms without it, a chart from 185 to 128 ms, an export page of 5,000 from 100 to 13 ms.

A day (a partition, ``schema.DAY_PARTITION``) that is one part holds one version per key: a
merge keeps the newest version of each key, and an insert is merged the same way before it is
written (``optimize_on_insert``, set for every statement). Tombstones are kept as the newest
version of their key, so such a day read without ``FINAL`` but with ``is_deleted = 0`` gives
exactly what ``FINAL`` gives. Such a day is *settled* until something is inserted into it.

``SettledDays`` knows which days are settled:
- it asks the engine (``system.parts``) at most every ``refresh_s`` seconds, on a read;
- every insert into ``events`` made through the executor it wraps (``watch``) marks the days of
  its rows unsettled when it starts, and again when it ends (a generation number each time);
- a read that used settled days is *checked* once its statement returned: if an insert into one of
  them started meanwhile, the caller reads again with ``FINAL`` (``SettledDays.valid``, ``read``);
- a refresh settles no day marked after the refresh was asked, so an insert that was running
  during the refresh keeps its day unsettled until the next one.
Background merges never make a settled day wrong (they only merge versions). What this cannot see
is an insert made by another process into the same events store. Nodes that share one (write
leases, ``leased.py``) therefore read without this, always with ``FINAL``. Without leases one
writer process per events store is the documented deployment (``store.py``); a write by another
process (the ``tracehive`` command run beside such a server on a shared ClickHouse) can be read as
its older version for up to ``refresh_s`` seconds, until the next refresh sees its part.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tracehive.query.event_query import DateRange
from tracehive.storage.clickhouse.executor import Executor, Params
from tracehive.storage.clickhouse.schema import EVENT_COLUMNS, MATERIALIZED_COLUMNS, MAX_START_MS

REFRESH_S = 1.0
_START = EVENT_COLUMNS.index("start_time")
DAY_MS = 86_400_000
_PARTS = ("SELECT partition_id, count() FROM system.parts WHERE active AND database = currentDatabase() "
          "AND table = 'events' GROUP BY partition_id")
# The columns of a row as a subquery gives them (``*`` leaves out the materialized ones).
_ALL = "*, " + ", ".join(MATERIALIZED_COLUMNS)

FINAL = "events FINAL"


def day_of(start_time: float) -> int:
    """``schema.DAY_PARTITION`` of a start time, as the engine computes it."""
    return int(min(max(float(start_time), 0.0), MAX_START_MS)) // DAY_MS


@dataclass(frozen=True, slots=True)
class Ticket:
    """What one read used: the days it read without ``FINAL`` and the generation it saw."""

    days: frozenset[int]
    generation: int


@dataclass(frozen=True, slots=True)
class Source:
    """The ``FROM`` of a read (``table``, our SQL) and the condition its ``WHERE`` must add (``live``)."""

    table: str
    live: str
    ticket: Ticket | None

    @classmethod
    def final(cls) -> Source:
        return cls(FINAL, "", None)


class SettledDays:
    def __init__(self, refresh_s: float = REFRESH_S) -> None:
        self._refresh_s = refresh_s
        self._settled: set[int] = set()
        self._known: set[int] = set()  # every day the engine or an insert told of
        # day -> generation of its last insert mark; kept (one number a day written to), since a
        # read still running checks against it.
        self._marked: dict[int, int] = {}
        self._generation = 0
        self._refreshed_at = -1e18
        self._refreshing: asyncio.Lock | None = None

    # Writes ------------------------------------------------------------------------------------

    def mark(self, days: Iterable[int]) -> None:
        self._generation += 1
        for day in days:
            self._marked[day] = self._generation
            self._known.add(day)
            self._settled.discard(day)

    def watch(self, ex: Executor) -> Executor:
        """``ex`` with every insert into ``events`` marking its days (before and after)."""
        return _Watched(ex, self)

    # Reads -------------------------------------------------------------------------------------

    async def refresh(self, ex: Executor, *, force: bool = False) -> None:
        """Ask the engine which days are one part (unless it was asked less than ``refresh_s``
        ago and not ``force``)."""
        if not force and time.monotonic() - self._refreshed_at < self._refresh_s:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        async with self._refreshing:
            if not force and time.monotonic() - self._refreshed_at < self._refresh_s:
                return
            asked = self._generation
            rows = await ex.query(_PARTS)
            single = {int(p) for p, n in rows if int(n) == 1}
            self._known = {int(p) for p, _ in rows} | {d for d, g in self._marked.items() if g > asked}
            self._settled = {d for d in single if self._marked.get(d, 0) <= asked}
            self._refreshed_at = time.monotonic()

    async def source(self, ex: Executor, lo: float | None, hi: float | None, *, mixed: bool) -> Source:
        """Where a read of start times in [lo, hi] (None: unbounded) takes its rows: ``events``
        without ``FINAL`` when every day in range is settled; when some are, and ``mixed`` (an
        aggregate, which reads every row in range anyway), the settled days without ``FINAL`` and
        the others with it; else ``events FINAL``."""
        await self.refresh(ex)
        first = day_of(lo) if lo is not None else 0
        last = day_of(hi) if hi is not None else day_of(MAX_START_MS)
        days = {d for d in self._known if first <= d <= last}  # the days that hold rows
        settled = frozenset(days & self._settled)
        ticket = Ticket(settled, self._generation)
        if not settled:
            return Source.final()
        if settled == days:
            return Source("events", " AND is_deleted = 0", ticket)
        if not mixed:
            return Source.final()
        # Partition ids are the days' decimal text (integers of ours, not input).
        listed = "[" + ",".join(f"'{d}'" for d in sorted(settled)) + "]"
        table = (f"(SELECT {_ALL} FROM events WHERE _partition_id IN {listed} AND is_deleted = 0 "
                 f"UNION ALL SELECT {_ALL} FROM events FINAL WHERE _partition_id NOT IN {listed})")
        return Source(table, "", ticket)

    def is_settled(self, day: int) -> bool:
        return day in self._settled

    def valid(self, source: Source) -> bool:
        """Whether no insert into a day ``source`` read without ``FINAL`` started since it was made."""
        ticket = source.ticket
        if ticket is None:
            return True
        return not any(self._marked.get(d, 0) > ticket.generation for d in ticket.days)


class _Watched:
    """An executor whose inserts into ``events`` mark their days in a ``SettledDays``."""

    def __init__(self, inner: Executor, days: SettledDays) -> None:
        self._inner, self._days = inner, days

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        if table != "events":
            return await self._inner.insert(table, columns, rows)
        at = list(columns).index("start_time") if tuple(columns) != EVENT_COLUMNS else _START
        days = {day_of(r[at]) for r in rows}
        self._days.mark(days)
        try:
            return await self._inner.insert(table, columns, rows)
        finally:
            self._days.mark(days)

    async def command(self, sql: str, params: Params | None = None) -> None:
        await self._inner.command(sql, params)

    async def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return await self._inner.query(sql, params)

    async def query_raw(self, sql: str, params: Params | None, fmt: str) -> bytes:
        return await self._inner.query_raw(sql, params, fmt)

    async def close(self) -> None:
        await self._inner.close()

    def describe(self) -> str:
        return self._inner.describe()


T = TypeVar("T")


def bounds(date_range: DateRange | None) -> tuple[float | None, float | None]:
    """(lo, hi) of a query's date range for ``read`` (None: unbounded)."""
    return (date_range.start, date_range.end) if date_range is not None else (None, None)


async def read(days: SettledDays | None, ex: Executor, lo: float | None, hi: float | None,
               run: Callable[[Source], Awaitable[T]], *, mixed: bool = False) -> T:
    """``run`` over the source ``days`` gives for [lo, hi] (``events FINAL`` when ``days`` is
    None), again over ``events FINAL`` if an insert into a day it read without ``FINAL`` began
    meanwhile."""
    if days is None:
        return await run(Source.final())
    source = await days.source(ex, lo, hi, mixed=mixed)
    result = await run(source)
    if not days.valid(source):
        result = await run(Source.final())
    return result
