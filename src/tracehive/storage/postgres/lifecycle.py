"""Projects on PostgreSQL (their settings, updates, removal) and the bounded deletes of
retention (``prune_events``) and of a project's events (``delete_project_events``): the same
rules as ``storage/sqlite/projects.py`` and ``retention.py``, each call one short transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from psycopg import AsyncConnection

from tracehive.storage.base import Project, Pruned
from tracehive.storage.postgres.rows import text

Conn = AsyncConnection[Any]

PROJECT_COLUMNS = ("p.project_id, p.name, p.org_id, p.workspace_id, p.created_at, "
                   "coalesce(s.retention_days, 0), coalesce(s.redact, '[]')")
PROJECTS = "projects p LEFT JOIN project_settings s USING (project_id)"


def project_of(row: Sequence[Any]) -> Project:
    return Project(row[0], row[1], row[2], row[3], int(row[4]), int(row[5]), tuple(orjson.loads(row[6])))


async def find(conn: Conn, name: str) -> Project | None:
    cur = await conn.execute(f"SELECT {PROJECT_COLUMNS} FROM {PROJECTS} WHERE p.name = %s", (text(name),))
    row = await cur.fetchone()
    return project_of(row) if row else None


async def update(conn: Conn, name: str, retention_days: int | None, redact: Sequence[str] | None) -> Project | None:
    found = await find(conn, name)
    if found is None:
        return None
    days = found.retention_days if retention_days is None else retention_days
    rules = found.redact if redact is None else tuple(redact)
    await conn.execute(
        "INSERT INTO project_settings (project_id, retention_days, redact) VALUES (%s, %s, %s) "
        "ON CONFLICT (project_id) DO UPDATE SET retention_days = excluded.retention_days, redact = excluded.redact",
        (found.project_id, days, orjson.dumps(list(rules)).decode()),
    )
    return await find(conn, name)


async def remove(conn: Conn, project_id: str) -> tuple[int, int]:
    keys = (await conn.execute("DELETE FROM api_keys WHERE project_id = %s", (project_id,))).rowcount
    records = (await conn.execute("DELETE FROM records WHERE project_id = %s", (project_id,))).rowcount
    await conn.execute("DELETE FROM project_settings WHERE project_id = %s", (project_id,))
    await conn.execute("DELETE FROM projects WHERE project_id = %s", (project_id,))
    return keys, records


async def prune(conn: Conn, project_id: str, before: float, limit: int) -> Pruned:
    cur = await conn.execute(
        "DELETE FROM events WHERE project_id = %s AND event_id IN (SELECT event_id FROM events "
        "WHERE project_id = %s AND start_time < %s AND event_type <> 'session' ORDER BY start_time LIMIT %s) "
        "RETURNING event_id, session_id",
        (project_id, project_id, before, limit),
    )
    old = await cur.fetchall()
    await conn.execute("DELETE FROM event_aliases WHERE project_id = %s AND event_id = ANY(%s)",
                       (project_id, [r[0] for r in old]))
    sessions, shrunk = 0, 0
    for sid in sorted({r[1] for r in old}):  # sorted: two pruners lock sessions in one order
        row = await (await conn.execute(
            "SELECT min(start_time), count(*) FROM events WHERE project_id = %s AND session_id = %s "
            "AND event_type <> 'session'", (project_id, sid))).fetchone()
        first, left = row if row else (None, 0)
        if left == 0:
            sessions += (await conn.execute(
                "DELETE FROM events WHERE project_id = %s AND event_id = %s AND event_type = 'session' "
                "AND start_time < %s", (project_id, sid, before))).rowcount
        else:
            shrunk += (await conn.execute(
                "UPDATE events SET start_time = %s, duration = end_time - %s WHERE project_id = %s "
                "AND event_id = %s AND event_type = 'session' AND start_time < %s",
                (first, first, project_id, sid, first))).rowcount
    room = max(0, limit - len(old))
    if room:
        cur = await conn.execute(
            "DELETE FROM events WHERE project_id = %s AND event_id IN (SELECT s.event_id FROM events s "
            "WHERE s.project_id = %s AND s.event_type = 'session' AND s.start_time < %s AND NOT EXISTS "
            "(SELECT 1 FROM events c WHERE c.project_id = s.project_id AND c.session_id = s.event_id "
            "AND c.event_type <> 'session') ORDER BY s.start_time LIMIT %s) RETURNING event_id",
            (project_id, project_id, before, room),
        )
        empty = [r[0] for r in await cur.fetchall()]
        await conn.execute("DELETE FROM event_aliases WHERE project_id = %s AND event_id = ANY(%s)",
                           (project_id, empty))
        sessions += len(empty)
    return Pruned(len(old), sessions, shrunk)


async def delete_project_events(conn: Conn, project_id: str, limit: int) -> int:
    cur = await conn.execute(
        "DELETE FROM events WHERE project_id = %s AND event_id IN (SELECT event_id FROM events "
        "WHERE project_id = %s LIMIT %s) RETURNING event_id", (project_id, project_id, limit))
    gone = [r[0] for r in await cur.fetchall()]
    await conn.execute("DELETE FROM event_aliases WHERE project_id = %s AND event_id = ANY(%s)", (project_id, gone))
    if not gone:
        await conn.execute("DELETE FROM pending_updates WHERE project_id = %s", (project_id,))
        await conn.execute("DELETE FROM event_aliases WHERE project_id = %s", (project_id,))
    return len(gone)
