"""chDB (the ClickHouse engine in-process) for the ClickHouse event store's tests: a test module
is skipped, with the reason, where chDB is not installed, and fails instead when
``TRACEHIVE_REQUIRE_CHDB`` is set (``.ci/run`` sets it: there every backend's tests must run)."""

from __future__ import annotations

import importlib.util
import os

import pytest


def require_chdb() -> None:
    """Call at module level, before importing the ClickHouse backend."""
    if importlib.util.find_spec("chdb") is not None:
        return
    reason = "chDB is not installed (pip install 'tracehive[clickhouse]')"
    if os.environ.get("TRACEHIVE_REQUIRE_CHDB"):
        raise RuntimeError(f"{reason}, and TRACEHIVE_REQUIRE_CHDB is set")
    pytest.skip(reason, allow_module_level=True)
