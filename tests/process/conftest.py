from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.process.server import TracehiveServer, serving


@pytest.fixture
def server(data_dir: Path) -> Iterator[TracehiveServer]:
    """A real ``tracehive serve`` on a fresh data dir (so it printed a bootstrap key)."""
    yield from serving(data_dir)


@pytest.fixture
def key(server: TracehiveServer) -> str:
    """The bootstrap project key of ``server``'s ``default`` project."""
    assert server.bootstrap_key is not None, server.stdout
    return server.bootstrap_key
