"""The ClickHouse table design for events, and its versioned migrations.

Events are append-mostly. A write never updates a row in place: it inserts a new *version* of the
row, and ``events`` is a ``ReplacingMergeTree(version, is_deleted)`` that keeps the highest
version of each sorting key in background merges. Reads resolve versions with ``FINAL`` (exact
whatever merges have run), except on days that are a single part, which hold one version per key
and are read without it (``settled.py``).

The ordering key is ``(project_id, start_time, event_id)`` (schema version 2; version 1 led with
``session_id``, and its time-range reads scanned the whole project):
- search, export, charts and session lists read a project's time range: one range of the primary
  index in each day's partition (``PARTITION BY`` the start's day, ``DAY_PARTITION``);
- ``FINAL`` is what costs at volume (it reads the key columns of every row in range and merges
  them). So each day is a partition, versions of a row never span two (the day derives from the
  key), ``FINAL`` resolves each partition alone (``do_not_merge_across_partitions_select_final``)
  and reads a partition that is one part without merging at all; and a day no longer written to
  is merged into one part a minute after its last insert (``min_age_to_force_merge_seconds`` on
  the partition), so only today's rows (and late arrivals) are merged at read;
- lookups by event, session or parent go through *projections* (narrow copies of a few columns,
  sorted by ``event_id``, ``session_id`` or ``parent_id``, stored inside each part, so written
  atomically with it): ``lookup.py`` reads there the keys (start_time, event_id) that may hold the
  rows, then reads those rows with ``FINAL`` by primary key. A tree of 10^3 events is two point
  reads whatever the table's size;
- every version of a row shares its key while its start time is unchanged. A rewrite that moves
  ``start_time`` writes a tombstone (``is_deleted = 1``) under the old key and the row under the
  new one; a delete writes tombstones under the live keys (see "Deletes").
No skip indexes: under ``FINAL`` (every query read) a skip index widens the read to every granule
that intersects the ones it kept (``use_skip_indexes_if_final``'s exact mode), which at 10^7 rows
read the whole table; the time key and the narrow hot columns serve the filters instead.

Hot JSON paths (``HOT_PATHS``: model, cost, tokens, user id, rating) are ``MATERIALIZED`` columns
holding ``JSONExtractRaw`` of the path, computed once at insert: the filter compiler and the charts
read the column where they would extract the same text from the JSON at every read (exactly the
same value, so the semantics do not change). Other JSON fields are ``String`` columns holding
orjson's text, read back byte for byte and filtered with ``JSONExtract*``; the big ones are
ZSTD-compressed.

Sessions are rows of ``events`` (``event_type = 'session'``); widening a session writes a new
version of its row. ``pending_updates`` (kept updates) and ``event_aliases`` are small append-only
tables: kept updates are composed in version order when applied, the first claim of an alias
(lowest version) wins.

Deletes: a deleted event gets a tombstone (``is_deleted = 1``, a higher version) under its live
key; when the insert returns (a 200), ``FINAL`` hides the row from every query and it cannot come
back (a later write of the same id is a new event). The disk space is freed when background
merges rewrite the parts (old versions go at once; the tombstones themselves stay until
``OPTIMIZE TABLE events FINAL CLEANUP``). Lightweight ``DELETE`` would have to rebuild the
projections of every part it touches; a tombstone is one small insert. The small tables use
lightweight deletes (``lightweight_deletes_sync = 2``).

Durability: ``fsync_after_insert`` and ``fsync_part_directory`` make a returned insert a part on
disk, not in the page cache, as SQLite's and PostgreSQL's commits are.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from tracehive.model.errors import StoreUnavailable
from tracehive.storage.clickhouse.executor import Executor

# Columns of ``events`` that a write supplies, in the order ``rows.event_row`` gives them.
EVENT_COLUMNS = (
    "project_id", "session_id", "event_id", "parent_id", "event_type", "event_name", "source",
    "start_time", "end_time", "duration", "error", "config", "inputs", "outputs", "metadata", "feedback",
    "metrics", "user_properties", "children_ids", "org_id", "workspace_id", "implicit", "seq", "version",
    "is_deleted", "updated_at",
)  # fmt: skip

# The events table's columns, the same in every version of the table.
_EVENT_COLUMNS_DDL = """    project_id String,
    session_id String,
    event_id String,
    parent_id Nullable(String),
    event_type LowCardinality(String),
    event_name String,
    source LowCardinality(String),
    start_time Float64,
    end_time Float64,
    duration Float64,
    error Nullable(String) CODEC(ZSTD(1)),
    config String CODEC(ZSTD(1)),
    inputs String CODEC(ZSTD(1)),
    outputs Nullable(String) CODEC(ZSTD(1)),
    metadata String CODEC(ZSTD(1)),
    feedback String CODEC(ZSTD(1)),
    metrics String CODEC(ZSTD(1)),
    user_properties String CODEC(ZSTD(1)),
    children_ids String CODEC(ZSTD(1)),
    org_id LowCardinality(String),
    workspace_id LowCardinality(String),
    -- A session made up from its events (no session start seen yet).
    implicit UInt8,
    -- Arrival order, kept across versions: ties in start_time go by it, as rowid does in SQLite.
    seq UInt64,
    version UInt64,
    is_deleted UInt8,
    updated_at Int64,
"""
# The columns above that may hold NULL: every other one is read as a plain (non-Nullable) type.
NULLABLE_COLUMNS = frozenset(
    line.split()[0] for line in _EVENT_COLUMNS_DDL.splitlines() if " Nullable(" in line
)

# Version 1 (kept as the first migration: stores written by it upgrade through version 2).
_EVENTS = """
CREATE TABLE IF NOT EXISTS events (
""" + _EVENT_COLUMNS_DDL + """    INDEX by_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX by_parent parent_id TYPE bloom_filter(0.01) GRANULARITY 1,
    INDEX by_start start_time TYPE minmax GRANULARITY 1,
    INDEX by_type event_type TYPE set(16) GRANULARITY 4,
    INDEX by_name event_name TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX by_model JSONExtractString(config, 'model') TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX by_user JSONExtractString(user_properties, 'user_id') TYPE bloom_filter(0.01) GRANULARITY 4
)
ENGINE = ReplacingMergeTree(version, is_deleted)
ORDER BY (project_id, session_id, event_id)
-- Smaller granules than the default 8192 rows: point reads (an event, a tree) decompress less of
-- the wide JSON columns; the index stays small (10^8 rows: 50k marks).
SETTINGS index_granularity = 2048, fsync_after_insert = 1, fsync_part_directory = 1
"""

# JSON paths read often enough to be stored once more, as the raw text ``compile.Operand.raw``
# would extract: (column, member) -> materialized column.
HOT_PATHS: dict[tuple[str, str], str] = {
    ("config", "model"): "h_config_model",
    ("config", "provider"): "h_config_provider",
    ("metadata", "cost"): "h_metadata_cost",
    ("metadata", "total_tokens"): "h_metadata_total_tokens",
    ("metadata", "prompt_tokens"): "h_metadata_prompt_tokens",
    ("metadata", "completion_tokens"): "h_metadata_completion_tokens",
    ("user_properties", "user_id"): "h_user_properties_user_id",
    ("feedback", "rating"): "h_feedback_rating",
}


# How SQLite reads a JSON value's raw text as a number (``compile.py``): an INTEGER when written as
# an integer within int64, else a REAL when it is a number at all.
def is_int_sql(r: str) -> str:
    """SQL: the raw text ``r`` is a JSON integer within int64 (SQLite's INTEGER)."""
    return f"(match({r}, '^-?[0-9]+$') AND isNotNull(toInt64OrNull({r})))"


def is_number_sql(r: str) -> str:
    """SQL: the raw text ``r`` is a JSON number."""
    return f"match({r}, '^-?[0-9]')"


# Hot paths that mostly hold numbers get their number stored too, typed, computed once at insert
# from the hot column with the expressions the filter compiler applies to the text (so the same
# values): ``<hot>_i`` the INTEGER (NULL unless one), ``<hot>_f`` the number as a double (NULL
# unless a number). A numeric filter or a chart metric on the path reads 8 bytes a row instead of
# parsing text (schema version 3; measured at 10^7 events: a 7-day count by cost 86 -> 69 ms).
NUMERIC_HOT_COLUMNS = ("h_metadata_cost", "h_metadata_total_tokens", "h_metadata_prompt_tokens",
                       "h_metadata_completion_tokens", "h_feedback_rating")  # fmt: skip


def _typed_columns() -> list[tuple[str, str]]:
    """(name, type and expression) of every typed hot column."""
    out = []
    for hot in NUMERIC_HOT_COLUMNS:
        out.append((f"{hot}_i", f"Nullable(Int64) MATERIALIZED if({is_int_sql(hot)}, toInt64OrZero({hot}), NULL)"))
        out.append((f"{hot}_f", f"Nullable(Float64) MATERIALIZED if({is_number_sql(hot)}, toFloat64OrZero({hot}), NULL)"))
    return out


# Every materialized column (a subquery's ``*`` leaves them out).
MATERIALIZED_COLUMNS = (*HOT_PATHS.values(), *(name for name, _ in _typed_columns()))


# The day of an event's start (days since 1970, the time clamped to 1970..2200 so that odd times
# cannot make unbounded partitions). Derived from the sorting key, so every version of a row is in
# one partition, which lets ``FINAL`` leave partitions alone (``do_not_merge_across_partitions_
# select_final``) and skip the merge of any partition that is a single part.
# (The text is kept as the tables were created with it; MAX_START_MS is its number, 2200-01-01.)
_CLAMPED_START = "toInt64(least(greatest(start_time, 0.), 7258118400000.))"
MAX_START_MS = 7258118400000.0
DAY_PARTITION = f"intDiv({_CLAMPED_START}, 86400000)"
# The hour of a start time, clamped the same way (so an hour lies within one day).
HOUR_OF_START = f"intDiv({_CLAMPED_START}, 3600000)"


def events_v2(table: str) -> str:
    """The version-2 events table (see the module's text), named ``table`` (ours)."""
    hot = "".join(f"    {name} String MATERIALIZED JSONExtractRaw({column}, '{member}'),\n"
                  for (column, member), name in HOT_PATHS.items())
    hot += "".join(f"    {name} {definition},\n" for name, definition in _typed_columns())
    return f"""
CREATE TABLE IF NOT EXISTS {table} (
{_EVENT_COLUMNS_DDL}{hot}    PROJECTION by_id (SELECT project_id, event_id, start_time ORDER BY project_id, event_id),
    PROJECTION by_session (SELECT project_id, session_id, start_time, event_id ORDER BY project_id, session_id),
    PROJECTION by_parent (SELECT project_id, parent_id, start_time, event_id ORDER BY project_id, parent_id)
)
ENGINE = ReplacingMergeTree(version, is_deleted)
PARTITION BY {DAY_PARTITION}
ORDER BY (project_id, start_time, event_id)
SETTINGS index_granularity = 2048, fsync_after_insert = 1, fsync_part_directory = 1,
    -- Merges of a ReplacingMergeTree drop rows, so its projections are rebuilt from the merged rows.
    deduplicate_merge_projection_mode = 'rebuild', lightweight_mutation_projection_mode = 'rebuild',
    allow_nullable_key = 1,
    -- A day no longer written to is merged into one part a minute after its last insert.
    min_age_to_force_merge_seconds = 60, min_age_to_force_merge_on_partition_only = 1
"""


PENDING_UPDATES_DDL = """
CREATE TABLE IF NOT EXISTS pending_updates (
    project_id String,
    event_id String,
    payload String,
    version UInt64
)
ENGINE = MergeTree
ORDER BY (project_id, event_id, version)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1
"""

ALIASES_DDL = """
CREATE TABLE IF NOT EXISTS event_aliases (
    project_id String,
    alias_id String,
    event_id String,
    version UInt64
)
ENGINE = MergeTree
ORDER BY (project_id, alias_id, version)
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1
"""

MIGRATIONS_TABLE_DDL = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    applied_at DateTime64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1
"""

_REBUILD = "events_rebuild"


async def _to_time_key(executor: Executor) -> None:
    """Version 2: events copied into the time-keyed table (live rows only: ``FINAL`` resolves
    versions and drops deleted rows), which then takes the name ``events``. Safe to run again
    after a crash at any step: a half-built copy is dropped first, and once the tables are
    exchanged ``events`` holds every row and a rerun copies it again."""
    await executor.command(f"DROP TABLE IF EXISTS {_REBUILD} SYNC")
    await executor.command(events_v2(_REBUILD))
    columns = ", ".join(EVENT_COLUMNS)
    await executor.command(f"INSERT INTO {_REBUILD} ({columns}) SELECT {columns} FROM events FINAL")
    await executor.command(f"EXCHANGE TABLES events AND {_REBUILD}")
    await executor.command(f"DROP TABLE {_REBUILD} SYNC")


def typed_column_adds() -> str:
    """The ``ADD COLUMN`` clauses of version 3 (for ``ALTER TABLE``; ``cluster.py`` too)."""
    return ", ".join(f"ADD COLUMN IF NOT EXISTS {name} {definition}" for name, definition in _typed_columns())


def typed_column_names() -> list[str]:
    return [name for name, _ in _typed_columns()]


async def _typed_hot_columns(executor: Executor) -> None:
    """Version 3: the typed hot columns added, then written into the existing parts in the
    background (a mutation; until it reaches a part, reads compute them from the hot columns,
    to the same values). Safe to run again. A cluster's ``events`` is a ``Distributed`` table over
    replicated ones, which this cannot alter: its operator runs what ``tracehive clickhouse-ddl
    --upgrade-from 2`` prints (``cluster.py``)."""
    # (A cluster's tables, as ``cluster.py`` makes them: ``events`` Distributed over ``events_local``.)
    [(clustered,)] = await executor.query(
        "SELECT countIf(name = 'events' AND engine = 'Distributed') + countIf(name = 'events_local') "
        "FROM system.tables WHERE database = currentDatabase()")
    if int(clustered):
        raise StoreUnavailable(
            "the events table is Distributed (a cluster): run the statements `tracehive clickhouse-ddl --cluster NAME "
            "--upgrade-from 2` prints on the cluster (schema version 3 adds columns), then start again")
    await executor.command(f"ALTER TABLE events {typed_column_adds()}")
    for name in typed_column_names():
        await executor.command(f"ALTER TABLE events MATERIALIZE COLUMN {name} SETTINGS mutations_sync = 0")


# Each migration is a list of steps: idempotent statements (IF NOT EXISTS), or a function safe
# to run again; its version is recorded once all of them succeeded. Run ``tracehive migrate``
# once, from one process, before starting nodes on a shared server.
Step = str | Callable[[Executor], Awaitable[None]]
MIGRATIONS: list[list[Step]] = [
    [_EVENTS, PENDING_UPDATES_DDL, ALIASES_DDL],
    [_to_time_key],
    [_typed_hot_columns],
]
SCHEMA_VERSION = len(MIGRATIONS)


async def current_version(executor: Executor) -> int:
    await executor.command(MIGRATIONS_TABLE_DDL)
    rows = await executor.query("SELECT max(version) FROM schema_migrations")
    return int(rows[0][0] or 0) if rows else 0


async def migrate(executor: Executor) -> int:
    """Apply the migrations above the recorded version; return the schema's version. A new
    database gets the current tables at once (the same end state, without rebuilding)."""
    version = await current_version(executor)
    # (An events table without a recorded version is a first migration that stopped midway:
    # it takes the steps below.)
    if version == 0 and not (await executor.query("EXISTS TABLE events"))[0][0]:
        for statement in (events_v2("events"), PENDING_UPDATES_DDL, ALIASES_DDL):
            await executor.command(statement)
        await _record(executor, range(1, SCHEMA_VERSION + 1))
        return SCHEMA_VERSION
    for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        for step in statements:
            if isinstance(step, str):
                await executor.command(step)
            else:
                await step(executor)
        await _record(executor, [number])
    return SCHEMA_VERSION


async def _record(executor: Executor, versions: Iterable[int]) -> None:
    for number in versions:
        await executor.command("INSERT INTO schema_migrations VALUES ({v:UInt32}, now64(3))", {"v": number})
