"""Versioned schema migrations, applied in order on open. Never edit a released step: add one."""

from __future__ import annotations

import sqlite3

MIGRATIONS: list[tuple[int, str]] = [
    (
        1,
        """
        CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE projects (
            project_id TEXT PRIMARY KEY,
            name TEXT NOT NULL UNIQUE,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            created_at INTEGER NOT NULL
        );
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            key_hash TEXT NOT NULL UNIQUE,
            kind TEXT NOT NULL,
            project_id TEXT NOT NULL REFERENCES projects(project_id),
            created_at INTEGER NOT NULL,
            revoked_at INTEGER
        );
        -- Times are NUMERIC so that integers stay integers and fractional ms survive.
        CREATE TABLE events (
            project_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            parent_id TEXT,
            event_type TEXT NOT NULL,
            event_name TEXT NOT NULL,
            source TEXT NOT NULL,
            start_time NUMERIC NOT NULL,
            end_time NUMERIC NOT NULL,
            duration NUMERIC NOT NULL,
            error TEXT,
            config TEXT NOT NULL,
            inputs TEXT NOT NULL,
            outputs TEXT,
            metadata TEXT NOT NULL,
            feedback TEXT NOT NULL,
            metrics TEXT NOT NULL,
            user_properties TEXT NOT NULL,
            children_ids TEXT NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            implicit INTEGER NOT NULL DEFAULT 0,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (project_id, event_id)
        );
        CREATE INDEX events_by_session ON events (project_id, session_id, start_time);
        CREATE INDEX events_by_parent ON events (project_id, parent_id);
        CREATE INDEX events_by_time ON events (project_id, start_time);
        -- Updates that arrived before their event (enrich_session before the spans).
        CREATE TABLE pending_updates (
            project_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (project_id, event_id)
        );
        """,
    ),
    (
        2,
        """
        -- Other ids an event answers to as a parent (the span-derived id of a span that carried an
        -- explicit event id, contract 8.7). The first event to claim an alias keeps it.
        CREATE TABLE event_aliases (
            project_id TEXT NOT NULL,
            alias_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (project_id, alias_id)
        );
        CREATE INDEX event_aliases_by_event ON event_aliases (project_id, event_id);
        """,
    ),
    (
        3,
        """
        -- Read-side indexes (issue #4). Time and session are served by events_by_time and
        -- events_by_session (step 1). Searches by type or name over a time range, newest first:
        CREATE INDEX events_by_type ON events (project_id, event_type, start_time);
        CREATE INDEX events_by_name ON events (project_id, event_name, start_time);
        -- The JSON paths users filter most. The expressions must be written exactly as
        -- storage/sqlite/compile.py HOT_PATHS emits them, or the planner will not use them.
        -- Partial (IS NOT NULL): events without the field cost no index write, and every
        -- comparison on the path implies the condition, so queries still use them.
        -- (No semicolons in comments: migrate() splits statements on them.)
        -- Not indexed: metadata cost and token counts. Nearly every event carries them with
        -- random values, so each insert dirties a random leaf: with them bench/ingest.py --quick
        -- fell from 7,100 to 4,800 events/s and wrote 2.3x the bytes, while the searches that
        -- filter on them are ranges over a time window, which events_by_time/_type serve.
        CREATE INDEX events_by_model ON events (project_id, json_extract(config, '$."model"'))
            WHERE json_extract(config, '$."model"') IS NOT NULL;
        CREATE INDEX events_by_user_id ON events (project_id, json_extract(user_properties, '$."user_id"'))
            WHERE json_extract(user_properties, '$."user_id"') IS NOT NULL;
        CREATE INDEX events_by_rating ON events (project_id, json_extract(feedback, '$."rating"'))
            WHERE json_extract(feedback, '$."rating"') IS NOT NULL;
        """,
    ),
    (
        4,
        """
        -- Charts (issue #4, storage/sqlite/chart.py): the common chart is duration over a time
        -- range, optionally by event_type. Covering, with start_time leading, it reads only the
        -- range's slice of this index and never the table (whose rows carry the JSON payloads).
        -- Inserts land near the end (start_time mostly grows), like events_by_time.
        CREATE INDEX events_chart_duration ON events (project_id, start_time, event_type, duration);
        """,
    ),
    (
        5,
        """
        -- Experiments (issue #13): datasets, datapoints, runs, configurations and metric
        -- definitions, one JSON document each (storage/records.py).
        CREATE TABLE records (
            project_id TEXT NOT NULL,
            kind TEXT NOT NULL,
            record_id TEXT NOT NULL,
            name TEXT,
            body TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (project_id, kind, record_id)
        );
        CREATE INDEX records_by_time ON records (project_id, kind, created_at, record_id);
        CREATE INDEX records_by_name ON records (project_id, kind, name) WHERE name IS NOT NULL;
        """,
    ),
    (
        6,
        """
        -- Ingest (issue #15): each index is one more B-tree every event write updates, and the
        -- indexes led by a type or a name take inserts at as many places as there are types and
        -- names. One time-ordered index that carries type, name and duration serves what
        -- events_by_time, events_by_type, events_by_name and events_chart_duration served: time
        -- ranges and time order, type and name filters checked inside the index (no table read),
        -- and the charts by type or name (covering). Session rows, a small share, get a partial
        -- index for the sessions list. bench/sqlite_layout.py: 1.5x the plain-insert rate and
        -- 0.64x the bytes written (BENCHMARKS.md).
        DROP INDEX IF EXISTS events_by_time;
        DROP INDEX IF EXISTS events_by_type;
        DROP INDEX IF EXISTS events_by_name;
        DROP INDEX IF EXISTS events_chart_duration;
        CREATE INDEX events_timeline ON events (project_id, start_time, event_type, event_name, duration);
        CREATE INDEX events_sessions ON events (project_id, start_time) WHERE event_type = 'session';
        """,
    ),
    (
        7,
        """
        -- A project's retention and redaction rules (issue #17), in a table of their own: the
        -- projects table, which every earlier release writes with positional inserts, is unchanged.
        CREATE TABLE project_settings (
            project_id TEXT PRIMARY KEY,
            retention_days INTEGER NOT NULL DEFAULT 0,
            redact TEXT NOT NULL DEFAULT '[]'
        );
        """,
    ),
    (
        8,
        """
        -- A small integer per project for the events tables (issue #15). Every events index led
        -- by the 36-character project id paid for it on each insert: keys 40 bytes shorter mean
        -- smaller B-trees, fewer pages dirtied and written per commit. AUTOINCREMENT: a key is
        -- never reused, so rows of a removed project can never be read as another's. Keys of
        -- removed projects stay (a few bytes each) and the mapping never changes, so every
        -- process may cache it.
        CREATE TABLE project_keys (
            project_key INTEGER PRIMARY KEY AUTOINCREMENT,
            project_id TEXT NOT NULL UNIQUE
        );
        INSERT INTO project_keys (project_id) SELECT project_id FROM projects ORDER BY created_at, project_id;
        -- Rows of a project being removed (its events are deleted in steps) keep a key too.
        INSERT OR IGNORE INTO project_keys (project_id) SELECT DISTINCT project_id FROM events;
        INSERT OR IGNORE INTO project_keys (project_id) SELECT DISTINCT project_id FROM pending_updates;
        INSERT OR IGNORE INTO project_keys (project_id) SELECT DISTINCT project_id FROM event_aliases;

        -- The events table rebuilt with the key, rows copied in their order (rowid order is
        -- arrival order, which the time index and the writes rely on staying append-mostly).
        CREATE TABLE events_keyed (
            project_key INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            session_id TEXT NOT NULL,
            parent_id TEXT,
            event_type TEXT NOT NULL,
            event_name TEXT NOT NULL,
            source TEXT NOT NULL,
            start_time NUMERIC NOT NULL,
            end_time NUMERIC NOT NULL,
            duration NUMERIC NOT NULL,
            error TEXT,
            config TEXT NOT NULL,
            inputs TEXT NOT NULL,
            outputs TEXT,
            metadata TEXT NOT NULL,
            feedback TEXT NOT NULL,
            metrics TEXT NOT NULL,
            user_properties TEXT NOT NULL,
            children_ids TEXT NOT NULL,
            org_id TEXT NOT NULL,
            workspace_id TEXT NOT NULL,
            implicit INTEGER NOT NULL DEFAULT 0,
            updated_at INTEGER NOT NULL,
            PRIMARY KEY (project_key, event_id)
        );
        INSERT INTO events_keyed
            SELECT k.project_key, e.event_id, e.session_id, e.parent_id, e.event_type, e.event_name,
                   e.source, e.start_time, e.end_time, e.duration, e.error, e.config, e.inputs,
                   e.outputs, e.metadata, e.feedback, e.metrics, e.user_properties, e.children_ids,
                   e.org_id, e.workspace_id, e.implicit, e.updated_at
            FROM events e JOIN project_keys k ON k.project_id = e.project_id ORDER BY e.rowid;
        DROP TABLE events;
        ALTER TABLE events_keyed RENAME TO events;
        -- The indexes of migrations 1, 3 and 6, led by the key.
        CREATE INDEX events_by_session ON events (project_key, session_id, start_time);
        CREATE INDEX events_by_parent ON events (project_key, parent_id);
        CREATE INDEX events_by_model ON events (project_key, json_extract(config, '$."model"'))
            WHERE json_extract(config, '$."model"') IS NOT NULL;
        CREATE INDEX events_by_user_id ON events (project_key, json_extract(user_properties, '$."user_id"'))
            WHERE json_extract(user_properties, '$."user_id"') IS NOT NULL;
        CREATE INDEX events_by_rating ON events (project_key, json_extract(feedback, '$."rating"'))
            WHERE json_extract(feedback, '$."rating"') IS NOT NULL;
        CREATE INDEX events_timeline ON events (project_key, start_time, event_type, event_name, duration);
        CREATE INDEX events_sessions ON events (project_key, start_time) WHERE event_type = 'session';

        CREATE TABLE pending_updates_keyed (
            project_key INTEGER NOT NULL,
            event_id TEXT NOT NULL,
            payload TEXT NOT NULL,
            created_at INTEGER NOT NULL,
            PRIMARY KEY (project_key, event_id)
        );
        INSERT INTO pending_updates_keyed
            SELECT k.project_key, p.event_id, p.payload, p.created_at
            FROM pending_updates p JOIN project_keys k ON k.project_id = p.project_id;
        DROP TABLE pending_updates;
        ALTER TABLE pending_updates_keyed RENAME TO pending_updates;

        CREATE TABLE event_aliases_keyed (
            project_key INTEGER NOT NULL,
            alias_id TEXT NOT NULL,
            event_id TEXT NOT NULL,
            PRIMARY KEY (project_key, alias_id)
        );
        INSERT INTO event_aliases_keyed
            SELECT k.project_key, a.alias_id, a.event_id
            FROM event_aliases a JOIN project_keys k ON k.project_id = a.project_id;
        DROP TABLE event_aliases;
        ALTER TABLE event_aliases_keyed RENAME TO event_aliases;
        CREATE INDEX event_aliases_by_event ON event_aliases (project_key, event_id);
        """,
    ),
]


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply every step newer than the database, each in its own transaction; return the version."""
    version = current_version(conn)
    for step, sql in MIGRATIONS:
        if step <= version:
            continue
        conn.execute("BEGIN IMMEDIATE")
        try:
            # Re-check under the write lock: another process may have migrated meanwhile.
            if current_version(conn) >= step:
                conn.execute("ROLLBACK")
                continue
            for statement in sql.split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (step,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = step
    return version
