"""Large OTLP exports are decoded and mapped in worker processes (``ingest/decode_pool.py``),
through the real app and store: the events are the same as with a thread, a dead worker costs
nothing acknowledged, and ``otlp_decode_processes=0`` starts no process."""

from __future__ import annotations

import dataclasses
import os
import signal
import uuid
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from tests.helpers import make_key
from tests.otlp_data import protobuf_request, tracer_spans
from tracehive.app import create_app
from tracehive.ingest.decode_pool import DecodePool
from tracehive.ingest.otlp_ingest import INLINE_BODY_BYTES
from tracehive.settings import Settings

PB = {"Content-Type": "application/x-protobuf"}


def large_export(copies: int) -> tuple[bytes, str]:
    """The recorded tracer spans, ``copies`` times over with fresh ids, in one session."""
    spans = []
    session = str(uuid.uuid4())
    for _ in range(copies):
        trace = uuid.uuid4().hex
        for span in tracer_spans():
            attributes = {**span.attributes, "honeyhive.session_id": session,
                          "traceloop.association.properties.session_id": session}
            spans.append(dataclasses.replace(span, trace_id=trace, attributes=attributes))
    body = protobuf_request(spans).SerializeToString()
    assert len(body) > INLINE_BODY_BYTES  # past the inline limit: decoded off the loop
    return body, session


def stored(client: TestClient, key: str, session: str) -> list[dict[str, Any]]:
    reply = client.post("/v1/events/export", headers={"Authorization": f"Bearer {key}"},
                        json={"filters": [{"field": "session_id", "operator": "is", "value": session}],
                              "limit": 7500})
    assert reply.status_code == 200, reply.text
    return sorted(reply.json()["events"], key=lambda e: e["event_id"])


def worker_pids(pool: DecodePool) -> list[int]:
    executor = pool._executor
    return [] if executor is None else list(executor._processes)  # type: ignore[attr-defined]


def test_workers_store_what_a_thread_stores(tmp_path: Path) -> None:
    body, _ = large_export(40)
    results = {}
    for processes in (0, 1):
        settings = Settings(data_dir=tmp_path / f"p{processes}", otlp_decode_processes=processes)
        key = make_key(settings, "p")
        with TestClient(create_app(settings)) as client:
            reply = client.post("/v1/traces", content=body, headers={**PB, "Authorization": f"Bearer {key}"})
            assert reply.status_code == 200, reply.text
            pool: DecodePool = client.app.state.decode_pool  # type: ignore[attr-defined]
            pids = worker_pids(pool)
            if processes:
                assert pids and os.getpid() not in pids  # decoded in another process
            else:
                assert pids == []  # a thread: no process started
            results[processes] = client.post(
                "/v1/events/export", headers={"Authorization": f"Bearer {key}"}, json={"limit": 7500}).json()
    strip = ("org_id", "workspace_id", "project_id", "tenant")
    by_thread, by_worker = ([{k: v for k, v in e.items() if k not in strip} for e in r["events"]]
                            for r in (results[0], results[1]))
    assert len(by_worker) == len(by_thread) > 240
    assert sorted(by_worker, key=lambda e: e["event_id"]) == sorted(by_thread, key=lambda e: e["event_id"])


def test_a_dead_worker_loses_nothing_and_is_replaced(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", otlp_decode_processes=1)
    key = make_key(settings, "p")
    auth = {**PB, "Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings)) as client:
        pool: DecodePool = client.app.state.decode_pool  # type: ignore[attr-defined]
        first, first_session = large_export(10)
        assert client.post("/v1/traces", content=first, headers=auth).status_code == 200
        [pid] = worker_pids(pool)
        os.kill(pid, signal.SIGKILL)
        second, second_session = large_export(10)
        reply = client.post("/v1/traces", content=second, headers=auth)
        assert reply.status_code == 200, reply.text  # decoded in a thread this once
        third, third_session = large_export(10)
        assert client.post("/v1/traces", content=third, headers=auth).status_code == 200
        assert pool.broken == 1 and worker_pids(pool) and pid not in worker_pids(pool)  # a new worker
        counts = [len(stored(client, key, s)) for s in (first_session, second_session, third_session)]
        assert counts[0] == counts[1] == counts[2] > 60
