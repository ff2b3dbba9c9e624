"""ClickHouseEventStore: the event part of the contract (``EventStore``) on ClickHouse.

Writes (``write_events``, ``create_session``, ``update_event`` with kept updates, deletes,
``import_events``), reads by id (``get_event``, ``session_events``) and query reads (export pages
and the keyset stream, schema fields: ``reads.py``; session lists: ``sessions.py``; charts:
``chart.py``; the filter compiler: ``compile.py``), over the table design of ``schema.py`` and the
executor seam (chDB in-process: ``executor.py``; a server over HTTP through clickhouse-connect:
``http_executor.py``).
Query reads run with ``max_execution_time`` from ``read_timeout`` (when given).

One writer. Every write runs alone, in order, under ``_write_lock``: it reads the current
versions of the rows it touches, applies the contract's rules in memory (``writes.py``) and
inserts the new versions, so read-modify-write is exact, as SQLite's single writer is. Event
writes that queue meanwhile are stored together, in one insert (group commit: ``group.py``). The engine
is in-process and serialises calls anyway; the lock makes a write's read and its insert one step.
Being the only writer, the store keeps the session rows its groups stored last and reads them from
memory rather than from the table (``session_rows.py``; any other write forgets them).
Reads take no lock: they see each insert whole (one part), but may see a write's events before
the aliases it claimed or before its kept updates are forgotten (each is idempotent).

Several nodes may share one events store (a ClickHouse server) when the control store hands out
write leases (``leases``: PostgreSQL's, wired by the factory): each write then runs under the
leases of its projects, which serialise it with every node's writes to them and order its
versions past theirs (``leased.py``). Such a store reads every day with ``FINAL``: a day settled
here can get another node's insert unseen (``settled.py``). Without leases (chDB, which one
process owns, or a SQLite control store) it is the one writer of its store:
``capabilities.concurrent_writers`` says which.

A write that returns is stored: inserts are synchronous (``async_insert = 0``) and fsynced
(``fsync_after_insert``); on a replicated cluster, ``?quorum=auto`` in the URL adds
``insert_quorum`` so that a return means a quorum of replicas has the part.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import math
import time
from collections.abc import AsyncIterator, Callable, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, TypeVar

from tracehive.model.errors import Overloaded, StoreUnavailable
from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.event_query import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.storage.base import Capabilities, EventStore, Pruned, StoreStats, WriteLeases
from tracehive.storage.clickhouse import group, leased, reads, retention, writes
from tracehive.storage.clickhouse.chart import run_chart
from tracehive.storage.clickhouse.executor import ChdbExecutor, Executor
from tracehive.storage.clickhouse.http_executor import HttpExecutor, HttpTarget
from tracehive.storage.clickhouse.lines import event_lines
from tracehive.storage.clickhouse.rows import VersionClock, now_ms
from tracehive.storage.clickhouse.schema import migrate as apply_migrations
from tracehive.storage.clickhouse.sessions import list_sessions
from tracehive.storage.clickhouse.session_rows import SessionRows
from tracehive.storage.clickhouse.settled import SettledDays
from tracehive.storage.observer import StoreObserver

T = TypeVar("T")
log = logging.getLogger(__name__)



class ClickHouseEventStore(EventStore):
    capabilities = Capabilities(backend="clickhouse", concurrent_writers=False, preserves_nul=True,
                                read_timeout=False, otlp_journal=False)

    def __init__(self, executor_factory: Callable[[], Executor], *, where: str = "clickhouse",
                 max_pending_writes: int = 256, observer: StoreObserver | None = None,
                 migrate_on_open: bool = True, read_timeout: float | None = None,
                 leases: WriteLeases | None = None) -> None:
        self._factory = executor_factory
        self._leases = leases
        if leases is not None:
            self.capabilities = dataclasses.replace(self.capabilities, concurrent_writers=True)  # type: ignore[misc]
        self._where = where
        self._max_pending_writes = max_pending_writes
        self._observer = observer
        self._migrate_on_open = migrate_on_open
        self._ex: Executor | None = None
        self._write_lock = asyncio.Lock()
        self._queue = group.WriteQueue()
        self._sessions = SessionRows()
        self._pending_writes = 0
        self._clock = VersionClock()
        self._days: SettledDays | None = None
        # Query reads stop past the read timeout inside the engine (TIMEOUT_EXCEEDED, answered as
        # StoreUnavailable by the executor): a heavy query cannot hold the engine's one thread.
        # The suffix is our text: a number from the configuration, never from a request.
        self._settings = (f" SETTINGS max_execution_time = {max(1, math.ceil(read_timeout))}"
                          if read_timeout else "")

    @classmethod
    def chdb(cls, path: str | Path, **kwargs: Any) -> ClickHouseEventStore:
        """An events store embedded in this process, its data in ``path`` (a directory), in the
        engine's database ``database`` (``default``; created if missing)."""
        engine = {k: kwargs.pop(k) for k in ("database", "max_server_memory", "max_query_memory", "threads")
                  if k in kwargs}
        database = engine.get("database", "default")
        where = f"chdb://{Path(path)}" + (f"?database={database}" if database != "default" else "")
        return cls(lambda: ChdbExecutor(path, **engine), where=where, **kwargs)

    @classmethod
    def http(cls, url: str, **kwargs: Any) -> ClickHouseEventStore:
        """An events store on a ClickHouse server: ``clickhouse[s]://user:password@host:port/db``
        (``http_executor.py``). The URL is checked here; the server is first reached on open."""
        target = HttpTarget.from_url(url)
        engine = {k: kwargs.pop(k) for k in ("max_query_memory", "threads", "connect_timeout",
                                             "send_receive_timeout") if k in kwargs}
        return cls(lambda: HttpExecutor(target, **engine), where=target.describe(), **kwargs)

    # Lifecycle ---------------------------------------------------------------------------------

    def describe(self) -> str:
        return self._where

    async def migrate(self) -> int:
        if self._ex is not None:
            return await apply_migrations(self._ex)
        executor = self._factory()
        try:
            return await apply_migrations(executor)
        finally:
            await executor.close()

    async def open(self) -> None:
        if self._ex is not None:
            return
        executor = self._factory()
        try:
            if self._migrate_on_open:
                await apply_migrations(executor)
            # Versions continue past every stored one, whatever the clock did since the last run.
            rows = await executor.query("SELECT max(version) FROM events")
            self._clock = VersionClock(int(rows[0][0] or 0) if rows else 0)
        except BaseException:
            await executor.close()
            raise
        # Reads of settled days skip FINAL; every insert through this executor unsettles its days.
        # Not when other nodes write too: their inserts would not unsettle them.
        if self._leases is None:
            self._days = SettledDays()
            executor = self._days.watch(executor)
        self._ex = executor

    async def close(self) -> None:
        if self._ex is None:
            return
        async with self._write_lock:  # queued writes finish first
            executor, self._ex = self._ex, None
            try:
                await executor.close()
            finally:
                if self._leases is not None:
                    await self._leases.close()

    async def health(self) -> bool:
        if self._ex is None:
            return False
        try:
            rows = await self._ex.query("SELECT 1")
            return rows == [(1,)]
        except StoreUnavailable:
            return False

    def stats(self) -> StoreStats:
        return StoreStats(self._pending_writes if self._ex is not None else None, self._max_pending_writes)

    # Plumbing ----------------------------------------------------------------------------------

    def _executor(self) -> Executor:
        if self._ex is None:
            raise StoreUnavailable("the event store is not open")
        return self._ex

    async def _write(self, job: Callable[[Executor], Any], project_id: str | None, *,
                     keeps_sessions: bool = False) -> Any:
        """Run ``job`` alone (the one writer of this node; under the lease of ``project_id``
        where nodes share the store, ``leased.py``), shedding load past ``max_pending_writes``.
        Unless it ``keeps_sessions`` (event groups, which keep them right), the session rows the
        writer remembers are forgotten before it runs (``session_rows.py``). ``project_id`` None:
        ``job`` takes its leases itself."""
        if self._pending_writes >= self._max_pending_writes:
            raise Overloaded(f"{self._pending_writes} writes are waiting on this node; retry shortly", retry_after=1)
        self._pending_writes += 1
        began = time.perf_counter()
        try:
            async with self._write_lock:
                if not keeps_sessions:
                    self._sessions.clear()
                if project_id is None:
                    result = await job(self._executor())
                else:
                    async with self._held(self._executor(), [project_id]) as ex:
                        result = await job(ex)
            self._observe(True, time.perf_counter() - began)
            return result
        except BaseException:
            self._observe(False)
            raise
        finally:
            self._pending_writes -= 1

    def _held(self, ex: Executor, project_ids: Collection[str]) -> AbstractAsyncContextManager[Executor]:
        return leased.held(ex, self._leases, project_ids, self._clock, self._sessions)

    def _observe(self, ok: bool, seconds: float = 0.0) -> None:
        if self._observer is None:
            return
        try:
            if ok:
                self._observer.group_committed(1, seconds, seconds)
            else:
                self._observer.group_failed(1)
        except Exception:  # metrics must never fail a write
            log.exception("store observer failed")

    async def _finish(self, ex: Executor, scope: Scope, batch: writes.Batch, applied: list[str],
                      claims: list[tuple[str, str]]) -> None:
        """Store a batch's rows (one insert: atomic), then its alias claims, then forget the kept
        updates it applied. A crash in between leaves claims or kept updates that a re-sent write
        records or applies again to the same effect."""
        await batch.flush(self._clock, now_ms())
        await writes.record_claims(ex, scope, claims, self._clock)
        await writes.forget_pending(ex, scope, applied)

    # Writes ------------------------------------------------------------------------------------

    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        """Queued, then stored with the writes queued meanwhile in one insert (``group.py``)."""
        if not events:
            return
        write = group.PendingWrite(scope, events)
        self._queue.append(write)

        async def job(ex: Executor) -> None:
            while not write.done.done():  # the leader: store the queue's writes, up to this one's
                await self._queue.gather()
                queued = self._queue.take()
                if not queued:  # cannot happen: an unsettled write is queued until a leader takes it
                    raise StoreUnavailable("a queued write was lost before it was stored; retry it")
                began = time.perf_counter()
                try:
                    async with self._held(ex, {w.scope.project_id for w in queued}) as held:
                        await group.write_group(held, queued, self._clock, self._sessions)
                except BaseException as exc:  # the group failed, or got no lease in time
                    group.fail(queued, exc, self._sessions)
                    raise
                finally:
                    self._queue.finished(len(queued), time.perf_counter() - began)
            await write.done

        await self._write(job, None, keeps_sessions=True)
        self._stored(len(events))

    async def create_session(self, scope: Scope, session: Event) -> Event:
        async def job(ex: Executor) -> Event:
            batch = writes.Batch(ex, scope)
            stored = await writes.upsert_session(batch, session)
            applied = await writes.apply_pending(batch, [session.event_id])
            await self._finish(ex, scope, batch, applied, [])
            return await writes.load_complete(ex, scope, session.event_id) or stored

        stored: Event = await self._write(job, scope.project_id)
        self._stored(1)
        return stored

    async def update_event(self, scope: Scope, event_id: str, update: EventUpdate, *,
                           keep_if_missing: bool = False) -> bool:
        async def job(ex: Executor) -> bool:
            batch = writes.Batch(ex, scope)
            if await writes.update_row(batch, event_id, update):
                await batch.flush(self._clock, now_ms())
                return True
            if keep_if_missing:
                await writes.keep_update(ex, scope, event_id, update, self._clock.next())
            return False

        return bool(await self._write(job, scope.project_id))

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        return int(await self._write(lambda ex: writes.delete_session(ex, scope, session_id, self._clock),
                                     scope.project_id))

    async def delete_event(self, scope: Scope, event_id: str) -> bool:
        return bool(await self._write(lambda ex: writes.delete_event(ex, scope, event_id, self._clock),
                                      scope.project_id))

    async def prune_events(self, scope: Scope, before: float, *, limit: int) -> Pruned:
        pruned: Pruned = await self._write(lambda ex: retention.prune(ex, scope, before, limit, self._clock),
                                           scope.project_id)
        return pruned

    async def delete_project_events(self, project_id: str, *, limit: int) -> int:
        scope = Scope(org_id="", workspace_id="", project_id=project_id, project_name="")
        return int(await self._write(lambda ex: retention.delete_project_events(ex, scope, limit, self._clock),
                                     project_id))

    def _stored(self, count: int) -> None:
        if self._observer is not None:
            self._observer.events_stored(count)

    # Reads by id -------------------------------------------------------------------------------

    async def get_event(self, scope: Scope, event_id: str) -> Event | None:
        return await writes.load_complete(self._executor(), scope, event_id)

    async def session_events(self, scope: Scope, session_id: str) -> list[Event]:
        return await writes.session_events(self._executor(), scope, session_id)

    # Query reads and bulk transfer -------------------------------------------------------------

    async def export_events(self, scope: Scope, query: EventQuery) -> tuple[list[Event], int]:
        return await reads.export_page(self._executor(), scope.project_id, query, self._settings, self._days)

    # The streams are handed over as they are (no generator around them), so that closing one
    # closes the reader itself: it has a page's statement in flight (``windows.py``).
    def iter_events(self, scope: Scope, query: EventQuery, *,  # type: ignore[override]
                    chunk_size: int = reads.STREAM_CHUNK) -> AsyncIterator[list[Event]]:
        return reads.stream(self._executor(), scope.project_id, query, self._settings, chunk_size, self._days)

    def iter_event_lines(self, scope: Scope, query: EventQuery, *,  # type: ignore[override]
                         scope_fields: bool) -> AsyncIterator[list[bytes]]:
        """As the contract says; the engine builds the lines from the stored text (``lines.py``)."""
        return event_lines(self._executor(), scope.project_id, query, scope_fields=scope_fields,
                           settings=self._settings, days=self._days)

    async def import_events(self, scope: Scope, events: Sequence[Event]) -> None:
        if not events:
            return

        async def job(ex: Executor) -> None:
            batch = writes.Batch(ex, scope)
            await reads.import_events(batch, events)
            await batch.flush(self._clock, now_ms())

        await self._write(job, scope.project_id)
        self._stored(len(events))

    async def schema_fields(self, scope: Scope, query: EventQuery, *, sample: int = 1000) -> list[tuple[str, str]]:
        return await reads.schema_fields(self._executor(), scope.project_id, query, sample, self._settings,
                                        self._days)

    async def chart_events(self, scope: Scope, query: ChartQuery) -> list[ChartRow]:
        return await run_chart(self._executor(), scope.project_id, query, self._settings, self._days)

    async def list_sessions(self, scope: Scope, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
        return await list_sessions(self._executor(), scope.project_id, query, self._settings, self._days)

