"""Another process holds the database's write lock for longer than any write may wait: every
write is answered 503 + Retry-After within the server's ``write_timeout_seconds`` (never a hang,
never a 500), a write answered "not stored" is really not stored, reads keep working (WAL), and
once the lock is released writes succeed again at once."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from tests.faults.common import check_retryable, export_all, make_event
from tests.process.server import TracehiveServer

WRITE_TIMEOUT = 1.0
SLACK = 2.5  # scheduling on a loaded 2-core machine; still far below the 5 s busy timeout
WRITERS = 8
LOCKED_FOR = 5.0  # seconds of traffic while the lock is held: several write timeouts

# Holds an exclusive write transaction on the database until a line arrives on stdin (or 60 s
# pass, so a failed test cannot leave it behind).
LOCKER = """
import sqlite3, sys, threading
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)
conn.execute("BEGIN EXCLUSIVE")
conn.execute("INSERT OR REPLACE INTO meta VALUES ('fault-test-lock', 'held')")
print("locked", flush=True)
done = threading.Event()
threading.Thread(target=lambda: (sys.stdin.readline(), done.set()), daemon=True).start()
done.wait(60)
conn.execute("ROLLBACK")
print("released", flush=True)
"""


def _body(session_id: str, tag: dict[str, Any]) -> dict[str, Any]:
    return {"events": [make_event(session_id, {**tag, "i": i}) for i in range(10)]}


def test_a_locked_database_gets_bounded_503s_reads_work_and_writes_resume(data_dir: Path) -> None:
    server = TracehiveServer(data_dir, env={"TRACEHIVE_WRITE_TIMEOUT_SECONDS": str(WRITE_TIMEOUT)})
    with server:
        key = server.bootstrap_key
        assert key is not None
        session = str(uuid.uuid4())
        with server.client(key) as client:
            before = _body(session, {"w": -1, "n": 0})
            assert client.post("/v1/events/batch", json=before).status_code == 200

        locker = subprocess.Popen(
            [sys.executable, "-c", LOCKER, str(data_dir / "tracehive.db")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            assert locker.stdout is not None and locker.stdin is not None
            assert locker.stdout.readline().strip() == "locked"

            answers: list[tuple[float, int, str, dict[str, Any]]] = []  # (seconds, status, errorCode, body)
            bad: list[str] = []
            stop_at = time.monotonic() + LOCKED_FOR

            def write(w: int) -> None:
                with server.client(key, timeout=30) as c:
                    n = 0
                    while time.monotonic() < stop_at:
                        body = _body(session, {"w": w, "n": n})
                        n += 1
                        started = time.monotonic()
                        try:
                            r = c.post("/v1/events/batch", json=body)
                        except httpx.HTTPError as exc:
                            bad.append(repr(exc))
                            return
                        took = time.monotonic() - started
                        code = ""
                        if r.status_code != 200:
                            try:
                                code = check_retryable(r, frozenset({"STORE_UNAVAILABLE", "OVERLOADED"}))
                            except AssertionError as exc:
                                bad.append(str(exc))
                        answers.append((took, r.status_code, code, body))

            threads = [threading.Thread(target=write, args=(w,), daemon=True) for w in range(WRITERS)]
            for t in threads:
                t.start()
            # Reads are not blocked by the write lock, and answer at their usual speed meanwhile.
            reads = 0
            with server.client(key) as client:
                while time.monotonic() < stop_at:
                    started = time.monotonic()
                    tree = client.get(f"/v1/sessions/{session}")
                    assert tree.status_code == 200, tree.text
                    assert {c["event_id"] for c in tree.json()["children"]} >= {e["event_id"] for e in before["events"]}
                    assert client.get("/healthz").status_code == 200
                    assert time.monotonic() - started < SLACK
                    reads += 1
                    time.sleep(0.2)
            for t in threads:
                t.join(WRITE_TIMEOUT * 2 + 10)
            assert not any(t.is_alive() for t in threads), "a write hung"
            assert not bad, bad[:3]
            assert reads >= 5

            assert len(answers) >= WRITERS * 2
            assert all(status == 503 for _, status, _, _ in answers), "a write succeeded while the lock was held"
            slowest = max(took for took, _, _, _ in answers)
            assert slowest <= WRITE_TIMEOUT + SLACK, f"a write waited {slowest:.1f} s"
            assert min(took for took, _, _, _ in answers) >= WRITE_TIMEOUT * 0.9  # it did wait for the lock
        finally:
            if locker.poll() is None:
                assert locker.stdin is not None
                locker.stdin.write("\n")
                locker.stdin.flush()
            locker.wait(30)
            for pipe in (locker.stdin, locker.stdout):  # not left to the garbage collector's warnings
                if pipe is not None:
                    pipe.close()
        assert locker.returncode == 0

        # Released: writes succeed again at once, in the same server process.
        with server.client(key) as client:
            after = _body(session, {"w": -2, "n": 0})
            started = time.monotonic()
            r = client.post("/v1/events/batch", json=after)
            assert r.status_code == 200, r.text
            assert time.monotonic() - started < SLACK
            stored = {row["event_id"] for row in export_all(client, projections=["event_id"])}
        expected = {e["event_id"] for body in (before, after) for e in body["events"]}
        assert expected <= stored
        # Writes answered 503 while the lock was held were withdrawn, never written later.
        refused = {e["event_id"] for _, _, _, body in answers for e in body["events"]}
        assert not refused & stored, f"{len(refused & stored)} events of refused writes were stored"
