"""The single writer: one thread, one connection, a bounded queue, and group commit.

Requests never touch the write connection. Each submits a job (a function of the connection) and
awaits its future. The writer drains every job waiting in the queue, runs them in one transaction
(each inside its own savepoint, so one failing job does not sink the others), commits once (one
fsync for the whole group), and only then resolves the futures. So a request that gets its answer
has its data on disk, and concurrent requests share the cost of the fsync.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracehive.model.errors import Overloaded, StoreUnavailable
from tracehive.storage.sqlite.connection import connect

log = logging.getLogger(__name__)

Job = Callable[[sqlite3.Connection], Any]
_STOP = object()


class GroupCommitWriter:
    def __init__(self, path: Path, *, max_queue: int = 1024, max_group: int = 256, synchronous: str = "FULL") -> None:
        self._path = path
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._max_group = max_group
        self._synchronous = synchronous
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.commits = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._conn = connect(self._path, synchronous=self._synchronous)
        self._thread = threading.Thread(target=self._run, name="tracehive-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish every queued job, then close the connection."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join()
        self._thread = None
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def submit(self, job: Job) -> asyncio.Future[Any]:
        """Queue a job from the event loop; the future resolves after its group has committed."""
        if self._thread is None:
            raise StoreUnavailable("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        try:
            self._queue.put_nowait((job, future, loop))
        except queue.Full:
            raise Overloaded("the writer queue is full; retry shortly", retry_after=1) from None
        return future

    def run_sync(self, job: Job, timeout: float | None = None) -> Any:
        """Run a job from a thread without an event loop (CLI, migrations); blocks until committed."""
        if self._thread is None:
            raise StoreUnavailable("the store is not open")
        done = threading.Event()
        box: dict[str, Any] = {}
        self._queue.put((job, box, done))
        if not done.wait(timeout):
            raise StoreUnavailable("the writer did not answer in time")
        if "error" in box:
            raise box["error"]
        return box.get("result")

    # Writer thread -----------------------------------------------------------------------------

    def _run(self) -> None:
        assert self._conn is not None
        conn = self._conn
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is _STOP:
                break
            group = [first]
            while len(group) < self._max_group:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stopping = True
                    break
                group.append(item)
            self._commit_group(conn, group)

    def _commit_group(self, conn: sqlite3.Connection, group: list[Any]) -> None:
        outcomes: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            for job, _, _ in group:
                conn.execute("SAVEPOINT job")
                try:
                    result = job(conn)
                except Exception as exc:  # the job's own failure: undo only its changes
                    conn.execute("ROLLBACK TO job")
                    conn.execute("RELEASE job")
                    if isinstance(exc, sqlite3.OperationalError):
                        exc = StoreUnavailable(f"the store could not write: {exc}")
                    outcomes.append((False, exc))
                else:
                    conn.execute("RELEASE job")
                    outcomes.append((True, result))
            conn.execute("COMMIT")
            self.commits += 1
        except sqlite3.Error as exc:
            log.error("commit failed, %d jobs rejected: %s", len(group), exc)
            try:
                conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass
            failure = StoreUnavailable(f"the store could not commit: {exc}", retry_after=1)
            outcomes = [(False, failure)] * len(group)
        for (_, target, signal), (ok, value) in zip(group, outcomes):
            if isinstance(target, asyncio.Future):
                signal.call_soon_threadsafe(_resolve, target, ok, value)
            else:
                target["result" if ok else "error"] = value
                signal.set()


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the request went away; its data is committed all the same
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
