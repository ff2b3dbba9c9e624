"""The client tests' server: one real ``tracehive serve`` per test module, its bootstrap key,
and a client for it that does not retry (tests that want retries build their own)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.process.server import TracehiveServer
from tracehive import Client


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracehiveServer]:
    srv = TracehiveServer(tmp_path_factory.mktemp("client") / "data")
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def key(server: TracehiveServer) -> str:
    assert server.bootstrap_key
    return server.bootstrap_key


@pytest.fixture
def client(server: TracehiveServer, key: str) -> Iterator[Client]:
    with Client(api_key=key, base_url=server.url, max_retries=0) as c:
        yield c
