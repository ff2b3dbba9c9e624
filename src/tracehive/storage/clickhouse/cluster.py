"""The DDL for a ClickHouse cluster (``tracehive clickhouse-ddl --cluster NAME``).

On one server (or chDB) ``tracehive migrate`` creates the tables itself. A cluster needs replicated
tables on every node and a ``Distributed`` table in front of them, created ``ON CLUSTER`` by its
operator; this module writes that DDL from the same table definitions as ``schema.py``, so the
two cannot drift apart:
- ``<table>_local``: the table of ``schema.py``, ``ON CLUSTER``, with its engine made
  ``Replicated...`` (Keeper path ``/clickhouse/tables/{shard}/<db>/<table>_local``, replica
  ``{replica}``: the usual macros);
- ``<table>``: ``Distributed`` over the locals, which is what tracehive reads and writes. Events
  are sharded by ``cityHash64(project_id, event_id)``, so every version and tombstone of an event
  lands on one shard, where ``ReplacingMergeTree`` and ``FINAL`` resolve them; kept updates by
  event, aliases by alias;
- the schema's version recorded as applied, so that ``tracehive migrate`` finds nothing to do
  (its version-2 step rebuilds a local table and must not run on a cluster).
Connect with ``clickhouse://user:pw@any-node:8123/<db>?quorum=auto``: inserts then wait for a
majority of replicas and for the shards (``distributed_foreground_insert``), and reads see every
insert that returned. Not tested against a real cluster (none runs where tracehive is built).
"""

from __future__ import annotations

import re

from tracehive.storage.clickhouse.schema import (
    ALIASES_DDL,
    MIGRATIONS_TABLE_DDL,
    PENDING_UPDATES_DDL,
    SCHEMA_VERSION,
    events_v2,
    typed_column_adds,
    typed_column_names,
)

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
# table -> (its local DDL, sharding key of the Distributed table)
_TABLES = {
    "events": (events_v2("events"), "cityHash64(project_id, event_id)"),
    "pending_updates": (PENDING_UPDATES_DDL, "cityHash64(project_id, event_id)"),
    "event_aliases": (ALIASES_DDL, "cityHash64(project_id, alias_id)"),
    "schema_migrations": (MIGRATIONS_TABLE_DDL, "0"),
}


def _replicated(ddl: str, table: str, database: str, cluster: str) -> str:
    local = f"{database}.{table}_local"
    path = f"'/clickhouse/tables/{{shard}}/{database}/{table}_local', '{{replica}}'"
    ddl = ddl.replace(f"CREATE TABLE IF NOT EXISTS {table} (", f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster} (")
    for engine in ("ReplacingMergeTree(version, is_deleted)", "ReplacingMergeTree", "MergeTree"):
        marker = f"ENGINE = {engine}\n"
        if marker in ddl:
            args = engine[engine.index("(") + 1:-1] if "(" in engine else ""
            return ddl.replace(marker, f"ENGINE = Replicated{engine.split('(')[0]}({path}{', ' + args if args else ''})\n")
    raise ValueError(f"no engine found in the DDL of {table}")


def cluster_ddl(cluster: str, database: str) -> list[str]:
    """The statements, in order, for ``database`` on ``cluster`` (names checked: identifiers)."""
    for name in (cluster, database):
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    statements = [f"CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}"]
    for table, (ddl, shard_by) in _TABLES.items():
        statements.append(_replicated(ddl, table, database, cluster).strip())
        statements.append(
            f"CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} AS {database}.{table}_local\n"
            f"ENGINE = Distributed({cluster}, {database}, {table}_local, {shard_by})"
        )
    versions = ", ".join(f"({v}, now64(3))" for v in range(1, SCHEMA_VERSION + 1))
    statements.append(f"INSERT INTO {database}.schema_migrations VALUES {versions}")
    return statements


def cluster_upgrade_ddl(cluster: str, database: str, from_version: int) -> list[str]:
    """The statements that bring a cluster's tables made at schema ``from_version`` to the
    current one (``tracehive migrate`` cannot: it would alter the ``Distributed`` table alone).
    Version 3 adds the typed hot columns to the local and the distributed tables, then writes them
    into the existing parts (a background mutation on each replica)."""
    for name in (cluster, database):
        if not _NAME.fullmatch(name):
            raise ValueError(f"not a plain identifier: {name!r}")
    if not 2 <= from_version <= SCHEMA_VERSION:
        raise ValueError(f"a cluster's tables start at schema version 2 (this release writes {SCHEMA_VERSION})")
    statements: list[str] = []
    if from_version < 3:
        for table in ("events_local", "events"):
            statements.append(f"ALTER TABLE {database}.{table} ON CLUSTER {cluster} {typed_column_adds()}")
        statements += [f"ALTER TABLE {database}.events_local ON CLUSTER {cluster} MATERIALIZE COLUMN {name}"
                       for name in typed_column_names()]
    if statements:
        versions = ", ".join(f"({v}, now64(3))" for v in range(from_version + 1, SCHEMA_VERSION + 1))
        statements.append(f"INSERT INTO {database}.schema_migrations VALUES {versions}")
    return statements
