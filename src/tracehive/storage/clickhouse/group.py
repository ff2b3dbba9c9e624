"""Group commit of event writes on ClickHouse.

An insert into ClickHouse costs about the same whether it carries ten rows or a thousand (a new
part: its files, its projections, an fsync), so one insert per request caps ingest at a few
thousand events per second. Writes that queue while the writer is busy are therefore stored
together: the first one to get the writer (the leader) takes every queued write, applies their
rules one after the other to shared batches (one per project: ``writes.Batch``, where each write
sees what the earlier ones did, as in one SQL transaction), and inserts all their rows as one
block (one part: all or nothing). Each write then gets its own outcome:
- a write refused by the rules (a role clash, a ``BadRequest``) fails alone: it is dropped and the
  others are applied again from fresh batches (it may have changed them before it was refused);
- a failure of the engine fails every write of the group (none of their rows was stored);
- a write whose caller went away is still stored if it was queued (as a commit whose answer was
  lost on the way).
A write returns only once the insert holding its rows returned, so a 200 still means stored.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from tracehive.model.errors import BadRequest, StoreUnavailable
from tracehive.model.event import Event
from tracehive.model.scope import Scope
from tracehive.storage.clickhouse import writes
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.rows import VersionClock, now_ms
from tracehive.storage.clickhouse.schema import EVENT_COLUMNS
from tracehive.storage.clickhouse.session_rows import SessionRows

# A group stops growing past this many events (the insert and the batches stay bounded).
MAX_GROUP_EVENTS = 20_000
# The longest a leader waits for more writes before it stores a group (``WriteQueue``).
MAX_WAIT = 0.02


def _retrieve(future: asyncio.Future[None]) -> None:
    # An outcome nobody awaits (the caller went away) is not an "exception never retrieved".
    if not future.cancelled():
        future.exception()


@dataclass
class PendingWrite:
    scope: Scope
    events: Sequence[Event]
    done: asyncio.Future[None] = field(default_factory=lambda: asyncio.get_running_loop().create_future())

    def __post_init__(self) -> None:
        self.done.add_done_callback(_retrieve)


class WriteQueue:
    """The writes waiting for the writer, and how long a leader waits for more of them.

    A group costs about the same whatever its size, so a leader that starts at once with the one
    write that arrived first spends a whole insert on it. With N clients that each send their next
    batch once the last one is stored, groups then alternate between one write and N - 1 (measured
    with 8 clients: 256 groups for 1,016 writes, 4 writes each on average). So a leader first
    waits for as many writes as the last group held (their senders are likely on their way
    back), for at most a quarter of the time the last group took and never past ``max_wait``:
    a lone writer (its last group was one write) never waits, and when traffic stops the cost is
    one short wait. (Measured: groups grew only to 4.3 writes, since the clients come back one
    request decode apart, and ingest within the noise of the machine; BENCHMARKS.md.)
    """

    def __init__(self, max_wait: float = MAX_WAIT) -> None:
        self._max_wait = max_wait
        self._writes: deque[PendingWrite] = deque()
        self._events = 0
        self._arrived = asyncio.Event()
        self._last_writes = 0
        self._last_seconds = 0.0

    def __len__(self) -> int:
        return len(self._writes)

    def append(self, write: PendingWrite) -> None:
        self._writes.append(write)
        self._events += len(write.events)
        self._arrived.set()

    async def gather(self) -> None:
        """Wait (briefly, see above) until the queue holds as many writes as the last group."""
        target = self._last_writes
        if len(self._writes) >= target or self._events >= MAX_GROUP_EVENTS:
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + min(self._max_wait, self._last_seconds / 4)
        while len(self._writes) < target and self._events < MAX_GROUP_EVENTS:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except asyncio.TimeoutError:  # (not the builtin TimeoutError before Python 3.11)
                return

    def take(self) -> list[PendingWrite]:
        """The next group: queued writes in order, up to ``MAX_GROUP_EVENTS`` (at least one)."""
        group: list[PendingWrite] = []
        size = 0
        while self._writes and (not group or size + len(self._writes[0].events) <= MAX_GROUP_EVENTS):
            write = self._writes.popleft()
            group.append(write)
            size += len(write.events)
        self._events -= size
        return group

    def finished(self, writes: int, seconds: float) -> None:
        """Record the size and the time of the group just stored (or failed)."""
        self._last_writes, self._last_seconds = writes, seconds


async def write_group(ex: Executor, group: list[PendingWrite], clock: VersionClock, sessions: SessionRows) -> None:
    """Apply and store ``group``, settling each write's ``done`` (a refused write alone with its
    error, the others once stored). Session rows are read from ``sessions`` where it has them, and
    it gets the group's once they are stored. When this raises, the caller settles the writes left
    with ``fail`` (the one place for a group that failed, whether here or before it started)."""
    live = [w for w in group if not w.done.done()]
    while live:
        refused = await _apply_and_store(ex, live, clock, sessions)
        if refused is None:
            for write in live:
                write.done.set_result(None)
            return
        write, error = refused
        write.done.set_exception(error)
        live.remove(write)


def fail(group: Sequence[PendingWrite], exc: BaseException, sessions: SessionRows) -> None:
    """Settle every unsettled write of ``group`` with ``exc`` (what was stored is then unknown:
    ``sessions`` is emptied)."""
    sessions.clear()
    # The leader's own cancellation (its client went away) is not the others' error: theirs
    # is a retryable one (their rows may be stored; a write sent again is idempotent).
    error = (StoreUnavailable("the write was interrupted before it was confirmed; retry it")
             if isinstance(exc, asyncio.CancelledError) else exc)
    for write in group:
        if not write.done.done():
            write.done.set_exception(error)


async def _apply_and_store(ex: Executor, live: list[PendingWrite], clock: VersionClock,
                           sessions: SessionRows) -> tuple[PendingWrite, BadRequest] | None:
    """One attempt: every write applied, then one insert; or the first refused write (nothing
    stored)."""
    batches: dict[str, writes.Batch] = {}
    for write in live:
        batches.setdefault(write.scope.project_id, writes.Batch(ex, write.scope, cache=sessions))
    # One lookup per project for every row the group touches and their kept updates (later loads
    # find them in the batch).
    for project_id, batch in batches.items():
        ids = [i for w in live if w.scope.project_id == project_id for e in w.events for i in (e.event_id, e.session_id)]
        await batch.load(ids)
        await batch.load_pending(ids)
    claims: dict[str, list[tuple[str, str]]] = {p: [] for p in batches}
    applied: dict[str, list[str]] = {p: [] for p in batches}
    for write in live:
        project_id = write.scope.project_id
        try:
            applied[project_id] += await writes.write_events(batches[project_id], write.events, claims[project_id])
        except BadRequest as error:
            return write, error
    now = now_ms()
    rows = [row for batch in batches.values() for row in batch.versions(clock, now)]
    if rows:
        await ex.insert("events", EVENT_COLUMNS, rows)
    # After the rows: a crash in between leaves claims or kept updates that a re-sent write
    # records or applies again to the same effect.
    for project_id, batch in batches.items():
        await writes.record_claims(ex, batch.scope, claims[project_id], clock)
        await writes.forget_pending(ex, batch.scope, applied[project_id])
    for project_id, batch in batches.items():
        sessions.remember(project_id, batch.session_rows)
    return None
