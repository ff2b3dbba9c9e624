"""The storage contract runs against every backend in ``BACKENDS``.

A backend joins the suite by adding one entry: a factory that, given the test's private directory,
returns an unopened ``Store``. Calling the factory again with the same directory must return a store
over the same data (the durability test reopens it). A backend that needs an external service
should call ``pytest.skip`` from its factory when the service is not configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from tests import pg
from tracehive.storage.base import Store
from tracehive.storage.postgres import PostgresStore
from tracehive.storage.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Store]


def _sqlite(directory: Path) -> Store:
    return SQLiteStore(directory / "tracehive.db")


def _postgres(directory: Path) -> Store:
    """One database per test directory (created on the first call, dropped at exit)."""
    marker = directory / "postgres-url"
    if not marker.exists():
        directory.mkdir(parents=True, exist_ok=True)
        url = pg.create_database()
        _CREATED.append(url)
        marker.write_text(url)
    return PostgresStore(marker.read_text())


_CREATED: list[str] = []

BACKENDS: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
    "postgres": _postgres,
}


@pytest.fixture(autouse=True)
def _drop_postgres_databases() -> Iterator[None]:
    yield
    while _CREATED:
        pg.drop_database(_CREATED.pop())


@pytest.fixture(params=sorted(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store_factory(backend: str, tmp_path: Path) -> Callable[[], Store]:
    """A fresh, unopened store over this test's data (same data on every call)."""
    return lambda: BACKENDS[backend](tmp_path / "store")


@pytest.fixture
async def store(store_factory: Callable[[], Store], anyio_backend: str) -> AsyncIterator[Store]:
    instance = store_factory()
    await instance.open()
    try:
        yield instance
    finally:
        await instance.close()
