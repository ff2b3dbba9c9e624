"""Every API test runs on each backend: the same requests, the same answers."""

from __future__ import annotations

import pytest


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
