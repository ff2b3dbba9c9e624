"""Three ``tracehive serve`` nodes on one PostgreSQL database, 8 clients writing into a few
SHARED sessions through all of them (round-robin per request), one node ``kill -9``-ed mid-load
and restarted: every acknowledged event is stored exactly once and readable from every node, each
session holds exactly its events and its roll-ups (start, end, duration) cover them, a batch whose
request got no answer is all there or not at all, and a 200 from one node is visible on the others
at once.

The nodes race on the same session rows: every batch widens the time span of the sessions its
events name (``/v1/events/batch`` batches name two sessions each, in random order, so two batches
may lock the same two session rows in opposite orders), and half the sessions are made up by
their events and then started explicitly (``POST /v1/sessions``) by several clients mid-load,
whose metadata must all be merged. Session rows are locked in id order, so PostgreSQL reports no
deadlock for the whole run (each would stall the load for ``deadlock_timeout``, 1 s).

Clients retry a batch on another node after a connection error or a 503 (same body, same event
ids). After an error that may have come after the request was sent (no answer), half the clients
retry (the retry must not duplicate anything: writes are upserts) and half give the batch up (it
must then be stored whole or not at all)."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg

from tests import pg
from tests.faults.common import check_retryable
from tests.process.server import TracehiveServer, free_port, run_cli

NODES = 3
CLIENTS = 8
SESSIONS = 6
EXPLICIT_FIRST = 3  # sessions 0..2 are started before the load; 3..5 are made up by their events
EVENTS_PER_BATCH = 12
# Bounds on the load: each client sends at most this many batches a second, and this many in all
# (the conductor stops the load long before: about 15 s of it here).
BATCHES_PER_SECOND = 8
MAX_BATCHES_PER_CLIENT = 250
VICTIM = 1  # the node that is killed and restarted

BASE_TIME = 1_760_000_000_000
TIME_RANGE = 600_000
MID_TIME = BASE_TIME + TIME_RANGE // 2  # the explicit sessions' own start and end


@dataclass
class Batch:
    number: str  # "client.seq"
    client: int
    path: str
    body: dict[str, Any]
    event_ids: list[str]
    sessions: set[str]
    acked_by: int | None = None  # node index that answered 200
    acked_after_restart: bool = False
    answerless: int = 0  # attempts that got no answer after (maybe) being sent
    abandoned: bool = False


@dataclass
class Sent:
    """What the test knows of one event it sent."""

    session_id: str
    batch: Batch
    event_name: str
    parent_id: str
    start_time: int
    end_time: int


@dataclass
class Shared:
    """State the client threads and the conductor share (lists and counters under one lock)."""

    urls: list[str]
    key: str
    session_ids: list[str]
    stop: threading.Event = field(default_factory=threading.Event)
    hard_deadline: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)
    inflight: list[int] = field(default_factory=lambda: [0] * NODES)
    acks: list[int] = field(default_factory=lambda: [0] * NODES)  # batches acknowledged per node
    restarted: threading.Event = field(default_factory=threading.Event)
    events: dict[str, Sent] = field(default_factory=dict)
    batches: list[Batch] = field(default_factory=list)
    session_starts: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))  # sid -> clients
    connect_errors: int = 0
    answerless: int = 0
    refusals: Counter[str] = field(default_factory=Counter)  # retryable 503 error codes
    bad: list[str] = field(default_factory=list)  # anything a client must not see
    cross_reads: int = 0


class Client:
    """One sender: round-robin over the nodes, one request at a time."""

    def __init__(self, number: int, shared: Shared) -> None:
        self.number = number
        self.shared = shared
        self.rng = random.Random(number * 7919 + 17)
        self.next_node = number % NODES
        self.retries_answerless = number % 2 == 0
        self.http = [
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {shared.key}"}, timeout=15)
            for url in shared.urls
        ]

    def close(self) -> None:
        for c in self.http:
            c.close()

    def pick(self) -> int:
        node = self.next_node
        self.next_node = (node + 1) % NODES
        return node

    # Bodies ------------------------------------------------------------------------------------

    def make_batch(self, seq: int) -> Batch:
        sids = self.shared.session_ids
        number = f"{self.number}.{seq}"
        via_session_path = seq % 2 == 0
        chosen = [self.rng.choice(sids)] if via_session_path else self.rng.sample(sids, 2)
        events = []
        sent: dict[str, Sent] = {}
        last_in_session: dict[str, str] = {}
        batch = Batch(number, self.number, "", {}, [], set(chosen))
        for i in range(EVENTS_PER_BATCH):
            sid = chosen[i % len(chosen)]
            event_id = str(uuid.uuid4())
            start = BASE_TIME + self.rng.randrange(TIME_RANGE)
            end = start + self.rng.randrange(5_000)
            # Every third event is nested under the previous one of its session in this batch.
            parent = last_in_session[sid] if i % 3 == 2 and sid in last_in_session else sid
            last_in_session[sid] = event_id
            name = f"n{number}.{i}"
            event: dict[str, Any] = {
                "event_id": event_id, "event_type": "tool", "event_name": name, "parent_id": parent,
                "inputs": {"tag": {"c": self.number, "b": seq, "i": i}},
                "metadata": {"client": self.number}, "start_time": start, "end_time": end,
            }  # fmt: skip
            if not via_session_path:
                event["session_id"] = sid
            events.append(event)
            sent[event_id] = Sent(sid, batch, name, parent, start, end)
        batch.path = f"/v1/sessions/{chosen[0]}/events/batch" if via_session_path else "/v1/events/batch"
        batch.body = {"events": events}
        batch.event_ids = list(sent)
        with self.shared.lock:
            self.shared.events.update(sent)
            self.shared.batches.append(batch)
        return batch

    # Requests ----------------------------------------------------------------------------------

    def attempt(self, path: str, body: dict[str, Any]) -> tuple[int, httpx.Response | None, str]:
        """One request to the next node: (node, response or None, "ok" | "refused" (never sent) |
        "answerless" (maybe sent, no answer))."""
        node = self.pick()
        shared = self.shared
        with shared.lock:
            shared.inflight[node] += 1
        try:
            r = self.http[node].post(path, json=body)
        except httpx.ConnectError:
            with shared.lock:
                shared.connect_errors += 1
            return node, None, "refused"
        except httpx.TransportError:
            with shared.lock:
                shared.answerless += 1
            return node, None, "answerless"
        finally:
            with shared.lock:
                shared.inflight[node] -= 1
        return node, r, "ok"

    def refusal_is_retryable(self, r: httpx.Response) -> bool:
        try:
            code = check_retryable(r)
        except (AssertionError, ValueError):
            with self.shared.lock:
                self.shared.bad.append(
                    f"client {self.number}: {r.request.url.path} -> {r.status_code} {r.text[:300]}"
                )
            return False
        with self.shared.lock:
            self.shared.refusals[code] += 1
        return True

    def send(self, batch: Batch) -> None:
        """Until acknowledged, given up, or past the hard deadline."""
        shared = self.shared
        while time.monotonic() < shared.hard_deadline:
            node, r, outcome = self.attempt(batch.path, batch.body)
            if outcome == "answerless":
                batch.answerless += 1
                if not self.retries_answerless:
                    batch.abandoned = True
                    return
            elif r is not None:
                if r.status_code == 200:
                    self.check_reply(batch, r)
                    batch.acked_by = node
                    batch.acked_after_restart = shared.restarted.is_set()
                    with shared.lock:
                        shared.acks[node] += 1
                    return
                if not self.refusal_is_retryable(r):
                    batch.abandoned = True
                    return
            time.sleep(self.rng.uniform(0.01, 0.05))
        batch.abandoned = True

    def check_reply(self, batch: Batch, r: httpx.Response) -> None:
        reply = r.json()
        ok = reply.get("success") is True and reply.get("event_ids") == batch.event_ids
        if len(batch.sessions) == 1:
            ok = ok and reply.get("session_id") == next(iter(batch.sessions))
        if not ok:
            with self.shared.lock:
                self.shared.bad.append(f"client {self.number}: reply {r.text[:300]}")

    def start_session(self, sid: str) -> None:
        """Start (or merge into) a shared session, retried until acknowledged."""
        body = {"session_id": sid, "session_name": f"shared-{self.shared.session_ids.index(sid)}",
                "start_time": MID_TIME, "end_time": MID_TIME, "metadata": {f"started_by_{self.number}": True}}
        while time.monotonic() < self.shared.hard_deadline:
            _, r, outcome = self.attempt("/v1/sessions", body)
            if r is not None:
                if r.status_code == 200:
                    with self.shared.lock:
                        self.shared.session_starts[sid].add(self.number)
                    return
                if not self.refusal_is_retryable(r):
                    return
            time.sleep(0.02)

    def read_elsewhere(self, batch: Batch) -> None:
        """A 200 means committed: another node serves the batch's last event at once."""
        assert batch.acked_by is not None
        for step in range(1, NODES):
            node = (batch.acked_by + step) % NODES
            try:
                r = self.http[node].get(f"/v1/events/{batch.event_ids[-1]}")
            except httpx.TransportError:
                continue  # that node is down; try the other
            if r.status_code == 503:
                continue
            with self.shared.lock:
                self.shared.cross_reads += 1
                if r.status_code != 200 or r.json()["event"]["event_id"] != batch.event_ids[-1]:
                    self.shared.bad.append(
                        f"event {batch.event_ids[-1]} acked by node {batch.acked_by} but node {node} "
                        f"answered {r.status_code} {r.text[:200]}"
                    )
            return

    def run(self) -> None:
        shared = self.shared
        made_up = shared.session_ids[EXPLICIT_FIRST:]
        try:
            for seq in range(MAX_BATCHES_PER_CLIENT):
                if shared.stop.is_set():
                    break
                paced = time.monotonic() + 1 / BATCHES_PER_SECOND
                if seq == 4 + self.number:
                    # Mid-load, several clients start the made-up sessions, racing their events.
                    self.start_session(made_up[self.number % len(made_up)])
                batch = self.make_batch(seq)
                self.send(batch)
                if batch.acked_by is not None and seq % 4 == 1:
                    self.read_elsewhere(batch)
                shared.stop.wait(max(0.0, paced - time.monotonic()))
        except Exception as exc:  # noqa: BLE001 - reported by the test
            with shared.lock:
                shared.bad.append(f"client {self.number} crashed: {exc!r}")
        finally:
            self.close()


# The conductor ---------------------------------------------------------------------------------


def _wait(cond: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def _start_all(nodes: list[TracehiveServer]) -> None:
    errors: list[BaseException] = []

    def start(node: TracehiveServer) -> None:
        try:
            node.start()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _run_load(nodes: list[TracehiveServer], shared: Shared) -> dict[str, Any]:
    """Load through all nodes; kill -9 the victim with requests in flight to it; restart it; let
    it take load again; stop. Returns what happened when."""
    victim = nodes[VICTIM]
    began = time.monotonic()
    shared.hard_deadline = began + 40
    clients = [Client(n, shared) for n in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, daemon=True, name=f"client-{c.number}") for c in clients]
    for t in threads:
        t.start()
    timeline: dict[str, Any] = {}
    try:
        # Phase 1: every node takes load; then the victim dies with requests in flight to it.
        _wait(lambda: min(shared.acks) >= 8 and time.monotonic() - began >= 3, 15,
              f"too few acks: {shared.acks}")
        end_of_wait = time.monotonic() + 3
        while time.monotonic() < end_of_wait and shared.inflight[VICTIM] < 2:
            time.sleep(0.001)
        timeline["inflight_to_victim_at_kill"] = shared.inflight[VICTIM]
        victim.kill9()
        assert victim.proc is not None and victim.proc.returncode == -9
        timeline["killed_at"] = round(time.monotonic() - began, 2)
        time.sleep(0.3)  # a 200 read just before the kill may still be being counted
        acks_at_kill = list(shared.acks)

        # Phase 2: the others carry the load while it is down.
        time.sleep(2.5)
        acks_while_down = [a - b for a, b in zip(shared.acks, acks_at_kill, strict=True)]
        timeline["acks_while_down"] = acks_while_down
        assert acks_while_down[VICTIM] == 0, acks_while_down
        assert all(acks_while_down[n] > 0 for n in range(NODES) if n != VICTIM), acks_while_down

        # Phase 3: the victim is back (same data dir, same store, same port) and takes load again.
        victim.start()
        shared.restarted.set()
        restarted = time.monotonic()
        timeline["restarted_at"] = round(restarted - began, 2)
        acks_at_restart = shared.acks[VICTIM]
        _wait(lambda: shared.acks[VICTIM] - acks_at_restart >= 15 and time.monotonic() - restarted >= 2.5, 15,
              f"the restarted node took no load: {shared.acks}")
    finally:
        shared.stop.set()
        for t in threads:
            t.join(45)
    assert not any(t.is_alive() for t in threads), "a client is stuck"
    timeline["load_seconds"] = round(time.monotonic() - began, 2)
    return timeline


# Checks ----------------------------------------------------------------------------------------


def _db_rows(url: str, project_id: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT event_id, session_id, parent_id, event_type, event_name, start_time, end_time, duration, "
            "inputs::text, metadata::text FROM events WHERE project_id = %s",
            (project_id,),
        ).fetchall()


def _tree_events(node: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node under the root, with the id of the node it hangs from."""
    out = []
    stack = [(node, None)]
    while stack:
        current, parent = stack.pop()
        if parent is not None:
            out.append({**current, "_under": parent})
        for child in current.get("children", []):
            stack.append((child, current["event_id"]))
    return out


def test_three_nodes_one_killed_mid_load_store_every_acked_event_once(tmp_path: Path) -> None:
    with pg.fresh_database() as url:  # skips (or fails in CI) without PostgreSQL
        created = run_cli("keys", "create", "--project", "nodes", "--store", url, cwd=tmp_path)
        key = created.stdout.strip().splitlines()[-1]
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT project_id FROM projects WHERE name = 'nodes'").fetchone()
            assert row is not None
            project_id = str(row[0])

        nodes = [
            TracehiveServer(tmp_path / f"node{n}", port=free_port(), extra_args=["--store", url])
            for n in range(NODES)
        ]
        session_ids = [str(uuid.uuid4()) for _ in range(SESSIONS)]
        shared = Shared([n.url for n in nodes], key, session_ids)
        try:
            _start_all(nodes)
            assert all(n.bootstrap_key is None for n in nodes), "a node bootstrapped a second project"
            for i, sid in enumerate(session_ids[:EXPLICIT_FIRST]):
                with nodes[i % NODES].client(key) as c:
                    r = c.post("/v1/sessions", json={"session_id": sid, "session_name": f"shared-{i}",
                                                     "start_time": MID_TIME, "end_time": MID_TIME})
                    assert r.status_code == 200, r.text
            timeline = _run_load(nodes, shared)
            assert not shared.bad, shared.bad[:10]
            checked = _check(url, project_id, key, nodes, shared)
        finally:
            for n in nodes:
                n.stop()
        # Two batches naming the same sessions in opposite orders lock their session rows in one
        # order (by id), so this load never deadlocks (read once the nodes' backends have gone).
        with psycopg.connect(url) as conn:
            deadlocks = conn.execute(
                "SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()"
            ).fetchone()
        assert deadlocks is not None and deadlocks[0] == 0, f"{deadlocks[0]} deadlocks in PostgreSQL"
        acked = [b for b in shared.batches if b.acked_by is not None]
        print(
            f"\n{timeline}; {len(shared.batches)} batches ({len(acked)} acked, "
            f"{sum(b.abandoned for b in shared.batches)} given up), acks per node {shared.acks}, "
            f"connect errors {shared.connect_errors}, answerless {shared.answerless}, "
            f"503s {dict(shared.refusals)}, cross-node reads {shared.cross_reads}; {checked}"
        )


def _check(
    url: str, project_id: str, key: str, nodes: list[TracehiveServer], shared: Shared
) -> dict[str, int]:
    sent = shared.events
    acked_batches = [b for b in shared.batches if b.acked_by is not None]
    unacked_batches = [b for b in shared.batches if b.acked_by is None]
    acked = {eid for b in acked_batches for eid in b.event_ids}
    assert not [b for b in unacked_batches if not b.abandoned], "a batch was neither acked nor given up"
    # The load did what it is meant to: the kill cut requests off, the victim answered before
    # its death and after its restart, and every made-up session was started mid-load.
    assert shared.connect_errors > 0 or shared.answerless > 0, "the kill cut off no request"
    assert any(b.acked_by == VICTIM and not b.acked_after_restart for b in acked_batches)
    assert any(b.acked_by == VICTIM and b.acked_after_restart for b in acked_batches)
    assert set(shared.session_starts) == set(shared.session_ids[EXPLICIT_FIRST:]), shared.session_starts

    # 1. The database, read directly: each event once (by id and by its tag), nothing unsent.
    rows = _db_rows(url, project_id)
    with psycopg.connect(url) as conn:
        everywhere = conn.execute("SELECT count(*) FROM events").fetchone()
        per_id = conn.execute(
            "SELECT event_id, count(*) FROM events WHERE project_id = %s "
            "GROUP BY event_id HAVING count(*) > 1",
            (project_id,),
        ).fetchall()
    assert everywhere is not None and everywhere[0] == len(rows), "events stored outside the project"
    assert not per_id, f"event ids stored more than once: {per_id[:5]}"
    sessions = {r[0]: r for r in rows if r[3] == "session"}
    events = {r[0]: r for r in rows if r[3] != "session"}
    assert sorted(sessions) == sorted(shared.session_ids)
    assert len(events) == len(rows) - len(sessions)
    tags = Counter(r[8] for r in events.values())
    assert max(tags.values()) == 1, "one sent event is stored under two ids"
    assert not set(events) - set(sent), "stored events that were never sent"
    missing = acked - set(events)
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    extra = set(events) - acked
    assert all(sent[eid].batch.answerless > 0 for eid in extra), "stored events of a batch never sent"
    given_up_stored = 0
    for b in unacked_batches:
        stored = sum(eid in events for eid in b.event_ids)
        assert stored in (0, len(b.event_ids)), f"batch {b.number} half stored ({stored}/{len(b.event_ids)})"
        given_up_stored += stored > 0
    for eid, row in events.items():
        s = sent[eid]
        assert (row[1], row[2], row[4]) == (s.session_id, s.parent_id, s.event_name), (row, s)
        assert (row[5], row[6], row[7]) == (s.start_time, s.end_time, s.end_time - s.start_time), (row, s)

    # 2. Per session: exactly its events; roll-ups cover exactly their times (and the explicit
    # start's own MID_TIME).
    by_session: dict[str, set[str]] = defaultdict(set)
    for eid in events:
        by_session[sent[eid].session_id].add(eid)
    expected_span: dict[str, tuple[float, float]] = {}
    for sid in shared.session_ids:
        mine = by_session[sid]
        acked_here = {eid for eid in acked if sent[eid].session_id == sid}
        assert acked_here <= mine and all(sent[eid].batch.answerless for eid in mine - acked_here)
        start = min([MID_TIME] + [sent[eid].start_time for eid in mine])
        end = max([MID_TIME] + [sent[eid].end_time for eid in mine])
        expected_span[sid] = (start, end)
        row = sessions[sid]
        assert (row[5], row[6], row[7]) == (start, end, end - start), (sid, row[5:8], (start, end))
        assert row[4] == f"shared-{shared.session_ids.index(sid)}", row[4]
        # Starts of one session from several nodes at once merge their metadata: none is lost.
        started_by = {k for k in orjson.loads(row[9]) if k.startswith("started_by_")}
        acked_starts = {f"started_by_{c}" for c in shared.session_starts.get(sid, ())}
        assert started_by >= acked_starts, (sid, started_by, acked_starts)

    # 3. Every node serves every session's tree, the same, matching the database.
    for n, node in enumerate(nodes):
        with node.client(key, timeout=30) as c:
            for sid in shared.session_ids:
                r = c.get(f"/v1/sessions/{sid}")
                assert r.status_code == 200, (n, r.status_code, r.text[:300])
                tree = r.json()
                start, end = expected_span[sid]
                times = (tree["start_time"], tree["end_time"], tree["duration"])
                assert times == (start, end, end - start), (n, sid, times, (start, end))
                assert tree["metadata"]["num_events"] == len(by_session[sid])
                members = _tree_events(tree)
                ids = Counter(m["event_id"] for m in members)
                assert set(ids) == by_session[sid], f"node {n}: session {sid}'s tree"
                assert max(ids.values()) == 1, f"node {n}: session {sid}'s tree has an event twice"
                for m in members:
                    assert not m.get("orphan"), m
                    assert m["_under"] == sent[m["event_id"]].parent_id, m
                    assert m["session_id"] == sid

    # 4. Any node reads what any node wrote (before the kill, after the restart), event by event.
    rng = random.Random(5)
    writers: dict[tuple[int, bool], list[str]] = defaultdict(list)
    for b in acked_batches:
        assert b.acked_by is not None
        writers[(b.acked_by, b.acked_after_restart)].extend(b.event_ids)
    for n, node in enumerate(nodes):
        with node.client(key, timeout=30) as c:
            for (writer, after), ids_written in sorted(writers.items()):
                for eid in rng.sample(ids_written, min(12, len(ids_written))):
                    r = c.get(f"/v1/events/{eid}")
                    assert r.status_code == 200, (n, writer, after, r.text[:300])
                    event = r.json()["event"]
                    s = sent[eid]
                    got = (event["event_id"], event["session_id"], event["event_name"], event["start_time"],
                           event["end_time"])
                    assert got == (eid, s.session_id, s.event_name, s.start_time, s.end_time), (n, got)
            for sid in shared.session_ids:
                r = c.get(f"/v1/events/{sid}")
                assert r.status_code == 200 and r.json()["event"]["event_type"] == "session", r.text[:300]
    return {
        "events_stored": len(events),
        "given_up_batches_stored": given_up_stored,
        "given_up_batches_absent": len(unacked_batches) - given_up_stored,
        "acked_after_an_unanswered_try": sum(1 for b in acked_batches if b.answerless),
    }

