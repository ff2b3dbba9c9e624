"""Expensive queries from one key against a real ``tracehive serve``: a key's concurrent heavy
reads are bounded (429), key lookups, health checks and other projects' writes do not queue
behind them, a query whose client hangs up is stopped, and a query past the read time limit is
a 503. Bounded in count and time."""

from __future__ import annotations

import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson
import pytest

from tests.process.server import TracehiveServer, run_cli, serving

EVENTS = 30_000
# The reproduction: a chart with 100 'not contains' filters, which scans every event 100 times.
HEAVY_FILTERS = [{"field": "inputs", "operator": "not contains", "value": f"needle-{i}", "type": "string"}
                 for i in range(100)]
HEAVY_CHART = "/v1/events/chart?bucket=day&filters=" + quote(json.dumps(HEAVY_FILTERS))
METRICS_TOKEN = "heavy-metrics"


def seed(server: TracehiveServer, key: str) -> None:
    now = int(time.time() * 1000)
    with server.client(key, timeout=60) as client:
        for batch in range(EVENTS // 1000):
            events = [{"event_type": "tool", "event_name": f"e{n % 7}", "start_time": now - n * 1000,
                       "inputs": {"text": f"some input text number {n} " * 4}, "metadata": {"n": n}}
                      for n in range(batch * 1000, (batch + 1) * 1000)]
            assert client.post("/v1/events/batch", json={"events": events}).status_code == 200


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracehiveServer]:
    env = {"TRACEHIVE_METRICS_TOKEN": METRICS_TOKEN, "TRACEHIVE_MAX_HEAVY_READS_PER_KEY": "2",
           "TRACEHIVE_SQLITE_READ_TIMEOUT_SECONDS": "60"}
    for started in serving(tmp_path_factory.mktemp("heavy") / "data", env=env):
        assert started.bootstrap_key is not None
        seed(started, started.bootstrap_key)
        yield started


def other_key(server: TracehiveServer) -> str:
    out = run_cli("keys", "create", "--project", f"other-{uuid.uuid4().hex[:6]}", "--data-dir", str(server.data_dir))
    return out.stdout.strip().splitlines()[-1]


def timed(fn: Any) -> tuple[Any, float]:
    began = time.monotonic()
    result = fn()
    return result, time.monotonic() - began


def test_heavy_reads_of_one_key_do_not_stall_anyone_else(server: TracehiveServer) -> None:
    key = server.bootstrap_key
    assert key is not None
    # One heavy chart alone, for scale.
    with server.client(key, timeout=120) as client:
        alone, alone_s = timed(lambda: client.get(HEAVY_CHART))
    assert alone.status_code == 200, alone.text
    statuses: list[int] = []
    lock = threading.Lock()

    def heavy() -> None:
        with server.client(key, timeout=120) as c:
            r = c.get(HEAVY_CHART)
        with lock:
            statuses.append(r.status_code)

    threads = [threading.Thread(target=heavy) for _ in range(6)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    b = other_key(server)
    try:
        with server.client(b, timeout=30) as client:
            for _ in range(5):  # while A's charts run: B's lookups, writes and reads, and health
                who, who_s = timed(lambda: client.get("/v1/whoami"))
                assert who.status_code == 200 and who_s < 1.0, who_s
                wrote, wrote_s = timed(lambda: client.post("/v1/events", json={"event_type": "tool", "inputs": {}}))
                assert wrote.status_code == 200 and wrote_s < 1.0, wrote_s
                health, health_s = timed(lambda: client.get("/healthz"))
                assert health.status_code == 200 and health_s < 1.0, health_s
                time.sleep(0.1)
    finally:
        for t in threads:
            t.join(300)
    # At most two of A's heavy reads ran at once and two waited their turn; the others were told
    # to come back.
    assert sorted(statuses) == [200, 200, 200, 200, 429, 429], (statuses, alone_s)


def test_a_query_whose_client_hangs_up_is_stopped(server: TracehiveServer) -> None:
    key = server.bootstrap_key
    assert key is not None
    with server.client(key, timeout=120) as client:
        _, alone_s = timed(lambda: client.get(HEAVY_CHART))
    for _ in range(4):  # the key's two turns and two places in line: each freed when its client goes away
        sock = socket.create_connection((server.host, server.port))
        sock.sendall(f"GET {HEAVY_CHART} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\r\n".encode())
        time.sleep(0.3)
        sock.close()
    time.sleep(0.5)
    # Both slots are free again long before the abandoned charts would have finished.
    with server.client(key, timeout=120) as client:
        r, took = timed(lambda: client.get("/v1/events/chart?bucket=day"))
        assert r.status_code == 200, r.text
        metrics = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).text
    assert took < alone_s, (took, alone_s)
    aborted = [line for line in server.stderr.splitlines() if '"status":499' in line and "/v1/events/chart" in line]
    assert len(aborted) >= 4, server.stderr[-2000:]
    for line in aborted[-4:]:  # each stopped soon after its client left, not after a whole chart
        assert orjson.loads(line)["duration_ms"] < 300 + alone_s * 1000 / 2, (line, alone_s)
    assert 'reason="client_abort"' in metrics


def test_a_read_past_the_time_limit_is_a_503(tmp_path: Path) -> None:
    env = {"TRACEHIVE_SQLITE_READ_TIMEOUT_SECONDS": "0.3"}
    for server in serving(tmp_path / "data", env=env):
        key = server.bootstrap_key
        assert key is not None
        seed(server, key)
        with server.client(key, timeout=120) as client:
            r, took = timed(lambda: client.get(HEAVY_CHART))
            assert r.status_code == 503, r.text
            body = r.json()
            assert body["errorCode"] == "QUERY_TIMEOUT" and "longer than 0.3 s" in body["message"]
            assert "Retry-After" in r.headers and took < 5
            # The reader is free again: the next (light: the last minute's ~60 events) chart answers
            # at once. (A chart over all 30,000 events took more than 0.3 s once in a CI run.)
            light = json.dumps({"relative": "1m"})
            r = client.get(f"/v1/events/chart?bucket=minute&dateRange={quote(light)}")
            assert r.status_code == 200, r.text
