"""The storage contract runs against every backend in ``BACKENDS``.

A backend joins the suite by adding one entry: a factory that, given the test's private directory,
returns an unopened ``Store``. Calling the factory again with the same directory must return a store
over the same data (the durability test reopens it). A backend that needs an external service
should call ``pytest.skip`` from its factory when the service is not configured.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from tracehive.storage.base import Store
from tracehive.storage.sqlite import SQLiteStore

StoreFactory = Callable[[Path], Store]


def _sqlite(directory: Path) -> Store:
    return SQLiteStore(directory / "tracehive.db")


BACKENDS: dict[str, StoreFactory] = {
    "sqlite": _sqlite,
}


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
