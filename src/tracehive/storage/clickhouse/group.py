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

# A group stops growing past this many events (the insert and the batches stay bounded).
MAX_GROUP_EVENTS = 20_000


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


def take(queue: deque[PendingWrite]) -> list[PendingWrite]:
    """The next group: queued writes in order, up to ``MAX_GROUP_EVENTS`` (at least one)."""
    group: list[PendingWrite] = []
    size = 0
    while queue and (not group or size + len(queue[0].events) <= MAX_GROUP_EVENTS):
        write = queue.popleft()
        group.append(write)
        size += len(write.events)
    return group


async def write_group(ex: Executor, group: list[PendingWrite], clock: VersionClock) -> None:
    """Apply and store ``group``, settling each write's ``done``."""
    live = [w for w in group if not w.done.done()]
    try:
        while live:
            refused = await _apply_and_store(ex, live, clock)
            if refused is None:
                for write in live:
                    write.done.set_result(None)
                return
            write, error = refused
            write.done.set_exception(error)
            live.remove(write)
    except BaseException as exc:
        # The leader's own cancellation (its client went away) is not the others' error: theirs
        # is a retryable one (their rows may be stored; a write sent again is idempotent).
        error = (StoreUnavailable("the write was interrupted before it was confirmed; retry it")
                 if isinstance(exc, asyncio.CancelledError) else exc)
        for write in live:
            if not write.done.done():
                write.done.set_exception(error)
        raise


async def _apply_and_store(ex: Executor, live: list[PendingWrite],
                           clock: VersionClock) -> tuple[PendingWrite, BadRequest] | None:
    """One attempt: every write applied, then one insert; or the first refused write (nothing
    stored)."""
    batches: dict[str, writes.Batch] = {}
    for write in live:
        batches.setdefault(write.scope.project_id, writes.Batch(ex, write.scope))
    # One lookup per project for every row the group touches (later loads find them in the batch).
    for project_id, batch in batches.items():
        await batch.load([i for w in live if w.scope.project_id == project_id
                          for e in w.events for i in (e.event_id, e.session_id)])
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
    return None
