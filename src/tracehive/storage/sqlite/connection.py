"""Opening SQLite connections with the pragmas tracehive relies on."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tracehive.storage.sqlite.rows import merge_json

BUSY_TIMEOUT_MS = 5000


# Page cache per connection (KiB, negative = size): the writer gets more since it touches indexes.
WRITER_CACHE_KIB = 32 * 1024
READER_CACHE_KIB = 16 * 1024
WAL_AUTOCHECKPOINT_PAGES = 10_000


def connect(path: Path, *, readonly: bool = False, synchronous: str = "FULL") -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves so the writer controls transactions.
    conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False, timeout=BUSY_TIMEOUT_MS / 1000)
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
    return conn
