"""Shared pieces of the fault tests: request bodies with client-made ids, the retryable-refusal
check, reading everything back through the export API, and small real filesystems (tmpfs)."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson

# What a refusal that a client should retry may say (contract error body, 503 + Retry-After).
RETRYABLE_CODES = frozenset({"OVERLOADED", "STORE_UNAVAILABLE", "STORAGE_FULL"})


def make_event(session_id: str, tag: dict[str, Any], *, padding: int = 200) -> dict[str, Any]:
    """A tool event with a client-generated id and a ``tag`` (in ``inputs``) that names who sent it
    when, so a copy stored under another id would be noticed."""
    return {
        "event_id": str(uuid.uuid4()),
        "session_id": session_id,
        "event_type": "tool",
        "event_name": "fault-" + "-".join(f"{k}{v}" for k, v in tag.items()),
        "inputs": {"tag": tag},
        "metadata": {"padding": "p" * padding},
        "start_time": 1_760_000_000_000,
        "end_time": 1_760_000_000_500,
    }


def check_retryable(response: httpx.Response, codes: frozenset[str] = RETRYABLE_CODES) -> str:
    """A refusal in the contract's shape that tells the client to come back: 503 (or 429), a
    ``Retry-After`` of whole seconds, and the JSON error body. Returns its errorCode."""
    assert response.status_code in (429, 503), (response.status_code, response.text[:300])
    retry_after = response.headers.get("retry-after")
    assert retry_after is not None and retry_after.isdigit() and int(retry_after) >= 1, dict(response.headers)
    body = response.json()
    assert body["statusCode"] == response.status_code and body["success"] is False, body
    assert isinstance(body["message"], str) and body["message"], body
    assert body["errorCode"] in codes, body
    return str(body["errorCode"])


def export_all(client: httpx.Client, projections: list[str] | None = None) -> list[dict[str, Any]]:
    """Every event of the key's project (sessions included), streamed as NDJSON."""
    body: dict[str, Any] = {} if projections is None else {"projections": projections}
    with client.stream(
        "POST", "/v1/events/export", json=body, headers={"Accept": "application/x-ndjson"}, timeout=120
    ) as r:
        assert r.status_code == 200, r.read()[:300]
        return [orjson.loads(line) for line in r.iter_lines() if line.strip()]


def stored_event_ids(db: Path) -> set[str]:
    """The ids of the events in the database file, read directly (read-only): for checks over
    so much data that reading it back through the API would dominate a test's time."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {row[0] for row in conn.execute("SELECT event_id FROM events WHERE event_type <> 'session'")}


def sample_memory(read: Callable[[], int], stop: threading.Event, into: list[int], every: float = 0.05) -> None:
    """Append ``read()`` every ``every`` seconds until ``stop`` (for a thread)."""
    while not stop.is_set():
        with contextlib.suppress(OSError, ValueError):
            into.append(read())
        stop.wait(every)


# Small real filesystems ------------------------------------------------------------------------


@contextlib.contextmanager
def tmpfs(where: Path, size_bytes: int) -> Iterator[Path]:
    """A tmpfs of ``size_bytes`` mounted at ``where`` (needs root, as CI has); unmounted after."""
    where.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(where)],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"cannot mount a tmpfs (root needed): {result.stderr.strip()}"
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True, timeout=30, check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], capture_output=True, timeout=30, check=False)


def fill_filesystem(path: Path, leave_bytes: int = 0) -> int:
    """Write ``path`` until the filesystem it is on has at most ``leave_bytes`` free (unbuffered,
    so the OS reports ENOSPC on the write itself). Returns the bytes written."""
    written = 0
    chunk = b"\0" * 65536
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        while True:
            st = os.statvfs(path)
            free = st.f_bavail * st.f_frsize
            if free <= leave_bytes:
                break
            try:
                written += os.write(fd, chunk[: max(1, min(len(chunk), free - leave_bytes))])
            except OSError:  # ENOSPC: full
                break
    finally:
        os.close(fd)
    return written


def applier_pids(server_pid: int) -> list[int]:
    """The pids of a journaling server's applier processes (its children running the applier)."""
    children = Path(f"/proc/{server_pid}/task/{server_pid}/children").read_text().split()
    return [int(pid) for pid in children if b"applier_process" in Path(f"/proc/{pid}/cmdline").read_bytes()]
