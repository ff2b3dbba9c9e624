"""Every API test runs on each backend: the same requests, the same answers. ``chdb`` is SQLite
for projects, keys and records with the events in ClickHouse (chDB, in-process)."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres", "chdb"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
