"""Large REST session batches are decoded in the decode pool's worker processes
(``api/batch_decode.py``), through the real app and store: the events stored are the same as when
the event loop decodes them, and a bad body gets the same 4xx, byte for byte."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import orjson
from starlette.testclient import TestClient

from tests.helpers import make_key
from tracehive.app import create_app
from tracehive.ingest.decode_pool import DecodePool
from tracehive.ingest.otlp_ingest import INLINE_BODY_BYTES
from tracehive.settings import Settings


def worker_pids(pool: DecodePool) -> list[int]:
    executor = pool._executor
    return [] if executor is None else list(executor._processes)  # type: ignore[attr-defined]


def large_batch(session: str) -> bytes:
    events = [{"event_id": str(uuid.UUID(int=i + 1, version=4)), "event_type": "model", "event_name": f"call {i}",
               "source": "test", "inputs": {"chat_history": [{"role": "user", "content": "x" * 300}]},
               "outputs": {"content": f"answer {i}"}, "config": {"model": "gpt-4o"},
               "metadata": {"cost": i / 1000, "n": i}, "start_time": 1_760_000_000_000 + i,
               "end_time": 1_760_000_000_100 + i, "parent_id": session}
              for i in range(100)]
    body = orjson.dumps({"events": events})
    assert len(body) > INLINE_BODY_BYTES  # past the inline limit: decoded in a worker
    return body


def post(client: TestClient, key: str, session: str, body: bytes) -> Any:
    return client.post(f"/v1/sessions/{session}/events/batch", content=body,
                       headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})


def test_workers_store_what_the_loop_stores(tmp_path: Path) -> None:
    session = str(uuid.UUID(int=0xABC, version=4))
    body = large_batch(session)
    results = {}
    for processes in (0, 1):
        settings = Settings(data_dir=tmp_path / f"p{processes}", otlp_decode_processes=processes)
        key = make_key(settings, "p")
        with TestClient(create_app(settings)) as client:
            reply = post(client, key, session, body)
            assert reply.status_code == 200, reply.text
            pool = client.app.state.decode_pool  # type: ignore[attr-defined]
            assert bool(worker_pids(pool)) == (processes == 1)  # a worker started only when asked
            tree = client.get(f"/v1/sessions/{session}", headers={"Authorization": f"Bearer {key}"})
            assert tree.status_code == 200
            events = client.post("/v1/events/export", headers={"Authorization": f"Bearer {key}"},
                                 json={"limit": 500}).json()["events"]
        results[processes] = sorted(
            ({k: v for k, v in e.items() if k not in ("project_id", "org_id", "workspace_id", "tenant")}
             for e in events), key=lambda e: e["event_id"])
        assert reply.json()["event_ids"] == [str(uuid.UUID(int=i + 1, version=4)) for i in range(100)]
    assert len(results[1]) == 101 and results[0] == results[1]


def test_a_bad_large_body_gets_the_loops_answer(tmp_path: Path) -> None:
    session = str(uuid.UUID(int=0xDEF, version=4))
    good = orjson.loads(large_batch(session))
    bad_bodies = {
        "invalid field": orjson.dumps({"events": [*good["events"][:99], {**good["events"][99], "event_type": ["model"]}]}),
        "not json": large_batch(session)[:-1],
        "too many": orjson.dumps({"events": good["events"] * 20}),
    }
    answers: dict[int, dict[str, tuple[int, Any]]] = {}
    for processes in (0, 1):
        settings = Settings(data_dir=tmp_path / f"p{processes}", otlp_decode_processes=processes,
                            max_batch_events=1000)
        key = make_key(settings, "p")
        with TestClient(create_app(settings)) as client:
            answers[processes] = {}
            for name, body in bad_bodies.items():
                reply = post(client, key, session, body)
                assert 400 <= reply.status_code < 500, (name, reply.status_code, reply.text)
                answers[processes][name] = (reply.status_code, reply.json())
            pool = client.app.state.decode_pool  # type: ignore[attr-defined]
            assert pool.broken == 0  # a bad body never costs the pool a worker
            assert post(client, key, session, large_batch(session)).status_code == 200
    assert answers[0] == answers[1]


def test_the_events_batch_route_decodes_in_a_worker_too(tmp_path: Path) -> None:
    """``POST /v1/events/batch`` with ``single_session``: the session made in the worker holds
    every event; a bad body gets the loop's answer."""
    events = orjson.loads(large_batch(str(uuid.uuid4())))["events"]
    for e in events:
        del e["parent_id"]
    body = orjson.dumps({"events": events, "single_session": True,
                         "session_properties": {"session_name": "big", "source": "test"}})
    bad = orjson.dumps({"events": [*events[:-1], {**events[-1], "inputs": "not an object"}]})
    answers = {}
    for processes in (0, 1):
        settings = Settings(data_dir=tmp_path / f"p{processes}", otlp_decode_processes=processes)
        key = make_key(settings, "p")
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
        with TestClient(create_app(settings)) as client:
            reply = client.post("/v1/events/batch", content=body, headers=headers)
            assert reply.status_code == 200, reply.text
            session = reply.json()["session_id"]
            tree = client.get(f"/v1/sessions/{session}", headers=headers)
            assert tree.status_code == 200 and tree.json()["event_name"] == "big"
            assert len(tree.json()["children"]) == 100
            refused = client.post("/v1/events/batch", content=bad, headers=headers)
            assert 400 <= refused.status_code < 500
            answers[processes] = (refused.status_code, refused.json())
            assert bool(worker_pids(client.app.state.decode_pool)) == (processes == 1)  # type: ignore[attr-defined]
    assert answers[0] == answers[1]
