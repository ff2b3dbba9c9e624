"""Records (datasets, datapoints, runs, configurations, metric definitions) on PostgreSQL.

Creation is ``INSERT .. ON CONFLICT DO NOTHING``; an update reads the row ``FOR UPDATE`` and
writes the update function's result under that lock, so concurrent updates of one record from
any number of nodes apply one after the other (see ``storage/base.py``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection

from tracehive.model.scope import Scope
from tracehive.storage.postgres.rows import json_text, text
from tracehive.storage.records import Record, RecordKind, RecordUpdate

Conn = AsyncConnection[Any]

_COLUMNS = "kind, record_id, name, body, created_at, updated_at"


def _record(row: Sequence[Any]) -> Record:
    return Record(RecordKind(row[0]), row[1], row[2], orjson.loads(row[3]), int(row[4]), int(row[5]))


def _now() -> int:
    return int(time.time() * 1000)


class PostgresRecords:
    """The record half of ``ControlStore`` for ``PostgresStore`` (which provides the lanes)."""

    _write: Callable[..., Awaitable[Any]]
    _read: Callable[..., Awaitable[Any]]

    async def create_record(self, scope: Scope, kind: RecordKind, record_id: str, name: str | None,
                            body: dict[str, Any]) -> Record | None:
        now = _now()
        encoded = json_text(body)

        async def job(conn: Conn) -> bool:
            cur = await conn.execute(
                "INSERT INTO records (project_id, kind, record_id, name, body, created_at, updated_at) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                (scope.project_id, kind.value, text(record_id), text(name), encoded, now, now),
            )
            return cur.rowcount == 1

        if not await self._write(job):
            return None
        return Record(kind, text(record_id) or record_id, text(name), orjson.loads(encoded), now, now)

    async def import_records(self, scope: Scope, records: Sequence[Record]) -> None:
        # Sorted by key: concurrent imports lock the rows they share in one order (no deadlock).
        rows = sorted((scope.project_id, r.kind.value, text(r.id), text(r.name), json_text(r.body), r.created_at,
                       r.updated_at) for r in records)

        async def job(conn: Conn) -> None:
            async with conn.cursor() as cur:
                await cur.executemany(
                    "INSERT INTO records (project_id, kind, record_id, name, body, created_at, updated_at) "
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (project_id, kind, record_id) DO UPDATE SET "
                    "name = excluded.name, body = excluded.body, created_at = excluded.created_at, "
                    "updated_at = excluded.updated_at",
                    rows,
                )

        await self._write(job)

    async def get_record(self, scope: Scope, kind: RecordKind, record_id: str) -> Record | None:
        async def fn(conn: Conn) -> Any:
            cur = await conn.execute(
                f"SELECT {_COLUMNS} FROM records WHERE project_id = %s AND kind = %s AND record_id = %s",
                (scope.project_id, kind.value, text(record_id)),
            )
            return await cur.fetchone()

        row = await self._read(fn, snapshot=False, heavy=False)
        return None if row is None else _record(row)

    async def list_records(self, scope: Scope, kind: RecordKind, *, ids: Sequence[str] | None = None,
                           name: str | None = None, limit: int = 10_000) -> list[Record]:
        sql = f"SELECT {_COLUMNS} FROM records WHERE project_id = %s AND kind = %s"
        params: list[Any] = [scope.project_id, kind.value]
        if ids is not None:
            if not ids:
                return []
            sql += " AND record_id = ANY(%s)"
            params.append([text(i) for i in ids])
        if name is not None:
            sql += " AND name = %s"
            params.append(text(name))
        sql += " ORDER BY created_at, record_id LIMIT %s"
        params.append(limit)

        async def fn(conn: Conn) -> Any:
            return await (await conn.execute(sql, params)).fetchall()

        return [_record(r) for r in await self._read(fn)]

    async def update_record(self, scope: Scope, kind: RecordKind, record_id: str,
                            update: RecordUpdate) -> Record | None:
        key = (scope.project_id, kind.value, text(record_id))

        async def job(conn: Conn) -> Record | None:
            row = await (await conn.execute(
                f"SELECT {_COLUMNS} FROM records WHERE project_id = %s AND kind = %s AND record_id = %s FOR UPDATE",
                key,
            )).fetchone()
            if row is None:
                return None
            stored = _record(row)
            change = update(stored)
            if change is None:
                return stored
            now = max(_now(), stored.updated_at)
            encoded = json_text(change.body)
            await conn.execute(
                "UPDATE records SET name = %s, body = %s, updated_at = %s "
                "WHERE project_id = %s AND kind = %s AND record_id = %s",
                (text(change.name), encoded, now, *key),
            )
            return Record(kind, stored.id, text(change.name), orjson.loads(encoded), stored.created_at, now)

        result: Record | None = await self._write(job)
        return result

    async def delete_record(self, scope: Scope, kind: RecordKind, record_id: str) -> bool:
        async def job(conn: Conn) -> bool:
            cur = await conn.execute(
                "DELETE FROM records WHERE project_id = %s AND kind = %s AND record_id = %s",
                (scope.project_id, kind.value, text(record_id)),
            )
            return cur.rowcount > 0

        result: bool = await self._write(job)
        return result
