"""Bounded deletes on SQLite: retention (``EventStore.prune_events``) and a project's events
(``delete_project_events``). Each call is one short write transaction on the writer thread, so
ingest interleaves with a long prune instead of waiting for it."""

from __future__ import annotations

import sqlite3

from tracehive.storage.base import Pruned


def _forget(conn: sqlite3.Connection, project_key: int, event_ids: list[str]) -> None:
    """The aliases owned by deleted events."""
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i:i + 500]
        conn.execute(f"DELETE FROM event_aliases WHERE project_key = ? AND event_id IN ({','.join('?' * len(chunk))})",
                     (project_key, *chunk))


def prune(conn: sqlite3.Connection, project_key: int, before: float, limit: int) -> Pruned:
    # The oldest events first, from the time index (type is in it: no table read to choose).
    old = conn.execute(
        "SELECT rowid, event_id, session_id FROM events INDEXED BY events_timeline "
        "WHERE project_key = ? AND start_time < ? AND event_type <> 'session' ORDER BY start_time LIMIT ?",
        (project_key, before, limit),
    ).fetchall()
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(r[0],) for r in old])
    _forget(conn, project_key, [r[1] for r in old])
    sessions, shrunk = 0, 0
    for sid in dict.fromkeys(r[2] for r in old):
        first, left = conn.execute(
            "SELECT min(start_time), count(*) FROM events WHERE project_key = ? AND session_id = ? "
            "AND event_type <> 'session'", (project_key, sid)).fetchone()
        if left == 0:
            sessions += conn.execute(
                "DELETE FROM events WHERE project_key = ? AND event_id = ? AND event_type = 'session' "
                "AND start_time < ?", (project_key, sid, before)).rowcount
        else:
            shrunk += conn.execute(
                "UPDATE events SET start_time = ?, duration = end_time - ? WHERE project_key = ? AND event_id = ? "
                "AND event_type = 'session' AND start_time < ?", (first, first, project_key, sid, first)).rowcount
    # Sessions that never had an event (a start alone) and started before the cut.
    room = max(0, limit - len(old))
    if room:
        empty = [r[0] for r in conn.execute(
            "SELECT s.event_id FROM events s INDEXED BY events_sessions WHERE s.project_key = ? "
            "AND s.event_type = 'session' AND s.start_time < ? AND NOT EXISTS (SELECT 1 FROM events c "
            "WHERE c.project_key = s.project_key AND c.session_id = s.event_id AND c.event_type <> 'session') "
            "ORDER BY s.start_time LIMIT ?", (project_key, before, room))]
        conn.executemany("DELETE FROM events WHERE project_key = ? AND event_id = ?", [(project_key, e) for e in empty])
        _forget(conn, project_key, empty)
        sessions += len(empty)
    return Pruned(len(old), sessions, shrunk)


def delete_project_events(conn: sqlite3.Connection, project_key: int, limit: int) -> int:
    rows = conn.execute("SELECT rowid, event_id FROM events WHERE project_key = ? LIMIT ?", (project_key, limit)).fetchall()
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(r[0],) for r in rows])
    _forget(conn, project_key, [r[1] for r in rows])
    if not rows:
        conn.execute("DELETE FROM pending_updates WHERE project_key = ?", (project_key,))
        conn.execute("DELETE FROM event_aliases WHERE project_key = ?", (project_key,))
    return len(rows)
