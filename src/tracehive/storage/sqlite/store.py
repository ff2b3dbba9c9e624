"""SQLiteStore: the embedded backend behind the ``Store`` contract."""

from __future__ import annotations

import asyncio
import hmac
import os
import sqlite3
import stat
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import orjson

from tracehive.model import ids
from tracehive.model.errors import BadRequest
from tracehive.model.event import Event, EventUpdate
from tracehive.model.keys import generate_key, hash_key
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.event_query import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.storage.base import ApiKeyRecord, Capabilities, Project, Pruned, Store, StoreStats
from tracehive.storage.children import complete_session
from tracehive.storage.observer import StoreObserver
from tracehive.storage.rules import inherit_sources, session_spans
from tracehive.storage.sqlite import projects, retention
from tracehive.storage.sqlite.chart import run_chart
from tracehive.storage.sqlite.compile import CompiledStream, compile_export, compile_stream
from tracehive.storage.sqlite.connection import connect
from tracehive.storage.sqlite.migrations import migrate
from tracehive.storage.sqlite.project_keys import Owner, ProjectKeys, give
from tracehive.storage.sqlite.readers import ReaderPool
from tracehive.storage.sqlite.records import SQLiteRecords
from tracehive.storage.sqlite.rows import (
    dump,
    event_columns,
    event_params,
    line_columns,
    row_to_event,
    row_to_line,
)
from tracehive.storage.sqlite.schema import schema_fields as _schema_fields
from tracehive.storage.sqlite.session_list import list_sessions as _list_sessions
from tracehive.storage.sqlite.writer import GroupCommitWriter
from tracehive.storage.sqlite.writes import (
    COVER_SESSION,
    IMPORT_COVER_SESSION,
    IMPORT_EVENT,
    UPSERT_EVENT,
    PreparedWrite,
    apply_pending,
    implicit_session_params,
    link_aliases,
    load_complete,
    refuse_role_clash,
    repoint_children,
    session_sources,
    update_row,
    upsert_session,
)

T = TypeVar("T")

def _now() -> int:
    return int(time.time() * 1000)

# Added niceness of the heavy-read threads (searches, charts, lists, exports, trees).
HEAVY_READ_NICE = 10


def make_private(path: Path) -> None:
    """The data dir (0700) and the database with its WAL and shared memory (0600) are private to
    the user running tracehive: traces hold whatever users typed. A new database file is created
    0600 before SQLite opens it, since SQLite gives its WAL and -shm files the database's mode;
    files of an older release are tightened in place."""
    directory = path.parent
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
    for target in (directory, path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            mode = stat.S_IMODE(target.stat().st_mode)
            if mode & 0o077:
                target.chmod(mode & ~0o077)
        except OSError:  # not ours to change (e.g. another user's directory): leave it
            pass


class SQLiteStore(SQLiteRecords, Store):
    # One writer thread per process and one write lock per file serialise every write job, so
    # several processes may share the file (the journal's applier process does).
    capabilities = Capabilities(backend="sqlite", concurrent_writers=True, preserves_nul=True,
                                read_timeout=False, otlp_journal=True)

    def __init__(
        self,
        path: str | Path,
        *,
        readers: int = 4,
        read_timeout: float | None = None,
        writer_queue: int = 1024,
        synchronous: str = "FULL",
        observer: StoreObserver | None = None,
        write_timeout: float | None = None,
        max_db_bytes: int = 0,
    ) -> None:
        """``write_timeout``: seconds a write waits for the writer before it is withdrawn and
        answered 503 (None: no bound). ``read_timeout``: seconds a heavy read may run before it
        is stopped and answered 503 (None: no bound). ``max_db_bytes``: size cap of the database
        (0: none)."""
        self._read_timeout = read_timeout
        self.path = Path(path)
        self._write_timeout = write_timeout
        self._max_db_bytes = max_db_bytes
        self._observer = observer
        self._readers_size = readers
        self._writer_queue = writer_queue
        self._synchronous = synchronous
        self._writer: GroupCommitWriter | None = None
        self._readers: ReaderPool | None = None
        self._light: ReaderPool | None = None
        self._keys = ProjectKeys()

    # Lifecycle ---------------------------------------------------------------------------------

    async def migrate(self) -> int:
        return await asyncio.to_thread(self._migrate)

    def _migrate(self) -> int:
        make_private(self.path)
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
        # Heavy reads run niced: on a busy machine the acks (event loop, writer) go first.
        self._readers = ReaderPool(self.path, self._readers_size, nice=HEAVY_READ_NICE)
        self._light = ReaderPool(self.path, 2, name="tracehive-light-reader")

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.to_thread(self._writer.stop)
            self._writer = None
        for pool in (self._readers, self._light):
            if pool is not None:
                pool.close()
        self._readers = self._light = None

    @property
    def writer(self) -> GroupCommitWriter:
        if self._writer is None:
            raise RuntimeError("store is not open")
        return self._writer

    async def _write(self, job: Callable[[sqlite3.Connection], T]) -> T:
        return await self.writer.submit(job, self._write_timeout)  # type: ignore[no-any-return]

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A heavy read: in the main lane, stopped past the read timeout."""
        if self._readers is None:
            raise RuntimeError("store is not open")
        return await self._readers.run(fn, self._read_timeout)

    async def _read_light(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """A short read by key (key lookups, health, one event): in its own lane, never queued
        behind heavy reads."""
        if self._light is None:
            raise RuntimeError("store is not open")
        return await self._light.run(fn, self._read_timeout)

    async def health(self) -> bool:
        if self._readers is None:
            return False
        try:
            return await self._read_light(lambda c: c.execute("SELECT 1").fetchone()[0] == 1)
        except sqlite3.Error:
            return False

    # Projects and keys -------------------------------------------------------------------------

    async def ensure_project(self, name: str) -> tuple[Project, bool]:
        def job(conn: sqlite3.Connection) -> tuple[Project, bool]:
            found = projects.find(conn, name)
            if found is not None:
                return found, False
            meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
            project = Project(ids.new_id(), name, meta["org_id"], meta["workspace_id"], _now())
            conn.execute(
                "INSERT INTO projects VALUES (?, ?, ?, ?, ?)",
                (project.project_id, project.name, project.org_id, project.workspace_id, project.created_at),
            )
            give(conn, project.project_id)
            return project, True

        return await self._write(job)

    async def list_projects(self) -> list[Project]:
        rows = await self._read(
            lambda c: c.execute(
                f"SELECT {projects.PROJECT_COLUMNS} FROM {projects.PROJECTS} ORDER BY p.created_at, p.name"
            ).fetchall()
        )
        return [projects.project_of(r) for r in rows]

    async def update_project(self, name: str, *, retention_days: int | None = None,
                             redact: Sequence[str] | None = None) -> Project | None:
        return await self._write(lambda conn: projects.update(conn, name, retention_days, redact))

    async def remove_project(self, project_id: str) -> tuple[int, int]:
        return await self._write(lambda conn: projects.remove(conn, project_id))

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
                "SELECT k.key_hash, k.kind, k.key_id, p.org_id, p.workspace_id, p.project_id, p.name, s.redact "
                "FROM api_keys k JOIN projects p USING (project_id) LEFT JOIN project_settings s USING (project_id) "
                "WHERE k.key_hash = ? AND k.revoked_at IS NULL",
                (digest,),
            ).fetchone()

        row = await self._read_light(fn)
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return Scope(
            org_id=row[3], workspace_id=row[4], project_id=row[5], project_name=row[6],
            key_kind=KeyKind(row[1]), key_id=row[2], redact=tuple(orjson.loads(row[7])) if row[7] else (),
        )

    # Event writes (all run on the writer thread) -----------------------------------------------

    async def create_session(self, scope: Scope, session: Event) -> Event:
        def job(conn: sqlite3.Connection) -> Event:
            owner = self._keys.owner(conn, scope)
            stored = upsert_session(conn, owner, session, _now())
            apply_pending(conn, owner, [session.event_id])
            return load_complete(conn, owner, stored.event_id) or stored

        stored = await self._write(job)
        if self._observer is not None:
            self._observer.events_stored(1)
        return stored

    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        if not events:
            return
        org_id, workspace_id = scope.org_id, scope.workspace_id
        # The rows are built here, off the writer thread, once the project's key is known (after
        # its first write in this process); the job builds them itself otherwise.
        known = self._keys.cached(scope.project_id)
        prepared = None if known is None else PreparedWrite.of(events, known, org_id, workspace_id, _now())

        def job(conn: sqlite3.Connection) -> None:
            owner = self._keys.owner(conn, scope)
            key = owner.key
            write = prepared if prepared is not None and prepared.key == key else \
                PreparedWrite.of(events, key, org_id, workspace_id, _now())
            now, rows, sessions = write.now, write.rows, write.sessions
            if write.asked:
                inherit_sources(events, session_sources(conn, key, write.asked))
                write.take_sources()
            owners = link_aliases(conn, key, write.aliased, rows)
            # Both statements skip a row whose id already has the other role (event vs session);
            # a short change count is how that rare case is noticed without a lookup per event.
            changed = UPSERT_EVENT.run(conn, rows)
            covered = COVER_SESSION.run(conn, [
                implicit_session_params(sid, start, end, first, owner, now)
                for sid, (start, end, first) in sessions.items()
            ])
            if changed != len(rows) or covered != len(sessions):
                refuse_role_clash(conn, owner, rows, sessions)
            for session in write.explicit:
                upsert_session(conn, owner, session, now)
            if owners:
                repoint_children(conn, key, owners, now)
            apply_pending(conn, owner, write.ids)

        await self._write(job)
        if self._observer is not None:
            self._observer.events_stored(len(events))

    async def update_event(
        self, scope: Scope, event_id: str, update: EventUpdate, *, keep_if_missing: bool = False
    ) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            owner = self._keys.owner(conn, scope)
            if update_row(conn, owner, event_id, update, _now()):
                return True
            if keep_if_missing:
                row = conn.execute(
                    "SELECT payload FROM pending_updates WHERE project_key = ? AND event_id = ?",
                    (owner.key, event_id),
                ).fetchone()
                merged = EventUpdate.from_dict(orjson.loads(row[0])).then(update) if row else update
                conn.execute(
                    "INSERT INTO pending_updates VALUES (?, ?, ?, ?) "
                    "ON CONFLICT (project_key, event_id) DO UPDATE SET payload = excluded.payload",
                    (owner.key, event_id, dump(merged.to_dict()), _now()),
                )
            return False

        return await self._write(job)

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        def job(conn: sqlite3.Connection) -> int:
            key = self._keys.for_read(conn, scope.project_id)
            conn.execute(
                "DELETE FROM event_aliases WHERE project_key = ? AND event_id IN (SELECT event_id FROM events "
                "WHERE project_key = ? AND (session_id = ? OR event_id = ?))",
                (key, key, session_id, session_id),
            )
            cur = conn.execute(
                "DELETE FROM events WHERE project_key = ? AND (session_id = ? OR event_id = ?)",
                (key, session_id, session_id),
            )
            conn.execute(
                "DELETE FROM pending_updates WHERE project_key = ? AND event_id = ?", (key, session_id)
            )
            return cur.rowcount

        return await self._write(job)

    async def delete_event(self, scope: Scope, event_id: str) -> bool:
        def job(conn: sqlite3.Connection) -> bool:
            key = self._keys.for_read(conn, scope.project_id)
            cur = conn.execute("DELETE FROM events WHERE project_key = ? AND event_id = ?", (key, event_id))
            conn.execute("DELETE FROM event_aliases WHERE project_key = ? AND event_id = ?", (key, event_id))
            return cur.rowcount > 0

        return await self._write(job)

    async def prune_events(self, scope: Scope, before: float, *, limit: int) -> Pruned:
        return await self._write(
            lambda conn: retention.prune(conn, self._keys.for_read(conn, scope.project_id), before, limit))

    async def delete_project_events(self, project_id: str, *, limit: int) -> int:
        return await self._write(
            lambda conn: retention.delete_project_events(conn, self._keys.for_read(conn, project_id), limit))

    # Reads -------------------------------------------------------------------------------------

    async def _reader(self, scope: Scope) -> Owner:
        """The scope with its project's key (``NO_ROWS`` if it has none: it has no events)."""
        key = self._keys.cached(scope.project_id)
        if key is None:
            key = await self._read_light(lambda c: self._keys.for_read(c, scope.project_id))
        return Owner(key, scope.project_id, scope.org_id, scope.workspace_id)

    async def get_event(self, scope: Scope, event_id: str) -> Event | None:
        owner = await self._reader(scope)
        return await self._read_light(lambda c: load_complete(c, owner, event_id))

    async def session_events(self, scope: Scope, session_id: str) -> list[Event]:
        owner = await self._reader(scope)

        def fn(conn: sqlite3.Connection) -> list[Event]:
            rows = conn.execute(
                f"SELECT {event_columns(owner.project_id)} FROM events WHERE project_key = ? AND session_id = ? "
                "ORDER BY start_time, rowid",
                (owner.key, session_id),
            ).fetchall()
            events = [row_to_event(r) for r in rows]
            return complete_session(events)

        return await self._read(fn)

    async def export_events(self, scope: Scope, query: EventQuery) -> tuple[list[Event], int]:
        compiled = compile_export(await self._reader(scope), query)

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
        key = (await self._reader(scope)).key
        return await self._read(lambda conn: run_chart(conn, key, query))


    # Bulk export and import ----------------------------------------------------------------------

    def iter_events(self, scope: Scope, query: EventQuery, *, chunk_size: int = 1000) -> AsyncIterator[list[Event]]:
        return self._stream(scope, lambda owner: compile_stream(owner, query), row_to_event, 6, 0, chunk_size)

    def iter_event_lines(
        self, scope: Scope, query: EventQuery, *, scope_fields: bool, chunk_size: int = 5000
    ) -> AsyncIterator[list[bytes]]:
        """As the contract says; SQLite builds most of each line from the stored JSON text
        (``line_columns``, ``row_to_line``), without parsing it into events."""

        def compiled(owner: Owner) -> CompiledStream:
            return compile_stream(owner, query, line_columns(scope_fields, owner.project_id))

        return self._stream(scope, compiled, row_to_line, 1, 5, chunk_size)

    async def _stream(
        self,
        scope: Scope,
        compile_for: Callable[[Owner], CompiledStream],
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

        compiled = compile_for(await self._reader(scope))
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
        org_id, workspace_id = scope.org_id, scope.workspace_id

        def job(conn: sqlite3.Connection) -> None:
            now = _now()
            owner = self._keys.owner(conn, scope)
            IMPORT_EVENT.run(conn, [event_params(e, owner.key, org_id, workspace_id, now) for e in events])
            # Sessions the batch's events name: created if unknown, widened while implicit; an
            # explicit session (this batch's own rows were just written as explicit) is left as is.
            spans = session_spans(events)
            IMPORT_COVER_SESSION.run(conn, [
                implicit_session_params(sid, start, end, first, owner, now) for sid, (start, end, first) in spans.items()
            ])

        await self._write(job)

    async def schema_fields(self, scope: Scope, query: EventQuery, *, sample: int = 1000) -> list[tuple[str, str]]:
        key = (await self._reader(scope)).key
        return await self._read(lambda conn: _schema_fields(conn, key, query, sample))

    async def list_sessions(self, scope: Scope, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
        key = (await self._reader(scope)).key
        return await self._read(lambda conn: _list_sessions(conn, key, query))
