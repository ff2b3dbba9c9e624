"""Write leases on PostgreSQL, for an events store that several nodes share (``base.WriteLeases``).

A lease is a session-level advisory lock per project (``pg_advisory_lock(class, hashtext(id))``),
taken in sorted order on a connection of its own. The lock, not a row lock, because a holder must
*commit* what it publishes before it inserts elsewhere while it keeps holding: a published order
(the ``event_write_leases`` row: highest version, last holder) has to survive the holder's death
between its insert and its release, so that the next holder orders its writes past it.
- Death of a holder (process killed, network cut) closes its connection, which frees its locks.
- A write that fails gives its leases up (``pg_advisory_unlock_all``); a cancelled one closes the
  connection instead (it may be mid-statement), and so does a failed unlock: a connection that
  might still hold a lock is never reused, and ``publish`` never opens a new one.
- Two projects whose ids hash alike share a lock: they are serialised, never wrong.
- The wait is bounded by ``lock_timeout`` (the write timeout); past it the write is shed (503).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Collection
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg import errors as pg_errors

from tracehive.model.errors import Overloaded, StoreUnavailable
from tracehive.storage.base import WriteLease, WriteLeases

# The first key of every lease lock (the second is the project's hash): apart from the migration
# lock, which is a one-key (bigint) advisory lock, a separate space in pg_locks.
LEASE_LOCK_CLASS = 0x7472_6C73  # "trls"


class PostgresWriteLeases(WriteLeases):
    def __init__(self, url: str, *, wait: float | None) -> None:
        self._url = url
        self._wait_ms = int(wait * 1000) if wait else 0
        self._conn: AsyncConnection[Any] | None = None
        # Who this holder is in ``event_write_leases.holder``: new for every store instance, so
        # a restarted node never takes what it remembers from before for its own last write.
        self._holder = secrets.token_hex(8)
        self._held: list[str] | None = None
        self._published = 0

    async def _connection(self) -> AsyncConnection[Any]:
        if self._conn is None or self._conn.closed:
            self._conn = await AsyncConnection.connect(self._url, autocommit=True)
            # 0 = wait without bound, as the write timeout 0 means.
            await self._conn.execute(f"SET lock_timeout = {self._wait_ms}")
        return self._conn

    async def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    @asynccontextmanager
    async def hold(self, project_ids: Collection[str]) -> AsyncIterator[WriteLease]:
        if self._held is not None:
            raise RuntimeError("write leases are held already: one holder at a time")
        projects = sorted(set(project_ids))
        try:
            conn = await self._connection()
            for project_id in projects:
                await conn.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", (LEASE_LOCK_CLASS, project_id))
            rows = await (await conn.execute(
                "SELECT version, holder FROM event_write_leases WHERE project_id = ANY(%s)", (projects,)
            )).fetchall()
        except BaseException as exc:
            await self._drop()
            if isinstance(exc, pg_errors.LockNotAvailable):
                raise Overloaded("another node held this project's writes past the write timeout; "
                                 "retry shortly", retry_after=1) from exc
            if isinstance(exc, psycopg.Error):
                raise StoreUnavailable(
                    f"the write lease could not be taken: {str(exc).splitlines()[0]}") from exc
            raise
        self._held, self._published = projects, 0
        lease = WriteLease(floor=max((int(v) for v, _ in rows), default=0),
                           others_wrote=any(h != self._holder for _, h in rows))
        try:
            yield lease
        except Exception:  # the write failed (a refused write, an engine error): give the leases up
            await self._release(quiet=True)
            raise
        except BaseException:  # cancelled mid-statement, perhaps: the connection is not reused
            await self._drop()
            raise
        else:
            await self._release(quiet=False)
        finally:
            self._held = None

    async def _release(self, *, quiet: bool) -> None:
        """Unlock every lease of this connection; where that fails, close it (which does too)."""
        try:
            if self._conn is None:
                raise psycopg.OperationalError("the connection is closed")
            await self._conn.execute("SELECT pg_advisory_unlock_all()")
        except psycopg.Error as exc:
            await self._drop()
            if not quiet:
                raise StoreUnavailable(f"the write lease was lost: {str(exc).splitlines()[0]}") from exc

    async def publish(self, version: int) -> None:
        if self._held is None:
            raise RuntimeError("publish outside hold")
        if version <= self._published or not self._held:
            return
        conn = self._conn
        if conn is None or conn.closed:  # never a new connection: it would not hold the locks
            raise StoreUnavailable("the write lease was lost (its connection closed); retry")
        try:
            await conn.execute(
                "INSERT INTO event_write_leases (project_id, version, holder) "
                "SELECT p, %s, %s FROM unnest(%s::text[]) AS p "
                "ON CONFLICT (project_id) DO UPDATE SET "
                "version = greatest(event_write_leases.version, excluded.version), holder = excluded.holder",
                (version, self._holder, self._held),
            )
        except psycopg.Error as exc:
            raise StoreUnavailable(f"the write lease was lost: {str(exc).splitlines()[0]}") from exc
        self._published = version

    async def close(self) -> None:
        await self._drop()
