"""The single writer: one thread, one connection, a bounded queue, and group commit.

Requests never touch the write connection. Each submits a job (a function of the connection) and
awaits its future. The writer drains every job waiting in the queue, runs them in one transaction
(each inside its own savepoint, so one failing job does not sink the others), commits once (one
fsync for the whole group), and only then resolves the futures. So a request that gets its answer
has its data on disk, and concurrent requests share the cost of the fsync.

Waits are bounded: a request that the writer has not started within ``write_timeout`` (the
database is locked by another process, or the writer is far behind) withdraws its job and gets a
503, and its data is then never written. The writer thread survives every failure of a group
(disk full, lock, I/O error) by failing that group's requests with a retryable error.

A job may run more than once: when SQLite rolls a whole transaction back because of one job (a
full database), the jobs before it run again in a new transaction. Jobs are therefore pure
functions of the connection (no effects outside the database), as the store's upserts are.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tracehive.model.errors import Overloaded, StoreUnavailable
from tracehive.storage.observer import StoreObserver
from tracehive.storage.sqlite.connection import connect, store_error

log = logging.getLogger(__name__)

Job = Callable[[sqlite3.Connection], Any]
_STOP = object()


class _TransactionLost(Exception):
    """The job at ``index`` failed and SQLite rolled the whole transaction back with it."""

    def __init__(self, index: int, error: BaseException) -> None:
        super().__init__(str(error))
        self.index = index
        self.error = error


class _Ticket:
    """Decides, once, who has a queued job: the writer (about to run it) or its request (giving
    up after a timeout). Whoever takes the ticket first wins, so a request answered "not stored"
    is certain its job never ran, and a job the writer started is waited for."""

    __slots__ = ("_lock",)

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def take(self) -> bool:
        return self._lock.acquire(blocking=False)

    @property
    def taken(self) -> bool:
        return self._lock.locked()


class GroupCommitWriter:
    def __init__(self, path: Path, *, max_queue: int = 1024, max_group: int = 256, synchronous: str = "FULL",
                 observer: StoreObserver | None = None, max_db_bytes: int = 0) -> None:
        self._path = path
        self._max_db_bytes = max_db_bytes
        self._observer = observer
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._max_group = max_group
        self._synchronous = synchronous
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None
        self.commits = 0

    def start(self) -> None:
        if self._thread is not None:
            return
        self._conn = connect(self._path, synchronous=self._synchronous, max_db_bytes=self._max_db_bytes)
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

    def submit(self, job: Job, timeout: float | None = None) -> asyncio.Future[Any]:
        """Queue a job from the event loop; the future resolves after its group has committed.

        With ``timeout`` (seconds), a job the writer has not started by then is withdrawn and the
        future fails with a 503 saying it was not stored. A job already running is given as long
        again (its commit is under way); past that the future fails saying the outcome is unknown.
        """
        if self._thread is None:
            raise StoreUnavailable("the store is not open")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        ticket = _Ticket()
        try:
            self._queue.put_nowait((job, future, loop, ticket))
        except queue.Full:
            raise Overloaded("the writer queue is full; retry shortly", retry_after=1) from None
        if timeout is not None:
            timer = loop.call_later(timeout, _expire, future, ticket, timeout)
            future.add_done_callback(lambda _: timer.cancel())
        return future

    def run_sync(self, job: Job, timeout: float | None = None) -> Any:
        """Run a job from a thread without an event loop; blocks until committed (at most about
        twice ``timeout``, with the same withdraw rule as ``submit``)."""
        if self._thread is None:
            raise StoreUnavailable("the store is not open")
        done = threading.Event()
        box: dict[str, Any] = {}
        ticket = _Ticket()
        try:
            self._queue.put((job, box, done, ticket), timeout=timeout)
        except queue.Full:
            raise Overloaded("the writer queue is full; retry shortly", retry_after=1) from None
        if timeout is None:
            done.wait()
        elif not done.wait(timeout):
            if ticket.take():
                raise StoreUnavailable(_not_started(timeout))
            if not done.wait(timeout):
                raise StoreUnavailable(_outcome_unknown(2 * timeout))
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
            try:
                self._commit_group(conn, group)
            except Exception as exc:  # never let the thread die: every later request would wait forever
                log.exception("the writer failed on a group of %d jobs", len(group))
                _rollback(conn)
                failure = StoreUnavailable(f"the writer failed: {exc}; retry shortly")
                _answer(group, [(False, failure)] * len(group))

    def _commit_group(self, conn: sqlite3.Connection, group: list[Any]) -> None:
        # Requests that already gave up (and were answered 503) are not written.
        group = [item for item in group if not item[3].taken]
        if not group:
            return
        outcomes: list[tuple[bool, Any]] = []
        began = time.perf_counter()
        committing: float | None = None  # both stay None when the commit fails
        committed: float | None = None
        try:
            conn.execute("BEGIN IMMEDIATE")  # waits up to the busy timeout for another process's lock
            # The group runs now: requests that gave up while we waited for the lock are left out.
            group = [item for item in group if item[3].take()]
            dropped: dict[int, BaseException] = {}
            while True:
                try:
                    outcomes = _run_jobs(conn, group, dropped)
                    break
                except _TransactionLost as lost:
                    # SQLite undid the whole transaction because of one job (it does on
                    # SQLITE_FULL). The jobs before it ran fine, so they run again and commit;
                    # that job and the ones after it (most likely no better off) fail with its
                    # error. Each round drops at least one job, so this ends.
                    dropped.update(dict.fromkeys(range(lost.index, len(group)), lost.error))
                    conn.execute("BEGIN IMMEDIATE")
            committing = time.perf_counter()
            conn.execute("COMMIT")  # with synchronous=FULL, this is where the fsync happens
            committed = time.perf_counter()
            self.commits += 1
        except Exception as exc:  # noqa: BLE001 - the group failed as a whole: none of it is committed
            log.error("commit failed, %d jobs rejected: %s", len(group), exc)
            _rollback(conn)
            failure = store_error(exc) if isinstance(exc, sqlite3.Error) else StoreUnavailable(
                f"the store could not write: {exc}"
            )
            outcomes = [(False, failure)] * len(group)
        _answer(group, outcomes)
        if self._observer is not None:
            self._observe(len(group), began, committing, committed)

    def _observe(self, jobs: int, began: float, committing: float | None, committed: float | None) -> None:
        assert self._observer is not None
        try:
            if committing is not None and committed is not None:
                self._observer.group_committed(jobs, committed - began, committed - committing)
            else:
                self._observer.group_failed(jobs)
        except Exception:  # metrics must never stop the writer
            log.exception("writer observer failed")


def _rollback(conn: sqlite3.Connection) -> None:
    """End a failed transaction, if SQLite has not already, so the next BEGIN can start."""
    if not conn.in_transaction:
        return
    try:
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        log.error("rollback failed: %s", exc)


def _run_jobs(conn: sqlite3.Connection, group: list[Any], dropped: dict[int, BaseException]) -> list[tuple[bool, Any]]:
    """Run a group's jobs inside the open transaction, each in its own savepoint so that one
    failing job does not sink the others; the jobs in ``dropped`` fail with their error."""
    outcomes: list[tuple[bool, Any]] = []
    for index, (job, _, _, _) in enumerate(group):
        if index in dropped:
            outcomes.append((False, _job_error(dropped[index])))
            continue
        conn.execute("SAVEPOINT job")
        try:
            result = job(conn)
        except Exception as exc:  # the job's own failure: undo only its changes
            if not conn.in_transaction:
                raise _TransactionLost(index, exc) from exc
            conn.execute("ROLLBACK TO job")
            conn.execute("RELEASE job")
            outcomes.append((False, _job_error(exc)))
        else:
            conn.execute("RELEASE job")
            outcomes.append((True, result))
    return outcomes


def _job_error(exc: BaseException) -> BaseException:
    """A failure of the database itself becomes a retryable 503; anything else (a bad request, a
    bug) is the job's own answer."""
    return store_error(exc) if isinstance(exc, sqlite3.OperationalError) else exc


def _answer(group: list[Any], outcomes: list[tuple[bool, Any]]) -> None:
    """Hand each job's outcome to whoever waits for it (from the writer thread)."""
    for (_, target, signal, _), (ok, value) in zip(group, outcomes):
        if isinstance(target, asyncio.Future):
            try:
                signal.call_soon_threadsafe(_resolve, target, ok, value)
            except RuntimeError:  # the event loop is closed (shutdown): nobody waits any more
                pass
        else:
            target["result" if ok else "error"] = value
            signal.set()


def _not_started(timeout: float) -> str:
    return (
        f"the write was not stored: the database did not take it within {timeout:g} s "
        "(locked by another process, or the writer is behind); retry shortly"
    )


def _outcome_unknown(timeout: float) -> str:
    return (
        f"the write did not finish within {timeout:g} s; it may or may not be stored, and "
        "retrying it is safe"
    )


def _expire(future: asyncio.Future[Any], ticket: _Ticket, timeout: float) -> None:
    """On the event loop, ``timeout`` after ``submit``: withdraw the job if the writer has not
    started it, else give its commit as long again."""
    if future.done():
        return
    if ticket.take():
        future.set_exception(StoreUnavailable(_not_started(timeout)))
        return
    asyncio.get_running_loop().call_later(timeout, _give_up, future, timeout)


def _give_up(future: asyncio.Future[Any], timeout: float) -> None:
    if not future.done():
        future.set_exception(StoreUnavailable(_outcome_unknown(2 * timeout)))


def _resolve(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the request went away; its data is committed all the same
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)
