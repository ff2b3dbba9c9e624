from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests import pg
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
    """The ``--store`` URL of this test's store: empty for SQLite in the data dir, else a fresh
    PostgreSQL database dropped after the test."""
    if backend == "sqlite":
        yield ""
        return
    with pg.fresh_database() as url:
        yield url


@pytest.fixture
def settings(data_dir: Path, store_url: str) -> Settings:
    return Settings(data_dir=data_dir, store=store_url)


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
