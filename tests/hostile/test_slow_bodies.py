"""Slow and greedy uploads against a real ``tracehive serve``: bodies that trickle are cut off
with 408 and hold nothing meanwhile; one key cannot take the whole in-flight budget from the
others; a client that hangs up mid-body is a client abort, not a server error. Bounded in count
and time."""

from __future__ import annotations

import http.client
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.faults.common import check_retryable, make_event
from tests.faults.test_inflight_bytes import _body, _body_bytes_in_flight, _wait_until_reserved, held_request
from tests.process.server import TracehiveServer, run_cli, serving

KIB = 1024
BUDGET = 1024 * KIB
GRACE = 1.0
METRICS_TOKEN = "inflight-metrics"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TracehiveServer]:
    env = {"TRACEHIVE_HEADER_TIMEOUT_SECONDS": str(GRACE), "TRACEHIVE_BODY_MIN_BYTES_PER_SECOND": "2048",
           "TRACEHIVE_MAX_INFLIGHT_BYTES": str(BUDGET), "TRACEHIVE_METRICS_TOKEN": METRICS_TOKEN}
    yield from serving(tmp_path / "data", env=env)


def second_key(server: TracehiveServer, project: str) -> str:
    out = run_cli("keys", "create", "--project", project, "--data-dir", str(server.data_dir))
    return out.stdout.strip().splitlines()[-1]


def trickle(server: TracehiveServer, key: str, declared: int) -> socket.socket:
    """A batch request that declares ``declared`` bytes and sends one."""
    sock = socket.create_connection((server.host, server.port), timeout=30)
    sock.sendall((f"POST /v1/events/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
                  f"Content-Type: application/json\r\nContent-Length: {declared}\r\n\r\n{{").encode())
    return sock


def read_answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    return response.status, orjson.loads(response.read())


def test_trickled_bodies_get_408_and_do_not_block_another_project(server: TracehiveServer) -> None:
    key_a = server.bootstrap_key
    assert key_a is not None
    key_b = second_key(server, "project-b")
    # The reproduction: four uploads declaring ~20 MB each (the largest body allowed) that send one byte.
    socks = [trickle(server, key_a, 20 * 1024 * 1024 - 1) for _ in range(4)]
    try:
        with server.client(key_b) as b:
            began = time.monotonic()
            while time.monotonic() - began < GRACE + 1.5:  # through the grace period and past it
                ok = b.post("/v1/events/batch", json={"events": [make_event(str(uuid.uuid4()), {"b": 1})]})
                assert ok.status_code == 200, ok.text
                assert _body_bytes_in_flight(b) < 64 * KIB  # declared lengths reserve nothing
                time.sleep(0.1)
        for sock in socks:  # each is cut off with 408 once below the minimum rate
            status, body = read_answer(sock)
            assert status == 408 and body["errorCode"] == "REQUEST_TIMEOUT", body
            assert "slower than 2048 bytes per second" in str(body["message"])
    finally:
        for sock in socks:
            sock.close()


def test_one_key_cannot_take_the_budget_from_another(server: TracehiveServer) -> None:
    key_a = server.bootstrap_key
    assert key_a is not None
    key_b = second_key(server, "project-b")
    session = str(uuid.uuid4())
    with server.client(key_a) as a, server.client(key_b) as b:
        b_held, _ = _body(session, 100 * KIB)
        a_held, _ = _body(session, 600 * KIB)
        with held_request(server, key_a, a_held) as finish_a:
            _wait_until_reserved(a, len(a_held) * 9 // 10)  # alone: admitted whole
            with held_request(server, key_b, b_held) as finish_b:
                _wait_until_reserved(a, len(b_held) * 9 // 10 + len(a_held) * 9 // 10)
                # A holds ~540 KiB, past half the budget while B holds bytes: A's new requests wait.
                more_a, _ = _body(session, 200 * KIB)
                assert check_retryable(a.post("/v1/events/batch", content=more_a), frozenset({"OVERLOADED"}))
                # B, within its share and the budget, goes through.
                more_b, _ = _body(session, 300 * KIB)
                assert b.post("/v1/events/batch", content=more_b).status_code == 200
                assert finish_b()[0] == 200
            assert finish_a()[0] == 200


def test_a_client_that_hangs_up_mid_body_is_no_server_error(server: TracehiveServer) -> None:
    key = server.bootstrap_key
    assert key is not None
    for _ in range(3):
        sock = trickle(server, key, 10_000)
        sock.sendall(b'"events": [')
        time.sleep(0.2)
        sock.close()
    time.sleep(0.5)
    with server.client(key) as client:
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert 'status="500"' not in metrics
    assert 'reason="client_abort"' in metrics
    assert "Traceback" not in server.stderr and "unhandled error" not in server.stderr
