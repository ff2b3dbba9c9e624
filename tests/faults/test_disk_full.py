"""A full store: writes get 503 STORAGE_FULL with Retry-After, reads keep working, nothing
acknowledged is lost, and writes resume once space returns, without a restart.

Two ways to fill it, both against a real ``tracehive serve``:

* the size cap ``TRACEHIVE_MAX_DB_BYTES`` (SQLite ``max_page_count``); space returns when a session
  is deleted through the API (its pages go to the free list and are reused);
* a real, small filesystem (a tmpfs of a few MiB, mounted by the test; CI runs as root) filled up
  by another file: the OS answers ENOSPC while the WAL grows; space returns when that file is
  removed.
"""

from __future__ import annotations

import os
import sqlite3
import time
import uuid
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.faults.common import applier_pids, check_retryable, export_all, fill_filesystem, make_event, tmpfs
from tests.process.server import TracehiveServer
from tracehive.ingest.span_mapping import SPAN_NAMESPACE

MAX_DB_BYTES = 1024 * 1024
FULL_ANSWER_SECONDS = 3.0  # a refused write is answered at once, not after a wait


def _batch(session_id: str, n: int, size: int = 20, padding: int = 1000) -> dict[str, Any]:
    return {"events": [make_event(session_id, {"s": session_id[:8], "b": n, "i": i}, padding=padding)
                       for i in range(size)]}  # fmt: skip


def _ids(body: dict[str, Any]) -> set[str]:
    return {e["event_id"] for e in body["events"]}


def _post(client: httpx.Client, body: dict[str, Any]) -> httpx.Response:
    started = time.monotonic()
    r = client.post("/v1/events/batch", json=body)
    if r.status_code != 200:
        assert time.monotonic() - started < FULL_ANSWER_SECONDS, "a refused write took too long"
    return r


def _fill_until_full(
    client: httpx.Client, sessions: list[str], limit: int = 400
) -> tuple[set[str], dict[str, set[str]], list[dict[str, Any]]]:
    """Send batches (round robin over ``sessions``) until the first refusal; then a few more, all
    refused. Returns the acknowledged ids, them per session, and the refused bodies."""
    acked: set[str] = set()
    per_session: dict[str, set[str]] = {sid: set() for sid in sessions}
    refused: list[dict[str, Any]] = []
    for n in range(limit):
        sid = sessions[n % len(sessions)]
        body = _batch(sid, n)
        r = _post(client, body)
        if r.status_code == 200:
            acked |= _ids(body)
            per_session[sid] |= _ids(body)
            continue
        assert check_retryable(r, frozenset({"STORAGE_FULL"})) == "STORAGE_FULL"
        assert int(r.headers["retry-after"]) >= 5, "a full disk does not clear within a second"
        refused.append(body)
        break
    else:
        raise AssertionError(f"the store never filled up after {limit} batches")
    assert len(acked) >= 100, "the store filled up before any real data was written"
    for n in range(5):  # still full: every write refused the same way, none of them a 500
        body = _batch(sessions[0], 1000 + n)
        r = _post(client, body)
        assert check_retryable(r, frozenset({"STORAGE_FULL"})) == "STORAGE_FULL"
        refused.append(body)
    return acked, per_session, refused


def _check_reads(client: httpx.Client, acked: set[str], refused: list[dict[str, Any]], session: str,
                 in_session: set[str]) -> None:  # fmt: skip
    """Reads work on a full store: health, a session tree, single events, the full export."""
    assert client.get("/healthz").status_code == 200
    tree = client.get(f"/v1/sessions/{session}")
    assert tree.status_code == 200, tree.text
    assert {child["event_id"] for child in tree.json()["children"]} == in_session
    one = next(iter(acked))
    assert client.get(f"/v1/events/{one}").json()["event"]["event_id"] == one
    stored = {row["event_id"] for row in export_all(client, projections=["event_id"])}
    assert acked <= stored, f"{len(acked - stored)} acknowledged events lost"
    for body in refused:
        assert not (_ids(body) & stored), "a refused write was stored"


def _db_bytes(db: Path) -> int:
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
        return int(pages * conn.execute("PRAGMA page_size").fetchone()[0])


def test_size_capped_store_refuses_writes_keeps_reads_and_resumes_after_a_delete(data_dir: Path) -> None:
    server = TracehiveServer(data_dir, env={"TRACEHIVE_MAX_DB_BYTES": str(MAX_DB_BYTES)})
    with server:
        key = server.bootstrap_key
        assert key is not None
        pid = server.pid
        keep, scratch = str(uuid.uuid4()), str(uuid.uuid4())
        with server.client(key) as client:
            acked, per_session, refused = _fill_until_full(client, [keep, scratch])
            _check_reads(client, acked, refused, keep, per_session[keep])
            assert _db_bytes(data_dir / "tracehive.db") <= MAX_DB_BYTES

            # Space returns: deleting a session frees its pages, and writes resume in this process.
            r = client.delete(f"/v1/sessions/{scratch}")
            assert r.status_code == 200, r.text
            resumed: set[str] = set()
            for n in range(5):
                body = _batch(keep, 2000 + n)
                r = _post(client, body)
                assert r.status_code == 200, r.text
                resumed |= _ids(body)
            stored = {row["event_id"] for row in export_all(client, projections=["event_id"])}
            assert per_session[keep] | resumed <= stored
            assert not per_session[scratch] & stored
            assert _db_bytes(data_dir / "tracehive.db") <= MAX_DB_BYTES
        assert server.pid == pid and server.running  # no restart happened


def test_full_filesystem_refuses_writes_keeps_reads_and_resumes_when_space_is_freed(tmp_path: Path) -> None:
    with tmpfs(tmp_path / "fs", 16 * 1024 * 1024) as fs:
        server = TracehiveServer(fs / "data")
        try:
            server.start()
            key = server.bootstrap_key
            assert key is not None
            pid = server.pid
            session = str(uuid.uuid4())
            with server.client(key) as client:
                first = _batch(session, -1)
                assert _post(client, first).status_code == 200
                # Someone else fills the disk, leaving room for a few more commits: the WAL then
                # grows into ENOSPC in the middle of the traffic.
                ballast = fs / "ballast"
                fill_filesystem(ballast, leave_bytes=1024 * 1024)
                acked, per_session, refused = _fill_until_full(client, [session])
                acked |= _ids(first)
                _check_reads(client, acked, refused, session, per_session[session] | _ids(first))

                ballast.unlink()  # space returns
                for n in range(5):
                    body = _batch(session, 3000 + n)
                    r = _post(client, body)
                    assert r.status_code == 200, r.text
                    acked |= _ids(body)
            assert server.pid == pid and server.running  # no restart happened

            # And all of it is really on disk: a clean restart (checkpoint included) keeps it.
            server.restart()
            with server.client(key) as client:
                stored = {row["event_id"] for row in export_all(client, projections=["event_id"])}
            assert acked <= stored
            for body in refused:
                assert not (_ids(body) & stored)
            db = fs / "data" / "tracehive.db"
            with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
                assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        finally:
            server.stop()


def _otlp_spans(n: int) -> tuple[bytes, set[str]]:
    """A protobuf export of ``n`` spans in a fresh trace, and the event ids they map to."""
    trace_id = os.urandom(16)
    request = ExportTraceServiceRequest()
    scope_spans = request.resource_spans.add().scope_spans.add()
    ids = set()
    for i in range(n):
        span_id = os.urandom(8)
        span = scope_spans.spans.add(trace_id=trace_id, span_id=span_id, name=f"journaled-{i}",
                                     start_time_unix_nano=1_700_000_000_000_000_000 + i,
                                     end_time_unix_nano=1_700_000_000_100_000_000 + i)
        span.attributes.append(KeyValue(key="input.value", value=AnyValue(string_value="x" * 2000)))
        ids.add(str(uuid.uuid5(SPAN_NAMESPACE, trace_id.hex() + span_id.hex())))
    return request.SerializeToString(), ids


def _journal_backlog(client: httpx.Client) -> float:
    text = client.get("/metrics", headers={"Authorization": "Bearer metrics"}).text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("tracehive_otlp_journal_backlog_bytes"))


def test_journal_mode_keeps_acked_spans_through_a_full_store_and_indexes_them_after_a_delete(
        data_dir: Path) -> None:
    """Journal mode on a full store: OTLP exports are still acked (the journal has room), the
    applier process is refused with STORAGE_FULL and retries, nothing is dropped, and once a delete
    frees pages the journaled spans are indexed, with no restart of the server or of the applier."""
    env = {"TRACEHIVE_MAX_DB_BYTES": str(MAX_DB_BYTES), "TRACEHIVE_OTLP_JOURNAL": "1",
           "TRACEHIVE_METRICS_TOKEN": "metrics"}
    server = TracehiveServer(data_dir, env=env)
    with server:
        key = server.bootstrap_key
        assert key is not None
        pid = server.pid
        keep, scratch = str(uuid.uuid4()), str(uuid.uuid4())
        with server.client(key) as client:
            _fill_until_full(client, [keep, scratch])
            applier = applier_pids(pid)
            assert len(applier) == 1, applier
            body, span_ids = _otlp_spans(50)
            r = client.post("/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
            assert r.status_code == 200, r.text  # durable in the journal: acked although the store is full
            deadline = time.monotonic() + 15  # the applier process's first attempt, refused
            while "StorageFull" not in server.stderr:
                assert time.monotonic() < deadline, f"the applier never met the full store\n{server.stderr[-2000:]}"
                time.sleep(0.05)
            time.sleep(0.5)  # and its retries, refused too
            assert _journal_backlog(client) > 0
            assert client.get(f"/v1/events/{next(iter(span_ids))}").status_code == 404

            assert client.delete(f"/v1/sessions/{scratch}").status_code == 200
            deadline = time.monotonic() + 30  # the applier's retry backoff is capped at 5 s
            while _journal_backlog(client) > 0:
                assert time.monotonic() < deadline, "the journaled spans were not indexed after the delete"
                time.sleep(0.1)
            stored = {row["event_id"] for row in export_all(client, projections=["event_id"])}
            assert span_ids <= stored
            assert _db_bytes(data_dir / "tracehive.db") <= MAX_DB_BYTES
            assert applier_pids(pid) == applier  # the same applier process retried until it could write
        assert server.pid == pid and server.running
