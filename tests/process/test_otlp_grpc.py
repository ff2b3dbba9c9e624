"""OTLP/gRPC: a real ``tracehive serve --otlp-grpc-port`` and real gRPC clients (a generated
``TraceService`` stub, a raw channel, and the OpenTelemetry SDK's own OTLP/gRPC exporter)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.testclient import TestClient

from tests.otlp_data import SESSION_ID, OverloadedStore, protobuf_request, tracer_spans
from tests.process.server import TracehiveServer, free_port, run_cli
from tracehive.app import create_app
from tracehive.cli import build_parser
from tracehive.cli.common import _settings
from tracehive.model.span import DecodedSpan
from tracehive.settings import Settings

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
MAX_BODY = 1024 * 1024


@pytest.fixture
def grpc_server(data_dir: Path) -> Iterator[TracehiveServer]:
    port = free_port()
    server = TracehiveServer(
        data_dir,
        extra_args=["--otlp-grpc-port", str(port)],
        env={"TRACEHIVE_KEY_CACHE_SECONDS": "0", "TRACEHIVE_MAX_BODY_BYTES": str(MAX_BODY),
             "TRACEHIVE_MAX_BATCH_EVENTS": "50"},
    )
    server.grpc_port = port  # type: ignore[attr-defined]
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture
def key(grpc_server: TracehiveServer) -> str:
    assert grpc_server.bootstrap_key is not None, grpc_server.stdout
    return grpc_server.bootstrap_key


@pytest.fixture
def channel(grpc_server: TracehiveServer) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(f"127.0.0.1:{grpc_server.grpc_port}") as ch:  # type: ignore[attr-defined]
        yield ch


def auth(key: str, **extra: str) -> list[tuple[str, str]]:
    return [("authorization", f"Bearer {key}"), *extra.items()]


def export(channel: grpc.Channel, request: ExportTraceServiceRequest, metadata: Any = None,
           **kwargs: Any) -> ExportTraceServiceResponse:
    stub = trace_service_pb2_grpc.TraceServiceStub(channel)
    return stub.Export(request, metadata=metadata, timeout=20, **kwargs)


def rpc_error(fn: Any, *args: Any, **kwargs: Any) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(*args, **kwargs)
    return info.value


def session_events(server: TracehiveServer, key: str) -> dict[str, dict[str, Any]]:
    with server.client(key) as c:
        r = c.get(f"/v1/sessions/{SESSION_ID}")
        assert r.status_code == 200, r.text
        out: dict[str, dict[str, Any]] = {}

        def walk(node: dict[str, Any]) -> None:
            out[node["event_name"]] = node
            for child in node["children"]:
                walk(child)

        walk(r.json())
        return out


def test_serve_prints_the_grpc_address(grpc_server: TracehiveServer) -> None:
    assert f"OTLP/gRPC on 127.0.0.1:{grpc_server.grpc_port}" in grpc_server.stdout  # type: ignore[attr-defined]


def test_export_is_stored_and_read_back(grpc_server: TracehiveServer, key: str, channel: grpc.Channel) -> None:
    reply = export(channel, protobuf_request(tracer_spans()), auth(key, **{"x-source": "grpc"}))
    assert not reply.HasField("partial_success")
    events = session_events(grpc_server, key)
    assert {"pipeline", "call_llm", "broken_tool", "broken_tool_error", "manual-span", "__main__.lookup"} <= set(events)
    with grpc_server.client(key) as c:
        event = c.get(f"/v1/events/{events['call_llm']['event_id']}")
        assert event.status_code == 200, event.text
        stored = event.json()["event"]
    assert stored["session_id"] == SESSION_ID and stored["event_type"] == "model"
    assert stored["parent_id"] == events["pipeline"]["event_id"]
    # Re-exporting the same spans (a retry) does not duplicate them.
    export(channel, protobuf_request(tracer_spans()), auth(key))
    assert len(session_events(grpc_server, key)) == 7


def test_auth_failures_are_unauthenticated(grpc_server: TracehiveServer, key: str, channel: grpc.Channel,
                                           data_dir: Path) -> None:
    request = protobuf_request(tracer_spans())
    for metadata, message in (
        (None, "missing authorization"),
        ([("authorization", "Bearer hh_nope")], "invalid or revoked"),
        ([("authorization", key)], "malformed"),
    ):
        err = rpc_error(export, channel, request, metadata)
        assert err.code() == grpc.StatusCode.UNAUTHENTICATED, err
        assert message in (err.details() or "")
    # Ingestion keys may export; once revoked they may not.
    ingest = run_cli("keys", "create", "--project", "default", "--kind", "ingestion",
                     "--data-dir", str(data_dir)).stdout.splitlines()[-1]
    assert not export(channel, request, auth(ingest)).HasField("partial_success")
    assert len(session_events(grpc_server, key)) == 7
    key_id = ingest.removeprefix("hh_ingst_")[:24]
    run_cli("keys", "revoke", key_id, "--data-dir", str(data_dir))
    err = rpc_error(export, channel, request, auth(ingest))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED


def test_partial_success(channel: grpc.Channel, key: str, grpc_server: TracehiveServer) -> None:
    request = protobuf_request(tracer_spans())
    request.resource_spans[0].scope_spans[0].spans[0].trace_id = b"\x01" * 3
    reply = export(channel, request, auth(key))
    assert reply.partial_success.rejected_spans == 1
    assert "spans[0]: traceId must be 16 bytes, got 3" in reply.partial_success.error_message
    assert len(session_events(grpc_server, key)) == 6


def test_undecodable_messages_are_invalid_argument(channel: grpc.Channel, key: str) -> None:
    raw = channel.unary_unary(EXPORT)  # bytes in, bytes out: no client-side parsing
    good = protobuf_request(tracer_spans()).SerializeToString()
    for body in (good[:-3], b"\xff\xff\xff\xff"):
        err = rpc_error(raw, body, metadata=auth(key), timeout=20)
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid protobuf ExportTraceServiceRequest" in (err.details() or "")
    assert raw(b"", metadata=auth(key), timeout=20) == b""  # an empty request is a success


def _big_span(size: int) -> DecodedSpan:
    base = tracer_spans()[0]
    return DecodedSpan(**{**{n: getattr(base, n) for n in DecodedSpan.__slots__}, "attributes": {"blob": "x" * size}})


def test_limits_message_size_and_span_count(channel: grpc.Channel, key: str) -> None:
    big = protobuf_request([_big_span(MAX_BODY + 10)])
    err = rpc_error(export, channel, big, auth(key))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Compression does not get around the cap: the limit applies to the inflated message.
    err = rpc_error(export, channel, big, auth(key), compression=grpc.Compression.Gzip)
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    small_enough = protobuf_request([_big_span(MAX_BODY // 2)])
    assert not export(channel, small_enough, auth(key), compression=grpc.Compression.Gzip).HasField("partial_success")
    spans = tracer_spans()
    many = [DecodedSpan(**{**{n: getattr(spans[0], n) for n in DecodedSpan.__slots__}, "span_id": f"{i + 1:016x}"})
            for i in range(51)]
    err = rpc_error(export, channel, protobuf_request(many), auth(key))
    assert err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "51 spans exceeds the limit of 50" in (err.details() or "")


def test_the_opentelemetry_sdk_grpc_exporter(grpc_server: TracehiveServer, key: str) -> None:
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("grpc-test")
    with tracer.start_as_current_span("root", attributes={"honeyhive.session_id": SESSION_ID,
                                                          "honeyhive_event_type": "chain"}):
        with tracer.start_as_current_span("child", attributes={"honeyhive.session_id": SESSION_ID,
                                                               "honeyhive_inputs.q": "hi"}):
            pass
    exporter = OTLPSpanExporter(endpoint=f"127.0.0.1:{grpc_server.grpc_port}", insecure=True,  # type: ignore[attr-defined]
                                headers={"authorization": f"Bearer {key}"})
    try:
        assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
    finally:
        exporter.shutdown()
        provider.shutdown()
    events = session_events(grpc_server, key)
    assert events["child"]["parent_id"] == events["root"]["event_id"]
    assert events["child"]["inputs"] == {"q": "hi"}


def test_the_opentelemetry_sdk_http_exporter(grpc_server: TracehiveServer, key: str) -> None:
    """The same server's OTLP/HTTP side, with the SDK's protobuf exporter and gzip."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    with provider.get_tracer("http-test").start_as_current_span("only", attributes={"honeyhive.session_id": SESSION_ID}):
        pass
    for endpoint in ("/v1/traces", "/opentelemetry/v1/traces"):
        exporter = OTLPSpanExporter(endpoint=grpc_server.url + endpoint, headers={"Authorization": f"Bearer {key}"},
                                    compression=Compression.Gzip)
        try:
            assert exporter.export(memory.get_finished_spans()) == SpanExportResult.SUCCESS
        finally:
            exporter.shutdown()
    provider.shutdown()
    assert "only" in session_events(grpc_server, key)


def test_overload_is_unavailable_with_retry_info(data_dir: Path, keys: dict[str, str]) -> None:
    """In process (a real gRPC server on the app's loop) with a store whose writer is full."""
    settings = Settings(data_dir=data_dir, otlp_grpc_port=free_port())
    app = create_app(settings, store=OverloadedStore(settings.database_path))
    with TestClient(app, raise_server_exceptions=False):
        with grpc.insecure_channel(f"127.0.0.1:{settings.otlp_grpc_port}") as ch:
            err = rpc_error(export, ch, protobuf_request(tracer_spans()), auth(keys["a"]))
    assert err.code() == grpc.StatusCode.UNAVAILABLE
    assert "writer queue is full" in (err.details() or "")
    trailers = dict(err.trailing_metadata() or ())
    status = status_pb2.Status.FromString(trailers["grpc-status-details-bin"])
    assert status.code == grpc.StatusCode.UNAVAILABLE.value[0]
    retry = error_details_pb2.RetryInfo()
    assert status.details[0].Unpack(retry)
    assert retry.retry_delay.seconds == 2


def test_the_grpc_port_must_be_free(data_dir: Path) -> None:
    """A taken port is a start-up failure, not a silent second listener."""
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = TracehiveServer(data_dir, extra_args=["--otlp-grpc-port", str(port)], startup_timeout=20)
        with pytest.raises(Exception, match="(?s)exited|not ready"):
            server.start()
        server.stop()
        assert "OTLP/gRPC could not listen" in server.stderr


def test_the_grpc_port_setting_from_flag_and_env() -> None:
    assert Settings().otlp_grpc_port == 0  # off by default
    assert Settings.from_env({"TRACEHIVE_OTLP_GRPC_PORT": "4317"}).otlp_grpc_port == 4317
    args = build_parser().parse_args(["serve", "--otlp-grpc-port", "4318"])
    assert _settings(args).otlp_grpc_port == 4318
