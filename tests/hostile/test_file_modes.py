"""What tracehive writes to disk is private to its user: the data dir 0700, the database, its
WAL and shared memory, the OTLP journal and exports 0600; an older data dir is tightened on open."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing
from pathlib import Path

from tests.process.server import run_cli, serving


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_data_dir_and_everything_in_it_is_private(tmp_path: Path) -> None:
    old_umask = os.umask(0o022)  # the usual default: files would be 0644 without care
    try:
        data = tmp_path / "data"
        for server in serving(data, env={"TRACEHIVE_OTLP_JOURNAL": "1"}):
            key = server.bootstrap_key
            with server.client(key) as client:
                assert client.post("/v1/events", json={"event_type": "tool", "inputs": {"q": "secret"}}).status_code == 200
            assert mode(data) == 0o700
            files = [p for p in data.rglob("*") if p.is_file()]
            assert {p.name for p in files} >= {"tracehive.db", "tracehive.db-wal", "tracehive.db-shm"}
            for path in files:
                assert mode(path) & 0o077 == 0, (path, oct(mode(path)))
            journal = data / "otlp-journal"
            assert journal.is_dir() and mode(journal) == 0o700
        out = tmp_path / "export.jsonl"
        run_cli("export", "--data-dir", str(data), "-o", str(out))
        assert out.stat().st_size > 0 and mode(out) == 0o600
    finally:
        os.umask(old_umask)


def test_an_older_data_dir_is_tightened_on_open(tmp_path: Path) -> None:
    data = tmp_path / "old"
    data.mkdir(mode=0o755)
    db = data / "tracehive.db"
    with closing(sqlite3.connect(db)) as conn:  # as an older release left it: world-readable
        conn.execute("PRAGMA journal_mode=WAL")
    db.chmod(0o644)
    data.chmod(0o755)
    run_cli("projects", "list", "--data-dir", str(data))
    assert mode(data) == 0o700 and mode(db) == 0o600
