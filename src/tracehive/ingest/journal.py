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
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import os
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from tracehive.model.errors import ApiError, Overloaded
from tracehive.model.scope import KeyKind, Scope

log = logging.getLogger("tracehive.journal")

HEADER = struct.Struct("<II")  # record length, crc32 of the payload
META_LENGTH = struct.Struct("<I")
SEGMENT_SUFFIX = ".seg"
CHECKPOINT_NAME = "applied"
LOCK_NAME = "lock"
APPLIER_LOCK_NAME = "applier.lock"
DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024
# A record larger than this is corruption (bodies are capped by max_body_bytes well below it).
MAX_RECORD_BYTES = 1 << 30
IOV_MAX = 512  # buffers per writev (POSIX guarantees at least 16; Linux allows 1024)
RETRY_FIRST_SECONDS = 0.05
RETRY_MAX_SECONDS = 5.0


class JournalFull(Overloaded):
    """The unapplied backlog is at its bound: the client should retry later (503)."""


class JournalInUse(RuntimeError):
    """Another process has this journal open (two appliers would apply and delete each other's
    segments)."""


class CorruptRecord(Exception):
    """A record that cannot be decoded although its CRC matched (a bug, or a foreign file)."""


@dataclass(frozen=True, slots=True)
class Record:
    """One acknowledged OTLP request, as much of it as is needed to write it later."""

    scope: Scope
    protobuf: bool
    default_source: str | None
    body: bytes

    def frame(self) -> tuple[bytes, bytes]:
        """The framed record as (header + meta, body): written together with one ``writev``, so
        that the body (up to ``max_body_bytes``) is never copied."""
        s = self.scope
        meta = orjson.dumps({
            "org": s.org_id, "workspace": s.workspace_id, "project": s.project_id, "project_name": s.project_name,
            "key_kind": s.key_kind.value, "key_id": s.key_id, "protobuf": self.protobuf, "source": self.default_source,
        })
        prefix = META_LENGTH.pack(len(meta)) + meta
        crc = zlib.crc32(self.body, zlib.crc32(prefix))  # the CRC of prefix + body
        return HEADER.pack(len(prefix) + len(self.body), crc) + prefix, self.body

    def encode(self) -> bytes:
        """The framed record: header, then payload."""
        return b"".join(self.frame())

    @classmethod
    def decode(cls, payload: bytes) -> Record:
        try:
            (meta_length,) = META_LENGTH.unpack_from(payload)
            meta = orjson.loads(payload[META_LENGTH.size: META_LENGTH.size + meta_length])
            scope = Scope(meta["org"], meta["workspace"], meta["project"], meta["project_name"],
                          KeyKind(meta["key_kind"]), meta["key_id"])
            body = payload[META_LENGTH.size + meta_length:]
            return cls(scope, bool(meta["protobuf"]), meta["source"], body)
        except (struct.error, orjson.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
            raise CorruptRecord(f"undecodable journal record: {type(exc).__name__}") from None


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """A place in the journal: a segment number and a byte offset in it."""

    segment: int
    offset: int


def read_record(data: bytes | memoryview, offset: int) -> tuple[bytes, int] | None:
    """The payload of the record at ``offset`` and the offset after it; ``None`` when the bytes
    there are not a whole record with a matching CRC (a torn or corrupt tail)."""
    if offset + HEADER.size > len(data):
        return None
    length, crc = HEADER.unpack_from(data, offset)
    start = offset + HEADER.size
    end = start + length
    if length > MAX_RECORD_BYTES or end > len(data):
        return None
    payload = bytes(data[start:end])
    if zlib.crc32(payload) != crc:
        return None
    return payload, end


def valid_length(path: Path) -> int:
    """How many leading bytes of a segment file are whole, CRC-checked records."""
    data = path.read_bytes()
    offset = 0
    while (found := read_record(data, offset)) is not None:
        offset = found[1]
    return offset


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
