"""Bounded deletes on SQLite: retention (``EventStore.prune_events``) and a project's events
(``delete_project_events``). Each call is one short write transaction on the writer thread, so
ingest interleaves with a long prune instead of waiting for it."""

from __future__ import annotations

import sqlite3

from tracehive.storage.base import Pruned


def _forget(conn: sqlite3.Connection, project_id: str, event_ids: list[str]) -> None:
    """The aliases owned by deleted events."""
    for i in range(0, len(event_ids), 500):
        chunk = event_ids[i:i + 500]
        conn.execute(f"DELETE FROM event_aliases WHERE project_id = ? AND event_id IN ({','.join('?' * len(chunk))})",
                     (project_id, *chunk))


def prune(conn: sqlite3.Connection, project_id: str, before: float, limit: int) -> Pruned:
    # The oldest events first, from the time index (type is in it: no table read to choose).
    old = conn.execute(
        "SELECT rowid, event_id, session_id FROM events INDEXED BY events_timeline "
        "WHERE project_id = ? AND start_time < ? AND event_type <> 'session' ORDER BY start_time LIMIT ?",
        (project_id, before, limit),
    ).fetchall()
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(r[0],) for r in old])
    _forget(conn, project_id, [r[1] for r in old])
    sessions, shrunk = 0, 0
    for sid in dict.fromkeys(r[2] for r in old):
        first, left = conn.execute(
            "SELECT min(start_time), count(*) FROM events WHERE project_id = ? AND session_id = ? "
            "AND event_type <> 'session'", (project_id, sid)).fetchone()
        if left == 0:
            sessions += conn.execute(
                "DELETE FROM events WHERE project_id = ? AND event_id = ? AND event_type = 'session' "
                "AND start_time < ?", (project_id, sid, before)).rowcount
        else:
            shrunk += conn.execute(
                "UPDATE events SET start_time = ?, duration = end_time - ? WHERE project_id = ? AND event_id = ? "
                "AND event_type = 'session' AND start_time < ?", (first, first, project_id, sid, first)).rowcount
    # Sessions that never had an event (a start alone) and started before the cut.
    room = max(0, limit - len(old))
    if room:
        empty = [r[0] for r in conn.execute(
            "SELECT s.event_id FROM events s INDEXED BY events_sessions WHERE s.project_id = ? "
            "AND s.event_type = 'session' AND s.start_time < ? AND NOT EXISTS (SELECT 1 FROM events c "
            "WHERE c.project_id = s.project_id AND c.session_id = s.event_id AND c.event_type <> 'session') "
            "ORDER BY s.start_time LIMIT ?", (project_id, before, room))]
        conn.executemany("DELETE FROM events WHERE project_id = ? AND event_id = ?", [(project_id, e) for e in empty])
        _forget(conn, project_id, empty)
        sessions += len(empty)
    return Pruned(len(old), sessions, shrunk)


def delete_project_events(conn: sqlite3.Connection, project_id: str, limit: int) -> int:
    rows = conn.execute("SELECT rowid, event_id FROM events WHERE project_id = ? LIMIT ?", (project_id, limit)).fetchall()
    conn.executemany("DELETE FROM events WHERE rowid = ?", [(r[0],) for r in rows])
    _forget(conn, project_id, [r[1] for r in rows])
    if not rows:
        conn.execute("DELETE FROM pending_updates WHERE project_id = ?", (project_id,))
        conn.execute("DELETE FROM event_aliases WHERE project_id = ?", (project_id,))
    return len(rows)
