"""Fixtures for the conformance tests: one real ``tracehive serve`` shared by the directory (tests
use their own sessions, so they can share it), keys for it, and a clean client environment
(nothing the real clients do may leave 127.0.0.1)."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conformance.clients import CLIENT_ENV_PREFIXES, PROXY_VARS
from tests.process.server import TracehiveServer, run_cli


@pytest.fixture(scope="package", autouse=True)
def _offline_client_env() -> Iterator[None]:
    """In-process clients (REST client, logger, OTel SDK) get the same hygiene as subprocesses."""
    mp = pytest.MonkeyPatch()
    for name in list(os.environ):
        if name.startswith(CLIENT_ENV_PREFIXES) or name in PROXY_VARS:
            mp.delenv(name)
    mp.setenv("NO_PROXY", "127.0.0.1,localhost")
    mp.setenv("no_proxy", "127.0.0.1,localhost")
    mp.setenv("HH_TELEMETRY", "false")
    mp.setenv("HONEYHIVE_TELEMETRY", "false")
    yield
    mp.undo()


@pytest.fixture
def restore_socket_timeout() -> Iterator[None]:
    """honeyhive-logger calls socket.setdefaulttimeout(); keep that out of other tests."""
    before = socket.getdefaulttimeout()
    yield
    socket.setdefaulttimeout(before)


@pytest.fixture(scope="package")
def conformance_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("conformance")


@pytest.fixture(scope="package")
def server(conformance_dir: Path) -> Iterator[TracehiveServer]:
    """One real server for the whole directory (tests use their own sessions, so they can share)."""
    srv = TracehiveServer(conformance_dir / "data", cwd=conformance_dir)
    srv.start()
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="package")
def key(server: TracehiveServer) -> str:
    """The bootstrap project key (reads and writes) of the ``default`` project."""
    assert server.bootstrap_key is not None, server.stdout
    return server.bootstrap_key


@pytest.fixture(scope="package")
def ingestion_key(server: TracehiveServer, key: str) -> str:
    """An ``hh_ingst_`` key of the same project, minted by the CLI while the server runs."""
    assert server.data_dir is not None
    out = run_cli("keys", "create", "--project", "default", "--kind", "ingestion",
                  "--data-dir", str(server.data_dir))
    minted = out.stdout.splitlines()[-1].strip()
    assert minted.startswith("hh_ingst_"), out.stdout
    return minted


@pytest.fixture(scope="package")
def api(server: TracehiveServer, key: str) -> Iterator[httpx.Client]:
    """tracehive's own API, read with the project key."""
    with server.client(key, timeout=10.0) as c:
        yield c


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """On a failure, show the tail of the server's log: a 500 on the wire is explained there."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for name in ("server", "grpc_server"):
        srv = getattr(item, "funcargs", {}).get(name)
        if isinstance(srv, TracehiveServer):
            tail = "\n".join(srv.stderr_lines[-60:])
            report.sections.append((f"tracehive serve ({name}) stderr, last lines", tail))
