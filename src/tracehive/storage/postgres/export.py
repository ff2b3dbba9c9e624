"""Export pages and keyset stream chunks on PostgreSQL (``compile.py`` builds their SQL), and the
one-snapshot rule the multi-statement reads share."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import AsyncConnection
from psycopg.pq import TransactionStatus

from tracehive.model.event import Event
from tracehive.query.event_query import EventQuery
from tracehive.storage.postgres.compile import CompiledStream, compile_export, compile_stream
from tracehive.storage.postgres.rows import row_to_event

Conn = AsyncConnection[Any]
# In rows of ``SELECT_COLUMNS``: where start_time and event_id are (the keyset of the stream).
_START_AT, _ID_AT = 6, 0


@asynccontextmanager
async def snapshot(conn: Conn) -> AsyncIterator[None]:
    """Statements run in here see one snapshot. Inside a transaction the caller owns (the store
    opens REPEATABLE READ, READ ONLY) nothing is done: the isolation level is the caller's. On an
    idle connection, a REPEATABLE READ, READ ONLY transaction is opened for the block."""
    if conn.info.transaction_status != TransactionStatus.IDLE:
        yield
        return
    async with conn.transaction():
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


async def export_page(conn: Conn, project_id: str, query: EventQuery) -> tuple[list[Event], int]:
    """One page of matches and the number of all matches, in one snapshot."""
    compiled = compile_export(project_id, query)
    async with snapshot(conn):
        cur = await conn.execute(compiled.count_sql, compiled.count_params)
        row = await cur.fetchone()
        total = int(row[0]) if row else 0
        if total <= query.offset:
            return [], total
        cur = await conn.execute(compiled.select_sql, compiled.select_params)
        rows = await cur.fetchall()
    return [row_to_event(r) for r in rows], total


def stream_pages(project_id: str, query: EventQuery) -> CompiledStream:
    """The keyset statements of ``Store.iter_events`` (see ``compile_stream``)."""
    return compile_stream(project_id, query)


async def stream_chunk(
    conn: Conn, pages: CompiledStream, after: tuple[Any, str] | None, chunk_size: int
) -> tuple[list[Event], tuple[Any, str] | None]:
    """The next ``chunk_size`` events of a stream (the first ones when ``after`` is None) and the
    keyset to pass as ``after`` for the chunk after them (None when there were no rows)."""
    sql, params = pages.first(chunk_size) if after is None else pages.after(*after, chunk_size)
    cur = await conn.execute(sql, params)
    rows = await cur.fetchall()
    last = (rows[-1][_START_AT], rows[-1][_ID_AT]) if rows else None
    return [row_to_event(r) for r in rows], last
