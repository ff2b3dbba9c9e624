"""Applying the OTLP journal to the store: the ``Applier`` reads records from the applied checkpoint
on, runs its two stages (prepare, then write, the next record prepared while the current one is
written), advances the checkpoint and deletes fully applied segments; transient failures are
retried forever, a record the store refuses as bad input is skipped. Also the waits on a journal
(``wait_applied``, ``backlog_drained``). It runs in the server or in its own process
(``ingest.applier_process``)."""

from __future__ import annotations

import asyncio
import logging
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


# The applier's two stages: ``prepare`` (decode + map: CPU) and ``write`` (the store commit). The
# next record is prepared while the current one is written, as concurrent requests overlap in the
# default mode; the writes still happen one at a time, in journal order.
PrepareRecord = Callable[[Record], Awaitable[Any]]
WriteRecord = Callable[[Record, Any], Awaitable[None]]


async def _nothing_to_prepare(record: Record) -> None:
    return None


class _Skipped:
    """A stage's result for a record that can never be applied (a 4xx, or undecodable)."""


SKIPPED = _Skipped()


class Applier:
    """Applies journal records to the store in order, from the checkpoint on; deletes segments
    once every record in them is applied. Transient failures are retried forever (an acked span is
    never dropped); a record the store refuses as bad input (a 4xx) is logged and skipped."""

    def __init__(self, journal: JournalFiles, write: WriteRecord, *, prepare: PrepareRecord | None = None,
                 on_skipped: Callable[[ApiError], None] | None = None,
                 on_applied: Callable[[int], None] | None = None) -> None:
        self.journal = journal
        self.write = write
        self.prepare = prepare or _nothing_to_prepare
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
            following: asyncio.Task[tuple[Record | None, Any]] | None = None
            try:
                for i, (payload, after) in enumerate(records):
                    if following is None:
                        following = asyncio.create_task(self._prepared(payload))
                    record, prepared = await following
                    following = None
                    if i + 1 < len(records):  # prepare the next one while this one is written
                        following = asyncio.create_task(self._prepared(records[i + 1][0]))
                    if record is not None and prepared is not SKIPPED:
                        await self._write(record, prepared)
                    position = Position(number, base + after)
                    journal.backlog_bytes = max(0, journal.backlog_bytes - (HEADER.size + len(payload)))
                    journal.applied_bytes += HEADER.size + len(payload)
                    if self.on_applied is not None:
                        self.on_applied(HEADER.size + len(payload))
                    # Cheap (no fsync): a stale checkpoint only means re-applying, which is harmless.
                    await asyncio.to_thread(journal.save_checkpoint, position, durable=False)
            finally:
                if following is not None:
                    following.cancel()
            if number < durable.segment:
                # Finished and fully applied: make the checkpoint durable past it, then drop it.
                after_segment = Position(number + 1, 0)
                await asyncio.to_thread(self._retire, number, after_segment)
                position = after_segment
                continue
            return position

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

    async def _retrying(self, record: Record, stage: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """``stage(*args)``, retried with backoff until it succeeds; ``SKIPPED`` on a 4xx."""
        delay = RETRY_FIRST_SECONDS
        while True:
            try:
                return await stage(*args)
            except Overloaded as exc:  # includes StoreUnavailable / StorageFull: wait, never drop
                log.warning("otlp journal: store busy (%s); retrying in %.2fs", type(exc).__name__, delay)
            except ApiError as exc:
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
