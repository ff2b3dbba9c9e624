"""SQLite's global allocation statistics are off in a process whose first SQLite connection is
tracehive's (each allocation would otherwise take one process-wide mutex, which the heavy-read
threads and the writer fought over), and left alone when SQLite is already in use.

Each case runs in a fresh interpreter: the setting is per process and can only change while no
SQLite connection exists."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# ``sqlite3_memory_used()`` counts only while the statistics are on: with a connection open and a
# query run, 0 means they are off.
PROBE = """
import ctypes, sys, _sqlite3
from pathlib import Path
used = ctypes.CDLL(_sqlite3.__file__).sqlite3_memory_used
used.restype = ctypes.c_int64
{before}
from tracehive.storage.sqlite.connection import connect
from tracehive.storage.sqlite.memstatus import disable_memstatus
conn = connect(Path(sys.argv[1]))
conn.execute("CREATE TABLE t (v TEXT)")
conn.execute("INSERT INTO t VALUES (json_object('a', 1))")
value = conn.execute("SELECT json_extract(v, '$.a') FROM t").fetchone()[0]
print(disable_memstatus(), used(), value)
"""


def probe(tmp_path: Path, before: str = "") -> tuple[str, int, str]:
    out = subprocess.run([sys.executable, "-c", PROBE.format(before=before), str(tmp_path / "t.db")],
                         capture_output=True, text=True, timeout=60, check=True).stdout.split()
    return out[0], int(out[1]), out[2]


def test_the_first_connection_turns_the_statistics_off(tmp_path: Path) -> None:
    if sys.platform != "linux":
        pytest.skip("checked where the server runs in production (Linux); elsewhere it may stay on")
    disabled, used, value = probe(tmp_path)
    assert (disabled, used, value) == ("True", 0, "1")


def test_sqlite_in_use_is_left_alone(tmp_path: Path) -> None:
    """A connection opened before tracehive's: SQLite is not shut down under it."""
    before = "import sqlite3\nother = sqlite3.connect(':memory:')\nother.execute('SELECT 1')"
    disabled, used, value = probe(tmp_path, before)
    assert disabled == "False"
    assert used > 0  # statistics still on: the open connections' memory is counted
    assert value == "1"
