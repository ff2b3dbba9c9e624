"""Hostile OTLP/gRPC callers against a real ``tracehive serve --otlp-grpc-port``: keyless calls
with compression bombs are refused before anything is read or inflated, and the calls served at
once are bounded. Bounded in count and time."""

from __future__ import annotations

import gzip
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.process.server import TracehiveServer, free_port, serving

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def _grpc_server(tmp_path: Path, env: dict[str, str]) -> Iterator[TracehiveServer]:
    port = free_port()
    for started in serving(tmp_path / "data", extra_args=["--otlp-grpc-port", str(port)], env=env):
        started.grpc_port = port  # type: ignore[attr-defined]
        yield started


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TracehiveServer]:
    """The default bound on calls at once (64), above the 20 parallel callers below: every
    refusal they see is the key check's, never the concurrency bound's."""
    yield from _grpc_server(tmp_path, {})


METRICS_TOKEN = "metrics-token-for-the-grpc-test"


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[TracehiveServer]:
    yield from _grpc_server(tmp_path, {"TRACEHIVE_OTLP_GRPC_MAX_CONCURRENT_RPCS": "2",
                                       "TRACEHIVE_METRICS_TOKEN": METRICS_TOKEN})


def calls_in_flight(server: TracehiveServer) -> float:
    with server.client(METRICS_TOKEN) as client:
        text = client.get("/metrics").text
    for line in text.splitlines():
        if line.startswith("tracehive_otlp_grpc_calls_in_flight "):
            return float(line.split()[1])
    raise AssertionError("no tracehive_otlp_grpc_calls_in_flight in /metrics")


def test_keyless_compression_bombs_are_refused_unread(server: TracehiveServer) -> None:
    """The reproduction: 100 parallel keyless Export calls of 19 MiB gzip messages (RSS went
    from 808 to 1,370 MB). Every call is UNAUTHENTICATED and the server does not grow."""
    bomb = b"\x0a" + b"\x00" * (19 * 1024 * 1024)  # compresses to ~19 KiB
    assert len(gzip.compress(bomb)) < 100_000
    before = server.memory_kib()
    codes: list[grpc.StatusCode] = []
    lock = threading.Lock()
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}",  # type: ignore[attr-defined]
                               options=[("grpc.max_send_message_length", 64 * 1024 * 1024)]) as channel:
        call = channel.unary_unary(EXPORT)

        def one(i: int) -> None:
            metadata = None if i % 2 else [("authorization", f"Bearer hh_{'x' * 24}_{'y' * 64}")]
            try:
                call(bomb, metadata=metadata, timeout=30, compression=grpc.Compression.Gzip)
                code = grpc.StatusCode.OK
            except grpc.RpcError as exc:
                code = exc.code()
            with lock:
                codes.append(code)

        with ThreadPoolExecutor(20) as pool:
            list(pool.map(one, range(100)))
    assert set(codes) == {grpc.StatusCode.UNAUTHENTICATED}, set(codes)
    grown_mb = (server.memory_kib("VmHWM") - before) / 1024
    assert grown_mb < 60, f"the server grew by {grown_mb:.0f} MB"


def test_calls_served_at_once_are_bounded(capped_server: TracehiveServer) -> None:
    server = capped_server
    key = server.bootstrap_key
    assert key is not None
    release = threading.Event()

    def held_messages() -> Iterator[bytes]:
        release.wait(20)  # a call that sends nothing until released: it stays open meanwhile
        yield ExportTraceServiceRequest().SerializeToString()

    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:  # type: ignore[attr-defined]
        held = channel.stream_unary(EXPORT)
        auth = [("authorization", f"Bearer {key}")]
        futures = [held.future(held_messages(), metadata=auth, timeout=30) for _ in range(2)]
        try:
            # The held calls count once the server serves them (a moment after they were sent,
            # longer on a busy machine): wait until /metrics shows both, then a third is refused.
            deadline = time.monotonic() + 30
            while calls_in_flight(server) < 2:
                assert time.monotonic() < deadline, (
                    f"the held calls were not being served after 30 s: {[f.done() for f in futures]}")
                time.sleep(0.1)
            with pytest.raises(grpc.RpcError) as refused:
                channel.unary_unary(EXPORT)(ExportTraceServiceRequest().SerializeToString(), metadata=auth,
                                            timeout=10)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, refused.value
        finally:
            release.set()
        for future in futures:
            future.result(timeout=20)  # the held calls complete normally
        # Once they are done, calls are served again.
        channel.unary_unary(EXPORT)(ExportTraceServiceRequest().SerializeToString(), metadata=auth, timeout=10)
