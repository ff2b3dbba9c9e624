"""Writes to an events store that several nodes share (``base.WriteLeases``, from the control store).

ClickHouse has no transactions, so this store's write rules are read-modify-write (``store.py``):
exact under one writer, wrong under two that interleave. With leases, a write runs while its node
holds the lease of every project it writes to, on every node alike:
- its read, its rules and its inserts are one step across the nodes, as they are within one;
- its versions are ordered past every version any node published for those projects
  (``WriteLease.floor``): nodes' clocks need not agree, and a version a dead node inserted but
  never got to release is still beneath the next one (it was published first: ``_Publishing``);
- what this node remembers of those projects' session rows (``session_rows.py``) is forgotten when
  another node wrote to them since (``WriteLease.others_wrote``).
Reads take no lease; they see each insert whole, as with one writer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import asynccontextmanager
from typing import Any

from tracehive.storage.base import WriteLeases
from tracehive.storage.clickhouse.executor import Executor, Params
from tracehive.storage.clickhouse.rows import VersionClock
from tracehive.storage.clickhouse.session_rows import SessionRows


@asynccontextmanager
async def held(ex: Executor, leases: WriteLeases | None, project_ids: Collection[str], clock: VersionClock,
               sessions: SessionRows) -> AsyncIterator[Executor]:
    """``ex`` to write ``project_ids`` with: as it is without ``leases`` (one writer), else under
    their leases, publishing before every write statement."""
    if leases is None:
        yield ex
        return
    async with leases.hold(project_ids) as lease:
        clock.advance(lease.floor)
        if lease.others_wrote:
            sessions.clear()
        yield _Publishing(ex, leases, clock)


class _Publishing:
    """An executor whose write statements first publish the clock's last version: every version
    in the rows being written was drawn from ``clock`` before, so none is past it."""

    def __init__(self, inner: Executor, leases: WriteLeases, clock: VersionClock) -> None:
        self._inner, self._leases, self._clock = inner, leases, clock

    async def insert(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> int:
        await self._leases.publish(self._clock.last)
        return await self._inner.insert(table, columns, rows)

    async def command(self, sql: str, params: Params | None = None) -> None:
        await self._leases.publish(self._clock.last)
        await self._inner.command(sql, params)

    async def query(self, sql: str, params: Params | None = None) -> list[tuple[Any, ...]]:
        return await self._inner.query(sql, params)

    async def query_raw(self, sql: str, params: Params | None, fmt: str) -> bytes:
        return await self._inner.query_raw(sql, params, fmt)

    async def close(self) -> None:
        await self._inner.close()

    def describe(self) -> str:
        return self._inner.describe()
