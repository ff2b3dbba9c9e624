"""Opening SQLite connections with the pragmas tracehive relies on."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

from tracehive.model.errors import StorageFull, StoreUnavailable
from tracehive.storage.sqlite.memstatus import disable_memstatus
from tracehive.storage.sqlite.rows import merge_json

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000


# Page cache per connection (KiB, negative = size): the writer gets more since it touches indexes.
WRITER_CACHE_KIB = 32 * 1024
READER_CACHE_KIB = 16 * 1024
WAL_AUTOCHECKPOINT_PAGES = 10_000


# Retry-After (seconds) when the disk or the size limit is full: space does not come back within a
# second, and clients that honour the header should not hammer a full store.
STORAGE_FULL_RETRY_AFTER = 5

# Primary result codes (the low byte of an extended code), from sqlite3.h.
SQLITE_BUSY = 5
SQLITE_LOCKED = 6
SQLITE_FULL = 13


def connect(
    path: Path, *, readonly: bool = False, synchronous: str = "FULL", max_db_bytes: int = 0
) -> sqlite3.Connection:
    disable_memstatus()  # first connection of the process only; see memstatus.py
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so the writer controls transactions.
    # 512 cached statements: the writer's multi-row INSERTs are one statement per row count.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000,
                           cached_statements=512)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    else:
        conn.execute("PRAGMA journal_mode = WAL")
        # FULL in WAL mode fsyncs the WAL on every commit: a committed write survives power loss.
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        # Checkpoint every ~40 MB of WAL instead of SQLite's 4 MB: hot index pages are then copied
        # back to the database once per checkpoint rather than ten times (measured in bench/).
        conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_AUTOCHECKPOINT_PAGES}")
    conn.execute("PRAGMA foreign_keys = OFF")
    # Merges JSON objects on re-write, keeping nulls (json_patch would delete those keys).
    conn.create_function("th_merge", 2, merge_json, deterministic=True)
    conn.execute(f"PRAGMA cache_size = -{READER_CACHE_KIB if readonly else WRITER_CACHE_KIB}")
    if max_db_bytes > 0 and not readonly:
        limit_size(conn, max_db_bytes)
    return conn


def limit_size(conn: sqlite3.Connection, max_db_bytes: int) -> None:
    """Cap the database at ``max_db_bytes`` (rounded down to whole pages) for writes through this
    connection: past it SQLite answers SQLITE_FULL, as on a full disk. Pages freed by deletes are
    reused, so deleting data makes room again. A database already larger than the cap keeps its
    size (SQLite never lowers the limit below the current page count) and takes no new pages."""
    page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    wanted = max(1, max_db_bytes // page_size)
    applied = int(conn.execute(f"PRAGMA max_page_count = {wanted}").fetchone()[0])
    if applied > wanted:
        log.warning(
            "the database is already %d bytes, over max_db_bytes=%d: writes that need new pages will be refused",
            applied * page_size, max_db_bytes,
        )


def store_error(exc: sqlite3.Error) -> StoreUnavailable:
    """The retryable API error for a failure of the database itself (full, locked, I/O), so the
    client gets a 503 with Retry-After that says what is wrong, never a 500."""
    code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+; older versions only have the text
    primary = code & 0xFF if isinstance(code, int) else None
    text = str(exc)
    if primary == SQLITE_FULL or "database or disk is full" in text:
        return StorageFull(
            "the store could not write: the disk or the database size limit is full; "
            "reads still work, writes resume once space is freed",
            retry_after=STORAGE_FULL_RETRY_AFTER,
        )
    if primary in (SQLITE_BUSY, SQLITE_LOCKED) or "database is locked" in text:
        return StoreUnavailable(
            "the store could not write: the database is locked by another connection; retry shortly"
        )
    return StoreUnavailable(f"the store could not write: {exc}")
