from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests import pg
from tests.chdb import require_chdb
from tests.helpers import Api, make_key
from tracehive.app import create_app
from tracehive.model.scope import KeyKind
from tracehive.settings import Settings


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def backend() -> str:
    """The store the app runs on: SQLite here; ``tests/api`` runs every test on each backend."""
    return "sqlite"


@pytest.fixture
def store_url(backend: str) -> Iterator[str]:
    """The ``--store`` URL of this test's store: empty for SQLite in the data dir (also the
    control store of ``chdb``), else a fresh PostgreSQL database dropped after the test."""
    if backend in ("sqlite", "chdb"):
        yield ""
        return
    with pg.fresh_database() as url:
        yield url


@pytest.fixture(scope="module")
def chdb_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One chDB engine for a test module, held open here, so that every ``chdb`` test's app in
    it shares the engine (each in a database of its own) instead of opening one: each engine
    opened leaks some files of the last one. Per module, not per run: a process runs one engine
    directory at a time, and other modules open their own."""
    require_chdb()
    from tracehive.storage.clickhouse.executor import ChdbExecutor

    holder = ChdbExecutor(tmp_path_factory.mktemp("chdb-engine"))
    yield holder
    asyncio.run(holder.close())


@pytest.fixture
def events_store_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str]:
    """``--events-store``: for ``chdb``, events in ClickHouse through chDB, in a database of the
    run's engine made for this test and dropped after it."""
    if backend != "chdb":
        yield ""
        return
    holder = request.getfixturevalue("chdb_engine")
    database = f"t_{uuid.uuid4().hex}"
    yield f"chdb://{holder.path}?database={database}"
    asyncio.run(holder.command(f"DROP DATABASE IF EXISTS {database} SYNC"))


@pytest.fixture
def settings(data_dir: Path, store_url: str, events_store_url: str) -> Settings:
    return Settings(data_dir=data_dir, store=store_url, events_store=events_store_url)


@pytest.fixture
def keys(settings: Settings) -> dict[str, str]:
    """Keys for two projects (A, B) and an ingestion key of project A, minted before start-up."""
    return {
        "a": make_key(settings, "project-a"),
        "b": make_key(settings, "project-b"),
        "ingest_a": make_key(settings, "project-a", KeyKind.INGESTION),
    }


@pytest.fixture
def client(settings: Settings, keys: dict[str, str]) -> Iterator[TestClient]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def api(client: TestClient, keys: dict[str, str]) -> Api:
    """Project A's project key."""
    return Api(client, keys["a"])


@pytest.fixture
def api_b(client: TestClient, keys: dict[str, str]) -> Api:
    return Api(client, keys["b"])


@pytest.fixture
def ingest(client: TestClient, keys: dict[str, str]) -> Api:
    return Api(client, keys["ingest_a"])
