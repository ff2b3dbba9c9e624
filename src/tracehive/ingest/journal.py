"""The OTLP ingest journal: acknowledge a request once it is *durable*, index it afterwards.

With ``otlp_journal`` on, an OTLP request is answered as soon as its (inflated) body is appended
to an fsync'd, append-only journal in the data dir; a background ``Applier`` then decodes, maps
and writes it to the store, in journal order. A 200 therefore still means "this request survives a
crash" (the journal is replayed on start-up), but not yet "this request is queryable".

On disk: ``<data_dir>/otlp-journal/<number>.seg`` segment files, numbered from 1, plus an
``applied`` checkpoint. A segment is a sequence of records::

    length:u32 LE | crc32(payload):u32 LE | payload
    payload = meta_length:u32 LE | meta (JSON: scope, protobuf flag, default source) | body

* Appends are group-committed: the records of every request that arrives while a write+fsync is
  running are written and fsync'd together by the next one; each request waits for its own.
* The checkpoint (segment, offset) is advanced after each record's store write has committed. It
  is not fsync'd on every record: applying a record twice is harmless (OTLP event ids are
  deterministic, so the store upserts the same rows), so a stale checkpoint only costs a replay.
  It *is* fsync'd before a fully applied segment is deleted.
* A torn tail (a record cut short or failing its CRC, from a crash during an append) is truncated
  on start-up: its fsync never returned, so it was never acknowledged.

This module holds the journal directory (``JournalFiles``), its append side (``Journal``) and the
view of an applier in another process (``JournalFollower``); the record format is in
``ingest.journal_records`` and the applier in ``ingest.journal_applier``. Every public name this
module used to define is still importable from here.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

from tracehive.ingest.journal_applier import (
    RETRY_FIRST_SECONDS,
    RETRY_MAX_SECONDS,
    SKIPPED,
    Applier,
    PrepareRecord,
    WriteRecord,
    backlog_drained,
    cancel_and_wait,
    wait_applied,
)
from tracehive.ingest.journal_records import (
    HEADER,
    MAX_RECORD_BYTES,
    META_LENGTH,
    CorruptRecord,
    Position,
    Record,
    read_record,
    valid_length,
)
from tracehive.model.errors import Overloaded

__all__ = [
    "APPLIER_LOCK_NAME",
    "CHECKPOINT_NAME",
    "DEFAULT_SEGMENT_BYTES",
    "HEADER",
    "IOV_MAX",
    "LOCK_NAME",
    "MAX_RECORD_BYTES",
    "META_LENGTH",
    "RETRY_FIRST_SECONDS",
    "RETRY_MAX_SECONDS",
    "SEGMENT_SUFFIX",
    "SKIPPED",
    "Applier",
    "CorruptRecord",
    "Journal",
    "JournalFiles",
    "JournalFollower",
    "JournalFull",
    "JournalInUse",
    "Position",
    "PrepareRecord",
    "Record",
    "WriteRecord",
    "backlog_drained",
    "cancel_and_wait",
    "read_record",
    "valid_length",
    "wait_applied",
]

log = logging.getLogger("tracehive.journal")

SEGMENT_SUFFIX = ".seg"
CHECKPOINT_NAME = "applied"
LOCK_NAME = "lock"
APPLIER_LOCK_NAME = "applier.lock"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
IOV_MAX = 512  # buffers per writev (POSIX guarantees at least 16; Linux allows 1024)


class JournalFull(Overloaded):
    """The unapplied backlog is at its bound: the client should retry later (503)."""


class JournalInUse(RuntimeError):
    """Another process has this journal open (two appliers would apply and delete each other's
    segments)."""


def _write_all(fd: int, items: list[bytes]) -> None:
    """``writev`` every item, in order, resuming after short writes (and past IOV_MAX items)."""
    views = [memoryview(item) for item in items if item]
    while views:
        written = os.writev(fd, views[:IOV_MAX])
        while written and views:
            if written >= len(views[0]):
                written -= len(views[0])
                views.pop(0)
            else:
                views[0] = views[0][written:]
                written = 0


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass(slots=True)
class _Pending:
    parts: tuple[bytes, bytes]  # Record.frame()
    size: int
    done: asyncio.Future[None]


class JournalFiles:
    """What an applier needs of a journal directory: its segments, the applied checkpoint, and
    how far the appends are durable (``durable``, with ``appended`` set after each advance). The
    appending ``Journal`` is one; a ``JournalFollower`` (an applier in another process) another."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.backlog_bytes = 0  # appended (or being appended) and not yet applied
        # Monotonic totals for read-your-writes (``wait_applied``): bytes acknowledged (or found
        # unapplied at open) and bytes applied since this object was made.
        self.acked_bytes = 0
        self.applied_bytes = 0
        self.durable = Position(0, 0)  # end of what has been fsync'd
        self.applied = Position(0, 0)  # end of what has been written to the store
        self.appended = asyncio.Event()  # set after each advance of ``durable``: wakes the applier

    def segment_path(self, number: int) -> Path:
        return self.directory / f"{number:010d}{SEGMENT_SUFFIX}"

    def segments(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return sorted(int(p.stem) for p in self.directory.glob(f"*{SEGMENT_SUFFIX}") if p.stem.isdigit())

    def _read_checkpoint(self) -> Position:
        try:
            text = (self.directory / CHECKPOINT_NAME).read_text().split()
            return Position(int(text[0]), int(text[1]))
        except (OSError, ValueError, IndexError):
            return Position(0, 0)

    def save_checkpoint(self, position: Position, *, durable: bool) -> None:
        tmp = self.directory / (CHECKPOINT_NAME + ".tmp")
        with open(tmp, "w") as f:
            f.write(f"{position.segment} {position.offset}\n")
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, self.directory / CHECKPOINT_NAME)
        if durable:
            _fsync_dir(self.directory)
        self.applied = position


class Journal(JournalFiles):
    """The append side (group-committed, on the event loop's behalf) and the bookkeeping the
    applier shares with it. One process owns a journal directory at a time."""

    def __init__(self, directory: Path, *, max_backlog_bytes: int,
                 segment_bytes: int = DEFAULT_SEGMENT_BYTES) -> None:
        super().__init__(directory)
        self.max_backlog_bytes = max_backlog_bytes
        self.segment_bytes = segment_bytes
        self.truncated_bytes = 0  # torn-tail bytes dropped by the last open()
        self._pending: list[_Pending] = []
        self._flusher: asyncio.Task[None] | None = None
        self._file: int | None = None  # fd of the segment being appended to
        self._segment = 0
        self._size = 0
        self._roll_next = False  # after a failed write: continue in a fresh segment
        self._lock_fd: int | None = None  # flock'd while open: one process per journal
        self._opened = False

    # -------------------------------------------------------------------- start-up and shutdown

    def open(self) -> None:
        """Recover the journal: truncate torn tails, read the checkpoint, count the backlog and open
        a fresh segment for appends (so that replay never races an append in the same file)."""
        created = not self.directory.exists()
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        if created:
            _fsync_dir(self.directory.parent)  # the directory's own name must survive a crash
        self._lock_fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(self._lock_fd)
            self._lock_fd = None
            raise JournalInUse(f"another process has the OTLP journal {self.directory} open") from None
        self.appended = asyncio.Event()  # bound to the loop that first waits on it: one per run
        self._pending = []
        self._flusher = None
        self.applied = self._read_checkpoint()
        self.truncated_bytes = 0
        backlog = 0
        numbers = self.segments()
        for number in numbers:
            path = self.segment_path(number)
            size = path.stat().st_size
            good = valid_length(path)
            if good < size:
                # The last segment's tail is an append whose fsync never returned (never acked).
                # In an earlier segment it would be damage to acknowledged data: say so loudly.
                level = logging.WARNING if number == numbers[-1] else logging.ERROR
                log.log(level, "otlp journal: truncating %d bytes of incomplete or corrupt records at the end "
                        "of segment %s", size - good, path.name)
                with open(path, "r+b") as f:
                    f.truncate(good)
                    f.flush()
                    os.fsync(f.fileno())
                self.truncated_bytes += size - good
            if number > self.applied.segment:
                backlog += good
            elif number == self.applied.segment:
                backlog += max(0, good - self.applied.offset)
        if numbers and self.applied.segment < numbers[0]:
            self.applied = Position(numbers[0], 0)
        self.backlog_bytes = backlog
        self.acked_bytes += backlog
        self._segment = (numbers[-1] + 1) if numbers else 1
        self._open_segment(self._segment)
        self.durable = Position(self._segment, 0)
        self._opened = True

    def _open_segment(self, number: int) -> None:
        if self._file is not None:
            os.close(self._file)
            self._file = None
        self._file = os.open(self.segment_path(number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        self._segment = number
        self._size = os.fstat(self._file).st_size
        _fsync_dir(self.directory)  # the new file's name must survive a crash too

    async def close(self) -> None:
        """Wait for appends in progress, then release the file."""
        while self._flusher is not None and not self._flusher.done():
            await asyncio.shield(self._flusher)
        if self._file is not None:
            os.close(self._file)
            self._file = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
        self._opened = False

    # -------------------------------------------------------------------- appending

    def check_room(self, size: int) -> None:
        """Raise ``JournalFull`` unless ``size`` more bytes fit under the backlog bound (cheap:
        called before a body is decoded, so a full journal sheds load before doing any work)."""
        if not self._opened:
            raise Overloaded("the OTLP journal is not open", retry_after=1)
        if self.backlog_bytes + size > self.max_backlog_bytes:
            raise JournalFull(
                f"the OTLP ingest backlog is full ({self.backlog_bytes} bytes not yet indexed); retry later",
                retry_after=2,
            )

    async def append(self, record: Record) -> None:
        """Returns once ``record`` is fsync'd (then, and only then, may the request be acked).
        Raises ``JournalFull`` (503 + Retry-After) when the unapplied backlog is at its bound."""
        parts = record.frame()
        size = len(parts[0]) + len(parts[1])
        self.check_room(size)
        self.backlog_bytes += size
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(parts, size, done))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.create_task(self._flush_loop())
        # shield: a client that disconnects must not cancel the write of the whole group
        await asyncio.shield(done)

    async def _flush_loop(self) -> None:
        # Everything queued while one group is being written goes out in the next group: with N
        # concurrent requests there are about N / (requests per fsync) fsyncs, not N.
        while self._pending:
            group, self._pending = self._pending, []
            try:
                end = await asyncio.to_thread(self._write_group, [part for p in group for part in p.parts])
            except Exception as exc:  # noqa: BLE001 - disk full, I/O error: these requests are not acked (503)
                self.backlog_bytes -= sum(p.size for p in group)
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
                log.error("otlp journal: append failed: %s", reason)
                for p in group:
                    if not p.done.done():
                        p.done.set_exception(Overloaded("could not write the OTLP journal; retry later"))
                        p.done.exception()  # mark it retrieved: its waiter may have gone
                continue
            self.durable = end
            self.acked_bytes += sum(p.size for p in group)
            self.appended.set()
            for p in group:
                if not p.done.done():
                    p.done.set_result(None)

    def _write_group(self, items: list[bytes]) -> Position:
        """Worker thread: write and fsync one group; returns the new durable end."""
        if self._file is None or self._roll_next or self._size >= self.segment_bytes:
            self._open_segment(self._segment + 1)
            self._roll_next = False
        assert self._file is not None
        total = sum(len(item) for item in items)
        start = self._size
        try:
            _write_all(self._file, items)
            os.fsync(self._file)
        except OSError:
            # This group is not acked. Its bytes may be partly on disk, and after a failed fsync
            # the file's state is unknown: the next group goes to a new segment, so that no acked
            # record ever follows a torn one (recovery truncates a segment at its first bad record).
            self._roll_next = True
            try:
                os.ftruncate(self._file, start)
            except OSError:
                pass
            raise
        self._size = start + total
        return Position(self._segment, self._size)


class JournalFollower(JournalFiles):
    """A journal as an applier in another process sees it: the appending process tells it how far
    the appends are durable (``advance``); it applies up to there and keeps the checkpoint.

    ``open`` takes ``applier.lock``, waiting for an earlier applier (of a server that crashed) to
    let go, so that two appliers never apply and delete segments at once."""

    def __init__(self, directory: Path, durable: Position) -> None:
        super().__init__(directory)
        self.durable = durable
        self._lock_fd: int | None = None

    def open(self, timeout: float = 30.0) -> None:
        self._lock_fd = os.open(self.directory / APPLIER_LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError:
                if time.monotonic() > deadline:
                    os.close(self._lock_fd)
                    self._lock_fd = None
                    raise JournalInUse(f"another applier has the OTLP journal {self.directory} open") from None
                time.sleep(0.05)
        self.applied = self._read_checkpoint()
        numbers = self.segments()
        if numbers and self.applied.segment < numbers[0]:
            self.applied = Position(numbers[0], 0)

    def advance(self, durable: Position) -> None:
        if durable > self.durable:
            self.durable = durable
            self.appended.set()

    def close(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock
            self._lock_fd = None
