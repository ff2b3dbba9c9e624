"""The cluster DDL (``tracehive clickhouse-ddl``): statements ClickHouse's parser accepts, made from
the same table definitions as the single-server schema, sharded so that every version of an event
lands on one shard. (No cluster runs here: the DDL is parsed by the engine, not executed.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.chdb import require_chdb

require_chdb()

from tracehive.storage.clickhouse.cluster import cluster_ddl, cluster_upgrade_ddl
from tracehive.storage.clickhouse.executor import ChdbExecutor
from tracehive.storage.clickhouse.schema import EVENT_COLUMNS, HOT_PATHS, SCHEMA_VERSION, typed_column_names

pytestmark = pytest.mark.anyio


async def test_every_statement_parses(tmp_path, anyio_backend: str) -> None:
    ex = ChdbExecutor(tmp_path / "engine")
    try:
        for statement in cluster_ddl("prod", "traces"):
            [(formatted,)] = await ex.query("SELECT formatQuery({q:String})", {"q": statement})
            assert "ON CLUSTER prod" in formatted or formatted.startswith("INSERT")
    finally:
        await ex.close()


def test_the_tables_are_the_schema_s_replicated_and_distributed() -> None:
    statements = cluster_ddl("prod", "traces")
    local = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS traces.events_local"))
    for column in (*EVENT_COLUMNS, *HOT_PATHS.values(), "PROJECTION by_session", "PROJECTION by_id"):
        assert column in local
    assert "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/traces/events_local', '{replica}', version, is_deleted)" in local
    assert "ORDER BY (project_id, start_time, event_id)" in local
    assert any("Distributed(prod, traces, events_local, cityHash64(project_id, event_id))" in s for s in statements)
    assert statements[-1].startswith("INSERT INTO traces.schema_migrations") and statements[-1].count("now64") == SCHEMA_VERSION
    pending = next(s for s in statements if s.startswith("CREATE TABLE IF NOT EXISTS traces.pending_updates_local"))
    assert "ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/traces/pending_updates_local', '{replica}')" in pending


@pytest.mark.parametrize("cluster, database", [("prod; DROP TABLE x", "db"), ("prod", "db`x"), ("", "db"), ("prod", "1db")])
def test_names_must_be_identifiers(cluster: str, database: str) -> None:
    with pytest.raises(ValueError, match="not a plain identifier"):
        cluster_ddl(cluster, database)


def test_the_cli_prints_it_and_refuses_bad_names() -> None:
    ok = subprocess.run([sys.executable, "-m", "tracehive", "clickhouse-ddl", "--cluster", "prod"],
                        capture_output=True, text=True, check=True)
    assert ok.stdout.count(";\n") == len(cluster_ddl("prod", "tracehive"))
    assert "CREATE TABLE IF NOT EXISTS tracehive.events ON CLUSTER prod" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "tracehive", "clickhouse-ddl", "--cluster", "a b"],
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "not a plain identifier" in bad.stderr and "Traceback" not in bad.stderr


async def test_the_upgrade_from_version_2_parses_and_alters_both_tables(tmp_path, anyio_backend: str) -> None:
    statements = cluster_upgrade_ddl("prod", "traces", 2)
    ex = ChdbExecutor(tmp_path / "engine")
    try:
        for statement in statements:
            [(formatted,)] = await ex.query("SELECT formatQuery({q:String})", {"q": statement})
            assert "ON CLUSTER prod" in formatted or formatted.startswith("INSERT")
    finally:
        await ex.close()
    for table in ("traces.events_local", "traces.events"):
        [add] = [s for s in statements if s.startswith(f"ALTER TABLE {table} ON CLUSTER prod ADD COLUMN")]
        assert all(f"ADD COLUMN IF NOT EXISTS {name} " in add for name in typed_column_names())
    assert sum("MATERIALIZE COLUMN" in s for s in statements) == len(typed_column_names())
    assert statements[-1] == "INSERT INTO traces.schema_migrations VALUES (3, now64(3))" and SCHEMA_VERSION == 3
    assert cluster_upgrade_ddl("prod", "traces", SCHEMA_VERSION) == []
    for bad in (1, SCHEMA_VERSION + 1):
        with pytest.raises(ValueError, match="start at schema version 2"):
            cluster_upgrade_ddl("prod", "traces", bad)


def test_the_cli_prints_the_upgrade() -> None:
    ok = subprocess.run([sys.executable, "-m", "tracehive", "clickhouse-ddl", "--cluster", "prod", "--upgrade-from", "2"],
                        capture_output=True, text=True, check=True)
    assert ok.stdout.count(";\n") == len(cluster_upgrade_ddl("prod", "tracehive", 2))
    assert "ALTER TABLE tracehive.events_local ON CLUSTER prod ADD COLUMN" in ok.stdout


async def test_migrate_leaves_a_cluster_s_tables_to_its_operator(tmp_path, anyio_backend: str) -> None:
    """A store of version 2 beside an ``events_local`` (a cluster's tables) is not altered by
    ``migrate``: it says what to run instead."""
    from tracehive.model.errors import StoreUnavailable
    from tracehive.storage.clickhouse import ClickHouseEventStore

    events = ClickHouseEventStore.chdb(tmp_path / "events")
    assert await events.migrate() == SCHEMA_VERSION
    ex = ChdbExecutor(tmp_path / "events")
    try:  # back to version 2, as a cluster made by the previous release is
        await ex.command("ALTER TABLE events " + ", ".join(f"DROP COLUMN {n}" for n in typed_column_names()))
        await ex.command("DELETE FROM schema_migrations WHERE version = 3")
        await ex.command("CREATE TABLE events_local (a UInt8) ENGINE = MergeTree ORDER BY a")
    finally:
        await ex.close()
    events = ClickHouseEventStore.chdb(tmp_path / "events")
    with pytest.raises(StoreUnavailable, match="--upgrade-from 2"):
        await events.migrate()
    ex = ChdbExecutor(tmp_path / "events")
    try:
        assert (await ex.query("SELECT max(version) FROM schema_migrations")) == [(2,)]
        columns = {r[0] for r in await ex.query("SELECT name FROM system.columns WHERE table = 'events' "
                                                "AND database = currentDatabase()")}
        assert not columns & set(typed_column_names())
    finally:
        await ex.close()
