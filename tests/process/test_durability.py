"""A 200 means the data is on disk: restarts, kill -9 and concurrent writers lose nothing."""

from __future__ import annotations

import random
import signal
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.process.server import TracehiveServer

THREADS = 8


def tree(client: httpx.Client, sid: str) -> dict[str, Any]:
    r = client.get(f"/v1/sessions/{sid}")
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


def get_event(client: httpx.Client, event_id: str) -> dict[str, Any]:
    r = client.get(f"/v1/events/{event_id}")
    assert r.status_code == 200, r.text
    return r.json()["event"]  # type: ignore[no-any-return]


def overloaded(r: httpx.Response) -> bool:
    """The writer's visible load shedding (503 OVERLOADED + Retry-After): retry, not a failure."""
    if r.status_code != 503:
        return False
    try:
        return bool(r.json().get("errorCode") == "OVERLOADED")
    except ValueError:
        return False


def post_batch(client: httpx.Client, sid: str, events: list[dict[str, Any]], retries: int = 50) -> None:
    """POST a session batch, retrying while the server sheds load."""
    for _ in range(retries):
        r = client.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
        if not overloaded(r):
            assert r.status_code == 200, r.text
            return
        time.sleep(0.2)
    raise AssertionError(f"still overloaded after {retries} tries")


def run_threads(target: Any, args_list: list[tuple[Any, ...]], timeout: float) -> None:
    """Run one thread per args tuple; re-raise the first failure in the calling thread."""
    errors: list[BaseException] = []

    def guarded(*args: Any) -> None:
        try:
            target(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=a, daemon=True) for a in args_list]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), f"threads still running after {timeout} s"
    if errors:
        raise errors[0]


# (a) restart -----------------------------------------------------------------------------------


def test_restart_keeps_everything_acknowledged(data_dir: Path) -> None:
    server = TracehiveServer(data_dir)
    with server:
        key = server.bootstrap_key
        assert key is not None
        with server.client(key) as c:
            sessions = []
            for n in range(3):
                r = c.post(
                    "/v1/sessions",
                    json={
                        "session_name": f"restart-{n}",
                        "source": "durability",
                        "metadata": {"n": n, "nested": {"deep": [1, 2, {"x": "é✓"}]}},
                        "user_properties": {"user": f"u{n}"},
                        "inputs": {"question": f"q{n}"},
                        "start_time": 1_700_000_000_000 + n,
                    },
                )
                assert r.status_code == 200, r.text
                sessions.append(r.json()["session_id"])
            event_ids: list[str] = []
            for n, sid in enumerate(sessions):
                chain, llm, tool = (str(uuid.uuid4()) for _ in range(3))
                events = [
                    {"event_id": chain, "event_type": "chain", "event_name": "pipeline", "inputs": {"n": n},
                     "start_time": 1_700_000_000_100, "end_time": 1_700_000_000_900},
                    {"event_id": llm, "parent_id": chain, "event_type": "model", "event_name": "llm",
                     "inputs": {"messages": [{"role": "user", "content": f"hi {n}"}]},
                     "outputs": {"content": "hello"}, "metadata": {"total_tokens": 10 + n, "cost": 0.5},
                     "start_time": 1_700_000_000_200, "end_time": 1_700_000_000_700},
                    {"event_id": tool, "parent_id": chain, "event_type": "tool", "event_name": "search",
                     "inputs": {"q": "x"}, "error": "boom", "start_time": 1_700_000_000_300, "duration": 50},
                ]
                post_batch(c, sid, events)
                event_ids += [chain, llm, tool]
            # A delete, a single event and an update must survive the restart as well.
            deleted = event_ids.pop()  # the tool event of the last session
            assert c.delete(f"/v1/events/{deleted}").status_code == 200
            single = c.post(
                "/v1/events", json={"session_id": sessions[0], "event_type": "tool", "inputs": {"one": 1}}
            )
            assert single.status_code == 200, single.text
            event_ids.append(single.json()["event_id"])
            update = {"metadata": {"rating": 5}, "feedback": {"ok": True}, "outputs": {"content": "changed"}}
            updated = c.put(f"/v1/events/{event_ids[1]}", json=update)
            assert updated.status_code == 200, updated.text

            before_events = {eid: get_event(c, eid) for eid in event_ids + sessions}
            before_trees = {sid: tree(c, sid) for sid in sessions}
            assert before_events[event_ids[1]]["outputs"] == {"content": "changed"}
            assert before_events[event_ids[1]]["metadata"]["rating"] == 5
            assert sum(t["metadata"]["num_events"] for t in before_trees.values()) == len(event_ids)

    # A clean SIGTERM exit: the shutdown ran (store closed). uvicorn re-raises the signal once done,
    # so the exit status is -SIGTERM rather than 0.
    assert server.proc is not None and server.proc.returncode in (0, -signal.SIGTERM), server.stderr
    assert "Application shutdown complete" in server.stderr

    with server:
        assert server.bootstrap_key is None, server.stdout
        with server.client(key) as c:
            after_events = {eid: get_event(c, eid) for eid in event_ids + sessions}
            after_trees = {sid: tree(c, sid) for sid in sessions}
            assert c.get(f"/v1/events/{deleted}").status_code == 404
    assert after_events == before_events
    assert after_trees == before_trees


# (b) kill -9 -----------------------------------------------------------------------------------


@dataclass
class Sender:
    """One client thread's record: what was acknowledged, and every batch that was not."""

    sid: str
    thread: int
    acked: list[list[str]] = field(default_factory=list)
    unacked: list[list[dict[str, Any]]] = field(default_factory=list)
    bad_statuses: list[tuple[int, str]] = field(default_factory=list)
    transport_errors: list[float] = field(default_factory=list)  # monotonic times
    sent: dict[str, dict[str, Any]] = field(default_factory=dict)

    def batch(self, seq: int) -> list[dict[str, Any]]:
        events = []
        for i in range(20):
            event = {
                "event_id": str(uuid.uuid4()),
                "event_type": "tool",
                "event_name": f"t{self.thread}-b{seq}-e{i}",
                "inputs": {"thread": self.thread, "batch": seq, "i": i},
                "metadata": {"payload": "x" * 200},
            }
            self.sent[event["event_id"]] = event
            events.append(event)
        return events


def _send_until_killed(server: TracehiveServer, key: str, sender: Sender, killed: threading.Event) -> None:
    with server.client(key, timeout=20.0) as c:
        seq = 0
        while not killed.is_set():
            events = sender.batch(seq)
            seq += 1
            try:
                r = c.post(f"/v1/sessions/{sender.sid}/events/batch", json={"events": events})
            except httpx.TransportError:
                sender.unacked.append(events)  # in flight when the server died, or sent after
                sender.transport_errors.append(time.monotonic())
                time.sleep(0.05)
                continue
            if r.status_code == 200:
                sender.acked.append([e["event_id"] for e in events])
            else:
                sender.unacked.append(events)
                if not overloaded(r):  # load shedding is fine; anything else is a bug
                    sender.bad_statuses.append((r.status_code, r.text[:300]))


def _check_session(c: httpx.Client, sender: Sender, require_all: bool) -> set[str]:
    """Every acked event is in the session exactly once, with its content; every unacked batch is
    there entirely or not at all (a batch is one transaction). Returns the ids present."""
    root = tree(c, sender.sid)
    children = root["children"]
    ids = [child["event_id"] for child in children]
    assert len(ids) == len(set(ids)), "an event appears twice in the tree"
    present = set(ids)
    assert root["metadata"]["num_events"] == len(ids)
    acked = {eid for batch in sender.acked for eid in batch}
    missing = acked - present
    assert not missing, f"{len(missing)} acknowledged events lost, e.g. {sorted(missing)[:3]}"
    unacked_ids = {e["event_id"] for batch in sender.unacked for e in batch}
    assert present <= acked | unacked_ids, "events that were never sent"
    for batch in sender.unacked:
        stored = sum(e["event_id"] in present for e in batch)
        assert stored in (0, len(batch)), f"a batch was half stored ({stored}/{len(batch)})"
        if require_all:
            assert stored == len(batch)
    for child in children:
        sent = sender.sent[child["event_id"]]
        assert child["inputs"] == sent["inputs"]
        assert child["event_name"] == sent["event_name"]
        assert child["metadata"]["payload"] == sent["metadata"]["payload"]
        assert child["session_id"] == sender.sid
    return present


def test_kill9_loses_no_acknowledged_event(data_dir: Path) -> None:
    server = TracehiveServer(data_dir)
    with server:
        key = server.bootstrap_key
        assert key is not None
        senders = []
        with server.client(key) as c:
            for t in range(THREADS):
                r = c.post("/v1/sessions", json={"session_name": f"kill9-{t}", "metadata": {"thread": t}})
                assert r.status_code == 200, r.text
                senders.append(Sender(r.json()["session_id"], t))

        killed = threading.Event()
        threads = [
            threading.Thread(target=_send_until_killed, args=(server, key, s, killed), daemon=True)
            for s in senders
        ]
        started = time.monotonic()
        for t in threads:
            t.start()
        # About 2 s of traffic, and at least a few acknowledged batches per thread on a slow machine.
        while time.monotonic() - started < 12:
            if time.monotonic() - started >= 2 and all(len(s.acked) >= 3 for s in senders):
                break
            time.sleep(0.05)
        assert all(t.is_alive() for t in threads)
        kill_at = time.monotonic()
        server.kill9()  # mid-traffic: requests are in flight
        killed.set()
        for t in threads:
            t.join(30)
        assert not any(t.is_alive() for t in threads)

    assert server.proc is not None and server.proc.returncode == -9
    assert any(s.unacked for s in senders), "the kill should have cut off or refused some requests"
    for s in senders:
        assert not s.bad_statuses, s.bad_statuses
        assert all(t >= kill_at for t in s.transport_errors), "requests failed before the kill"
        assert len(s.acked) >= 3, f"thread {s.thread} got only {len(s.acked)} batches acknowledged"

    with server:
        assert server.bootstrap_key is None
        with server.client(key) as c:
            for s in senders:
                root = tree(c, s.sid)
                assert root["event_name"] == f"kill9-{s.thread}"
                assert root["metadata"]["thread"] == s.thread
                _check_session(c, s, require_all=False)
            # Spot-check the single-event read path too.
            sample = random.Random(7).sample(
                [eid for s in senders for batch in s.acked for eid in batch], 50
            )
            for eid in sample:
                assert get_event(c, eid)["event_id"] == eid

            # Re-send what was not acknowledged: idempotent on event_id, so nothing doubles.
            for s in senders:
                for batch in s.unacked:
                    post_batch(c, s.sid, batch)
            total = 0
            for s in senders:
                present = _check_session(c, s, require_all=True)
                assert present == set(s.sent)
                total += len(present)
            assert total == 20 * sum(len(s.acked) + len(s.unacked) for s in senders)


# (c) concurrent writers, one session -----------------------------------------------------------


def test_concurrent_writers_to_one_session_lose_nothing(server: TracehiveServer, key: str) -> None:
    base = 1_750_000_000_000
    with server.client(key) as c:
        session = {"session_name": "contended", "start_time": base, "end_time": base + 1000}
        r = c.post("/v1/sessions", json=session)
        assert r.status_code == 200, r.text
        sid = r.json()["session_id"]

    rng = random.Random(42)
    plans: list[list[list[dict[str, Any]]]] = []
    for t in range(THREADS):
        batches = []
        for b in range(25):
            batch = []
            for i in range(10):
                start = base + rng.randint(-100_000, 100_000)
                batch.append({
                    "event_id": str(uuid.uuid4()), "event_type": "model", "event_name": f"t{t}b{b}e{i}",
                    "inputs": {"t": t, "b": b, "i": i},
                    "start_time": start, "end_time": start + rng.randint(0, 5_000),
                })  # fmt: skip
            batches.append(batch)
        plans.append(batches)
    sent = {e["event_id"]: e for batches in plans for batch in batches for e in batch}
    assert len(sent) == 2000

    def send(batches: list[list[dict[str, Any]]]) -> None:
        with server.client(key) as c:
            for batch in batches:
                post_batch(c, sid, batch)

    run_threads(send, [(p,) for p in plans], timeout=25)

    with server.client(key) as c:
        root = tree(c, sid)
    children = root["children"]
    ids = [child["event_id"] for child in children]
    assert len(ids) == 2000
    assert set(ids) == set(sent)
    assert root["metadata"]["num_events"] == 2000
    assert root["metadata"]["num_model_events"] == 2000
    for child in children:
        expected = sent[child["event_id"]]
        assert (child["start_time"], child["end_time"]) == (expected["start_time"], expected["end_time"])
        assert child["inputs"] == expected["inputs"]
        assert child["parent_id"] == sid and child["children"] == []
    first = min(e["start_time"] for e in sent.values())
    last = max(e["end_time"] for e in sent.values())
    assert first < base and last > base + 1000  # the events reach past the session's own span
    assert root["start_time"] <= first and root["end_time"] >= last
    assert (root["start_time"], root["end_time"]) == (first, last)
    assert root["duration"] == last - first
