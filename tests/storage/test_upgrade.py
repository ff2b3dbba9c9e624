"""Upgrades keep data: what an earlier release stored (``tests/fixtures/upgrade/<release>/``,
written by that release's own code with ``make.py``) opens with this code, migrates, and reads
back byte for byte what that release exported; the new schema's parts (records) then work.
One directory per release whose schema the next one changed."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import psycopg
import pytest

from tests import pg
from tests.chdb import require_chdb
from tracehive.query.filters import parse_export_request
from tracehive.storage.base import Store
from tracehive.storage.postgres import PostgresStore
from tracehive.storage.postgres.migrations import latest_version as pg_latest
from tracehive.storage.records import RecordKind
from tracehive.storage.sqlite import SQLiteStore
from tracehive.storage.sqlite.migrations import MIGRATIONS

pytestmark = pytest.mark.anyio

UPGRADES = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade"
RELEASES = sorted(p.name for p in UPGRADES.iterdir() if p.is_dir())


async def exported(store: Store, key: str) -> bytes:
    scope = await store.resolve_key(key)
    assert scope is not None, "the release's key no longer resolves"
    lines: list[bytes] = []
    async for chunk in store.iter_event_lines(scope, parse_export_request({"limit": 7500}), scope_fields=False):
        lines.extend(chunk)
    return b"".join(lines)


async def check(store: Store, key: str, expected: bytes) -> None:
    assert await exported(store, key) == expected
    scope = await store.resolve_key(key)
    assert scope is not None
    created = await store.create_record(scope, RecordKind.DATASET, "after-upgrade", "golden", {"datapoints": []})
    assert created is not None and await store.get_record(scope, RecordKind.DATASET, "after-upgrade") == created


def test_there_is_a_fixture() -> None:
    assert RELEASES, f"no release fixtures under {UPGRADES}"


@pytest.mark.parametrize("release", RELEASES)
async def test_a_sqlite_data_dir_of_an_earlier_release(release: str, tmp_path: Path, anyio_backend: str) -> None:
    source = UPGRADES / release
    shutil.copy(source / "tracehive.db", tmp_path / "tracehive.db")
    key = (source / "key").read_text().strip()
    store = SQLiteStore(tmp_path / "tracehive.db")
    assert await store.migrate() == MIGRATIONS[-1][0]
    await store.open()
    try:
        await check(store, key, (source / "events.jsonl").read_bytes())
    finally:
        await store.close()


@pytest.mark.parametrize("release", RELEASES)
async def test_a_postgres_database_of_an_earlier_release(release: str, anyio_backend: str) -> None:
    source = UPGRADES / release
    if not (source / "postgres.sql").exists():
        pytest.skip(f"{release} had no PostgreSQL backend")
    pg.require_postgres()
    # pg_dump's psql meta-commands (\restrict) are not SQL: drop them.
    dump = "\n".join(line for line in (source / "postgres.sql").read_text().splitlines() if not line.startswith("\\"))
    with pg.fresh_database(migrated=False) as url:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(dump)  # type: ignore[call-overload]
        store = PostgresStore(url)
        assert await store.migrate() == pg_latest()
        await store.open()
        try:
            await check(store, (source / "postgres-key").read_text().strip(),
                        (source / "postgres-events.jsonl").read_bytes())
            # The write leases of a shared events store (migration 6) work on the upgraded database.
            leases = store.write_leases()
            try:
                async with leases.hold(["after-upgrade"]):
                    await leases.publish(5)
                async with leases.hold(["after-upgrade"]) as lease:
                    assert lease.floor == 5
            finally:
                await leases.close()
        finally:
            await store.close()


CHDB_RELEASES = [r for r in RELEASES if (UPGRADES / r / "chdb").is_dir()]


def test_there_is_a_clickhouse_fixture() -> None:
    assert CHDB_RELEASES, f"no release fixture with a ClickHouse events store under {UPGRADES}"


@pytest.mark.parametrize("release", CHDB_RELEASES)
async def test_a_clickhouse_events_store_of_an_earlier_release(release: str, tmp_path: Path,
                                                                anyio_backend: str) -> None:
    """The release's chDB directory (row versions, a moved event, a deleted one) migrates to the
    current table design and exports what the release exported; migrating again changes nothing."""
    require_chdb()
    from tracehive.storage.clickhouse import ClickHouseEventStore, CombinedStore
    from tracehive.storage.clickhouse.schema import SCHEMA_VERSION

    source = UPGRADES / release
    shutil.copytree(source / "chdb", tmp_path / "chdb", symlinks=True)  # chDB links tables by relative symlinks
    expected = (source / "chdb-events.jsonl").read_bytes()

    def combined() -> CombinedStore:
        return CombinedStore(SQLiteStore(tmp_path / "chdb" / "control.db"), events)

    events = ClickHouseEventStore.chdb(tmp_path / "chdb" / "events")
    assert await events.migrate() == SCHEMA_VERSION
    store = combined()
    await store.open()
    try:
        key = (source / "chdb-key").read_text().strip()
        await check(store, key, expected)
        # Numeric filters read the typed columns version 3 added to the release's parts.
        scope = await store.resolve_key(key)
        assert scope is not None
        written = [orjson.loads(line) for line in expected.splitlines()]
        for field, column, member, bound in (("metadata.cost", "metadata", "cost", 0.0015),
                                             ("feedback.rating", "feedback", "rating", 0)):
            query = parse_export_request({"filters": [{"field": field, "operator": "greater than", "value": bound,
                                                       "type": "number"}], "limit": 1000})
            found, total = await store.export_events(scope, query)
            wanted = {e["event_id"] for e in written if isinstance((e[column] or {}).get(member), (int, float))
                      and not isinstance(e[column][member], bool) and e[column][member] > bound}
            assert wanted and {e.event_id for e in found} == wanted and total == len(wanted), field
    finally:
        await store.close()
    events = ClickHouseEventStore.chdb(tmp_path / "chdb" / "events")
    assert await events.migrate() == SCHEMA_VERSION
    again = combined()
    await again.open()
    try:
        assert await exported(again, (source / "chdb-key").read_text().strip()) == expected
    finally:
        await again.close()
