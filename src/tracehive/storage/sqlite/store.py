"""SQLiteStore: the embedded backend behind the ``Store`` contract."""

from __future__ import annotations

import asyncio
import hmac
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tracehive.model import ids
from tracehive.model.errors import BadRequest, IdRoleClash
from tracehive.model.event import Event, EventUpdate, deep_merge
from tracehive.model.keys import generate_key, hash_key
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.filters import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.storage.base import ApiKeyRecord, Capabilities, Project, Store, StoreStats
from tracehive.storage.observer import StoreObserver
from tracehive.storage.sqlite.chart import run_chart
from tracehive.storage.sqlite.compile import CompiledStream, compile_export, compile_stream
from tracehive.storage.sqlite.connection import connect
from tracehive.storage.sqlite.migrations import migrate
from tracehive.storage.sqlite.rows import (
    EVENT_COLUMNS,
    LINE_COLUMNS,
    complete_children,
    dump,
    dump_optional,
    event_params,
    row_to_event,
    row_to_line,
)
from tracehive.storage.sqlite.schema import schema_fields as _schema_fields
from tracehive.storage.sqlite.session_list import list_sessions as _list_sessions
from tracehive.storage.sqlite.writer import GroupCommitWriter

T = TypeVar("T")

_INSERT_COLUMNS = (
    "project_id, event_id, session_id, parent_id, event_type, event_name, source, start_time, end_time, "
    "duration, error, config, inputs, outputs, metadata, feedback, metrics, user_properties, children_ids, "
    "org_id, workspace_id, updated_at"
)
_PLACEHOLDERS = ", ".join("?" * 22)

# Re-sent events (retries, re-exports) overwrite what they carry and merge the dicts that updates
# merge, so an update applied in between is not lost. A row that is a session is never turned into
# another type by an event that reuses its id.
_UPSERT_EVENT = f"""
INSERT INTO events ({_INSERT_COLUMNS}) VALUES ({_PLACEHOLDERS})
ON CONFLICT (project_id, event_id) DO UPDATE SET
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
"""

# Create the session an event names if it is unknown (marked implicit), else widen its time span.
_COVER_SESSION = f"""
INSERT INTO events ({_INSERT_COLUMNS}, implicit) VALUES ({_PLACEHOLDERS}, 1)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    -- A session made up from its events takes the first real name offered (e.g. a late root span).
    event_name = CASE WHEN events.implicit = 1 AND events.event_name = 'unknown'
                      THEN excluded.event_name ELSE events.event_name END,
    start_time = min(events.start_time, excluded.start_time),
    end_time = max(events.end_time, excluded.end_time),
    duration = max(events.end_time, excluded.end_time) - min(events.start_time, excluded.start_time),
    updated_at = excluded.updated_at
WHERE events.event_type = 'session'
"""

_SELECT_EVENT = f"SELECT {EVENT_COLUMNS}, implicit FROM events WHERE project_id = ? AND event_id = ?"

_ANY_ALIAS = "SELECT 1 FROM event_aliases WHERE project_id = ? LIMIT 1"
_SELECT_ALIASES = (
    "SELECT alias_id, event_id FROM event_aliases WHERE project_id = ? "
    "AND alias_id IN (SELECT value FROM json_each(?))"
)


def _now() -> int:
    return int(time.time() * 1000)


class _ReaderPool:
    """A few read-only connections, one per worker thread, so reads never wait on the writer."""

    def __init__(self, path: Path, size: int) -> None:
        self._path = path
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._executor = ThreadPoolExecutor(size, thread_name_prefix="tracehive-reader", initializer=self._init)

    def _init(self) -> None:
        conn = connect(self._path, readonly=True)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: fn(self._local.conn))

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()


class SQLiteStore(Store):
    # One writer thread per process and one write lock per file serialise every write job, so
    # several processes may share the file (the journal's applier process does).
    capabilities = Capabilities(backend="sqlite", concurrent_writers=True, preserves_nul=True,
                                read_timeout=False, otlp_journal=True)

    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 4,
        writer_queue: int = 1024,
        synchronous: str = "FULL",
        observer: StoreObserver | None = None,
        write_timeout: float | None = None,
        max_db_bytes: int = 0,
    ) -> None:
        """``write_timeout``: seconds a write waits for the writer before it is withdrawn and
        answered 503 (None: no bound). ``max_db_bytes``: size cap of the database (0: none)."""
        self.path = Path(path)
        self._write_timeout = write_timeout
        self._max_db_bytes = max_db_bytes
        self._observer = observer
        self._readers_size = readers
        self._writer_queue = writer_queue
        self._synchronous = synchronous
        self._writer: GroupCommitWriter | None = None
        self._readers: _ReaderPool | None = None

    # Lifecycle ---------------------------------------------------------------------------------

    async def migrate(self) -> int:
        return await asyncio.to_thread(self._migrate)

    def _migrate(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        setup = connect(self.path, synchronous=self._synchronous)
        try:
            version = migrate(setup)
            setup.execute("BEGIN IMMEDIATE")
            for key in ("org_id", "workspace_id"):
                setup.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)", (key, ids.new_id()))
            setup.execute("COMMIT")
            return version
        finally:
            setup.close()

    def describe(self) -> str:
        return str(self.path.resolve())

    def stats(self) -> StoreStats:
        writer = self._writer
        return StoreStats(writer.queue_depth if writer is not None else None, self._writer_queue)

    async def open(self) -> None:
        if self._writer is not None:
            return
        self._migrate()
        self._writer = GroupCommitWriter(self.path, max_queue=self._writer_queue, synchronous=self._synchronous,
                                         observer=self._observer, max_db_bytes=self._max_db_bytes)
        self._writer.start()
        self._readers = _ReaderPool(self.path, self._readers_size)

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        if self._readers is not None:
            self._readers.close()
            self._readers = None

    @property
    def writer(self) -> GroupCommitWriter:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self.writer.submit(job, self._write_timeout)  # type: ignore[no-any-return]

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._readers is None:
            raise RuntimeError("store is not open")
        return await self._readers.run(fn)

    async def health(self) -> bool:
        if self._readers is None:
            return False
        try:
            return await self._read(lambda c: c.execute("SELECT 1").fetchone()[0] == 1)
        except sqlite3.Error:
            return False

    # Projects and keys -------------------------------------------------------------------------

    async def ensure_project(self, name: str) -> tuple[Project, bool]:
        def job(conn: sqlite3.Connection) -> tuple[Project, bool]:
            row = conn.execute(
                "SELECT project_id, name, org_id, workspace_id, created_at FROM projects WHERE name = ?", (name,)
            ).fetchone()
            if row:
                return Project(*row), False
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            project = Project(ids.new_id(), name, meta["org_id"], meta["workspace_id"], _now())
            conn.execute(
                "INSERT INTO projects VALUES (?, ?, ?, ?, ?)",
                (project.project_id, project.name, project.org_id, project.workspace_id, project.created_at),
            )
            return project, True

        return await self._write(job)

    async def list_projects(self) -> list[Project]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT project_id, name, org_id, workspace_id, created_at FROM projects ORDER BY created_at, name"
            ).fetchall()
        )
        return [Project(*r) for r in rows]

    async def create_key(self, project_id: str, kind: KeyKind) -> tuple[ApiKeyRecord, str]:
        key_id, key = generate_key(kind)
        created = _now()

        def job(conn: sqlite3.Connection) -> str:
            row = conn.execute("SELECT name FROM projects WHERE project_id = ?", (project_id,)).fetchone()
            if row is None:
                raise BadRequest(f"no project with id {project_id}")
            conn.execute(
                "INSERT INTO api_keys VALUES (?, ?, ?, ?, ?, NULL)",
                (key_id, hash_key(key), kind.value, project_id, created),
            )
            return str(row[0])

        project_name = await self._write(job)
        return ApiKeyRecord(key_id, kind, project_id, project_name, created, None), key

    async def list_keys(self) -> list[ApiKeyRecord]:
        rows = await self._read(
            lambda c: c.execute(
                "SELECT k.key_id, k.kind, k.project_id, p.name, k.created_at, k.revoked_at "
                "FROM api_keys k JOIN projects p USING (project_id) ORDER BY k.created_at"
            ).fetchall()
        )
        return [ApiKeyRecord(r[0], KeyKind(r[1]), r[2], r[3], r[4], r[5]) for r in rows]

    async def revoke_key(self, key_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (_now(), key_id)
            )
            return cur.rowcount > 0

        return await self._write(job)

    async def resolve_key(self, key: str) -> Scope | None:
        digest = hash_key(key)

        def fn(conn: sqlite3.Connection) -> Any:
            return conn.execute(
                "SELECT k.key_hash, k.kind, k.key_id, p.org_id, p.workspace_id, p.project_id, p.name "
                "FROM api_keys k JOIN projects p USING (project_id) "
                "WHERE k.key_hash = ? AND k.revoked_at IS NULL",
                (digest,),
            ).fetchone()

        row = await self._read(fn)
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return Scope(
            org_id=row[3], workspace_id=row[4], project_id=row[5], project_name=row[6],
            key_kind=KeyKind(row[1]), key_id=row[2],
        )

    # Event writes (all run on the writer thread) -----------------------------------------------

    async def create_session(self, scope: Scope, session: Event) -> Event:
        def job(conn: sqlite3.Connection) -> Event:
            stored = _upsert_session(conn, scope, session, _now())
            _apply_pending(conn, scope, [session.event_id])
            return _load_complete(conn, scope, stored.event_id) or stored

        stored = await self._write(job)
        if self._observer is not None:
            self._observer.events_stored(1)
        return stored

    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        if not events:
            return
        project_id, org_id, workspace_id = scope.project_id, scope.org_id, scope.workspace_id

        def job(conn: sqlite3.Connection) -> None:
            now = _now()
            rows = []
            sessions: dict[str, list[Any]] = {}
            explicit_sessions = []
            aliased = []
            for event in events:
                if event.aliases:
                    aliased.append(event)
                if event.event_type == "session":
                    explicit_sessions.append(event)
                    continue
                rows.append(event_params(event, project_id, org_id, workspace_id, now))
                span = sessions.get(event.session_id)
                if span is None:
                    sessions[event.session_id] = [event.start_time, event.end_time, event]
                else:
                    if event.start_time < span[0]:
                        span[0] = event.start_time
                    if event.end_time > span[1]:
                        span[1] = event.end_time
            owners = _link_aliases(conn, project_id, aliased, rows)
            # Both statements skip a row whose id already has the other role (event vs session);
            # a short change count is how that rare case is noticed without a lookup per event.
            changed = conn.executemany(_UPSERT_EVENT, rows).rowcount
            covered = conn.executemany(
                _COVER_SESSION,
                [
                    _implicit_session_params(sid, start, end, first, scope, now)
                    for sid, (start, end, first) in sessions.items()
                ],
            ).rowcount
            if changed != len(rows) or covered != len(sessions):
                _refuse_role_clash(conn, scope, rows, sessions)
            for session in explicit_sessions:
                _upsert_session(conn, scope, session, now)
            if owners:
                _repoint_children(conn, project_id, owners, now)
            _apply_pending(conn, scope, [e.event_id for e in events] + list(sessions))

        await self._write(job)
        if self._observer is not None:
            self._observer.events_stored(len(events))

    async def update_event(
        self, scope: Scope, event_id: str, update: EventUpdate, *, keep_if_missing: bool = False
    ) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            if _update_row(conn, scope, event_id, update, _now()):
                return True
            if keep_if_missing:
                row = conn.execute(
                    "SELECT payload FROM pending_updates WHERE project_id = ? AND event_id = ?",
                    (scope.project_id, event_id),
                ).fetchone()
                merged = EventUpdate.from_dict(_loads(row[0])).then(update) if row else update
                conn.execute(
                    "INSERT INTO pending_updates VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (project_id, event_id) DO UPDATE SET payload = excluded.payload",
                    (scope.project_id, event_id, dump(merged.to_dict()), _now()),
                )
            return False

        return await self._write(job)

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        def job(conn: sqlite3.Connection) -> int:
            conn.execute(
                "DELETE FROM event_aliases WHERE project_id = ? AND event_id IN (SELECT event_id FROM events "
                "WHERE project_id = ? AND (session_id = ? OR event_id = ?))",
                (scope.project_id, scope.project_id, session_id, session_id),
            )
            cur = conn.execute(
                "DELETE FROM events WHERE project_id = ? AND (session_id = ? OR event_id = ?)",
                (scope.project_id, session_id, session_id),
            )
            conn.execute(
                "DELETE FROM pending_updates WHERE project_id = ? AND event_id = ?", (scope.project_id, session_id)
            )
            return cur.rowcount

        return await self._write(job)

    async def delete_event(self, scope: Scope, event_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            cur = conn.execute(
                "DELETE FROM events WHERE project_id = ? AND event_id = ?", (scope.project_id, event_id)
            )
            conn.execute(
                "DELETE FROM event_aliases WHERE project_id = ? AND event_id = ?",
                (scope.project_id, event_id),
            )
            return cur.rowcount > 0

        return await self._write(job)

    # Reads -------------------------------------------------------------------------------------

    async def get_event(self, scope: Scope, event_id: str) -> Event | None:
        return await self._read(lambda c: _load_complete(c, scope, event_id))

    async def session_events(self, scope: Scope, session_id: str) -> list[Event]:
        def fn(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE project_id = ? AND session_id = ? "
                "ORDER BY start_time, rowid",
                (scope.project_id, session_id),
            ).fetchall()
            events = [row_to_event(r) for r in rows]
            children: dict[str, list[str]] = {}
            for event in events:
                if event.parent_id and event.parent_id != event.event_id:
                    children.setdefault(event.parent_id, []).append(event.event_id)
            for event in events:
                found = children.get(event.event_id)
                if found:
                    event.children_ids = complete_children(event.children_ids, found)
            return events

        return await self._read(fn)

    async def export_events(self, scope: Scope, query: EventQuery) -> tuple[list[Event], int]:
        compiled = compile_export(scope.project_id, query)

        def fn(conn: sqlite3.Connection) -> tuple[list[Event], int]:
            conn.execute("BEGIN")  # one snapshot for the count and the page
            try:
                total = conn.execute(compiled.count_sql, compiled.count_params).fetchone()[0]
                rows = (
                    conn.execute(compiled.select_sql, compiled.select_params).fetchall()
                    if total > query.offset
                    else []
                )
            finally:
                conn.execute("COMMIT")
            return [row_to_event(r) for r in rows], int(total)

        return await self._read(fn)

    async def chart_events(self, scope: Scope, query: ChartQuery) -> list[ChartRow]:
        return await self._read(lambda conn: run_chart(conn, scope.project_id, query))


    # Bulk export and import ----------------------------------------------------------------------

    def iter_events(self, scope: Scope, query: EventQuery, *, chunk_size: int = 1000) -> AsyncIterator[list[Event]]:
        return self._stream(compile_stream(scope.project_id, query), row_to_event, 6, 0, chunk_size)

    def iter_event_lines(
        self, scope: Scope, query: EventQuery, *, scope_fields: bool, chunk_size: int = 5000
    ) -> AsyncIterator[list[bytes]]:
        """As the contract says; SQLite builds most of each line from the stored JSON text
        (``LINE_COLUMNS``, ``row_to_line``), without parsing it into events."""
        compiled = compile_stream(scope.project_id, query, LINE_COLUMNS[scope_fields])
        return self._stream(compiled, row_to_line, 1, 5, chunk_size)

    async def _stream(
        self,
        compiled: CompiledStream,
        convert: Callable[[tuple[Any, ...]], T],
        start_at: int,
        id_at: int,
        chunk_size: int,
    ) -> AsyncIterator[list[T]]:
        """Keyset pages on (start_time, event_id) (at ``start_at``, ``id_at`` in a row): each chunk
        is one short read (no read transaction held across chunks, so checkpoints proceed during a
        long export), and the next chunk is fetched while the caller handles the current one."""

        def fetch(sql: str, params: list[Any]) -> Callable[[sqlite3.Connection], tuple[list[T], Any]]:
            def fn(conn: sqlite3.Connection) -> tuple[list[T], Any]:
                rows = conn.execute(sql, params).fetchall()
                return [convert(r) for r in rows], ((rows[-1][start_at], rows[-1][id_at]) if rows else None)

            return fn

        task: asyncio.Future[tuple[list[T], Any]] | None = asyncio.ensure_future(
            self._read(fetch(*compiled.first(chunk_size)))
        )
        try:
            while task is not None:
                items, last = await task
                task = None
                if len(items) == chunk_size:
                    task = asyncio.ensure_future(self._read(fetch(*compiled.after(*last, chunk_size))))
                if items:
                    yield items
        finally:
            if task is not None:
                task.cancel()

    async def import_events(self, scope: Scope, events: Sequence[Event]) -> None:
        if not events:
            return
        project_id, org_id, workspace_id = scope.project_id, scope.org_id, scope.workspace_id

        def job(conn: sqlite3.Connection) -> None:
            now = _now()
            conn.executemany(
                _IMPORT_EVENT, [event_params(e, project_id, org_id, workspace_id, now) for e in events]
            )
            # Sessions the batch's events name: created if unknown, widened while implicit; an
            # explicit session (this batch's own rows were just written as explicit) is left as is.
            spans: dict[str, list[Any]] = {}
            for event in events:
                if event.event_type == "session":
                    continue
                span = spans.get(event.session_id)
                if span is None:
                    spans[event.session_id] = [event.start_time, event.end_time, event]
                else:
                    span[0] = min(span[0], event.start_time)
                    span[1] = max(span[1], event.end_time)
            conn.executemany(
                _IMPORT_COVER_SESSION,
                [_implicit_session_params(sid, start, end, first, scope, now) for sid, (start, end, first) in spans.items()],
            )

        await self._write(job)

    async def schema_fields(self, scope: Scope, query: EventQuery, *, sample: int = 1000) -> list[tuple[str, str]]:
        project_id = scope.project_id
        return await self._read(lambda conn: _schema_fields(conn, project_id, query, sample))

    async def list_sessions(self, scope: Scope, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
        project_id = scope.project_id
        return await self._read(lambda conn: _list_sessions(conn, project_id, query))


# Helpers that run inside a writer job ----------------------------------------------------------

_loads = orjson.loads


def _load(conn: sqlite3.Connection, scope: Scope, event_id: str) -> tuple[Event, bool] | None:
    row = conn.execute(_SELECT_EVENT, (scope.project_id, event_id)).fetchone()
    if row is None:
        return None
    return row_to_event(row[:-1]), bool(row[-1])


# ``+start_time``: with a plain ``start_time`` SQLite walks events_by_time over the whole project
# to skip the sort (14 ms per read at 12k events, found by bench/peers.py); the few children of
# one parent are found through events_by_parent and sorted instead.
CHILDREN_SQL = (
    "SELECT event_id FROM events WHERE project_id = ? AND parent_id = ? AND event_id <> ? "
    "ORDER BY +start_time, rowid"
)


def _load_complete(conn: sqlite3.Connection, scope: Scope, event_id: str) -> Event | None:
    """An event with ``children_ids`` completed from the children that point at it."""
    loaded = _load(conn, scope, event_id)
    if loaded is None:
        return None
    event = loaded[0]
    found = [
        r[0]
        for r in conn.execute(CHILDREN_SQL, (scope.project_id, event_id, event_id))
    ]
    event.children_ids = complete_children(event.children_ids, found)
    return event


def _refuse_role_clash(
    conn: sqlite3.Connection, scope: Scope, rows: list[tuple[Any, ...]], sessions: dict[str, Any]
) -> None:
    """A session's id belongs to its session event alone. Name the id that an event tried to
    reuse, or that an event gave as its session but belongs to another event; the job's
    savepoint then undoes the whole write."""
    event_ids = {row[1] for row in rows}
    found = conn.execute(
        "SELECT event_id, event_type FROM events WHERE project_id = ? AND event_id IN (SELECT value FROM json_each(?))",
        (scope.project_id, dump([*event_ids, *sessions])),
    ).fetchall()
    clash = event_ids & sessions.keys()
    clash |= {
        eid for eid, etype in found
        if (eid in event_ids and etype == "session") or (eid in sessions and etype != "session")
    }  # fmt: skip
    what = sorted(clash)[0] if clash else "(unknown)"
    raise IdRoleClash(f"id {what} is used both as a session id and as the id of a non-session event", frozenset(clash))


def _link_aliases(
    conn: sqlite3.Connection,
    project_id: str,
    aliased: list[Event],
    rows: list[tuple[Any, ...]],
) -> dict[str, str] | None:
    """Claim the batch's aliases (the first event to claim one keeps it) and point the rows whose
    parent is an alias at its owner. Returns {alias: owner} for the batch's own aliases, whose
    stored children ``_repoint_children`` then links. The hot path (REST ingest: no aliases in the
    batch nor in the project) costs one index probe per job."""
    claims = [
        (project_id, alias, event.event_id)
        for event in aliased
        for alias in dict.fromkeys(event.aliases)
        if isinstance(alias, str) and alias and alias != event.event_id
    ]
    if claims:
        conn.executemany("INSERT OR IGNORE INTO event_aliases VALUES (?, ?, ?)", claims)
    elif conn.execute(_ANY_ALIAS, (project_id,)).fetchone() is None:
        return None
    # Rows are event_params tuples: [1] event_id, [2] session_id, [3] parent_id.
    linked = [i for i, row in enumerate(rows) if row[3] is not None and row[3] != row[2]]
    wanted = {rows[i][3] for i in linked}.union(claim[1] for claim in claims)
    if not wanted:
        return None
    found: dict[str, str] = dict(conn.execute(_SELECT_ALIASES, (project_id, dump(list(wanted)))).fetchall())
    if not found:
        return None
    for i in linked:
        row = rows[i]
        owner = found.get(row[3])
        if owner is not None and owner != row[1]:  # never an event's own parent
            rows[i] = (*row[:3], owner, *row[4:])
    return {claim[1]: found[claim[1]] for claim in claims if claim[1] in found}


def _repoint_children(conn: sqlite3.Connection, project_id: str, owners: dict[str, str], now: int) -> None:
    """Stored children that name an alias as their parent now name its owner (a link to an
    event's own session is never redirected, nor an event made its own parent)."""
    conn.executemany(
        "UPDATE events SET parent_id = ?, updated_at = ? "
        "WHERE project_id = ? AND parent_id = ? AND session_id <> ? AND event_id <> ?",
        [(owner, now, project_id, alias, alias, owner) for alias, owner in owners.items()],
    )


def _implicit_session_params(
    session_id: str, start: Any, end: Any, first: Event, scope: Scope, now: int
) -> tuple[Any, ...]:
    return (
        scope.project_id, session_id, session_id, None, "session",
        first.session_name_hint or "unknown", first.source, start, end, end - start, None,
        "{}", "{}", None, "{}", "{}", "{}", "{}", "[]", scope.org_id, scope.workspace_id, now,
    )  # fmt: skip


def _upsert_session(conn: sqlite3.Connection, scope: Scope, new: Event, now: int) -> Event:
    """Create a session, adopt an implicit one, or merge into an explicit one (contract 5.7)."""
    loaded = _load(conn, scope, new.event_id)
    if loaded is None:
        conn.execute(
            f"INSERT INTO events ({_INSERT_COLUMNS}) VALUES ({_PLACEHOLDERS})",
            event_params(new, scope.project_id, scope.org_id, scope.workspace_id, now),
        )
        new.org_id, new.workspace_id, new.project_id = scope.org_id, scope.workspace_id, scope.project_id
        return new
    existing, implicit = loaded
    if existing.event_type != "session":
        raise BadRequest(f"id {new.event_id} already belongs to an event of type {existing.event_type}")
    existing.metadata = deep_merge(existing.metadata, new.metadata)
    existing.user_properties = deep_merge(existing.user_properties, new.user_properties)
    if implicit:
        # The session was made up from its events; the real start carries its name and payload.
        existing.event_name, existing.source = new.event_name, new.source
        # An update kept for the session before it existed (enrich_session) may already have set
        # config or outputs on the implicit session: the start does not erase them.
        existing.config = {**existing.config, **new.config}
        existing.inputs = new.inputs
        if new.outputs is not None:
            existing.outputs = new.outputs
        existing.error = new.error
        if new.children_ids:
            existing.children_ids = new.children_ids
        existing.start_time = min(existing.start_time, new.start_time)
        existing.end_time = max(existing.end_time, new.end_time)
        existing.duration = existing.end_time - existing.start_time
    conn.execute(
        "UPDATE events SET event_name = ?, source = ?, config = ?, inputs = ?, outputs = ?, error = ?, "
        "children_ids = ?, start_time = ?, end_time = ?, duration = ?, metadata = ?, user_properties = ?, "
        "implicit = 0, updated_at = ? WHERE project_id = ? AND event_id = ?",
        (
            existing.event_name, existing.source, dump(existing.config), dump(existing.inputs),
            dump_optional(existing.outputs), existing.error, dump(existing.children_ids),
            existing.start_time, existing.end_time, existing.duration, dump(existing.metadata),
            dump(existing.user_properties), now, scope.project_id, existing.event_id,
        ),
    )  # fmt: skip
    return existing


def _update_row(conn: sqlite3.Connection, scope: Scope, event_id: str, update: EventUpdate, now: int) -> bool:
    loaded = _load(conn, scope, event_id)
    if loaded is None:
        return False
    event = loaded[0]
    update.apply(event)
    conn.execute(
        "UPDATE events SET config = ?, outputs = ?, metadata = ?, feedback = ?, metrics = ?, user_properties = ?, "
        "duration = ?, end_time = ?, children_ids = ?, updated_at = ? WHERE project_id = ? AND event_id = ?",
        (
            dump(event.config), dump_optional(event.outputs), dump(event.metadata), dump(event.feedback),
            dump(event.metrics), dump(event.user_properties), event.duration, event.end_time,
            dump(event.children_ids), now, scope.project_id, event_id,
        ),
    )  # fmt: skip
    if event.event_type != "session" and update.end_time is not None:
        conn.execute(
            "UPDATE events SET end_time = max(end_time, ?), duration = max(end_time, ?) - start_time "
            "WHERE project_id = ? AND event_id = ? AND event_type = 'session'",
            (event.end_time, event.end_time, scope.project_id, event.session_id),
        )
    return True


def _apply_pending(conn: sqlite3.Connection, scope: Scope, event_ids: list[str]) -> None:
    """Apply updates that arrived before these events, then forget them."""
    pending = conn.execute(
        "SELECT event_id, payload FROM pending_updates WHERE project_id = ? "
        "AND event_id IN (SELECT value FROM json_each(?))",
        (scope.project_id, dump(event_ids)),
    ).fetchall()
    for event_id, payload in pending:
        if _update_row(conn, scope, event_id, EventUpdate.from_dict(_loads(payload)), _now()):
            conn.execute(
                "DELETE FROM pending_updates WHERE project_id = ? AND event_id = ?", (scope.project_id, event_id)
            )


# Bulk export and import ------------------------------------------------------------------------

# An imported row replaces what is stored under its id, field for field, and is explicit.
_IMPORT_EVENT = f"""
INSERT INTO events ({_INSERT_COLUMNS}, implicit) VALUES ({_PLACEHOLDERS}, 0)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id, event_type = excluded.event_type,
    event_name = excluded.event_name, source = excluded.source, start_time = excluded.start_time,
    end_time = excluded.end_time, duration = excluded.duration, error = excluded.error,
    config = excluded.config, inputs = excluded.inputs, outputs = excluded.outputs,
    metadata = excluded.metadata, feedback = excluded.feedback, metrics = excluded.metrics,
    user_properties = excluded.user_properties, children_ids = excluded.children_ids,
    org_id = excluded.org_id, workspace_id = excluded.workspace_id, implicit = 0,
    updated_at = excluded.updated_at
"""

# A session named by imported events: made up if unknown, widened only while it is made up.
_IMPORT_COVER_SESSION = f"""
INSERT INTO events ({_INSERT_COLUMNS}, implicit) VALUES ({_PLACEHOLDERS}, 1)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    start_time = min(events.start_time, excluded.start_time),
    end_time = max(events.end_time, excluded.end_time),
    duration = max(events.end_time, excluded.end_time) - min(events.start_time, excluded.start_time),
    updated_at = excluded.updated_at
WHERE events.event_type = 'session' AND events.implicit = 1
"""
