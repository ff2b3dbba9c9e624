"""The storage contract's write and read-by-id tests on the ClickHouse event store (chDB),
combined with a SQLite control store (projects and keys) through ``CombinedStore``.

The contract's test functions are imported unchanged and run here against this module's
``store`` fixture. The contract tests of reads the ClickHouse store does not serve yet (export,
charts, session lists, schema fields, import, streaming) are not run here (issue #14 is open):
``NOT_YET`` names them, and ``test_the_split_covers_the_whole_contract`` keeps the two lists
honest as the contract grows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tests.chdb import require_chdb

require_chdb()

from tests.storage import test_contract as contract
from tests.storage.test_contract import make_event, new_id, scope_for
from tracehive.model.scope import Scope
from tracehive.storage.base import Store
from tracehive.storage.clickhouse import ClickHouseEventStore, CombinedStore
from tracehive.storage.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

# Contract tests this store runs (and passes): lifecycle, projects and keys (through the control
# store), writes, hierarchy, aliases, sessions, updates, deletes, isolation, atomicity, concurrency.
SUPPORTED = [
    "test_health_open_and_close_are_idempotent",
    "test_returned_writes_survive_reopening",
    "test_ensure_project_is_idempotent",
    "test_list_projects",
    "test_create_key_resolves_to_its_scope",
    "test_keys_of_two_projects_resolve_to_their_own_project",
    "test_unknown_or_altered_key_resolves_to_none",
    "test_revoke_key",
    "test_list_keys_never_exposes_the_secret",
    "test_write_and_read_round_trip",
    "test_outputs_none_and_empty_are_distinct",
    "test_get_unknown_event_is_none",
    "test_writing_the_same_event_twice_stores_one_event",
    "test_rewriting_an_event_with_null_valued_keys_is_idempotent",
    "test_rewrite_replaces_scalars_and_merges_metadata",
    "test_an_update_between_two_writes_is_not_lost",
    "test_children_written_before_their_parents",
    "test_children_ids_sent_by_the_client_are_not_duplicated",
    "test_session_events_are_oldest_first_and_confined_to_the_session",
    "test_children_naming_an_alias_link_to_the_aliased_event",
    "test_an_alias_links_children_in_the_same_write",
    "test_aliases_link_across_sessions_and_sessions_stay_put",
    "test_the_first_event_to_claim_an_alias_keeps_it",
    "test_aliases_are_confined_to_their_project",
    "test_deleting_the_aliased_event_forgets_its_aliases",
    "test_unknown_session_is_created_implicitly",
    "test_implicit_session_without_a_name_hint_is_unknown",
    "test_session_span_widens_as_events_arrive",
    "test_explicit_session_widens_to_cover_its_events",
    "test_create_session_returns_the_stored_session",
    "test_create_session_is_idempotent_and_merges_deep",
    "test_create_session_adopts_an_implicit_session",
    "test_session_event_in_a_batch_with_its_events",
    "test_create_session_over_a_non_session_id_fails_and_changes_nothing",
    "test_update_event_merge_rules",
    "test_update_of_a_session_event",
    "test_update_of_an_unknown_event_returns_false_and_changes_nothing",
    "test_kept_update_is_applied_when_the_event_arrives",
    "test_kept_update_for_a_session_created_by_create_session",
    "test_kept_update_for_an_implicitly_created_session",
    "test_delete_event",
    "test_delete_session",
    "test_projects_are_isolated",
    "test_sessions_and_kept_updates_are_isolated",
    "test_a_failing_write_stores_nothing_of_its_batch",
    "test_a_failing_write_does_not_sink_concurrent_writes",
    "test_concurrent_writes_all_land",
    "test_concurrent_session_starts_and_updates",
]
for _name in SUPPORTED:
    globals()[_name] = getattr(contract, _name)

_READS = "the read compiler (export, charts, session lists, schema fields, import, streaming) is not built yet"
NOT_YET = sorted(
    name for name in dir(contract)
    if name.startswith("test_") and callable(getattr(contract, name)) and name not in SUPPORTED
)


# The reads not built yet (issue #14): exactly these contract tests are not run on ClickHouse.
NOT_YET_EXPECTED = {
    "test_chart", "test_export", "test_iter", "test_import", "test_schema", "test_list_sessions", "test_session_list",
}


def test_the_split_covers_the_whole_contract() -> None:
    """Every contract test is either run here or is one of the unbuilt reads, so a new contract
    test on writes cannot silently skip this backend."""
    unbuilt = [n for n in NOT_YET if not n.startswith(tuple(NOT_YET_EXPECTED))]
    assert not unbuilt, f"contract tests neither run on ClickHouse nor among the unbuilt reads: {unbuilt}"


def make_store(directory: Path) -> Store:
    return CombinedStore(SQLiteStore(directory / "control.db"), ClickHouseEventStore.chdb(directory / "events"))


@pytest.fixture
def store_factory(tmp_path: Path) -> Callable[[], Store]:
    return lambda: make_store(tmp_path / "store")


@pytest.fixture
async def store(store_factory: Callable[[], Store], anyio_backend: str) -> AsyncIterator[Store]:
    instance = store_factory()
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()


@pytest.fixture
async def scope_a(store: Store) -> Scope:
    return await scope_for(store, "project-a")


@pytest.fixture
async def scope_b(store: Store) -> Scope:
    return await scope_for(store, "project-b")


# ClickHouse specifics ---------------------------------------------------------------------------


async def test_capabilities_and_description(store: Store) -> None:
    assert store.capabilities.backend == "sqlite+clickhouse"
    assert store.capabilities.concurrent_writers is False
    assert "chdb://" in store.describe()
    assert store.stats().pending_writes == 0


async def test_migrate_is_idempotent(tmp_path: Path) -> None:
    events = ClickHouseEventStore.chdb(tmp_path / "events")
    assert await events.migrate() == await events.migrate() == 1
    await events.open()
    try:
        assert await events.migrate() == 1
        assert await events.health()
    finally:
        await events.close()


async def test_strings_round_trip_byte_exact(store: Store, scope_a: Scope) -> None:
    """NUL, quotes, backslashes, control characters and non-BMP text survive in ids and JSON."""
    tricky = "a\x00b'c\"d\\e\tf\ng\r\u2028😀{name:String}"
    sid = "s" + tricky
    event = make_event(sid, "e" + tricky, name=tricky, metadata={tricky: [tricky, 1.5, None]}, error=tricky)
    await store.write_events(scope_a, [event])
    stored = await store.get_event(scope_a, event.event_id)
    assert stored is not None
    assert (stored.event_name, stored.error, stored.metadata) == (tricky, tricky, {tricky: [tricky, 1.5, None]})
    assert {e.event_id for e in await store.session_events(scope_a, sid)} == {sid, event.event_id}


async def test_a_session_moved_by_a_rewrite_leaves_no_copy(store: Store, scope_a: Scope) -> None:
    """The sorting key holds the session: a rewrite into another session hides the old row."""
    first, second, eid = new_id(), new_id(), new_id()
    await store.write_events(scope_a, [make_event(first, eid)])
    await store.write_events(scope_a, [make_event(second, eid, name="moved")])
    assert await contract.non_session_ids(store, scope_a, first) == []
    assert await contract.non_session_ids(store, scope_a, second) == [eid]
    stored = await store.get_event(scope_a, eid)
    assert stored is not None and stored.event_name == "moved"
    assert await store.delete_event(scope_a, eid) is True
    assert await store.get_event(scope_a, eid) is None
