"""PostgresStore: the ``Store`` contract on PostgreSQL, for any number of stateless nodes.

- psycopg 3 (async) over a bounded ``psycopg_pool`` pool; every connection is in autocommit mode
  and each call runs in its own explicit transaction, so a 200 means committed.
- Writes: READ COMMITTED transactions (the rules that keep them exact with many writers are in
  ``storage/base.py`` and ``writes.py``); a deadlock or serialization failure is retried here;
  at most ``max_pending_writes`` write transactions per node run or wait for a connection, past
  that a write is shed with 503 + Retry-After instead of queueing without bound.
- Reads: REPEATABLE READ, READ ONLY (one snapshot for a count and its page), ``statement_timeout``
  set per transaction; a read stopped by it is answered 503. Reads may hold all but two of the
  pool's connections, so key lookups, health checks and writes always find one.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, TypeVar

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg import errors as pg_errors
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from tracehive.model import ids
from tracehive.model.errors import ApiError, BadRequest, Overloaded, StorageFull, StoreUnavailable
from tracehive.model.event import Event, EventUpdate
from tracehive.model.keys import generate_key, hash_key
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.event_query import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.storage.base import ApiKeyRecord, Capabilities, Project, Pruned, Store, StoreStats, WriteLeases
from tracehive.storage.factory import redact_url
from tracehive.storage.observer import StoreObserver
from tracehive.storage.postgres import lifecycle, reads, writes
from tracehive.storage.postgres.leases import PostgresWriteLeases
from tracehive.storage.postgres.migrations import migrate as apply_migrations
from tracehive.storage.postgres.records import PostgresRecords
from tracehive.storage.postgres.rows import text

T = TypeVar("T")
Conn = AsyncConnection[Any]
log = logging.getLogger(__name__)

# A transaction that loses a deadlock or a serialization race is run again, this many times.
_RETRIES = 6
# Connections kept out of the readers' reach (key lookups, health, writes).
_RESERVED = 2
_RETRYABLE = (pg_errors.DeadlockDetected, pg_errors.SerializationFailure)


def _now() -> int:
    return int(time.time() * 1000)


class PostgresStore(PostgresRecords, Store):
    capabilities = Capabilities(backend="postgresql", concurrent_writers=True, preserves_nul=False,
                                read_timeout=True, otlp_journal=True)

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        statement_timeout: float = 30.0,
        max_pending_writes: int = 256,
        write_timeout: float | None = 10.0,
        observer: StoreObserver | None = None,
        migrate_on_open: bool = True,
    ) -> None:
        self.url = url
        self._pool_size = max(pool_size, _RESERVED + 1)
        self._statement_timeout_ms = int(statement_timeout * 1000) if statement_timeout > 0 else 0
        self._max_pending_writes = max_pending_writes
        self._write_timeout = write_timeout
        self._observer = observer
        self._migrate_on_open = migrate_on_open
        self._pool: AsyncConnectionPool[Conn] | None = None
        self._read_slots: asyncio.Semaphore | None = None
        self._pending_writes = 0

    # Lifecycle ---------------------------------------------------------------------------------

    def describe(self) -> str:
        return redact_url(self.url)

    async def migrate(self) -> int:
        try:
            conn = await AsyncConnection.connect(self.url, autocommit=True)
        except psycopg.OperationalError as exc:
            raise StoreUnavailable(f"cannot connect to {self.describe()}: {_first_line(exc)}") from exc
        async with conn:
            version = await apply_migrations(conn)
            for key in ("org_id", "workspace_id"):
                await conn.execute("INSERT INTO meta VALUES (%s, %s) ON CONFLICT DO NOTHING", (key, ids.new_id()))
            return version

    async def open(self) -> None:
        if self._pool is not None:
            return
        if self._migrate_on_open:
            await self.migrate()
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.url, min_size=1, max_size=self._pool_size, open=False, kwargs={"autocommit": True},
            name="tracehive",
        )
        try:
            await pool.open(wait=True, timeout=10)
        except PoolTimeout as exc:
            await pool.close()
            raise StoreUnavailable(f"cannot connect to {self.describe()}") from exc
        self._pool = pool
        self._read_slots = asyncio.Semaphore(self._pool_size - _RESERVED)

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    def stats(self) -> StoreStats:
        return StoreStats(self._pending_writes if self._pool is not None else None, self._max_pending_writes)

    def write_leases(self) -> WriteLeases:
        """Leases for an events store the nodes of this database share (``leases.py``); a wait
        for one is bounded by the write timeout, as a wait for a connection is."""
        return PostgresWriteLeases(self.url, wait=self._write_timeout)

    async def health(self) -> bool:
        if self._pool is None:
            return False
        try:
            async with self._pool.connection(timeout=2) as conn:
                row = await (await conn.execute("SELECT 1")).fetchone()
                return row is not None and row[0] == 1
        except (psycopg.Error, PoolTimeout):
            return False

    # Transactions ------------------------------------------------------------------------------

    def _connection(self, timeout: float | None) -> Any:
        if self._pool is None:
            raise StoreUnavailable("the store is not open")
        return self._pool.connection(timeout=timeout if timeout is not None else 30.0)

    async def _write(self, job: Callable[[Conn], Awaitable[T]]) -> T:
        """Run ``job`` in a write transaction (retried on deadlock or serialization failure) and
        return once it has committed."""
        if self._pending_writes >= self._max_pending_writes:
            raise Overloaded(f"{self._pending_writes} writes are in progress on this node; retry shortly",
                             retry_after=1)
        self._pending_writes += 1
        began = time.perf_counter()
        try:
            for attempt in range(_RETRIES):
                try:
                    async with self._connection(self._write_timeout) as conn:
                        async with conn.transaction():
                            result = await job(conn)
                            committing = time.perf_counter()
                        committed = time.perf_counter()
                    self._observe(True, committed - began, committed - committing)
                    return result
                except _RETRYABLE as exc:
                    if attempt == _RETRIES - 1:
                        self._observe(False)
                        raise StoreUnavailable(f"the write lost {_RETRIES} races with other writers; retry") from exc
                    await asyncio.sleep(random.uniform(0, 0.01 * 2**attempt))
                except psycopg.Error as exc:
                    self._observe(False)
                    raise _store_error(exc) from exc
                except PoolTimeout as exc:
                    self._observe(False)
                    raise StoreUnavailable(_not_started(self._write_timeout)) from exc
            raise AssertionError("unreachable")
        finally:
            self._pending_writes -= 1

    async def _read(self, fn: Callable[[Conn], Awaitable[T]], *, snapshot: bool = True,
                    heavy: bool = True) -> T:
        """Run ``fn`` in a read-only transaction (one snapshot), stopped past the statement
        timeout. ``heavy`` reads take a reader slot; light ones (by key) do not."""
        if self._read_slots is None:
            raise StoreUnavailable("the store is not open")
        slots = self._read_slots if heavy else None
        if slots is not None:
            await slots.acquire()
        try:
            async with self._connection(30.0) as conn:
                async with conn.transaction():
                    level = "REPEATABLE READ" if snapshot else "READ COMMITTED"
                    await conn.execute(f"SET TRANSACTION ISOLATION LEVEL {level}, READ ONLY")
                    if self._statement_timeout_ms:
                        await conn.execute(f"SET LOCAL statement_timeout = {self._statement_timeout_ms}")
                    # JIT compiling a chart's expressions costs ~100 ms and pays back only on
                    # far larger scans than a page or a chart of one project reads.
                    await conn.execute("SET LOCAL jit = off")
                    return await fn(conn)
        except pg_errors.QueryCanceled as exc:
            raise StoreUnavailable(
                f"the query ran longer than {self._statement_timeout_ms / 1000:g} s and was stopped; "
                "narrow it (a shorter date range, fewer filters) or retry"
            ) from exc
        except psycopg.Error as exc:
            raise _store_error(exc) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable("no database connection became free in time; retry shortly") from exc
        finally:
            if slots is not None:
                slots.release()

    def _observe(self, ok: bool, transaction_seconds: float = 0.0, commit_seconds: float = 0.0) -> None:
        if self._observer is None:
            return
        try:
            if ok:
                self._observer.group_committed(1, transaction_seconds, commit_seconds)
            else:
                self._observer.group_failed(1)
        except Exception:  # metrics must never fail a write
            log.exception("store observer failed")

    async def _reconcile(self, scope: Scope, followup: writes.Followup) -> None:
        """The second half of a write's two-sided races (``storage/base.py``): after the commit,
        apply what other nodes committed meanwhile for this write's ids."""
        if not followup:
            return
        try:
            async with self._connection(self._write_timeout) as conn:
                if not await writes.needs_reconcile(conn, scope, followup):
                    return
        except psycopg.Error as exc:  # the write is committed; a retry of it is a harmless upsert
            raise _store_error(exc) from exc
        except PoolTimeout as exc:
            raise StoreUnavailable("no database connection became free in time; retry shortly") from exc
        await self._write(lambda conn: writes.reconcile(conn, scope, followup, _now()))

    # Projects and keys -------------------------------------------------------------------------

    async def ensure_project(self, name: str) -> tuple[Project, bool]:
        async def job(conn: Conn) -> tuple[Project, bool]:
            meta = dict(await (await conn.execute("SELECT key, value FROM meta")).fetchall())
            project = Project(ids.new_id(), name, meta["org_id"], meta["workspace_id"], _now())
            cur = await conn.execute(
                "INSERT INTO projects VALUES (%s, %s, %s, %s, %s) ON CONFLICT (name) DO NOTHING RETURNING project_id",
                (project.project_id, text(name), project.org_id, project.workspace_id, project.created_at),
            )
            if await cur.fetchone() is not None:
                return project, True
            found = await lifecycle.find(conn, name)
            assert found is not None  # the conflicting row is committed: it is visible now
            return found, False

        return await self._write(job)

    async def list_projects(self) -> list[Project]:
        async def fn(conn: Conn) -> list[Any]:
            cur = await conn.execute(
                f"SELECT {lifecycle.PROJECT_COLUMNS} FROM {lifecycle.PROJECTS} ORDER BY p.created_at, p.name"
            )
            return await cur.fetchall()

        return [lifecycle.project_of(r) for r in await self._read(fn, heavy=False)]

    async def update_project(self, name: str, *, retention_days: int | None = None,
                             redact: Sequence[str] | None = None) -> Project | None:
        return await self._write(lambda conn: lifecycle.update(conn, name, retention_days, redact))

    async def remove_project(self, project_id: str) -> tuple[int, int]:
        return await self._write(lambda conn: lifecycle.remove(conn, project_id))

    async def create_key(self, project_id: str, kind: KeyKind) -> tuple[ApiKeyRecord, str]:
        key_id, key = generate_key(kind)
        created = _now()

        async def job(conn: Conn) -> str:
            row = await (await conn.execute("SELECT name FROM projects WHERE project_id = %s",
                                            (text(project_id),))).fetchone()
            if row is None:
                raise BadRequest(f"no project with id {project_id}")
            await conn.execute(
                "INSERT INTO api_keys VALUES (%s, %s, %s, %s, %s, NULL)",
                (key_id, hash_key(key), kind.value, project_id, created),
            )
            return str(row[0])

        project_name = await self._write(job)
        return ApiKeyRecord(key_id, kind, project_id, project_name, created, None), key

    async def list_keys(self) -> list[ApiKeyRecord]:
        async def fn(conn: Conn) -> list[Any]:
            cur = await conn.execute(
                "SELECT k.key_id, k.kind, k.project_id, p.name, k.created_at, k.revoked_at "
                "FROM api_keys k JOIN projects p USING (project_id) ORDER BY k.created_at, k.key_id"
            )
            return await cur.fetchall()

        return [ApiKeyRecord(r[0], KeyKind(r[1]), r[2], r[3], r[4], r[5]) for r in await self._read(fn, heavy=False)]

    async def revoke_key(self, key_id: str) -> bool:
        async def job(conn: Conn) -> bool:
            cur = await conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
                (_now(), text(key_id)),
            )
            return cur.rowcount > 0

        return await self._write(job)

    async def resolve_key(self, key: str) -> Scope | None:
        digest = hash_key(key)

        async def fn(conn: Conn) -> Any:
            cur = await conn.execute(
                "SELECT k.key_hash, k.kind, k.key_id, p.org_id, p.workspace_id, p.project_id, p.name, s.redact "
                "FROM api_keys k JOIN projects p USING (project_id) LEFT JOIN project_settings s USING (project_id) "
                "WHERE k.key_hash = %s AND k.revoked_at IS NULL",
                (digest,),
            )
            return await cur.fetchone()

        row = await self._read(fn, snapshot=False, heavy=False)
        if row is None or not hmac.compare_digest(row[0], digest):
            return None
        return Scope(
            org_id=row[3], workspace_id=row[4], project_id=row[5], project_name=row[6],
            key_kind=KeyKind(row[1]), key_id=row[2], redact=tuple(orjson.loads(row[7])) if row[7] else (),
        )

    # Event writes ------------------------------------------------------------------------------

    async def create_session(self, scope: Scope, session: Event) -> Event:
        async def job(conn: Conn) -> Event:
            now = _now()
            stored = await writes.upsert_session(conn, scope, session, now)
            await writes.apply_pending(conn, scope, [session.event_id])
            return await writes.load_complete(conn, scope, stored.event_id) or stored

        stored = await self._write(job)
        await self._reconcile(scope, writes.Followup(event_ids=[session.event_id]))
        self._stored(1)
        return stored

    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        if not events:
            return
        followup = await self._write(lambda conn: writes.write_events(conn, scope, events, _now()))
        await self._reconcile(scope, followup)
        self._stored(len(events))

    async def update_event(
        self, scope: Scope, event_id: str, update: EventUpdate, *, keep_if_missing: bool = False
    ) -> bool:
        async def job(conn: Conn) -> bool:
            now = _now()
            if await writes.update_row(conn, scope, event_id, update, now):
                return True
            if keep_if_missing:
                await writes.keep_update(conn, scope, event_id, update, now)
            return False

        found = await self._write(job)
        if not found and keep_if_missing:
            # The event may have been stored by another node while this update was being kept.
            await self._reconcile(scope, writes.Followup(event_ids=[event_id]))
        return found

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        return await self._write(lambda conn: writes.delete_session(conn, scope, session_id))

    async def delete_event(self, scope: Scope, event_id: str) -> bool:
        return await self._write(lambda conn: writes.delete_event(conn, scope, event_id))

    async def prune_events(self, scope: Scope, before: float, *, limit: int) -> Pruned:
        return await self._write(lambda conn: lifecycle.prune(conn, scope.project_id, before, limit))

    async def delete_project_events(self, project_id: str, *, limit: int) -> int:
        return await self._write(lambda conn: lifecycle.delete_project_events(conn, project_id, limit))

    async def import_events(self, scope: Scope, events: Sequence[Event]) -> None:
        if events:
            await self._write(lambda conn: writes.import_events(conn, scope, events, _now()))

    def _stored(self, count: int) -> None:
        if self._observer is not None:
            self._observer.events_stored(count)

    # Reads -------------------------------------------------------------------------------------

    async def get_event(self, scope: Scope, event_id: str) -> Event | None:
        return await self._read(lambda conn: writes.load_complete(conn, scope, event_id), heavy=False)

    async def session_events(self, scope: Scope, session_id: str) -> list[Event]:
        return await self._read(lambda conn: reads.session_events(conn, scope.project_id, session_id))

    async def export_events(self, scope: Scope, query: EventQuery) -> tuple[list[Event], int]:
        return await self._read(lambda conn: reads.export_page(conn, scope.project_id, query))

    async def list_sessions(self, scope: Scope, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
        return await self._read(lambda conn: reads.list_sessions(conn, scope.project_id, query))

    async def chart_events(self, scope: Scope, query: ChartQuery) -> list[ChartRow]:
        return await self._read(lambda conn: reads.run_chart(conn, scope.project_id, query))

    async def schema_fields(self, scope: Scope, query: EventQuery, *, sample: int = 1000) -> list[tuple[str, str]]:
        return await self._read(lambda conn: reads.schema_fields(conn, scope.project_id, query, sample))

    async def iter_events(  # type: ignore[override]
        self, scope: Scope, query: EventQuery, *, chunk_size: int = 1000
    ) -> AsyncIterator[list[Event]]:
        """Keyset pages, each one short read (no transaction held across chunks)."""
        pages = reads.stream_pages(scope.project_id, query)
        after: tuple[Any, str] | None = None
        while True:
            chunk, after = await self._read(
                lambda conn, after=after: reads.stream_chunk(conn, pages, after, chunk_size)  # type: ignore[misc]
            )
            if chunk:
                yield chunk
            if len(chunk) < chunk_size or after is None:
                return


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _not_started(timeout: float | None) -> str:
    return (
        f"the write was not stored: no database connection became free within {timeout or 30:g} s; "
        "retry shortly"
    )


def _store_error(exc: psycopg.Error) -> ApiError:
    """The retryable API error for a failure of the database itself, never a 500."""
    if isinstance(exc, pg_errors.DiskFull):
        return StorageFull("the store could not write: the database's disk is full; reads still work, "
                           "writes resume once space is freed", retry_after=5)
    if isinstance(exc, (psycopg.OperationalError, pg_errors.AdminShutdown, pg_errors.CannotConnectNow)):
        return StoreUnavailable(f"the database is not reachable: {_first_line(exc)}; retry shortly")
    if isinstance(exc, pg_errors.QueryCanceled):
        return StoreUnavailable("the database stopped the statement (timeout); retry shortly")
    if isinstance(exc, psycopg.DataError):  # a value of the request the column cannot hold
        return BadRequest(f"the database refused a value: {_first_line(exc)}")
    return StoreUnavailable(f"the store could not complete the request: {_first_line(exc)}")
