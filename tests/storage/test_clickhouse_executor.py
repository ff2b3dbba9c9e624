"""The chDB executor and ``render_param``, the one function that turns values into the text
ClickHouse parses query parameters from: hostile strings must come back unchanged, as values."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.chdb import require_chdb

require_chdb()

from tracehive.model.errors import StoreUnavailable
from tracehive.storage.clickhouse.executor import ChdbExecutor, render_param

pytestmark = pytest.mark.anyio

HOSTILE = [
    "", "plain", "x' OR '1'='1", "'; DROP TABLE events; --", "\\", "\\\\", "\\N", "\\t", "a\tb", "new\nline",
    "cr\rlf", "nul\x00byte", "\b\f\v", "\"quoted\"", "{p:String}", "[1,2]", "é✓😀\u2028", "'", "\\'",
    "%s", "$1", "NULL",
]


@pytest.fixture
async def executor(tmp_path: Path, anyio_backend: str) -> AsyncIterator[ChdbExecutor]:
    ex = ChdbExecutor(tmp_path / "ch", max_server_memory=512 * 1024**2, max_query_memory=256 * 1024**2, threads=1)
    try:
        yield ex
    finally:
        await ex.close()


@pytest.mark.parametrize("value", HOSTILE)
async def test_string_parameters_are_values(executor: ChdbExecutor, value: str) -> None:
    rows = await executor.query("SELECT {v:String}, length({v:String})", {"v": value})
    assert rows == [(value, len(value.encode()))]


async def test_array_parameters_are_values(executor: ChdbExecutor) -> None:
    rows = await executor.query("SELECT {v:Array(String)}", {"v": HOSTILE})
    assert rows == [(HOSTILE,)]
    assert await executor.query("SELECT {v:Array(String)}", {"v": []}) == [([],)]


async def test_scalars_and_null(executor: ChdbExecutor) -> None:
    rows = await executor.query(
        "SELECT {i:Int64}, {f:Float64}, {b:UInt8}, {n:Nullable(String)}, {a:Array(Nullable(String))}",
        {"i": -(2**63), "f": 1700000000947.8056, "b": True, "n": None, "a": ["x", None]},
    )
    assert rows == [(-(2**63), 1700000000947.8056, 1, None, ["x", None])]
    with pytest.raises(TypeError):
        render_param(object())


async def test_insert_is_one_part_and_readable_at_once(executor: ChdbExecutor) -> None:
    await executor.command("CREATE TABLE t (k String, v Float64) ENGINE = MergeTree ORDER BY k")
    rows = [[value, float(i)] for i, value in enumerate(HOSTILE)]
    assert await executor.insert("t", ("k", "v"), rows) == len(rows)
    assert sorted(await executor.query("SELECT k, v FROM t")) == sorted((k, v) for k, v in rows)
    parts = await executor.query("SELECT count() FROM system.parts WHERE table = 't' AND active")
    assert parts == [(1,)]


async def test_engine_errors_are_store_unavailable(executor: ChdbExecutor) -> None:
    with pytest.raises(StoreUnavailable):
        await executor.query("SELECT * FROM no_such_table")
    with pytest.raises(StoreUnavailable, match="memory"):
        await executor.query("SELECT groupArray(number) FROM numbers(100000000)")
    assert await executor.query("SELECT 1") == [(1,)]  # still usable


async def test_memory_settings_are_applied(executor: ChdbExecutor) -> None:
    rows = dict(await executor.query(
        "SELECT name, value FROM system.settings WHERE name IN ('max_memory_usage', 'async_insert')"
    ))
    assert rows == {"max_memory_usage": str(256 * 1024**2), "async_insert": "0"}
    [(server,)] = await executor.query(
        "SELECT value FROM system.server_settings WHERE name = 'max_server_memory_usage'"
    )
    assert server == str(512 * 1024**2)


async def test_executors_on_one_directory_share_the_engine_each_in_its_database(tmp_path: Path,
                                                                                 anyio_backend: str) -> None:
    """A process runs one chDB engine per directory: executors on it share it, each switching the
    session to its own database, and the engine closes with its last executor."""
    first = ChdbExecutor(tmp_path / "ch", database="one")
    second = ChdbExecutor(tmp_path / "ch", database="two")
    try:
        assert first.describe().endswith("?database=one") and ChdbExecutor.describe(second).endswith("two")
        for ex, value in ((first, "a"), (second, "b")):
            await ex.command("CREATE TABLE t (v String) ENGINE = MergeTree ORDER BY v")
            await ex.insert("t", ("v",), [[value]])
        for _ in range(3):  # interleaved: each statement runs in its executor's database
            assert await first.query("SELECT v, currentDatabase() FROM t") == [("a", "one")]
            assert await second.query("SELECT v, currentDatabase() FROM t") == [("b", "two")]
        await first.close()
        assert await second.query("SELECT count() FROM t") == [(1,)]
    finally:
        await first.close()
        await second.close()
    again = ChdbExecutor(tmp_path / "ch", database="one")  # a new engine on the same directory
    try:
        assert await again.query("SELECT v FROM t") == [("a",)]
    finally:
        await again.close()


@pytest.mark.parametrize("name", ["", "a-b", "x; DROP DATABASE default", "1st", "é"])
def test_a_database_name_must_be_plain(tmp_path: Path, name: str) -> None:
    with pytest.raises(ValueError, match="database name"):
        ChdbExecutor(tmp_path / "ch", database=name)


@pytest.mark.parametrize("query", ["?database=a-b", "?database=", "?db=x", "?database=ok&x=1"])
def test_the_events_store_url_accepts_only_a_plain_database(tmp_path: Path, query: str) -> None:
    from tracehive.model.errors import ValidationFailed
    from tracehive.settings import Settings
    from tracehive.storage.factory import store_from_settings

    with pytest.raises(ValidationFailed, match="database"):
        store_from_settings(Settings(data_dir=tmp_path, events_store=f"chdb://{tmp_path}/ev{query}"))
    store = store_from_settings(Settings(data_dir=tmp_path, events_store=f"chdb://{tmp_path}/ev?database=ok_1"))
    assert store.describe().endswith("/ev?database=ok_1)")
