"""The OTLP journal's applier in its own process.

In journal mode the server only validates, journals and acks; decoding, mapping and writing the
journaled requests (``Applier``) is most of the CPU. Run in the server, it shares the GIL with the
acks and slows every one of them; run here, in a child process with its own connection to the same
SQLite database, it uses the machine's other cores, and the server's acks do not wait on it.

The child runs at a lower CPU priority (``APPLIER_NICENESS``): indexing is background work that
may fall behind during a burst (the journal holds what it has not applied yet, bounded by
``otlp_journal_max_bytes``), while an ack is what a client is waiting for.

Protocol, one JSON object per line:

* server -> child, on stdin: first ``{"settings": {...}, "durable": [segment, offset]}``, then
  ``{"durable": [segment, offset]}`` after every fsync'd group of appends. The child applies
  records up to there only: it never applies (nor deletes a segment holding) an unacked append.
  End of stdin means "stop": the child finishes what it is doing and exits.
* child -> server, on stdout: ``{"applied": bytes, "written": n, "skipped": n}`` after each record
  (the server's backlog accounting; totals of this child), ``{"rejected": n}`` for spans refused
  when indexed, ``{"call": name, "args": [...]}`` for the store's metrics hooks.

If the child dies, the server starts another after a pause; it resumes from the checkpoint. If the
server dies, the kernel kills the child (``PR_SET_PDEATHSIG``), as a crash would.
"""

from __future__ import annotations

import asyncio
import ctypes
import dataclasses
import logging
import logging.config
import os
import signal
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from tracehive.ingest.journal import Journal, JournalFollower
from tracehive.ingest.journal_applier import Applier, backlog_drained, cancel_and_wait
from tracehive.ingest.journal_records import Position
from tracehive.settings import Settings

log = logging.getLogger("tracehive.journal")

APPLIER_NICENESS = 10
RESTART_PAUSE_SECONDS = 1.0
STOP_TIMEOUT_SECONDS = 15.0
# The store's metrics hooks the child forwards (``StoreObserver``); nothing else may be called.
FORWARDED_CALLS = frozenset({"events_stored", "group_committed", "group_failed"})


def _settings_document(settings: Settings) -> dict[str, Any]:
    document = dataclasses.asdict(settings)
    document["data_dir"] = str(settings.data_dir)
    document["metrics_token"] = ""  # a secret the child has no use for
    return document


def _settings_from(document: dict[str, Any]) -> Settings:
    return dataclasses.replace(Settings(), **{**document, "data_dir": Path(document["data_dir"])})


# ------------------------------------------------------------------------------------------------
# The server's side
# ------------------------------------------------------------------------------------------------


class ApplierProcess:
    """Starts, feeds and supervises the child; the same ``start``/``stop``/``idle`` as ``Applier``."""

    def __init__(self, journal: Journal, settings: Settings, *, observer: Any = None,
                 on_skipped: Callable[[], None] | None = None,
                 on_rejected: Callable[[int], None] | None = None,
                 on_restart: Callable[[], None] | None = None) -> None:
        self.journal = journal
        self.settings = settings
        self.observer = observer
        self.on_skipped = on_skipped
        self.on_rejected = on_rejected
        self.on_restart = on_restart
        self.applied_records = 0
        self.skipped_records = 0
        self.restarts = 0
        self._task: asyncio.Task[None] | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stopping = False

    def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._supervise(), name="otlp-journal-applier-process")

    async def stop(self) -> None:
        """Ask the child to stop (end of its stdin), wait for it, kill it if it does not."""
        self._stopping = True
        proc = self._proc
        if proc is not None and proc.returncode is None:
            if proc.stdin is not None:
                proc.stdin.close()
            try:
                await asyncio.wait_for(proc.wait(), STOP_TIMEOUT_SECONDS)
            except asyncio.TimeoutError:
                log.error("otlp journal: the applier process did not stop within %ss; killing it",
                          STOP_TIMEOUT_SECONDS)
                proc.kill()
                await proc.wait()
        await cancel_and_wait(self._task)
        self._task = None

    async def idle(self, timeout: float) -> bool:
        """True once everything appended so far is applied (for tests)."""
        return await backlog_drained(self.journal, timeout)

    async def _supervise(self) -> None:
        while not self._stopping:
            try:
                returncode = await self._run_child()
            except OSError as exc:  # could not start it (resources): try again
                log.error("otlp journal: could not start the applier process: %s", exc)
                returncode = None
            except Exception:  # a bug here must not leave acknowledged requests unapplied for good
                log.exception("otlp journal: supervising the applier process failed")
                returncode = await self._kill_child()
            if self._stopping:
                return
            # Acknowledged requests stay in the journal; a new child resumes from the checkpoint.
            log.error("otlp journal: the applier process exited (%s); starting another in %.0fs",
                      returncode, RESTART_PAUSE_SECONDS)
            self.restarts += 1
            if self.on_restart is not None:
                self.on_restart()
            await asyncio.sleep(RESTART_PAUSE_SECONDS)

    async def _kill_child(self) -> int | None:
        proc = self._proc
        if proc is None:
            return None
        if proc.returncode is None:
            proc.kill()
        return await proc.wait()

    async def _run_child(self) -> int | None:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tracehive.ingest.applier_process",
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,  # stderr: the server's (logs)
        )
        self._proc = proc
        assert proc.stdin is not None and proc.stdout is not None
        written_before, skipped_before = self.applied_records, self.skipped_records
        durable = self.journal.durable
        proc.stdin.write(orjson.dumps({"settings": _settings_document(self.settings),
                                       "durable": [durable.segment, durable.offset]}) + b"\n")
        feeder = asyncio.create_task(self._feed(proc.stdin, durable))
        try:
            while line := await proc.stdout.readline():
                self._handle(orjson.loads(line), written_before, skipped_before)
        finally:
            feeder.cancel()
        return await proc.wait()

    async def _feed(self, stdin: asyncio.StreamWriter, sent: Position) -> None:
        """Tell the child each new durable end of the journal."""
        journal = self.journal
        try:
            while True:
                journal.appended.clear()
                durable = journal.durable
                if durable > sent:
                    stdin.write(orjson.dumps({"durable": [durable.segment, durable.offset]}) + b"\n")
                    await stdin.drain()
                    sent = durable
                await journal.appended.wait()
        except (BrokenPipeError, ConnectionResetError):
            return  # the child is gone; the supervisor starts another

    def _handle(self, message: dict[str, Any], written_before: int, skipped_before: int) -> None:
        if "applied" in message:
            # A replacement child re-applies from the last checkpoint, which may be behind what its
            # predecessor reported: the backlog then reads low for a while (never below zero).
            self.journal.backlog_bytes = max(0, self.journal.backlog_bytes - int(message["applied"]))
            self.journal.applied_bytes += int(message["applied"])
            self.applied_records = written_before + int(message["written"])
            skipped = skipped_before + int(message["skipped"])
            if self.on_skipped is not None:
                for _ in range(skipped - self.skipped_records):
                    self.on_skipped()
            self.skipped_records = skipped
        elif "rejected" in message:
            if self.on_rejected is not None:
                self.on_rejected(int(message["rejected"]))
        elif message.get("call") in FORWARDED_CALLS and self.observer is not None:
            getattr(self.observer, message["call"])(*message["args"])


# ------------------------------------------------------------------------------------------------
# The child's side
# ------------------------------------------------------------------------------------------------


class _Reporter:
    """Writes messages to the server (stdout); the store's writer thread reports through it too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        # The protocol keeps the original stdout to itself; anything else a library might print
        # goes to stderr (fd 1 now points there) instead of corrupting it.
        self._out = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
        os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def send(self, message: dict[str, Any]) -> None:
        with self._lock:
            self._out.write(orjson.dumps(message) + b"\n")
            self._out.flush()

    # The store's observer (``StoreObserver``), forwarded to the server's metrics.
    def events_stored(self, count: int) -> None:
        self.send({"call": "events_stored", "args": [count]})

    def group_committed(self, jobs: int, transaction_seconds: float, commit_seconds: float) -> None:
        self.send({"call": "group_committed", "args": [jobs, transaction_seconds, commit_seconds]})

    def group_failed(self, jobs: int) -> None:
        self.send({"call": "group_failed", "args": [jobs]})


def _die_with_parent() -> None:
    """Linux: be killed when the server dies, as a crash of the server would take its threads."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        pr_set_pdeathsig = 1
        libc.prctl(pr_set_pdeathsig, signal.SIGKILL)
    except (OSError, AttributeError):
        pass  # elsewhere, end of stdin stops the child instead


async def _stdin_lines() -> asyncio.StreamReader:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


def _use_prices(settings: Settings) -> None:
    """The server's price table (the server checked the file at start-up; should it have become
    unreadable since, the shipped table is used, said once in the log, rather than no indexing)."""
    from tracehive import pricing

    try:
        pricing.use_table(pricing.load_table(settings.prices_file))
    except pricing.PriceFileError as exc:
        logging.getLogger("tracehive.otlp").error("otlp journal applier: %s; pricing with the shipped table", exc)
        pricing.use_table(pricing.load_table())


async def child_main() -> None:
    from tracehive.ingest.decode_pool import DecodePool
    from tracehive.ingest.journal_stages import journal_stages, merge_prepared
    from tracehive.ingest.otlp_decode_common import DecodeLimits
    from tracehive.observability.logging import log_config
    from tracehive.storage.factory import store_from_settings

    stdin = await _stdin_lines()
    first = orjson.loads(await stdin.readline())
    settings = _settings_from(first["settings"])
    logging.config.dictConfig(log_config(settings.log_level))  # the server's JSON lines, on its stderr
    _use_prices(settings)
    reporter = _Reporter()
    follower = JournalFollower(settings.data_dir / "otlp-journal", Position(*first["durable"]))
    await asyncio.to_thread(follower.open)
    store = store_from_settings(settings, observer=reporter)
    await store.open()
    applier: Applier
    # Decoding in worker processes lets the applier's write stage have this process's GIL.
    pool = DecodePool(settings.otlp_decode_processes)
    prepare, write = journal_stages(store, DecodeLimits.from_settings(settings),
                                    on_rejected=lambda n: reporter.send({"rejected": n}), pool=pool)
    applier = Applier(
        follower, write, prepare=prepare, merge=merge_prepared, prepare_window=max(1, pool.processes),
        on_applied=lambda size: reporter.send(
            {"applied": size, "written": applier.applied_records, "skipped": applier.skipped_records}),
    )
    applier.start()
    try:
        while line := await stdin.readline():
            follower.advance(Position(*orjson.loads(line)["durable"]))
    finally:
        await applier.stop()
        await asyncio.to_thread(pool.close)
        await store.close()
        follower.close()


def main() -> None:
    _die_with_parent()
    try:
        os.nice(APPLIER_NICENESS)
    except OSError:
        pass
    asyncio.run(child_main())


if __name__ == "__main__":
    main()
