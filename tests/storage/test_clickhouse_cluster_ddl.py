"""The cluster DDL (``tracehive clickhouse-ddl``): statements ClickHouse's parser accepts, made from
the same table definitions as the single-server schema, sharded so that every version of an event
lands on one shard. (No cluster runs here: the DDL is parsed by the engine, not executed.)"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.chdb import require_chdb

require_chdb()

from tracehive.storage.clickhouse.cluster import cluster_ddl
from tracehive.storage.clickhouse.executor import ChdbExecutor
from tracehive.storage.clickhouse.schema import EVENT_COLUMNS, HOT_PATHS, SCHEMA_VERSION

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
