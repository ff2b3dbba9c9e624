"""``kill -9`` while 8 clients send batches, twice, then the clients retry what was not
acknowledged: every event whose request got a 200 is stored, exactly once, and so is every retried
one. Unlike tests/process/test_durability.py this goes through ``POST /v1/events/batch`` (half the
clients with ``single_session``, whose retries must not make a second session), kills the server a
second time while the retries are in flight, checks the database file's integrity, and reads
everything back through the export API."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.faults.common import check_retryable, export_all, make_event
from tests.process.server import TracehiveServer

CLIENTS = 8
EVENTS_PER_BATCH = 25


@dataclass
class Sender:
    """One client: its session, and every batch it sent, acknowledged or not."""

    number: int
    session_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)  # event_id -> event
    acked: set[str] = field(default_factory=set)
    unacked: list[dict[str, Any]] = field(default_factory=list)  # request bodies, to retry
    bad: list[tuple[int, str]] = field(default_factory=list)
    seq: int = 0

    @property
    def single_session(self) -> bool:
        return self.number % 2 == 0

    def next_body(self) -> dict[str, Any]:
        self.seq += 1
        events = [
            make_event(self.session_id, {"c": self.number, "b": self.seq, "i": i}) for i in range(EVENTS_PER_BATCH)
        ]
        for event in events:
            self.sent[event["event_id"]] = event
        if self.single_session:
            # The client names the session, so a retried request lands in the same one.
            for event in events:
                del event["session_id"]
            return {"events": events, "single_session": True,
                    "session_properties": {"session_id": self.session_id, "session_name": f"crash-{self.number}"}}
        return {"events": events}

    def post(self, client: httpx.Client, body: dict[str, Any]) -> bool:
        """Send one body; True if acknowledged. A connection error or a retryable refusal leaves
        it unacknowledged; any other answer is recorded as a failure."""
        try:
            r = client.post("/v1/events/batch", json=body)
        except httpx.TransportError:
            self.unacked.append(body)
            return False
        if r.status_code == 200:
            ids = [e["event_id"] for e in body["events"]]
            reply = r.json()
            if reply.get("event_ids") != ids or reply.get("session_id") != self.session_id:
                self.bad.append((200, r.text[:300]))
            self.acked.update(ids)
            return True
        self.unacked.append(body)
        try:
            check_retryable(r)  # load shedding is fine (a 503 with Retry-After); anything else is a bug
        except (AssertionError, ValueError):
            self.bad.append((r.status_code, r.text[:300]))
        return False


def _send(server_url: str, key: str, sender: Sender, stop: threading.Event, retry_first: list[dict[str, Any]]) -> None:
    with httpx.Client(base_url=server_url, headers={"Authorization": f"Bearer {key}"}, timeout=15) as client:
        for body in retry_first:
            if stop.is_set():
                sender.unacked.append(body)
                continue
            sender.post(client, body)
        while not stop.is_set():
            if not sender.post(client, sender.next_body()):
                time.sleep(0.02)


def _traffic_then_kill(server: TracehiveServer, key: str, senders: list[Sender], min_acks: int) -> None:
    """All senders send (each first retrying its unacknowledged bodies) until each has ``min_acks``
    more acknowledged batches and a second has passed, then the server is killed mid-flight."""
    retries = {s.number: s.unacked for s in senders}
    for s in senders:
        s.unacked = []
    before = {s.number: len(s.acked) for s in senders}
    stop = threading.Event()
    threads = [
        threading.Thread(target=_send, args=(server.url, key, s, stop, retries[s.number]), daemon=True)
        for s in senders
    ]
    started = time.monotonic()
    for t in threads:
        t.start()
    needed = min_acks * EVENTS_PER_BATCH
    while time.monotonic() - started < 20:
        enough = all(len(s.acked) - before[s.number] >= needed for s in senders)
        if enough and time.monotonic() - started >= 1.0:
            break
        time.sleep(0.02)
    assert all(t.is_alive() for t in threads)
    server.kill9()
    stop.set()
    for t in threads:
        t.join(30)
    assert not any(t.is_alive() for t in threads)
    assert server.proc is not None and server.proc.returncode == -9
    for s in senders:
        assert not s.bad, s.bad
        assert len(s.acked) - before[s.number] >= needed, f"client {s.number} got too few batches acknowledged"


def _check_store(server: TracehiveServer, key: str, senders: list[Sender], *, all_sent: bool) -> None:
    """Acknowledged events are all there, once, as sent; unacknowledged batches are all or
    nothing; nothing is stored that was not sent; one session per client."""
    db = server.data_dir / "tracehive.db"  # type: ignore[operator]
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    with server.client(key) as client:
        rows = export_all(client)
    sessions = [r for r in rows if r["event_type"] == "session"]
    events = [r for r in rows if r["event_type"] != "session"]
    assert sorted(s["event_id"] for s in sessions) == sorted(s.session_id for s in senders)
    ids = Counter(e["event_id"] for e in events)
    tags = Counter(_tag_key(e["inputs"]["tag"]) for e in events)
    assert max(ids.values()) == 1 and max(tags.values()) == 1, "an event is stored twice"
    sent = {eid: event for s in senders for eid, event in s.sent.items()}
    acked = set().union(*(s.acked for s in senders))
    assert not set(ids) - set(sent), "stored events that were never sent"
    missing = acked - set(ids)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    for s in senders:
        for body in s.unacked:
            stored = sum(e["event_id"] in ids for e in body["events"])
            assert stored in (0, len(body["events"])), f"a batch was half stored ({stored})"
    for e in events:
        original = sent[e["event_id"]]
        owner = next(s for s in senders if e["event_id"] in s.sent)
        assert e["session_id"] == owner.session_id
        assert e["inputs"] == original["inputs"] and e["event_name"] == original["event_name"]
        assert e["metadata"]["padding"] == original["metadata"]["padding"]
    if all_sent:
        assert set(ids) == set(sent)


def _tag_key(tag: dict[str, Any]) -> tuple[Any, ...]:
    """Who sent an event, when: (client, batch, index)."""
    return tuple(sorted(tag.items()))


def test_kill9_twice_then_retries_store_every_event_exactly_once(data_dir: Path) -> None:
    server = TracehiveServer(data_dir)
    senders = [Sender(n) for n in range(CLIENTS)]
    try:
        server.start()
        key = server.bootstrap_key
        assert key is not None

        _traffic_then_kill(server, key, senders, min_acks=3)
        assert any(s.unacked for s in senders), "the kill should have cut off some requests"
        server.start()
        _check_store(server, key, senders, all_sent=False)

        # The clients retry what was not acknowledged (same bodies, same ids) while sending new
        # batches, and the server is killed again in the middle of it.
        _traffic_then_kill(server, key, senders, min_acks=2)
        server.start()
        _check_store(server, key, senders, all_sent=False)

        # Last retries, one at a time until each is acknowledged: now everything sent is stored once.
        with server.client(key, timeout=15) as client:
            for s in senders:
                pending, s.unacked = s.unacked, []
                for body in pending:
                    for _ in range(50):
                        if s.post(client, body):
                            break
                        s.unacked.pop()
                        time.sleep(0.1)
                    else:
                        raise AssertionError(f"a retried batch was never acknowledged: {s.bad[-3:]}")
                assert not s.bad, s.bad
        _check_store(server, key, senders, all_sent=True)
        assert sum(len(s.sent) for s in senders) == sum(len(s.acked) for s in senders)
    finally:
        server.stop()
