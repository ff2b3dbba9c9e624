"""The events tables' small integer per project (migration 8), and the owner of a write.

Rows of ``events``, ``pending_updates`` and ``event_aliases`` carry ``project_key``, not the
36-character project id: every index of those tables is led by it, so each insert writes shorter
keys into smaller B-trees (issue #15). ``project_keys`` maps one to the other; a key is given once
and never changes nor is reused, so each process caches the mapping without invalidation.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from tracehive.model.scope import Scope

NO_ROWS = -1
"""The key read for a project that has none yet: it has no events, and no row matches -1."""


@dataclass(frozen=True, slots=True)
class Owner:
    """A scope as the events tables see it: the key for their rows, the ids for the events."""

    key: int
    project_id: str
    org_id: str
    workspace_id: str


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal (SQLite has no backslash escapes: quotes are doubled).
    Reads select the scope's project id as a constant instead of storing it in every row."""
    return "'" + value.replace("'", "''") + "'"


def give(conn: sqlite3.Connection, project_id: str) -> None:
    """Give the project a key if it has none (in the caller's transaction)."""
    conn.execute("INSERT OR IGNORE INTO project_keys (project_id) VALUES (?)", (project_id,))


class ProjectKeys:
    """The key of each project, read (or given) through the caller's connection and cached."""

    def __init__(self) -> None:
        self._keys: dict[str, int] = {}

    def for_write(self, conn: sqlite3.Connection, project_id: str) -> int:
        """The project's key, given now if it has none (inside the caller's write transaction)."""
        key = self._keys.get(project_id)
        if key is None:
            key = self._lookup(conn, project_id)
        if key is None:
            # Projects get their key when created (``give``); this covers one made otherwise. The
            # key is not cached: the job may still be rolled back, and the key given to another.
            give(conn, project_id)
            row = conn.execute("SELECT project_key FROM project_keys WHERE project_id = ?", (project_id,)).fetchone()
            key = int(row[0])
        return key

    def for_read(self, conn: sqlite3.Connection, project_id: str) -> int:
        """The project's key, or ``NO_ROWS`` for a project that never stored an event."""
        key = self._keys.get(project_id)
        if key is None:
            key = self._lookup(conn, project_id)
        return NO_ROWS if key is None else key

    def cached(self, project_id: str) -> int | None:
        return self._keys.get(project_id)

    def owner(self, conn: sqlite3.Connection, scope: Scope) -> Owner:
        return Owner(self.for_write(conn, scope.project_id), scope.project_id, scope.org_id, scope.workspace_id)

    def _lookup(self, conn: sqlite3.Connection, project_id: str) -> int | None:
        row = conn.execute("SELECT project_key FROM project_keys WHERE project_id = ?", (project_id,)).fetchone()
        if row is None:
            return None  # never cached: another process may give it a key at any moment
        self._keys[project_id] = int(row[0])
        return int(row[0])
