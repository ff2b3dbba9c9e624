"""What the PostgreSQL backend adds beyond the contract: migrations that many nodes may run at
once, the read time limit, bounded pending writes, unreachable databases, U+0000."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import psycopg
import pytest

from tests import pg
from tests.storage.test_contract import make_event, make_session, new_id, scope_for
from tracehive.model.errors import Overloaded, StoreUnavailable
from tracehive.query.filters import parse_export_request
from tracehive.storage.postgres import PostgresStore
from tracehive.storage.postgres.migrations import latest_version

pytestmark = pytest.mark.anyio


@pytest.fixture
def url() -> AsyncIterator[str]:
    with pg.fresh_database(migrated=False) as created:
        yield created


async def test_three_nodes_migrating_at_once_apply_each_step_once(url: str) -> None:
    versions = await asyncio.gather(*(PostgresStore(url).migrate() for _ in range(3)))
    assert versions == [latest_version()] * 3
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT version, count(*) FROM schema_migrations GROUP BY version ORDER BY version").fetchall()
        meta = conn.execute("SELECT key FROM meta ORDER BY key").fetchall()
    assert rows == [(v, 1) for v in range(1, latest_version() + 1)]
    assert meta == [("org_id",), ("workspace_id",)]
    # Opening (which migrates too) after that is a no-op, and the store works.
    store = PostgresStore(url)
    await store.open()
    try:
        assert await store.health()
        assert await store.migrate() == latest_version()
    finally:
        await store.close()


async def test_a_read_past_the_statement_timeout_is_a_503(url: str) -> None:
    store = PostgresStore(url, statement_timeout=0.2)
    await store.open()
    try:
        scope = await scope_for(store, "p")
        sid = new_id()
        await store.write_events(scope, [make_event(sid)])
        # Another session holds a lock the read must wait for: the wait counts toward the limit.
        with psycopg.connect(url) as blocker:
            blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            with pytest.raises(StoreUnavailable, match="longer than 0.2 s"):
                await store.export_events(scope, parse_export_request({}))
            blocker.rollback()
        # The connection went back to the pool in a usable state.
        events, total = await store.export_events(scope, parse_export_request({}))
        assert total == 2 and len(events) == 2  # the event and its implicit session
    finally:
        await store.close()


async def test_writes_past_the_pending_bound_are_shed_with_retry_after(url: str) -> None:
    store = PostgresStore(url, max_pending_writes=1)
    await store.open()
    try:
        scope = await scope_for(store, "p")
        with psycopg.connect(url) as blocker:
            blocker.execute("LOCK TABLE events IN EXCLUSIVE MODE")  # writes wait, reads do not
            first = asyncio.ensure_future(store.write_events(scope, [make_event(new_id())]))
            while store.stats().pending_writes != 1:
                await asyncio.sleep(0.01)
            with pytest.raises(Overloaded) as shed:
                await store.write_events(scope, [make_event(new_id())])
            assert shed.value.status_code == 503 and shed.value.retry_after >= 1
            blocker.rollback()
        await first  # the held write commits once the lock is gone
        assert store.stats().pending_writes == 0
    finally:
        await store.close()


async def test_an_unreachable_database_is_a_clear_503_and_unhealthy() -> None:
    store = PostgresStore("postgresql://postgres:hunter2@127.0.0.1:1/nothing")
    assert not await store.health()
    with pytest.raises(StoreUnavailable) as failed:
        await store.open()
    assert "cannot connect" in failed.value.message and "hunter2" not in failed.value.message
    assert store.describe() == "postgresql://postgres:***@127.0.0.1:1/nothing"


async def test_nul_characters_are_stored_as_replacement_characters(url: str) -> None:
    store = PostgresStore(url)
    assert not store.capabilities.preserves_nul
    await store.open()
    try:
        scope = await scope_for(store, "p")
        session = make_session(name="s\x00", metadata={"k\x00": "v\x00", "esc": "\\u0000"})
        await store.create_session(scope, session)
        child = make_event(session.event_id, name="n\x00", inputs={"text": "a\x00b"})
        await store.write_events(scope, [child])
        stored = await store.get_event(scope, child.event_id)
        assert stored is not None and stored.event_name == "n\ufffd" and stored.inputs == {"text": "a\ufffdb"}
        got = await store.get_event(scope, session.event_id)
        assert got is not None and got.event_name == "s\ufffd"
        # A backslash followed by "u0000" is text, not an escape: it is kept as it is.
        assert got.metadata == {"k\ufffd": "v\ufffd", "esc": "\\u0000"}
        # Merging into a stored object with such strings works (the merge runs in SQL).
        await store.create_session(scope, make_session(session.event_id, metadata={"more": 1}))
        merged = await store.get_event(scope, session.event_id)
        assert merged is not None and merged.metadata == {"k\ufffd": "v\ufffd", "esc": "\\u0000", "more": 1}
    finally:
        await store.close()
