"""What is specific to the SQLite backend: pragmas, migrations, group commit."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid
from pathlib import Path

import pytest

from tracehive.model.event import Event
from tracehive.model.scope import KeyKind
from tracehive.storage.sqlite import SQLiteStore
from tracehive.storage.sqlite.migrations import MIGRATIONS

pytestmark = pytest.mark.anyio


def _event(session_id: str, i: int) -> Event:
    return Event(event_id=str(uuid.uuid4()), session_id=session_id, parent_id=session_id, event_type="tool",
                 event_name=f"e{i}", source="test", start_time=i, end_time=i + 1, duration=1, inputs={"i": i})


async def _scope(store: SQLiteStore):  # type: ignore[no-untyped-def]
    project, _ = await store.ensure_project("p")
    _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
    return await store.resolve_key(key)


async def test_wal_and_full_sync_and_versioned_migrations(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    await store.open()  # re-opening applies nothing twice
    await store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    versions = [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY version")]
    assert versions == [step for step, _ in MIGRATIONS]
    conn.close()
    writer_conn = SQLiteStore(path)
    await writer_conn.open()
    sync = writer_conn.writer._conn.execute("PRAGMA synchronous").fetchone()[0]  # type: ignore[union-attr]
    await writer_conn.close()
    assert sync == 2  # FULL


async def test_concurrent_writes_share_commits(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.open()
    try:
        scope = await _scope(store)
        sid = str(uuid.uuid4())
        before = store.writer.commits
        await asyncio.gather(*(store.write_events(scope, [_event(sid, i)]) for i in range(200)))
        commits = store.writer.commits - before
        events = await store.session_events(scope, sid)
        assert len(events) == 201  # 200 events and their implicit session
        # Group commit: many requests per transaction and fsync, not one each.
        assert commits < 200
    finally:
        await store.close()


async def test_acknowledged_writes_survive_reopen_without_clean_close(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    await store.open()
    scope = await _scope(store)
    sid = str(uuid.uuid4())
    await store.write_events(scope, [_event(sid, 1)])
    # Read the file with a fresh connection while the store is still open: the commit is visible
    # on disk (WAL) without any close or checkpoint.
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT count(*) FROM events WHERE session_id = ?", (sid,)).fetchone()[0] == 2
    conn.close()
    await store.close()


def test_children_of_one_event_are_found_through_the_parent_index(tmp_path: Path) -> None:
    # Reading one event completes its children_ids; the query must use events_by_parent, not walk
    # the whole project in time order (bench/peers.py measured 14 ms per GET at 12k events).
    from tracehive.storage.sqlite.migrations import migrate
    from tracehive.storage.sqlite.writes import CHILDREN_SQL

    conn = sqlite3.connect(tmp_path / "plan.db")
    migrate(conn)
    plan = " ".join(row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + CHILDREN_SQL, ("p", "x", "x")))
    assert "events_by_parent" in plan and "events_chart_duration" not in plan, plan


async def test_a_batch_larger_than_one_statement_upserts_in_order(tmp_path: Path) -> None:
    """Rows go in multi-row INSERTs of ROWS_PER_STATEMENT: a batch spanning several, naming one
    id in the first and again in the last, stores every event once and merges the repeat as a
    re-send (its metadata merged into the first's)."""
    from tracehive.storage.sqlite.writes import ROWS_PER_STATEMENT

    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.open()
    try:
        scope = await _scope(store)
        sid = str(uuid.uuid4())
        events = [_event(sid, i) for i in range(ROWS_PER_STATEMENT * 2 + 3)]
        events[0].metadata = {"first": 1}
        repeat = _event(sid, 999)
        repeat.event_id, repeat.metadata = events[0].event_id, {"again": 2}
        await store.write_events(scope, [*events, repeat])
        stored = await store.session_events(scope, sid)
        assert len(stored) == len(events) + 1  # every event once, and the session
        first = next(e for e in stored if e.event_id == events[0].event_id)
        assert first.metadata == {"first": 1, "again": 2} and first.event_name == "e999"
        session = next(e for e in stored if e.event_type == "session")
        assert (session.start_time, session.end_time) == (0, 1000)
    finally:
        await store.close()


async def test_statements_stay_within_sqlites_parameter_limit(tmp_path: Path) -> None:
    """A SQLite built with fewer parameters a statement (999 before 3.32) still takes any batch:
    the multi-row INSERTs shrink to fit."""
    store = SQLiteStore(tmp_path / "db.sqlite")
    await store.open()
    try:
        scope = await _scope(store)
        conn = store.writer._conn  # type: ignore[attr-defined]
        if not hasattr(conn, "setlimit"):
            pytest.skip("sqlite3.Connection.setlimit needs Python 3.11")
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 100)  # four rows of 22 a statement
        sid = str(uuid.uuid4())
        await store.write_events(scope, [_event(sid, i) for i in range(30)])
        assert len(await store.session_events(scope, sid)) == 31
    finally:
        await store.close()
