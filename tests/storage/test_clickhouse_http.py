"""The ClickHouse event store over HTTP (``HttpExecutor``, clickhouse-connect) against
tests/clickhouse_shim.py: ClickHouse's HTTP interface served by chDB in a subprocess.

The same storage contract tests as on chDB (``SUPPORTED`` of test_clickhouse_store.py) and the
same executor tests (test_clickhouse_executor.py: hostile strings as values, arrays, scalars,
one part per insert, errors) run here through clickhouse-connect, over HTTP, on a fresh database
per test in one shim per module. What this does not test: a real ClickHouse server (its HTTP
layer, authentication, users' profiles) or a replicated cluster (``?quorum=auto``).
"""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import select
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.chdb import require_chdb

require_chdb()
if importlib.util.find_spec("clickhouse_connect") is None:
    _reason = "clickhouse-connect is not installed (pip install 'tracehive[clickhouse]')"
    if os.environ.get("TRACEHIVE_REQUIRE_CHDB"):
        raise RuntimeError(f"{_reason}, and TRACEHIVE_REQUIRE_CHDB is set")
    pytest.skip(_reason, allow_module_level=True)

from clickhouse_connect.driver.binding import bind_query

from tests.process.server import TracehiveServer, free_port, run_cli
from tests.storage import test_clickhouse_executor as executor_tests
from tests.storage import test_clickhouse_store as chdb_store_tests
from tests.storage import test_contract as contract
from tests.storage.test_contract import make_event, new_id, scope_a, scope_b, scope_for  # noqa: F401 - fixtures too
from tracehive.model.errors import StoreUnavailable, ValidationFailed
from tracehive.settings import Settings
from tracehive.storage.base import Store
from tracehive.storage.clickhouse import ClickHouseEventStore, CombinedStore
from tracehive.storage.clickhouse.executor import render_param
from tracehive.storage.clickhouse.http_executor import HttpExecutor, HttpTarget, bind, http_settings
from tracehive.storage.factory import store_from_settings
from tracehive.storage.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]
USER = "tracehive"
# Every character a URL or Basic auth could mangle: the password must arrive intact, and never
# show up in a description or a message.
PASSWORD = "pw:@/%?#é🔑-s3cret"

# The contract tests the chDB store runs, run here unchanged on the HTTP store.
for _name in chdb_store_tests.SUPPORTED:
    globals()[_name] = getattr(contract, _name)

# The chDB executor's tests, run unchanged on HttpExecutor (the ``executor`` fixture below).
test_string_parameters_are_values = executor_tests.test_string_parameters_are_values
test_array_parameters_are_values = executor_tests.test_array_parameters_are_values
test_scalars_and_null = executor_tests.test_scalars_and_null
test_insert_is_one_part_and_readable_at_once = executor_tests.test_insert_is_one_part_and_readable_at_once
test_engine_errors_are_store_unavailable = executor_tests.test_engine_errors_are_store_unavailable
HOSTILE = executor_tests.HOSTILE


# The shim ---------------------------------------------------------------------------------------


@dataclass
class Shim:
    proc: subprocess.Popen[str]
    port: int
    user: str | None = USER
    password: str = PASSWORD

    def url(self, database: str, password: str | None = None) -> str:
        secret = quote(self.password if password is None else password, safe="")
        return f"clickhouse://{self.user}:{secret}@127.0.0.1:{self.port}/{database}"

    def admin(self, sql: str) -> bytes:
        """Run ``sql`` on the shim directly (plain HTTP, not the code under test)."""
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/", data=sql.encode())
        if self.user:
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        with urllib.request.urlopen(request, timeout=60) as reply:
            return bytes(reply.read())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        # Closed here, not left to the garbage collector: an unclosed pipe's ResourceWarning is
        # reported against whichever test runs when it is collected (it once failed a chDB test).
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def start_shim(directory: Path) -> Shim:
    """A shim on a free port over ``directory``, once it listens (bounded wait)."""
    directory.mkdir(parents=True, exist_ok=True)
    stderr = open(directory / "stderr.log", "w")  # noqa: SIM115 - the child keeps it; closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.clickhouse_shim", "--path", str(directory / "chdb"),
         "--user", USER, "--password", PASSWORD],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
    )
    stderr.close()
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    if not line.startswith("port "):
        proc.kill()
        raise RuntimeError(f"the ClickHouse shim did not start: {line!r} {(directory / 'stderr.log').read_text()}")
    return Shim(proc, int(line.split()[1]))


@pytest.fixture(scope="module")
def shim(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shim]:
    server = start_shim(tmp_path_factory.mktemp("clickhouse-shim"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def database(shim: Shim) -> Iterator[str]:
    """A fresh ClickHouse database for this test, dropped after it."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    shim.admin(f"CREATE DATABASE {name}")
    try:
        yield name
    finally:
        shim.admin(f"DROP DATABASE IF EXISTS {name} SYNC")


@pytest.fixture
def url(shim: Shim, database: str) -> str:
    return shim.url(database)


# Fixtures of the contract and executor tests ----------------------------------------------------


def make_store(directory: Path, url: str, **kwargs: object) -> Store:
    return CombinedStore(SQLiteStore(directory / "control.db"), ClickHouseEventStore.http(url, **kwargs))


@pytest.fixture
def store_factory(tmp_path: Path, url: str) -> Callable[[], Store]:
    return lambda: make_store(tmp_path / "store", url)


@pytest.fixture
async def executor(url: str, anyio_backend: str) -> AsyncIterator[HttpExecutor]:
    ex = HttpExecutor(HttpTarget.from_url(url), max_query_memory=256 * 1024**2)
    try:
        yield ex
    finally:
        await ex.close()


# Parameters ------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [*HOSTILE, True, False, None, -(2**63), 1.5, float("inf"), ["a", None, "'\\"],
                                   HOSTILE, []])
def test_clickhouse_connect_sends_the_render_param_text(value: object) -> None:
    """What clickhouse-connect puts in ``param_v`` is ``render_param``'s text, byte for byte (it
    would escape a str its own way and send ``True`` as "True"), even with a '%' in the SQL."""
    sql = "SELECT {v:String}, '%', '{not:Param}' WHERE 1 = {w:UInt8}"
    final, bound = bind_query(sql, bind({"v": value, "w": 1}))
    assert final == sql
    assert bound == {"param_v": render_param(value), "param_w": "1"}


async def test_parameters_past_the_url_budget_go_in_a_form(executor: HttpExecutor) -> None:
    """clickhouse-connect moves parameters over 4 KiB into a multipart form: same values."""
    values = [f"{s}-{i}" for i in range(300) for s in HOSTILE[:3]]
    rows = await executor.query("SELECT {v:Array(String)}, length({v:Array(String)})", {"v": values})
    assert rows == [(values, len(values))]


async def test_concurrent_calls_share_the_client(executor: HttpExecutor) -> None:
    results = await asyncio.gather(*(executor.query("SELECT {i:UInt32}", {"i": i}) for i in range(32)))
    assert results == [[(i,)] for i in range(32)]


async def test_every_request_carries_the_settings(executor: HttpExecutor) -> None:
    rows = dict(await executor.query(
        "SELECT name, value FROM system.settings WHERE name IN {names:Array(String)}",
        {"names": sorted(http_settings(256 * 1024**2))},
    ))
    assert rows == http_settings(256 * 1024**2)


async def test_quorum_option_adds_the_cluster_settings(url: str) -> None:
    target = HttpTarget.from_url(url + "?quorum=auto")
    assert target.quorum == "auto" and "?quorum=auto" in target.describe()
    ex = HttpExecutor(target)
    try:
        rows = dict(await ex.query("SELECT name, value FROM system.settings WHERE name IN "
                                   "('insert_quorum', 'select_sequential_consistency', 'distributed_foreground_insert')"))
        assert rows == {"insert_quorum": "auto", "select_sequential_consistency": "1", "distributed_foreground_insert": "1"}
        await ex.command("CREATE TABLE q (k String) ENGINE = MergeTree ORDER BY k")
        assert await ex.insert("q", ("k",), [["a"]]) == 1  # accepted (a single server ignores it)
    finally:
        await ex.close()
    with pytest.raises(ValueError, match="quorum"):
        HttpTarget.from_url(url + "?quorum=most")
    with pytest.raises(ValueError, match="unknown URL options"):
        HttpTarget.from_url(url + "?secure=1")


# Errors, reachability, the password ------------------------------------------------------------


async def test_a_server_error_is_store_unavailable_with_the_server_text(executor: HttpExecutor) -> None:
    with pytest.raises(StoreUnavailable) as caught:
        await executor.query("SELECT * FROM no_such_table")
    message = str(caught.value)
    assert type(caught.value) is StoreUnavailable and caught.value.__cause__ is None
    assert "Code: 60. DB::Exception" in message and "UNKNOWN_TABLE" in message
    assert "for url" not in message and "(version" not in message and "Received" not in message
    with pytest.raises(StoreUnavailable, match="SYNTAX_ERROR"):
        await executor.command("CREATE TABLE (")
    assert await executor.query("SELECT 1") == [(1,)]


async def test_an_unreachable_server(tmp_path: Path) -> None:
    url = f"clickhouse://{USER}:{quote(PASSWORD, safe='')}@127.0.0.1:{free_port()}/default"
    ex = HttpExecutor(HttpTarget.from_url(url), connect_timeout=2)
    try:
        with pytest.raises(StoreUnavailable, match=r"cannot reach ClickHouse at .* \(connection refused\)") as caught:
            await ex.query("SELECT 1")
        assert PASSWORD not in str(caught.value) and quote(PASSWORD, safe="") not in str(caught.value)
    finally:
        await ex.close()
    store = make_store(tmp_path, url)
    assert await store.health() is False
    with pytest.raises(StoreUnavailable):
        await store.open()
    assert await store.health() is False
    await store.close()


async def test_a_server_that_goes_away_and_comes_back(tmp_path: Path) -> None:
    """Health turns False and calls fail as StoreUnavailable while the server is down; the same
    open store answers again once a server is back on that port."""
    shim = start_shim(tmp_path / "shim")
    port = shim.port
    try:
        shim.admin("CREATE DATABASE gone")
        store = make_store(tmp_path, shim.url("gone"))
        await store.open()
        scope = await scope_for(store, "project-a")
        await store.write_events(scope, [make_event(new_id())])
        assert await store.health() is True
        shim.stop()
        assert await store.health() is False
        with pytest.raises(StoreUnavailable, match="cannot reach ClickHouse"):
            await store.write_events(scope, [make_event(new_id())])
        with pytest.raises(StoreUnavailable):
            await store.export_events(scope, contract.query())
    finally:
        shim.stop()
    # The shim comes back on the same port and data: the connection pool reconnects.
    back = subprocess.Popen(
        [sys.executable, "-m", "tests.clickhouse_shim", "--path", str(tmp_path / "shim" / "chdb"),
         "--port", str(port), "--user", USER, "--password", PASSWORD],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        assert back.stdout is not None and back.stdout.readline().startswith("port ")
        assert await store.health() is True
        page, total = await store.export_events(scope, contract.query())
        assert total == 2  # the session and its event, from before the outage
    finally:
        await store.close()
        Shim(back, port).stop()


async def test_the_password_never_shows(shim: Shim, url: str, tmp_path: Path) -> None:
    target = HttpTarget.from_url(url)
    assert target.password == PASSWORD  # percent-decoded, and accepted by the server below
    store = make_store(tmp_path, url)
    ex = HttpExecutor(target)
    wrong = HttpExecutor(HttpTarget.from_url(shim.url("default", password="not-" + PASSWORD)))
    try:
        await store.open()
        await ex.query("SELECT 1")
        with pytest.raises(StoreUnavailable, match="AUTHENTICATION_FAILED") as denied:
            await wrong.query("SELECT 1")
        with pytest.raises(StoreUnavailable) as failed:
            await ex.query("SELECT throwIf(1, {m:String})", {"m": "boom"})
        shown = [store.describe(), ex.describe(), repr(target), str(denied.value), str(failed.value)]
    finally:
        await wrong.close()
        await ex.close()
        await store.close()
    assert f"(events: clickhouse://{USER}@127.0.0.1:{shim.port}/{target.database})" in shown[0]
    for text in shown:
        assert PASSWORD not in text and quote(PASSWORD, safe="") not in text and "s3cret" not in text, text


# The factory, the CLI, a server ----------------------------------------------------------------


def test_factory_urls(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = store_from_settings(Settings(data_dir=tmp_path, events_store=url))
    assert isinstance(store, CombinedStore) and "s3cret" not in store.describe()
    secure = store_from_settings(Settings(data_dir=tmp_path, events_store="clickhouses://u:p@h/db"))
    assert "clickhouses://u@h:8443/db" in secure.describe()
    for bad in ("clickhouse:///db", "clickhouse://u:s3cret@h:x/db", "clickhouse://u:s3cret@h/a/b",
                "clickhouse://u:s3cret@h/db?nope=1"):
        with pytest.raises(ValidationFailed) as caught:
            store_from_settings(Settings(data_dir=tmp_path, events_store=bad))
        assert "s3cret" not in str(caught.value), bad
    monkeypatch.setitem(sys.modules, "clickhouse_connect", None)  # as if not installed
    with pytest.raises(ValidationFailed, match=r"needs clickhouse-connect: pip install 'tracehive\[clickhouse\]'"):
        store_from_settings(Settings(data_dir=tmp_path, events_store=url))


async def test_settings_build_a_working_store(url: str, tmp_path: Path) -> None:
    """``--events-store clickhouse://...`` as the CLI parses it, down to a store that works."""
    from tracehive.cli import build_parser
    from tracehive.cli.common import _settings

    args = build_parser().parse_args(["serve", "--data-dir", str(tmp_path / "data"), "--events-store", url])
    settings = _settings(args)
    assert settings.events_store == url
    store = store_from_settings(settings)
    await store.open()
    try:
        scope = await scope_for(store, "project-a")
        sid = new_id()
        await store.write_events(scope, [make_event(sid, name="over http")])
        assert [e.event_name for e in await store.session_events(scope, sid) if e.event_type != "session"] == [
            "over http"]
    finally:
        await store.close()


def test_serve_and_cli_on_a_clickhouse_server(shim: Shim, url: str, tmp_path: Path) -> None:
    """A real ``tracehive serve`` process with its events on the shim, then the CLI on the same
    store; the password is in neither process's output."""
    events = ["--events-store", url]
    with TracehiveServer(tmp_path / "data", extra_args=events) as server:
        assert server.bootstrap_key is not None
        with server.client(server.bootstrap_key) as client:
            headers = {"Authorization": f"Bearer {server.bootstrap_key}"}
            reply = client.post("/v1/sessions", json={"session_name": "chat"}, headers=headers)
            assert reply.status_code == 200, reply.text
            sid = reply.json()["session_id"]
            eid = str(uuid.uuid4())
            reply = client.post(f"/v1/sessions/{sid}/events/batch", headers=headers, json={"events": [
                {"event_id": eid, "event_type": "tool", "event_name": "lookup", "inputs": {"q": "x"}}]})
            assert reply.status_code == 200, reply.text
            tree = client.get(f"/v1/sessions/{sid}", headers=headers).json()
            assert [c["event_id"] for c in tree["children"]] == [eid]
    output = server.stdout + server.stderr
    assert "s3cret" not in output and quote(PASSWORD, safe="") not in output
    out = tmp_path / "export.jsonl"
    result = run_cli("export", "--data-dir", str(tmp_path / "data"), *events, "-o", str(out))
    assert eid in out.read_text()
    assert "s3cret" not in result.stdout + result.stderr
