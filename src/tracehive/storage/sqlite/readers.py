"""Read connections of the SQLite backend: pooled, interruptible, in two lanes.

Each lane is a few read-only connections, one per worker thread, so reads never wait on the
writer (WAL). Heavy reads (searches, charts, session lists, exports, trees) run in the main lane,
with a time limit; short reads by key (key lookups, health, one event by id) run in a lane of
their own, so they never queue behind heavy reads, whoever sends those.

A read that passes its time limit, or whose caller goes away (the awaiting task is cancelled, e.g.
the client disconnected), is stopped inside SQLite with ``Connection.interrupt()``; the worker
is free again as soon as SQLite notices, within a few thousand VM steps.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from tracehive.model.errors import StoreUnavailable
from tracehive.storage.sqlite.connection import connect

T = TypeVar("T")


class ReadTimedOut(StoreUnavailable):
    """A read ran past its time limit and was stopped (503: narrow the query or retry)."""

    error_code = "QUERY_TIMEOUT"


class ReaderPool:
    def __init__(self, path: Path, size: int, name: str = "tracehive-reader", *, nice: int = 0) -> None:
        """``nice``: added to the worker threads' scheduling niceness (Linux), so that heavy reads
        yield the CPU to the event loop and the writer (acks stay fast while a chart runs)."""
        self._path = path
        self._nice = nice
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._executor = ThreadPoolExecutor(size, thread_name_prefix=name, initializer=self._init)

    def _init(self) -> None:
        if self._nice:
            try:  # per thread on Linux: the thread id is a PRIO_PROCESS target
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), self._nice)
            except (AttributeError, OSError):  # elsewhere, or not permitted: run at normal priority
                pass
        conn = connect(self._path, readonly=True)
        self._local.conn = conn
        with self._lock:
            self._connections.append(conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T], timeout: float | None = None) -> T:
        """``fn`` on a worker's connection; stopped past ``timeout`` seconds (``ReadTimedOut``) or
        when the caller is cancelled (the cancellation propagates once SQLite has stopped)."""
        loop = asyncio.get_running_loop()
        running: list[sqlite3.Connection] = []

        def call() -> T:
            conn: sqlite3.Connection = self._local.conn
            running.append(conn)
            try:
                return fn(conn)
            finally:
                running.clear()

        future = loop.run_in_executor(self._executor, call)
        try:
            return await asyncio.wait_for(asyncio.shield(future), timeout)
        except asyncio.TimeoutError:
            await self._stop(future, running)
            raise ReadTimedOut(
                f"the query ran longer than {timeout:g} s and was stopped; narrow it (a shorter date "
                "range, fewer filters) or retry"
            ) from None
        except asyncio.CancelledError:
            await self._stop(future, running)
            raise

    @staticmethod
    async def _stop(future: asyncio.Future[T], running: list[sqlite3.Connection]) -> None:
        """Interrupt the statement ``future`` runs and wait until its worker is free again."""
        while not future.done():
            for conn in list(running):
                conn.interrupt()
            try:
                await asyncio.wait_for(asyncio.shield(future), 0.05)
            except asyncio.TimeoutError:
                continue  # not started yet, or between statements: interrupt again
            except (sqlite3.Error, Exception):  # noqa: BLE001 - the interrupted call's own error
                break

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
