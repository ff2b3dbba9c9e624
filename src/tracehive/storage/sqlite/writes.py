"""The event write rules on SQLite: statements and helpers that run inside a writer job.

Every function here takes the writer's connection inside the group's transaction (one job's
savepoint), so the single writer thread serialises them with every other write of every process
(``storage/base.py`` says why that makes each rule exact).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

from tracehive.model.event import Event, EventUpdate
from tracehive.storage.children import complete_children
from tracehive.storage.rules import merge_session_start, role_clash, session_spans, sources_to_look_up
from tracehive.storage.sqlite.project_keys import Owner
from tracehive.storage.sqlite.rows import (
    STORED_COLUMNS,
    dump,
    dump_optional,
    event_params,
    row_to_event,
)


def _now() -> int:
    return int(time.time() * 1000)


INSERT_COLUMNS = (
    "project_key, event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, "
    "duration, error, config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, updated_at"
)
PLACEHOLDERS = ", ".join("?" * 22)

ROWS_PER_STATEMENT = 256
"""Rows per multi-row INSERT at most (256 x 22 parameters), fewer where SQLite allows fewer
parameters a statement (999 before 3.32): see ``_max_parameters``."""


def _max_parameters(conn: sqlite3.Connection) -> int:
    getlimit = getattr(conn, "getlimit", None)  # Python 3.11+
    if getlimit is not None:
        return int(getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER))
    return 32766 if sqlite3.sqlite_version_info >= (3, 32, 0) else 999


@dataclass(frozen=True, slots=True)
class RowsInsert:
    """An INSERT of many rows in one statement: ``INSERT ... VALUES {row}, {row}, ... {tail}``.

    ``executemany`` steps SQLite once per row, and the writer thread gives up the GIL for each step
    and must take it back from the event loop after it: under load (bench/ingest.py) the upsert of
    100 rows took 6.4 ms of wall time for 3.0 ms of the thread's CPU (issue #15). One statement per
    ``ROWS_PER_STATEMENT`` rows takes it back once per chunk. Rows are applied in order, so a batch
    that names an id twice upserts it twice, as ``executemany`` did."""

    head: str
    row: str
    tail: str

    def run(self, conn: sqlite3.Connection, rows: Sequence[tuple[Any, ...]]) -> int:
        """Insert ``rows``; returns the rows changed (inserted or updated, as ``rowcount``)."""
        changed = 0
        per_statement = max(1, min(ROWS_PER_STATEMENT, _max_parameters(conn) // self.row.count("?")))
        for i in range(0, len(rows), per_statement):
            chunk = rows[i:i + per_statement]
            params = [value for row in chunk for value in row]
            changed += conn.execute(self.sql(len(chunk)), params).rowcount
        return changed

    def sql(self, rows: int) -> str:
        return _rows_sql(self.head, self.row, self.tail, rows)


@lru_cache(maxsize=512)
def _rows_sql(head: str, row: str, tail: str, rows: int) -> str:
    return f"{head} {', '.join([row] * rows)}\n{tail}"


# Re-sent events (retries, re-exports) overwrite what they carry and merge the dicts that updates
# merge, so an update applied in between is not lost. A row that is a session is never turned into
# another type by an event that reuses its id.
UPSERT_EVENT = RowsInsert(f"INSERT INTO events ({INSERT_COLUMNS}) VALUES", f"({PLACEHOLDERS})", """
ON CONFLICT (project_key, event_id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id, event_type = excluded.event_type,
    event_name = excluded.event_name, source = excluded.source, start_time = excluded.start_time,
    end_time = excluded.end_time, duration = excluded.duration, error = excluded.error,
    inputs = excluded.inputs, outputs = coalesce(excluded.outputs, events.outputs),
    config = th_merge(events.config, excluded.config),
    metadata = th_merge(events.metadata, excluded.metadata),
    feedback = th_merge(events.feedback, excluded.feedback),
    metrics = th_merge(events.metrics, excluded.metrics),
    user_properties = th_merge(events.user_properties, excluded.user_properties),
    children_ids = CASE WHEN excluded.children_ids = '[]' THEN events.children_ids ELSE excluded.children_ids END,
    updated_at = excluded.updated_at
WHERE events.event_type <> 'session'
""")

# Create the session an event names if it is unknown (marked implicit), else widen its time span.
COVER_SESSION = RowsInsert(f"INSERT INTO events ({INSERT_COLUMNS}, implicit) VALUES", f"({PLACEHOLDERS}, 1)", """
ON CONFLICT (project_key, event_id) DO UPDATE SET
    -- A session made up from its events takes the first real name offered (e.g. a late root span).
    event_name = CASE WHEN events.implicit = 1 AND events.event_name = 'unknown'
                      THEN excluded.event_name ELSE events.event_name END,
    start_time = min(events.start_time, excluded.start_time),
    end_time = max(events.end_time, excluded.end_time),
    duration = max(events.end_time, excluded.end_time) - min(events.start_time, excluded.start_time),
    updated_at = excluded.updated_at
WHERE events.event_type = 'session'
""")

# The project id is not stored (rows hold its key): ``load`` adds the owner's.
SELECT_EVENT = f"SELECT {STORED_COLUMNS}, implicit FROM events WHERE project_key = ? AND event_id = ?"

ANY_ALIAS = "SELECT 1 FROM event_aliases WHERE project_key = ? LIMIT 1"
SELECT_ALIASES = (
    "SELECT alias_id, event_id FROM event_aliases WHERE project_key = ? "
    "AND alias_id IN (SELECT value FROM json_each(?))"
)


# Helpers ----------------------------------------------------------

_loads = orjson.loads


def load(conn: sqlite3.Connection, owner: Owner, event_id: str) -> tuple[Event, bool] | None:
    row = conn.execute(SELECT_EVENT, (owner.key, event_id)).fetchone()
    if row is None:
        return None
    return row_to_event((*row[:-1], owner.project_id)), bool(row[-1])


# ``+start_time``: with a plain ``start_time`` SQLite walks a time index over the whole project
# to skip the sort (14 ms per read at 12k events, found by bench/peers.py); the few children of
# one parent are found through events_by_parent and sorted instead.
CHILDREN_SQL = (
    "SELECT event_id FROM events WHERE project_key = ? AND parent_id = ? AND event_id <> ? "
    "ORDER BY +start_time, rowid"
)


def load_complete(conn: sqlite3.Connection, owner: Owner, event_id: str) -> Event | None:
    """An event with ``children_ids`` completed from the children that point at it."""
    loaded = load(conn, owner, event_id)
    if loaded is None:
        return None
    event = loaded[0]
    found = [
        r[0]
        for r in conn.execute(CHILDREN_SQL, (owner.key, event_id, event_id))
    ]
    event.children_ids = complete_children(event.children_ids, found)
    return event


def refuse_role_clash(
    conn: sqlite3.Connection, owner: Owner, rows: list[tuple[Any, ...]], sessions: dict[str, Any]
) -> None:
    """A session's id belongs to its session event alone. Name the id that an event tried to
    reuse, or that an event gave as its session but belongs to another event; the job's
    savepoint then undoes the whole write."""
    event_ids = {row[1] for row in rows}
    found = conn.execute(
        "SELECT event_id, event_type FROM events WHERE project_key = ? AND event_id IN (SELECT value FROM json_each(?))",
        (owner.key, dump([*event_ids, *sessions])),
    ).fetchall()
    raise role_clash(event_ids, sessions, found)


def link_aliases(
    conn: sqlite3.Connection,
    project_key: int,
    aliased: list[Event],
    rows: list[tuple[Any, ...]],
) -> dict[str, str] | None:
    """Claim the batch's aliases (the first event to claim one keeps it) and point the rows whose
    parent is an alias at its owner. Returns {alias: owner} for the batch's own aliases, whose
    stored children ``repoint_children`` then links. The hot path (REST ingest: no aliases in the
    batch nor in the project) costs one index probe per job."""
    claims = [
        (project_key, alias, event.event_id)
        for event in aliased
        for alias in dict.fromkeys(event.aliases)
        if isinstance(alias, str) and alias and alias != event.event_id
    ]
    if claims:
        conn.executemany("INSERT OR IGNORE INTO event_aliases VALUES (?, ?, ?)", claims)
    elif conn.execute(ANY_ALIAS, (project_key,)).fetchone() is None:
        return None
    # Rows are event_params tuples: [1] event_id, [2] session_id, [3] parent_id.
    linked = [i for i, row in enumerate(rows) if row[3] is not None and row[3] != row[2]]
    wanted = {rows[i][3] for i in linked}.union(claim[1] for claim in claims)
    if not wanted:
        return None
    found: dict[str, str] = dict(conn.execute(SELECT_ALIASES, (project_key, dump(list(wanted)))).fetchall())
    if not found:
        return None
    for i in linked:
        row = rows[i]
        owner = found.get(row[3])
        if owner is not None and owner != row[1]:  # never an event's own parent
            rows[i] = (*row[:3], owner, *row[4:])
    return {claim[1]: found[claim[1]] for claim in claims if claim[1] in found}


def repoint_children(conn: sqlite3.Connection, project_key: int, owners: dict[str, str], now: int) -> None:
    """Stored children that name an alias as their parent now name its owner (a link to an
    event's own session is never redirected, nor an event made its own parent)."""
    conn.executemany(
        "UPDATE events SET parent_id = ?, updated_at = ? "
        "WHERE project_key = ? AND parent_id = ? AND session_id <> ? AND event_id <> ?",
        [(owner, now, project_key, alias, alias, owner) for alias, owner in owners.items()],
    )


def session_sources(conn: sqlite3.Connection, project_key: int, session_ids: list[str]) -> dict[str, str]:
    """The stored source of each of these sessions that exists (``rules.inherit_sources``)."""
    found: dict[str, str] = {}
    for i in range(0, len(session_ids), 500):
        chunk = session_ids[i:i + 500]
        found.update(conn.execute(
            "SELECT event_id, source FROM events WHERE project_key = ? AND event_type = 'session' "
            f"AND event_id IN ({','.join('?' * len(chunk))})", (project_key, *chunk)).fetchall())
    return found


@dataclass(slots=True)
class PreparedWrite:
    """The pure-Python part of ``write_events``: rows, session spans, sessions and aliases of a
    batch. The store builds it on the event loop before the job (when the project's key is
    known), so the writer thread, the one serial stage, spends its time in SQLite instead of
    competing with the event loop for the GIL (issue #15)."""

    key: int
    rows: list[tuple[Any, ...]]
    sessions: dict[str, list[Any]]  # session id -> [earliest start, latest end, first event]
    explicit: list[Event]  # session events of the batch
    aliased: list[Event]
    inheriting: list[tuple[int, Event]]  # (row index, event) of events taking their session's source
    asked: list[str]  # sessions whose stored source those events take (``rules.sources_to_look_up``)
    ids: list[str]  # every id the write names (events and sessions), for ``apply_pending``
    now: int

    @classmethod
    def of(cls, events: Sequence[Event], key: int, org_id: str, workspace_id: str, now: int) -> PreparedWrite:
        rows: list[tuple[Any, ...]] = []
        explicit: list[Event] = []
        aliased: list[Event] = []
        inheriting: list[tuple[int, Event]] = []
        for event in events:
            if event.aliases:
                aliased.append(event)
            if event.event_type == "session":
                explicit.append(event)
                continue
            if event.inherit_source:
                inheriting.append((len(rows), event))
            rows.append(event_params(event, key, org_id, workspace_id, now))
        sessions = session_spans(events)
        ids = [e.event_id for e in events] + list(sessions)
        return cls(key, rows, sessions, explicit, aliased, inheriting, sources_to_look_up(events), ids, now)

    def take_sources(self) -> None:
        """After ``rules.inherit_sources`` changed the events: their rows carry the new source."""
        for index, event in self.inheriting:
            row = self.rows[index]
            if row[6] != event.source:  # event_params: [6] is source
                self.rows[index] = (*row[:6], event.source, *row[7:])


def implicit_session_params(
    session_id: str, start: Any, end: Any, first: Event, owner: Owner, now: int
) -> tuple[Any, ...]:
    return (
        owner.key, session_id, session_id, None, "session",
        first.session_name_hint or "unknown", first.source, start, end, end - start, None,
        "{}", "{}", None, "{}", "{}", "{}", "{}", "[]", owner.org_id, owner.workspace_id, now,
    )  # fmt: skip


def upsert_session(conn: sqlite3.Connection, owner: Owner, new: Event, now: int) -> Event:
    """Create a session, adopt an implicit one, or merge into an explicit one (contract 5.7)."""
    loaded = load(conn, owner, new.event_id)
    if loaded is None:
        conn.execute(
            f"INSERT INTO events ({INSERT_COLUMNS}) VALUES ({PLACEHOLDERS})",
            event_params(new, owner.key, owner.org_id, owner.workspace_id, now),
        )
        new.org_id, new.workspace_id, new.project_id = owner.org_id, owner.workspace_id, owner.project_id
        return new
    existing = merge_session_start(*loaded, new)
    conn.execute(
        "UPDATE events SET event_name = ?, source = ?, config = ?, inputs = ?, outputs = ?, error = ?, "
        "children_ids = ?, start_time = ?, end_time = ?, duration = ?, metadata = ?, user_properties = ?, "
        "implicit = 0, updated_at = ? WHERE project_key = ? AND event_id = ?",
        (
            existing.event_name, existing.source, dump(existing.config), dump(existing.inputs),
            dump_optional(existing.outputs), existing.error, dump(existing.children_ids),
            existing.start_time, existing.end_time, existing.duration, dump(existing.metadata),
            dump(existing.user_properties), now, owner.key, existing.event_id,
        ),
    )  # fmt: skip
    return existing


def update_row(conn: sqlite3.Connection, owner: Owner, event_id: str, update: EventUpdate, now: int) -> bool:
    loaded = load(conn, owner, event_id)
    if loaded is None:
        return False
    event = loaded[0]
    update.apply(event)
    conn.execute(
        "UPDATE events SET config = ?, outputs = ?, metadata = ?, feedback = ?, metrics = ?, user_properties = ?, "
        "duration = ?, end_time = ?, children_ids = ?, updated_at = ? WHERE project_key = ? AND event_id = ?",
        (
            dump(event.config), dump_optional(event.outputs), dump(event.metadata), dump(event.feedback),
            dump(event.metrics), dump(event.user_properties), event.duration, event.end_time,
            dump(event.children_ids), now, owner.key, event_id,
        ),
    )  # fmt: skip
    if event.event_type != "session" and update.end_time is not None:
        conn.execute(
            "UPDATE events SET end_time = max(end_time, ?), duration = max(end_time, ?) - start_time "
            "WHERE project_key = ? AND event_id = ? AND event_type = 'session'",
            (event.end_time, event.end_time, owner.key, event.session_id),
        )
    return True


def apply_pending(conn: sqlite3.Connection, owner: Owner, event_ids: list[str]) -> None:
    """Apply updates that arrived before these events, then forget them."""
    pending = conn.execute(
        "SELECT event_id, payload FROM pending_updates WHERE project_key = ? "
        "AND event_id IN (SELECT value FROM json_each(?))",
        (owner.key, dump(event_ids)),
    ).fetchall()
    for event_id, payload in pending:
        if update_row(conn, owner, event_id, EventUpdate.from_dict(_loads(payload)), _now()):
            conn.execute(
                "DELETE FROM pending_updates WHERE project_key = ? AND event_id = ?", (owner.key, event_id)
            )


# Bulk export and import ------------------------------------------------------------------------

# An imported row replaces what is stored under its id, field for field, and is explicit.
IMPORT_EVENT = RowsInsert(f"INSERT INTO events ({INSERT_COLUMNS}, implicit) VALUES", f"({PLACEHOLDERS}, 0)", """
ON CONFLICT (project_key, event_id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id, event_type = excluded.event_type,
    event_name = excluded.event_name, source = excluded.source, start_time = excluded.start_time,
    end_time = excluded.end_time, duration = excluded.duration, error = excluded.error,
    config = excluded.config, inputs = excluded.inputs, outputs = excluded.outputs,
    metadata = excluded.metadata, feedback = excluded.feedback, metrics = excluded.metrics,
    user_properties = excluded.user_properties, children_ids = excluded.children_ids,
    org_id = excluded.org_id, workspace_id = excluded.workspace_id, implicit = 0,
    updated_at = excluded.updated_at
""")

# A session named by imported events: made up if unknown, widened only while it is made up.
IMPORT_COVER_SESSION = RowsInsert(f"INSERT INTO events ({INSERT_COLUMNS}, implicit) VALUES", f"({PLACEHOLDERS}, 1)", """
ON CONFLICT (project_key, event_id) DO UPDATE SET
    start_time = min(events.start_time, excluded.start_time),
    end_time = max(events.end_time, excluded.end_time),
    duration = max(events.end_time, excluded.end_time) - min(events.start_time, excluded.start_time),
    updated_at = excluded.updated_at
WHERE events.event_type = 'session' AND events.implicit = 1
""")
