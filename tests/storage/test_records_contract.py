"""The record part of the storage contract (datasets, datapoints, runs, configurations, metric
definitions: ``tracehive.storage.records``), on every backend. Only ``Store`` methods are used."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tests.storage.test_concurrency import Pair, race, stores  # noqa: F401 - fixture
from tests.storage.test_concurrency import scope as race_scope  # noqa: F401 - fixture
from tests.storage.test_contract import new_id, scope_a, scope_b, scope_for  # noqa: F401 - fixtures
from tracehive.model.scope import KeyKind, Scope
from tracehive.storage.base import Store
from tracehive.storage.records import Record, RecordChange, RecordKind

pytestmark = pytest.mark.anyio

DATASET = RecordKind.DATASET
RUN = RecordKind.RUN


async def test_create_get_and_read_back_exactly(store: Store, scope_a: Scope) -> None:
    body = {"name": "golden", "datapoints": ["a", "b"], "nested": {"x": [1, 2.5, None, True]},
            "text": "nul \u0000 and \U0001f600"}
    created = await store.create_record(scope_a, DATASET, "ds-1", "golden", body)
    assert created is not None
    assert created.kind is DATASET and created.id == "ds-1" and created.name == "golden"
    assert created.created_at == created.updated_at > 0
    got = await store.get_record(scope_a, DATASET, "ds-1")
    assert got == created
    assert got.body["nested"] == {"x": [1, 2.5, None, True]}
    # NUL survives where the backend keeps it, and becomes U+FFFD where it cannot.
    assert got.body["text"] in ("nul \u0000 and \U0001f600", "nul \ufffd and \U0001f600")


async def test_a_second_create_with_the_same_id_changes_nothing(store: Store, scope_a: Scope) -> None:
    assert await store.create_record(scope_a, RUN, "r1", "first", {"v": 1}) is not None
    assert await store.create_record(scope_a, RUN, "r1", "second", {"v": 2}) is None
    got = await store.get_record(scope_a, RUN, "r1")
    assert got is not None and got.name == "first" and got.body == {"v": 1}


async def test_kinds_and_projects_are_separate(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    await store.create_record(scope_a, RUN, "same", "a-run", {"p": "a"})
    await store.create_record(scope_a, DATASET, "same", "a-dataset", {"p": "a-ds"})
    await store.create_record(scope_b, RUN, "same", "b-run", {"p": "b"})
    got_a = await store.get_record(scope_a, RUN, "same")
    got_b = await store.get_record(scope_b, RUN, "same")
    assert got_a is not None and got_a.body == {"p": "a"}
    assert got_b is not None and got_b.body == {"p": "b"}
    assert [r.name for r in await store.list_records(scope_a, DATASET)] == ["a-dataset"]
    assert await store.get_record(scope_b, DATASET, "same") is None
    # A foreign project can neither update nor delete.
    assert await store.update_record(scope_b, DATASET, "same", lambda r: RecordChange("x", {})) is None
    assert await store.delete_record(scope_b, DATASET, "same") is False
    assert (await store.get_record(scope_a, DATASET, "same")) is not None


async def test_list_in_creation_order_by_ids_and_by_name(store: Store, scope_a: Scope) -> None:
    for i in range(5):
        await store.create_record(scope_a, DATASET, f"d{i}", "even" if i % 2 == 0 else "odd", {"i": i})
        await asyncio.sleep(0.002)  # distinct creation times
    listed = await store.list_records(scope_a, DATASET)
    assert [r.id for r in listed] == ["d0", "d1", "d2", "d3", "d4"]
    assert [r.id for r in await store.list_records(scope_a, DATASET, ids=["d3", "d1", "nope"])] == ["d1", "d3"]
    assert await store.list_records(scope_a, DATASET, ids=[]) == []
    assert [r.id for r in await store.list_records(scope_a, DATASET, name="even")] == ["d0", "d2", "d4"]
    assert [r.id for r in await store.list_records(scope_a, DATASET, name="even", ids=["d2", "d3"])] == ["d2"]
    assert [r.id for r in await store.list_records(scope_a, DATASET, limit=2)] == ["d0", "d1"]


async def test_update_applies_a_function_of_the_stored_record(store: Store, scope_a: Scope) -> None:
    await store.create_record(scope_a, RUN, "r", "run", {"metadata": {"a": 1}})
    seen: list[Record] = []

    def merge(record: Record) -> RecordChange:
        seen.append(record)
        return RecordChange("renamed", {"metadata": {**record.body["metadata"], "b": 2}})

    await asyncio.sleep(0.002)
    updated = await store.update_record(scope_a, RUN, "r", merge)
    assert updated is not None
    assert updated.name == "renamed" and updated.body == {"metadata": {"a": 1, "b": 2}}
    assert updated.updated_at > updated.created_at
    assert seen and seen[-1].body == {"metadata": {"a": 1}}
    assert await store.get_record(scope_a, RUN, "r") == updated
    # None leaves it as it is.
    assert await store.update_record(scope_a, RUN, "r", lambda r: None) == updated
    assert await store.update_record(scope_a, RUN, "missing", merge) is None


async def test_delete(store: Store, scope_a: Scope) -> None:
    await store.create_record(scope_a, RUN, "r", None, {})
    assert await store.delete_record(scope_a, RUN, "r") is True
    assert await store.delete_record(scope_a, RUN, "r") is False
    assert await store.get_record(scope_a, RUN, "r") is None
    assert await store.list_records(scope_a, RUN) == []


async def test_records_survive_reopening(store_factory: Callable[[], Store], anyio_backend: str) -> None:
    first = store_factory()
    await first.open()
    try:
        scope = await scope_for(first, "durable")
        await first.create_record(scope, RecordKind.METRIC, "m", "accuracy", {"type": "PYTHON"})
    finally:
        await first.close()
    second = store_factory()
    await second.open()
    try:
        again = await scope_for(second, "durable", KeyKind.PROJECT)
        got = await second.get_record(again, RecordKind.METRIC, "m")
        assert got is not None and got.body == {"type": "PYTHON"}
    finally:
        await second.close()


async def test_concurrent_updates_from_two_stores_lose_no_key(stores: Pair, race_scope: Scope) -> None:  # noqa: F811
    """Many writers merging into one run's metadata: every key is kept (row lock / one writer)."""
    first, second = stores
    await first.create_record(race_scope, RUN, "shared", "run", {"metadata": {}})

    def add(key: str) -> Callable[[Record], RecordChange]:
        return lambda r: RecordChange(r.name, {"metadata": {**r.body["metadata"], key: True}})

    keys = [f"k{i}" for i in range(24)]
    await race(*[(first if i % 2 else second).update_record(race_scope, RUN, "shared", add(k))
                 for i, k in enumerate(keys)])
    got = await second.get_record(race_scope, RUN, "shared")
    assert got is not None and sorted(got.body["metadata"]) == sorted(keys)


async def test_concurrent_creates_of_one_id_make_one_record(stores: Pair, race_scope: Scope) -> None:  # noqa: F811
    first, second = stores
    results = await race(*[(first if i % 2 else second).create_record(race_scope, RUN, "once", f"n{i}", {"i": i})
                           for i in range(10)])
    winners = [r for r in results if r is not None]
    assert len(winners) == 1
    assert await first.get_record(race_scope, RUN, "once") == winners[0]


async def test_import_stores_records_as_given_and_replaces(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    await store.create_record(scope_a, DATASET, "kept", "old name", {"v": 0})
    given = [Record(DATASET, "kept", "new name", {"v": 1}, 1_000, 2_000),
             Record(RUN, "r", "run", {"metadata": {"a": 1}}, 1_500, 1_500)]
    await store.import_records(scope_a, given)
    assert await store.get_record(scope_a, DATASET, "kept") == given[0]
    assert await store.get_record(scope_a, RUN, "r") == given[1]
    await store.import_records(scope_a, given)  # again: the same
    assert [r.id for r in await store.list_records(scope_a, DATASET)] == ["kept"]
    assert await store.list_records(scope_b, RUN) == []
