"""Hostile request heads against a real ``tracehive serve``: huge or junk keys, huge headers,
and connections that trickle a head and hold it. Bounded in count and time."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.process.server import TracehiveServer, serving

HEADER_TIMEOUT = 1.0


@pytest.fixture
def server(tmp_path: Path) -> Iterator[TracehiveServer]:
    yield from serving(tmp_path / "data", env={"TRACEHIVE_HEADER_TIMEOUT_SECONDS": str(HEADER_TIMEOUT)})


def raw_request(server: TracehiveServer, head: bytes, *, timeout: float = 10.0) -> bytes:
    """Send ``head`` on a new connection and read until the server closes it."""
    with socket.create_connection((server.host, server.port), timeout=timeout) as sock:
        try:
            sock.sendall(head)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server may answer and close before the whole head is sent
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def whoami_head(authorization: str) -> bytes:
    return (f"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {authorization}\r\n"
            "Connection: close\r\n\r\n").encode()


def test_a_head_over_the_limit_is_431_with_the_error_body(server: TracehiveServer) -> None:
    answer = raw_request(server, whoami_head("A" * 64 * 1024))
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 431 "), head
    assert orjson.loads(body) == {
        "statusCode": 431, "message": "the request line and headers exceed 32768 bytes",
        "success": False, "errorCode": "HEADERS_TOO_LARGE",
    }
    # The server still answers everyone else.
    with server.client(server.bootstrap_key) as client:
        assert client.get("/v1/whoami").status_code == 200


def test_a_huge_header_is_refused_before_it_ends(server: TracehiveServer) -> None:
    """A header value past the limit is refused from the bytes that have arrived, not once the
    whole value has been buffered: a client that has sent 40 KiB of an unfinished ~1 MB header
    gets its 431 without sending the rest (the parser would otherwise buffer it all, which made
    a flood of 1 MB junk keys cost the server most of a core)."""
    with socket.create_connection((server.host, server.port), timeout=HEADER_TIMEOUT * 5) as sock:
        sock.sendall(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + b"A" * 40 * 1024)
        started = time.monotonic()
        answer = sock.recv(65536)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"errorCode":"HEADERS_TOO_LARGE"' in answer
    assert waited < HEADER_TIMEOUT, f"answered after {waited:.2f} s: the header timeout, not the size bound"


def test_junk_keys_do_not_grow_the_server(server: TracehiveServer) -> None:
    """The attack that took RSS from 366 to 2,276 MB: many distinct junk keys. Big ones are
    refused while parsing; key-shaped unknown ones are looked up once each and never kept."""
    with server.client(server.bootstrap_key) as client:
        assert client.get("/v1/whoami").status_code == 200
    before = server.memory_kib()
    for i in range(150):  # 150 x 1 MB heads: refused before they are buffered whole
        assert raw_request(server, whoami_head(f"{i}-" + "x" * 1_000_000)).startswith(b"HTTP/1.1 431 ")
    with server.client() as client:
        for i in range(1500):  # under the head limit: 401 before any lookup, nothing cached
            reply = client.get("/v1/whoami", headers={"Authorization": f"Bearer junk-{i}-" + "y" * 20_000})
            assert reply.status_code == 401, reply.text
        for i in range(500):  # key-shaped but unknown: looked up, not cached
            key = f"hh_{i:024d}_" + "z" * 64
            assert client.get("/v1/whoami", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    grown_mb = (server.memory_kib() - before) / 1024
    assert grown_mb < 40, f"the server grew by {grown_mb:.0f} MB"


def test_a_trickled_head_is_closed_after_the_header_timeout(server: TracehiveServer) -> None:
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        sock.sendall(b"GET /v1/whoami HTTP/1.1\r\nHost: x\r\nAuthoriz")
        began = time.monotonic()
        try:
            closed = sock.recv(1024) == b""
        except ConnectionResetError:
            closed = True
        held = time.monotonic() - began
    assert closed and held < HEADER_TIMEOUT + 3, held
    # A connection that sends nothing at all is closed too.
    with socket.create_connection((server.host, server.port), timeout=10) as sock:
        began = time.monotonic()
        assert sock.recv(1024) == b""
        assert time.monotonic() - began < HEADER_TIMEOUT + 3
