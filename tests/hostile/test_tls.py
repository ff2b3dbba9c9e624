"""``tracehive serve --tls-cert --tls-key``: HTTPS and OTLP/gRPC over TLS with a real
certificate (made here with openssl), plain HTTP refused on the same port, and clear errors for
half or broken TLS settings."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2_grpc

from tests.otlp_data import protobuf_request, tracer_spans
from tests.process.server import TracehiveServer, free_port, run_cli, serving


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )
    return cert, key


@pytest.fixture
def server(tmp_path: Path, certificate: tuple[Path, Path]) -> Iterator[TracehiveServer]:
    cert, key = certificate
    port = free_port()
    for started in serving(tmp_path / "data", tls_ca=cert,
                           extra_args=["--tls-cert", str(cert), "--tls-key", str(key), "--otlp-grpc-port", str(port)]):
        started.grpc_port = port  # type: ignore[attr-defined]
        yield started


def test_https_and_grpc_over_tls(server: TracehiveServer, certificate: tuple[Path, Path]) -> None:
    assert server.url.startswith("https://")
    assert any("serving on https://" in line for line in server.stdout_lines)
    key = server.bootstrap_key
    assert key is not None
    with server.client(key) as client:
        assert client.get("/v1/whoami").status_code == 200
    with pytest.raises(httpx.HTTPError):  # plain HTTP on the TLS port gets no answer
        httpx.get(f"http://{server.host}:{server.port}/healthz", timeout=5)
    credentials = grpc.ssl_channel_credentials(certificate[0].read_bytes())
    with grpc.secure_channel(f"127.0.0.1:{server.grpc_port}", credentials) as channel:  # type: ignore[attr-defined]
        stub = trace_service_pb2_grpc.TraceServiceStub(channel)
        stub.Export(protobuf_request(tracer_spans()), metadata=[("authorization", f"Bearer {key}")], timeout=20)
    with grpc.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:  # type: ignore[attr-defined]
        with pytest.raises(grpc.RpcError):
            trace_service_pb2_grpc.TraceServiceStub(channel).Export(
                protobuf_request(tracer_spans()), metadata=[("authorization", f"Bearer {key}")], timeout=5)


def test_half_or_broken_tls_settings_are_one_clear_error(tmp_path: Path, certificate: tuple[Path, Path]) -> None:
    cert, _ = certificate
    for args, message in (
        (["--tls-cert", str(cert)], "--tls-cert and --tls-key go together"),
        (["--tls-cert", str(cert), "--tls-key", str(tmp_path / "missing.pem")], "No such file"),
        (["--tls-cert", str(tmp_path / "x"), "--tls-key", str(cert)], "No such file"),
    ):
        result = run_cli("serve", "--data-dir", str(tmp_path / "data"), "--port", str(free_port()), *args, check=False)
        assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr, result.stderr
