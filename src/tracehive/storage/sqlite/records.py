"""Records (datasets, datapoints, runs, configurations, metric definitions) on SQLite.

One table, keyed by (project_id, kind, record_id), the body a JSON document. Writes go through
the one writer thread, so an update's read-modify-write runs alone (see ``storage/base.py``).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson

from tracehive.model.scope import Scope
from tracehive.storage.records import Record, RecordKind, RecordUpdate

T = TypeVar("T")

_COLUMNS = "kind, record_id, name, body, created_at, updated_at"


def _record(row: Sequence[Any]) -> Record:
    return Record(RecordKind(row[0]), row[1], row[2], orjson.loads(row[3]), row[4], row[5])


def _now() -> int:
    return int(time.time() * 1000)


class SQLiteRecords:
    """The record half of ``ControlStore`` for ``SQLiteStore`` (which provides the lanes)."""

    _write: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _read: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]
    _read_light: Callable[[Callable[[sqlite3.Connection], Any]], Awaitable[Any]]

    async def create_record(self, scope: Scope, kind: RecordKind, record_id: str, name: str | None,
                            body: dict[str, Any]) -> Record | None:
        now = _now()
        encoded = orjson.dumps(body).decode()

        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "INSERT INTO records (project_id, kind, record_id, name, body, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (scope.project_id, kind.value, record_id, name, encoded, now, now),
            )
            return cur.rowcount == 1

        if not await self._write(job):
            return None
        return Record(kind, record_id, name, orjson.loads(encoded), now, now)

    async def import_records(self, scope: Scope, records: Sequence[Record]) -> None:
        rows = [(scope.project_id, r.kind.value, r.id, r.name, orjson.dumps(r.body).decode(), r.created_at,
                 r.updated_at) for r in records]

        def job(conn: sqlite3.Connection) -> None:
            conn.executemany(
                "INSERT INTO records (project_id, kind, record_id, name, body, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (project_id, kind, record_id) DO UPDATE SET "
                "name = excluded.name, body = excluded.body, created_at = excluded.created_at, "
                "updated_at = excluded.updated_at",
                rows,
            )

        await self._write(job)

    async def get_record(self, scope: Scope, kind: RecordKind, record_id: str) -> Record | None:
        row = await self._read_light(lambda c: c.execute(
            f"SELECT {_COLUMNS} FROM records WHERE project_id = ? AND kind = ? AND record_id = ?",
            (scope.project_id, kind.value, record_id),
        ).fetchone())
        return None if row is None else _record(row)

    async def list_records(self, scope: Scope, kind: RecordKind, *, ids: Sequence[str] | None = None,
                           name: str | None = None, limit: int = 10_000) -> list[Record]:
        sql = f"SELECT {_COLUMNS} FROM records WHERE project_id = ? AND kind = ?"
        params: list[Any] = [scope.project_id, kind.value]
        if ids is not None:
            if not ids:
                return []
            sql += " AND record_id IN (SELECT value FROM json_each(?))"
            params.append(orjson.dumps(list(ids)).decode())
        if name is not None:
            sql += " AND name = ?"
            params.append(name)
        sql += " ORDER BY created_at, record_id LIMIT ?"
        params.append(limit)
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [_record(r) for r in rows]

    async def update_record(self, scope: Scope, kind: RecordKind, record_id: str,
                            update: RecordUpdate) -> Record | None:
        key = (scope.project_id, kind.value, record_id)

        def job(conn: sqlite3.Connection) -> Record | None:
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM records WHERE project_id = ? AND kind = ? AND record_id = ?", key
            ).fetchone()
            if row is None:
                return None
            stored = _record(row)
            change = update(stored)
            if change is None:
                return stored
            now = max(_now(), stored.updated_at)
            encoded = orjson.dumps(change.body).decode()
            conn.execute(
                "UPDATE records SET name = ?, body = ?, updated_at = ? "
                "WHERE project_id = ? AND kind = ? AND record_id = ?",
                (change.name, encoded, now, *key),
            )
            return Record(kind, record_id, change.name, orjson.loads(encoded), stored.created_at, now)

        result: Record | None = await self._write(job)
        return result

    async def delete_record(self, scope: Scope, kind: RecordKind, record_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute("DELETE FROM records WHERE project_id = ? AND kind = ? AND record_id = ?",
                               (scope.project_id, kind.value, record_id))
            return cur.rowcount > 0

        result: bool = await self._write(job)
        return result
