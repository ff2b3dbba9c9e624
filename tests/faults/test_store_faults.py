"""The SQLite store under faults, in process: a full database, a lock held by another
connection, an event loop that went away. Each write either is stored and reported so, or is
refused with a retryable error and is not stored; the writer thread survives all of it."""

from __future__ import annotations

import asyncio
import sqlite3
import time
import uuid
from pathlib import Path

import pytest

from tracehive.model.errors import StorageFull, StoreUnavailable
from tracehive.model.event import Event
from tracehive.model.scope import KeyKind, Scope
from tracehive.storage.sqlite import SQLiteStore
from tracehive.storage.sqlite.writer import GroupCommitWriter

pytestmark = pytest.mark.anyio

MAX_DB_BYTES = 512 * 1024


def _events(session_id: str, n: int, padding: int = 1000) -> list[Event]:
    return [
        Event(event_id=str(uuid.uuid4()), session_id=session_id, parent_id=session_id, event_type="tool",
              event_name=f"e{i}", source="test", start_time=i, end_time=i + 1, duration=1,
              inputs={"i": i}, metadata={"padding": "p" * padding})
        for i in range(n)
    ]  # fmt: skip


async def _scope(store: SQLiteStore) -> Scope:
    project, _ = await store.ensure_project("p")
    _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
    scope = await store.resolve_key(key)
    assert scope is not None
    return scope


async def _stored_ids(store: SQLiteStore, scope: Scope, session_id: str) -> set[str]:
    return {e.event_id for e in await store.session_events(scope, session_id) if e.event_type != "session"}


async def _fill(store: SQLiteStore, scope: Scope, session_id: str) -> tuple[set[str], StorageFull]:
    """Write batches until the cap refuses one; returns the stored ids and the refusal."""
    stored: set[str] = set()
    for _ in range(1000):
        batch = _events(session_id, 10)
        try:
            await store.write_events(scope, batch)
        except StorageFull as full:
            return stored, full
        stored |= {e.event_id for e in batch}
    raise AssertionError("the store never filled up")


async def test_a_full_store_refuses_writes_keeps_reads_and_takes_writes_again_after_a_delete(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "db.sqlite", max_db_bytes=MAX_DB_BYTES)
    await store.open()
    try:
        scope = await _scope(store)
        keep, scratch = str(uuid.uuid4()), str(uuid.uuid4())
        kept, _ = await _fill(store, scope, keep)
        scratched, full = await _fill(store, scope, scratch)  # already full: nothing more fits
        assert not scratched
        assert full.status_code == 503 and full.error_code == "STORAGE_FULL"
        assert int(full.headers()["Retry-After"]) >= 5
        assert "full" in full.message
        assert await _stored_ids(store, scope, keep) == kept  # reads work, nothing acknowledged lost
        conn = sqlite3.connect(tmp_path / "db.sqlite")
        size = conn.execute("PRAGMA page_count").fetchone()[0] * conn.execute("PRAGMA page_size").fetchone()[0]
        conn.close()
        assert size <= MAX_DB_BYTES

        # Deleting frees pages, which later writes reuse: no reopen needed.
        await store.delete_session(scope, keep)
        again = _events(scratch, 10)
        await store.write_events(scope, again)
        assert await _stored_ids(store, scope, scratch) == {e.event_id for e in again}
    finally:
        await store.close()


async def test_at_the_full_edge_each_concurrent_write_is_either_stored_or_refused(tmp_path: Path) -> None:
    """SQLite rolls back the whole group transaction on SQLITE_FULL: no write of that group may be
    reported as stored, and none that was reported refused may be stored."""
    store = SQLiteStore(tmp_path / "db.sqlite", max_db_bytes=MAX_DB_BYTES)
    await store.open()
    try:
        scope = await _scope(store)
        session = str(uuid.uuid4())
        await _fill(store, scope, session)
        await store.delete_session(scope, session)  # room for a part of what follows
        batches = [_events(session, 5) for _ in range(60)]
        results = await asyncio.gather(*(store.write_events(scope, b) for b in batches), return_exceptions=True)
        stored = await _stored_ids(store, scope, session)
        ok = [b for b, r in zip(batches, results) if r is None]
        refused = [b for b, r in zip(batches, results) if isinstance(r, StorageFull)]
        assert len(ok) + len(refused) == len(batches), [r for r in results if r is not None and not isinstance(r, StorageFull)]
        assert ok and refused, (len(ok), len(refused))
        assert {e.event_id for b in ok for e in b} == stored
    finally:
        await store.close()


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    """Another connection (as another process would) holding the database's write lock."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    return conn


async def test_a_write_that_cannot_get_the_lock_is_withdrawn_after_the_timeout(tmp_path: Path) -> None:
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path, write_timeout=0.5)
    await store.open()
    try:
        scope = await _scope(store)
        session = str(uuid.uuid4())
        locker = _hold_write_lock(path)
        withdrawn = _events(session, 3)
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as refused:
            await store.write_events(scope, withdrawn)
        took = time.monotonic() - started
        assert 0.45 <= took < 2.0, took
        assert refused.value.status_code == 503 and "not stored" in refused.value.message
        # The same rule from a thread without an event loop.
        started = time.monotonic()
        with pytest.raises(StoreUnavailable, match="not stored"):
            await asyncio.to_thread(store.writer.run_sync, lambda conn: conn.execute("SELECT 1"), 0.5)
        assert time.monotonic() - started < 2.0
        locker.execute("ROLLBACK")
        locker.close()

        # The writer takes the lock as soon as it is free; the withdrawn job is not run then.
        later = _events(session, 3)
        await store.write_events(scope, later)
        assert await _stored_ids(store, scope, session) == {e.event_id for e in later}
    finally:
        await store.close()


async def test_a_lock_held_past_the_busy_timeout_fails_the_write_as_retryable(tmp_path: Path) -> None:
    """Without a write timeout, the writer gives up on the lock after SQLite's busy timeout (5 s)
    and answers the group with a retryable 503 naming the lock, not a 500."""
    path = tmp_path / "db.sqlite"
    store = SQLiteStore(path)
    await store.open()
    try:
        scope = await _scope(store)
        session = str(uuid.uuid4())
        locker = _hold_write_lock(path)
        try:
            with pytest.raises(StoreUnavailable) as refused:
                await store.write_events(scope, _events(session, 2))
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        assert refused.value.error_code == "STORE_UNAVAILABLE" and "locked" in refused.value.message
        assert refused.value.headers()["Retry-After"] == "1"
        after = _events(session, 2)
        await store.write_events(scope, after)
        assert await _stored_ids(store, scope, session) == {e.event_id for e in after}
    finally:
        await store.close()


def test_the_writer_survives_an_event_loop_that_closed_before_its_answer(tmp_path: Path) -> None:
    """A request's loop may be gone when its group commits (shutdown, a CLI's asyncio.run): the
    writer must not die of it, or every later write would wait forever."""
    path = tmp_path / "db.sqlite"
    SQLiteStore(path)  # nothing; the writer works on any SQLite file
    writer = GroupCommitWriter(path)
    writer.start()
    try:
        def slow(conn: sqlite3.Connection) -> int:
            time.sleep(0.3)
            conn.execute("CREATE TABLE IF NOT EXISTS t (x)")
            return 1

        async def submit_and_leave() -> None:
            writer.submit(slow)  # the loop closes before the job is done

        asyncio.run(submit_and_leave())
        time.sleep(0.6)  # the writer answers the closed loop meanwhile

        async def submit_and_wait() -> int:
            result = await asyncio.wait_for(writer.submit(lambda conn: conn.execute("INSERT INTO t VALUES (2)").rowcount), 5)
            return int(result)

        assert asyncio.run(submit_and_wait()) == 1
    finally:
        writer.stop()
