"""Projects on SQLite: their rows with their settings (retention, redaction), updates, and the
removal of a project's control data once its events are gone (``ControlStore.update_project``
and ``remove_project``)."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import orjson

from tracehive.storage.base import Project

# A project row with its settings; a project never given any has the defaults.
PROJECT_COLUMNS = ("p.project_id, p.name, p.org_id, p.workspace_id, p.created_at, "
                   "coalesce(s.retention_days, 0), coalesce(s.redact, '[]')")
PROJECTS = "projects p LEFT JOIN project_settings s USING (project_id)"


def project_of(row: Sequence[Any]) -> Project:
    return Project(row[0], row[1], row[2], row[3], row[4], int(row[5]), tuple(orjson.loads(row[6])))


def find(conn: sqlite3.Connection, name: str) -> Project | None:
    row = conn.execute(f"SELECT {PROJECT_COLUMNS} FROM {PROJECTS} WHERE p.name = ?", (name,)).fetchone()
    return project_of(row) if row else None


def update(conn: sqlite3.Connection, name: str, retention_days: int | None,
           redact: Sequence[str] | None) -> Project | None:
    found = find(conn, name)
    if found is None:
        return None
    days = found.retention_days if retention_days is None else retention_days
    rules = found.redact if redact is None else tuple(redact)
    conn.execute(
        "INSERT INTO project_settings (project_id, retention_days, redact) VALUES (?, ?, ?) "
        "ON CONFLICT (project_id) DO UPDATE SET retention_days = excluded.retention_days, redact = excluded.redact",
        (found.project_id, days, orjson.dumps(list(rules)).decode()),
    )
    return find(conn, name)


def remove(conn: sqlite3.Connection, project_id: str) -> tuple[int, int]:
    keys = conn.execute("DELETE FROM api_keys WHERE project_id = ?", (project_id,)).rowcount
    records = conn.execute("DELETE FROM records WHERE project_id = ?", (project_id,)).rowcount
    conn.execute("DELETE FROM project_settings WHERE project_id = ?", (project_id,))
    conn.execute("DELETE FROM projects WHERE project_id = ?", (project_id,))
    return keys, records
