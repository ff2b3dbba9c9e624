"""A consistent copy of a live SQLite database, and the checks a restore runs on one.

``VACUUM INTO`` reads the database inside one read transaction: the copy holds exactly what was
committed when it began, and in WAL mode a reader never blocks the writer, so a running server
keeps acknowledging writes while the copy is made (the online backup API, by contrast, restarts
each time another connection writes, and may never finish under steady ingest). The copy is
compact (vacuumed) and a single file: no WAL beside it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tracehive.storage.sqlite.connection import BUSY_TIMEOUT_MS


def _open(path: Path, *, readonly: bool) -> sqlite3.Connection:
    # A plain connection, not connection.connect(): that one switches journal modes and installs
    # the writer's functions, and a copy being checked must not be changed.
    uri = f"file:{path}?mode=ro" if readonly else str(path)
    conn = sqlite3.connect(uri, uri=readonly, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return conn


def snapshot_into(database: Path, target: Path) -> None:
    """Write a consistent copy of ``database`` to ``target`` (which must not exist)."""
    conn = _open(database, readonly=False)
    try:
        conn.execute("VACUUM INTO ?", (str(target),))
    finally:
        conn.close()


def integrity(database: Path) -> str:
    """``PRAGMA integrity_check``'s verdict: ``"ok"``, or its first problems joined."""
    conn = _open(database, readonly=True)
    try:
        rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check(20)")]
    finally:
        conn.close()
    return "; ".join(rows)


def counts(database: Path) -> tuple[int, int]:
    """(events, projects) in a copy, for the report of a backup or a restore."""
    conn = _open(database, readonly=True)
    try:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        projects = conn.execute("SELECT count(*) FROM projects").fetchone()[0]
    finally:
        conn.close()
    return int(events), int(projects)


def schema_version(database: Path) -> int:
    """The newest migration applied to a copy (0 for a file with no migrations table)."""
    conn = _open(database, readonly=True)
    try:
        row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    except sqlite3.DatabaseError:
        return 0
    finally:
        conn.close()
    return int(row[0] or 0)
