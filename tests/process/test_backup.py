"""``tracehive backup`` / ``tracehive restore`` on real processes (issue 17, point 3).

A backup is taken while four clients write; it is restored into a new data dir and served, and
every write acknowledged before the backup began is there, with the database intact. In journal
mode the acknowledged-but-unapplied OTLP requests travel in the backup and are applied by the
restored server. Bad input is one line on stderr and a non-zero exit, with nothing changed.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sqlite3
import tarfile
import threading
import time
from pathlib import Path
import httpx
import pytest

from tests.process.server import TracehiveServer, run_cli

WRITERS = 4


class Writers:
    """Clients writing until stopped; each acknowledged write is recorded with when it was
    acknowledged (``time.monotonic``)."""

    def __init__(self, server: TracehiveServer, key: str, *, otlp: bool) -> None:
        self.server, self.key, self.otlp = server, key, otlp
        self.acked: list[tuple[float, list[str]]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(WRITERS)]

    def __enter__(self) -> Writers:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(60)

    def names_acked_before(self, moment: float) -> set[str]:
        with self._lock:
            return {name for at, names in self.acked if at < moment for name in names}

    def _run(self, number: int) -> None:
        with self.server.client(self.key, timeout=30) as client:
            n = 0
            while not self._stop.is_set():
                names = [f"w{number}-{n}-{i}" for i in range(20)]
                n += 1
                try:
                    r = self._send(client, names)
                except httpx.HTTPError as exc:
                    self.errors.append(repr(exc))
                    continue
                if r.status_code != 200:
                    self.errors.append(f"{r.status_code} {r.text[:200]}")
                    continue
                with self._lock:
                    self.acked.append((time.monotonic(), names))

    def _send(self, client: httpx.Client, names: list[str]) -> httpx.Response:
        if not self.otlp:
            events = [{"event_type": "tool", "event_name": name, "inputs": {"text": "x" * 200}} for name in names]
            return client.post("/v1/events/batch", json={"events": events})
        now = time.time_ns()
        spans = [{"traceId": secrets.token_hex(16), "spanId": secrets.token_hex(8), "name": name, "kind": 1,
                  "startTimeUnixNano": str(now), "endTimeUnixNano": str(now + 1_000_000)} for name in names]
        body = {"resourceSpans": [{"scopeSpans": [{"scope": {"name": "test"}, "spans": spans}]}]}
        return client.post("/v1/traces", content=json.dumps(body), headers={"Content-Type": "application/json"})


def _stored_names(server: TracehiveServer, key: str) -> set[str]:
    with server.client(key, timeout=60) as client:
        r = client.post("/v1/events/export", json={}, headers={"Accept": "application/x-ndjson"})
        assert r.status_code == 200, r.text
        return {json.loads(line)["event_name"] for line in r.text.splitlines()}


def _backup_while_writing(tmp_path: Path, *, otlp: bool, env: dict[str, str]) -> None:
    data = tmp_path / "data"
    archive = tmp_path / "backup.tar"
    with TracehiveServer(data, env=env, cwd=tmp_path) as server:
        key = server.bootstrap_key
        assert key is not None
        with Writers(server, key, otlp=otlp) as writers:
            while len(writers.acked) < 20:  # some data before the backup
                time.sleep(0.05)
            began = time.monotonic()
            done = run_cli("backup", "-o", str(archive), "--data-dir", str(data))
            ended = time.monotonic()
            while len(writers.names_acked_before(time.monotonic())) == len(writers.names_acked_before(ended)):
                time.sleep(0.05)  # writes went on after the backup too
        assert writers.errors == []
        before = writers.names_acked_before(began)
        assert "Backed up" in done.stdout and str(archive) in done.stdout
        # In journal mode the journal travels with it (the current segment at least).
        assert ("journal segment" in done.stdout) == otlp, done.stdout
        assert oct(archive.stat().st_mode & 0o777) == "0o600"

    restored = tmp_path / "restored"
    out = run_cli("restore", str(archive), "--data-dir", str(restored))
    assert "Restored" in out.stdout and str(restored) in out.stdout
    conn = sqlite3.connect(f"file:{restored / 'tracehive.db'}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    with TracehiveServer(restored, env=env, cwd=tmp_path) as again:
        deadline = time.monotonic() + 60
        stored = _stored_names(again, key)
        while not before <= stored and time.monotonic() < deadline:  # the journal's replay
            time.sleep(0.2)
            stored = _stored_names(again, key)
        missing = before - stored
        assert not missing, f"{len(missing)} of {len(before)} acknowledged events missing, e.g. {sorted(missing)[:5]}"
        assert len(before) >= 20 * 20


def test_a_backup_taken_while_four_clients_write_restores_every_acknowledged_event(tmp_path: Path) -> None:
    _backup_while_writing(tmp_path, otlp=False, env={})


def test_journal_mode_backups_carry_the_unapplied_journal(tmp_path: Path) -> None:
    _backup_while_writing(tmp_path, otlp=True, env={"TRACEHIVE_OTLP_JOURNAL": "1"})


# Bad input ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A stopped data dir with a few events, and a good backup of it."""
    root = tmp_path_factory.mktemp("backup")
    data = root / "data"
    with TracehiveServer(data, cwd=root) as server:
        with server.client(server.bootstrap_key) as client:
            r = client.post("/v1/events/batch", json={"events": [{"event_type": "tool", "inputs": {}}] * 3})
            assert r.status_code == 200, r.text
    archive = root / "good.tar"
    run_cli("backup", "-o", str(archive), "--data-dir", str(data))
    return {"root": root, "data": data, "archive": archive}


def _fails(*args: str, says: str) -> None:
    result = run_cli(*args, check=False)
    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert says in lines[-1], result.stderr
    assert "Traceback" not in result.stderr


def test_backup_refuses_what_it_cannot_do(made: dict[str, Path]) -> None:
    root, data = made["root"], made["data"]
    _fails("backup", "-o", str(root / "x.tar"), "--data-dir", str(root / "absent"), says="no database in")
    _fails("backup", "-o", str(root / "no" / "such" / "dir.tar"), "--data-dir", str(data), says="cannot write to")
    _fails("backup", "-o", str(made["archive"]), "--data-dir", str(data), says="exists (pass --force")
    _fails("backup", "-o", str(root / "pg.tar"), "--store", "postgresql://postgres@127.0.0.1/x", says="pg_dump")
    assert not (root / "absent").exists() and not (root / "no").exists() and not (root / "pg.tar").exists()
    leftovers = [p.name for p in root.iterdir() if p.name.startswith(".tracehive-backup-")]
    assert leftovers == []


def test_restore_refuses_a_damaged_or_foreign_file_and_creates_nothing(made: dict[str, Path]) -> None:
    root = made["root"]
    good = made["archive"].read_bytes()
    # One byte of the database changed: its checksum no longer matches.
    with tarfile.open(made["archive"]) as tar:
        member = tar.getmember("tracehive.db")
        offset = member.offset_data + member.size // 2
    damaged = root / "damaged.tar"
    damaged.write_bytes(good[:offset] + bytes([good[offset] ^ 0xFF]) + good[offset + 1:])
    _fails("restore", str(damaged), "--data-dir", str(root / "r1"), says="checksum")
    assert not (root / "r1").exists()

    foreign = root / "foreign.tar"
    with tarfile.open(foreign, "w") as tar:
        payload = b"hello"
        info = tarfile.TarInfo("../escape")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    _fails("restore", str(foreign), "--data-dir", str(root / "r2"), says="not a tracehive backup")
    (root / "junk.tar").write_bytes(os.urandom(1000))
    _fails("restore", str(root / "junk.tar"), "--data-dir", str(root / "r3"), says="not a tracehive backup")
    _fails("restore", str(root / "absent.tar"), "--data-dir", str(root / "r4"), says="does not exist")
    _fails("restore", str(made["archive"]), "--data-dir", str(made["data"]), says="not an empty directory")
    assert not any((root / f"r{i}").exists() for i in range(1, 5))
    assert not (root.parent / "escape").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".tracehive-restore-")] == []


def test_a_restored_data_dir_serves_the_same_events(made: dict[str, Path], tmp_path: Path) -> None:
    restored = tmp_path / "restored"
    run_cli("restore", str(made["archive"]), "--data-dir", str(restored))
    assert oct(restored.stat().st_mode & 0o777) == "0o700"
    original = run_cli("export", "--project", "default", "--data-dir", str(made["data"])).stdout
    copy = run_cli("export", "--project", "default", "--data-dir", str(restored)).stdout
    assert copy == original and len(original.splitlines()) >= 4
