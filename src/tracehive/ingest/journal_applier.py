"""Applying the OTLP journal to the store: the ``Applier`` reads records from the applied checkpoint
on, runs its two stages (prepare, then write, the next records prepared while the ones before are
written), advances the checkpoint and deletes fully applied segments; transient failures are
retried forever, a record the store refuses as bad input is skipped. Also the waits on a journal
(``wait_applied``, ``backlog_drained``). It runs in the server or in its own process
(``ingest.applier_process``)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracehive.ingest.journal_records import HEADER, CorruptRecord, Position, Record, read_record
from tracehive.model.errors import ApiError, Overloaded

if TYPE_CHECKING:  # ingest.journal imports this module (to offer Applier under its old name)
    from tracehive.ingest.journal import JournalFiles

log = logging.getLogger("tracehive.journal")

RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 5.0


# The applier's stages: ``prepare`` (decode + map: CPU) and ``write`` (the store commit). The next
# records are prepared while the ones before are written, as concurrent requests overlap in the
# default mode; the writes still happen one at a time, in journal order. ``merge`` (optional) joins
# the prepared forms of consecutive records of one scope into one that ``write`` takes, so that a
# backlog is written a few records per commit instead of one (issue #15: a commit per 512-span
# record was half the applier's time).
PrepareRecord = Callable[[Record], Awaitable[Any]]
WriteRecord = Callable[[Record, Any], Awaitable[None]]
MergePrepared = Callable[[list[Any]], Any]

AHEAD_BYTES = 2 << 20
"""Journal bytes of records prepared and waiting for their write, at most (one record may always
wait, whatever its size): it bounds the pipeline's memory, and how many records one write takes."""


async def _nothing_to_prepare(record: Record) -> None:
    return None


class _Skipped:
    """A stage's result for a record that can never be applied (a 4xx, or undecodable)."""


SKIPPED = _Skipped()
_REFUSED = _Skipped()  # a merged write refused as bad input: its records go again one by one


class Applier:
    """Applies journal records to the store in order, from the checkpoint on; deletes segments
    once every record in them is applied. Transient failures are retried forever (an acked span is
    never dropped); a record the store refuses as bad input (a 4xx) is logged and skipped."""

    def __init__(self, journal: JournalFiles, write: WriteRecord, *, prepare: PrepareRecord | None = None,
                 merge: MergePrepared | None = None, prepare_window: int = 1,
                 on_skipped: Callable[[ApiError], None] | None = None,
                 on_applied: Callable[[int], None] | None = None) -> None:
        self.journal = journal
        self.write = write
        self.prepare = prepare or _nothing_to_prepare
        self.merge = merge
        self.prepare_window = max(1, prepare_window)  # records prepared at once
        self.on_skipped = on_skipped
        # Called with each applied record's size in the journal (an applier in another process
        # reports it to the appending one, whose backlog it is).
        self.on_applied = on_applied
        self.applied_records = 0
        self.skipped_records = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="otlp-journal-applier")

    async def stop(self) -> None:
        await cancel_and_wait(self._task)
        self._task = None

    async def idle(self, timeout: float) -> bool:
        """True once everything appended so far is applied (for tests)."""
        return await backlog_drained(self.journal, timeout)

    async def _run(self) -> None:
        journal = self.journal
        position = journal.applied
        while True:
            journal.appended.clear()
            position = await self._drain(position)
            if position >= journal.durable:
                await journal.appended.wait()

    async def _drain(self, position: Position) -> Position:
        """Apply every durable record after ``position``; returns where it stopped."""
        journal = self.journal
        while True:
            durable = journal.durable
            segments = [n for n in journal.segments() if n >= position.segment]
            if not segments:
                return position
            number = segments[0]
            if number != position.segment:
                position = Position(number, 0)
            end = durable.offset if number == durable.segment else None  # None: a finished segment
            base = position.offset
            data = await asyncio.to_thread(_read_from, journal.segment_path(number), base, end)
            records: list[tuple[bytes, int]] = []  # payload, offset after it (within data)
            offset = 0  # within data, which starts at ``base`` in the segment
            while (found := read_record(data, offset)) is not None:
                records.append(found)
                offset = found[1]
            del data
            position = await self._apply(number, base, records, position)
            if number < durable.segment:
                # Finished and fully applied: make the checkpoint durable past it, then drop it.
                after_segment = Position(number + 1, 0)
                await asyncio.to_thread(self._retire, number, after_segment)
                position = after_segment
                continue
            return position

    async def _apply(self, number: int, base: int, records: list[tuple[bytes, int]],
                     position: Position) -> Position:
        """Apply ``records`` (read from segment ``number`` at ``base``) in order; returns the
        position after the last one. One task prepares records ahead, in order, while the ones
        before are written; each write takes every record prepared by then (``_write_batch``)."""
        journal = self.journal
        ready: deque[tuple[Record | None, Any, int, int]] = deque()  # record, prepared, size, after
        room = asyncio.Condition()

        async def prepare_ahead() -> None:
            # Up to ``prepare_window`` records are prepared at once (a pool of as many decode
            # workers runs them side by side); their results join ``ready`` in journal order.
            window: deque[tuple[asyncio.Task[tuple[Record | None, Any]], int, int]] = deque()

            def has_room() -> bool:  # one record may always wait, whatever its size
                held = sum(r[2] for r in ready) + sum(w[1] for w in window)
                return not (ready or window) or held < AHEAD_BYTES

            async def settle_first() -> None:
                task, size, after = window[0]
                record, prepared = await task
                window.popleft()
                async with room:
                    ready.append((record, prepared, size, after))
                    room.notify_all()

            try:
                for payload, after in records:
                    async with room:
                        await room.wait_for(has_room)
                    window.append((asyncio.create_task(self._prepared(payload)), HEADER.size + len(payload), after))
                    if len(window) >= self.prepare_window:
                        await settle_first()
                while window:
                    await settle_first()
            finally:
                for task, _, _ in window:
                    await cancel_and_wait(task)

        preparing = asyncio.create_task(prepare_ahead())
        try:
            done = 0
            while done < len(records):
                async with room:
                    await room.wait_for(lambda: bool(ready))
                    batch = list(ready)
                    ready.clear()
                    room.notify_all()
                await self._write_batch([(r, p) for r, p, _, _ in batch if r is not None and p is not SKIPPED])
                done += len(batch)
                for _, _, size, _ in batch:
                    journal.backlog_bytes = max(0, journal.backlog_bytes - size)
                    journal.applied_bytes += size
                    if self.on_applied is not None:
                        self.on_applied(size)
                position = Position(number, base + batch[-1][3])
                # Cheap (no fsync): a stale checkpoint only means re-applying, which is harmless.
                await asyncio.to_thread(journal.save_checkpoint, position, durable=False)
        finally:
            await cancel_and_wait(preparing)
        return position

    async def _write_batch(self, batch: list[tuple[Record, Any]]) -> None:
        """Write prepared records in journal order. With a ``merge`` stage, consecutive records of
        one scope are written as one (one commit for all of them, instead of one each); should the
        store refuse that write as bad input, they are written one by one, so that only the
        refused record is skipped."""
        start = 0
        while start < len(batch):
            scope = batch[start][0].scope
            end = start + 1
            while end < len(batch) and batch[end][0].scope == scope:
                end += 1
            group, start = batch[start:end], end
            if len(group) > 1 and self.merge is not None:
                first = group[0][0]
                merged = self.merge([prepared for _, prepared in group])
                if await self._retrying(first, self.write, first, merged, refused=_REFUSED) is not _REFUSED:
                    self.applied_records += len(group)
                    continue
            for record, prepared in group:
                await self._write(record, prepared)

    def _retire(self, number: int, following: Position) -> None:
        self.journal.save_checkpoint(following, durable=True)
        self.journal.segment_path(number).unlink(missing_ok=True)

    async def _prepared(self, payload: bytes) -> tuple[Record | None, Any]:
        try:
            record = Record.decode(payload)
        except CorruptRecord as exc:
            # The CRC matched, so this is not a torn write; nothing can make it decodable.
            log.error("otlp journal: skipping a record: %s", exc)
            self.skipped_records += 1
            return None, SKIPPED
        return record, await self._retrying(record, self.prepare, record)

    async def _write(self, record: Record, prepared: Any) -> None:
        if await self._retrying(record, self.write, record, prepared) is not SKIPPED:
            self.applied_records += 1

    async def _retrying(self, record: Record, stage: Callable[..., Awaitable[Any]], *args: Any,
                        refused: Any = SKIPPED) -> Any:
        """``stage(*args)``, retried with backoff until it succeeds; ``SKIPPED`` on a 4xx (the
        record skipped), or ``refused`` when given (nothing skipped: the caller decides)."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await stage(*args)
            except Overloaded as exc:  # includes StoreUnavailable / StorageFull: wait, never drop
                log.warning("otlp journal: store busy (%s); retrying in %.2fs", type(exc).__name__, delay)
            except ApiError as exc:
                if refused is not SKIPPED:
                    return refused
                # A request the ack already vouched for but the store refuses as bad input: it
                # can never succeed. The payload is never logged (it is user data).
                log.error("otlp journal: skipping a record of project %s refused with %d %s",
                          record.scope.project_id, exc.status_code, type(exc).__name__)
                self.skipped_records += 1
                if self.on_skipped is not None:
                    self.on_skipped(exc)
                return SKIPPED
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug must not lose an acknowledged span: keep it, retry
                log.exception("otlp journal: applying a record failed; retrying in %.2fs", delay)
            await asyncio.sleep(delay)
            delay = min(RETRY_MAX_SECONDS, delay * 2)


async def cancel_and_wait(task: asyncio.Task[Any] | None) -> None:
    if task is None:
        return
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass


async def wait_applied(journal: JournalFiles, timeout: float) -> bool:
    """True once every record acknowledged before this call has been applied (written to the
    store); False when ``timeout`` seconds pass first. Records acknowledged meanwhile are not
    waited for, so a steady stream of exports cannot hold a reader forever. (After an applier
    process restarts, re-applied bytes count twice until it catches up: the wait may then end
    early, never late.)"""
    target = journal.acked_bytes
    deadline = asyncio.get_running_loop().time() + timeout
    while journal.applied_bytes < target:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


async def backlog_drained(journal: JournalFiles, timeout: float) -> bool:
    """True once the journal's backlog is zero (everything appended so far is applied); False
    when ``timeout`` seconds pass first."""
    deadline = asyncio.get_running_loop().time() + timeout
    while journal.backlog_bytes > 0:
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


def _read_from(path: Path, offset: int, end: int | None) -> bytes:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read() if end is None else f.read(max(0, end - offset))
    except FileNotFoundError:
        return b""
