"""The ClickHouse table design for events, and its versioned migrations.

Events are append-mostly. A write never updates a row in place: it inserts a new *version* of the
row, and ``events`` is a ``ReplacingMergeTree(version, is_deleted)`` that keeps the highest
version of each sorting key in background merges. Reads resolve versions with ``FINAL`` (exact
whatever merges have run; ``use_skip_indexes_if_final`` with its exact mode, the default in
ClickHouse 25.6+, keeps skip indexes usable under ``FINAL`` without returning a stale version).

The ordering key is ``(project_id, session_id, event_id)``:
- a session's tree (the trace view, ``session_events``) is one contiguous range of the primary
  index: at 10^8 events it reads the few granules of that session and nothing else;
- a project's time range (search, charts, export) is a scan of the project's range, served by a
  ``minmax`` index on ``start_time`` (granules and parts written in one time window are skipped
  outside it) and by the columnar layout: a chart reads ``start_time`` and the aggregated column
  only, and ``ORDER BY start_time LIMIT n`` pages materialise the JSON columns of the page alone
  (lazy materialisation). The other way round, ``(project_id, toDate(start_time), session_id,
  event_id)``, would make time ranges key ranges, but then a rewrite that moves ``start_time``
  across a day, and every widening of a session's start, changes the row's key (a tombstone plus
  a new row each time), and a tree read needs the session's span first. Charts scan columns fast;
  the tree is the read that must be a point lookup, so it gets the key.
- reads by event id (``get_event``, links to a parent) go through a ``bloom_filter`` on
  ``event_id`` (every version of a row shares its id, so the index is exact under ``FINAL``), and
  children through one on ``parent_id``.
An event whose session changes on a rewrite gets a tombstone (``is_deleted = 1``) under its old key.

Skip indexes for the filter language's common fields: ``event_type`` (set), ``event_name``,
``config.model`` and ``user_properties.user_id`` (bloom filters over the same expressions the query
compiler must emit). JSON fields are ``String`` columns holding orjson's text, read back byte for
byte and filtered with ``JSONExtract*``; the big ones are ZSTD-compressed.

Sessions are rows of ``events`` (``event_type = 'session'``); widening a session writes a new
version of its row. ``pending_updates`` (kept updates) and ``event_aliases`` are small append-only
tables: kept updates are composed in version order when applied, the first claim of an alias
(lowest version) wins.

Deletes are lightweight ``DELETE FROM`` statements run with ``lightweight_deletes_sync = 2``: when
one returns (a 200), the rows are hidden from every query on every replica and cannot come back
(all versions of the row are masked); the disk space is freed later, when background merges
rewrite the parts (or at once with ``OPTIMIZE TABLE events FINAL``).

Durability: ``fsync_after_insert`` and ``fsync_part_directory`` make a returned insert a part on
disk, not in the page cache, as SQLite's and PostgreSQL's commits are.
"""

from __future__ import annotations

from tracehive.storage.clickhouse.executor import Executor

# Columns of ``events`` that a write supplies, in the order ``rows.event_row`` gives them.
EVENT_COLUMNS = (
    "project_id", "session_id", "event_id", "parent_id", "event_type", "event_name", "source",
    "start_time", "end_time", "duration", "error", "config", "inputs", "outputs", "metadata", "feedback",
    "metrics", "user_properties", "children_ids", "org_id", "workspace_id", "implicit", "seq", "version",
    "is_deleted", "updated_at",
)  # fmt: skip

_EVENTS = """
CREATE TABLE IF NOT EXISTS events (
    project_id String,
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
    INDEX by_event_id event_id TYPE bloom_filter(0.001) GRANULARITY 1,
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

_PENDING_UPDATES = """
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

_ALIASES = """
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

_MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version UInt32,
    applied_at DateTime64(3)
)
ENGINE = ReplacingMergeTree
ORDER BY version
SETTINGS fsync_after_insert = 1, fsync_part_directory = 1
"""

# Each migration is a list of idempotent statements (IF NOT EXISTS), so running one twice, or
# from two processes at once, is harmless; its version is recorded once all of them succeeded.
MIGRATIONS: list[list[str]] = [
    [_EVENTS, _PENDING_UPDATES, _ALIASES],
]
SCHEMA_VERSION = len(MIGRATIONS)


async def current_version(executor: Executor) -> int:
    await executor.command(_MIGRATIONS_TABLE)
    rows = await executor.query("SELECT max(version) FROM schema_migrations")
    return int(rows[0][0] or 0) if rows else 0


async def migrate(executor: Executor) -> int:
    """Apply the migrations above the recorded version; return the schema's version."""
    version = await current_version(executor)
    for number, statements in enumerate(MIGRATIONS[version:], start=version + 1):
        for statement in statements:
            await executor.command(statement)
        await executor.command(
            "INSERT INTO schema_migrations VALUES ({v:UInt32}, now64(3))", {"v": number}
        )
    return SCHEMA_VERSION
