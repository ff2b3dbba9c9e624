"""Several nodes on one ClickHouse events store: ``--store postgresql://...`` hands out write leases
(``storage/postgres/leases.py``) and every node's ClickHouse writes run under them
(``storage/clickhouse/leased.py``).

- The race suite of test_concurrency.py (two store instances racing on the same sessions and
  events, every rule checked exactly after each round) runs here on two ``CombinedStore`` made by
  the factory, as ``tracehive serve`` makes them: PostgreSQL control, events over HTTP on the shim.
- What each part of the lease does, each with a case that fails without it: versions ordered past
  another node's whatever the clocks say; a node's remembered session rows dropped once another
  node wrote the project; reads with ``FINAL`` (a day one node reads as settled gets the other's
  insert).
- The leases themselves on PostgreSQL: they serialise holders of a project and not others, a
  wait is bounded, a dead holder's lease is freed and what it published stays.
- Two ``tracehive serve`` processes on one PostgreSQL and one events store, sent batches of one
  session alternately; and one of them killed mid-traffic while the other goes on writing.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from tests import pg
from tests.chdb import require_chdb

require_chdb()

from tests.process.server import TracehiveServer  # noqa: E402
from tests.storage import test_concurrency as races  # noqa: E402
from tests.storage.test_clickhouse_http import Shim, database, shim, url  # noqa: E402, F401 - fixtures
from tests.storage.test_concurrency import scope, stores  # noqa: E402, F401 - fixtures
from tests.storage.test_contract import make_event, new_id, scope_for  # noqa: E402
from tracehive.model.errors import Overloaded, StoreUnavailable  # noqa: E402
from tracehive.model.event import EventUpdate  # noqa: E402
from tracehive.model.scope import Scope  # noqa: E402
from tracehive.query.filters import EventQuery  # noqa: E402
from tracehive.settings import Settings  # noqa: E402
from tracehive.storage.base import Store  # noqa: E402
from tracehive.storage.clickhouse import ClickHouseEventStore, CombinedStore  # noqa: E402
from tracehive.storage.factory import store_from_settings  # noqa: E402
from tracehive.storage.postgres.leases import PostgresWriteLeases  # noqa: E402

pytestmark = pytest.mark.anyio

Pair = tuple[Store, Store]

# The race suite, unchanged, on two nodes sharing the events store.
for _name in dir(races):
    if _name.startswith("test_"):
        globals()[_name] = getattr(races, _name)


@pytest.fixture
def rounds() -> races.Rounds:
    """A third of each race's rounds (at least 4): every write here goes over HTTP and takes a
    lease, ~3.5 min for the whole suite at full count."""
    return lambda written: max(4, written // 3)


@pytest.fixture
def control_url() -> Iterator[str]:
    with pg.fresh_database() as control:
        yield control


@pytest.fixture
def store_factory(tmp_path: Path, url: str, control_url: str) -> Callable[[], Store]:
    """A node's store as the factory wires it: the same PostgreSQL and events store each call."""
    return lambda: store_from_settings(Settings(data_dir=tmp_path / "data", store=control_url, events_store=url))


def events_of(store: Store) -> ClickHouseEventStore:
    assert isinstance(store, CombinedStore) and isinstance(store.events, ClickHouseEventStore)
    return store.events


def test_shared_only_where_the_control_store_hands_out_leases(url: str, control_url: str, tmp_path: Path) -> None:
    shared = store_from_settings(Settings(data_dir=tmp_path, store=control_url, events_store=url))
    assert shared.capabilities.concurrent_writers is True
    alone = store_from_settings(Settings(data_dir=tmp_path, events_store=url))  # SQLite control: no leases
    assert alone.capabilities.concurrent_writers is False
    embedded = store_from_settings(Settings(data_dir=tmp_path, store=control_url,
                                            events_store=f"chdb://{tmp_path / 'chdb'}"))
    assert embedded.capabilities.concurrent_writers is False  # one process owns a chDB directory


# What each part of the lease is for ---------------------------------------------------------------


async def test_a_later_write_wins_whatever_the_nodes_clocks_say(stores: Pair, scope: Scope) -> None:
    """Node A's clock runs an hour ahead: its versions are an hour of nanoseconds past node B's.
    B's later update must still win: B orders its versions past what A published."""
    a, b = stores
    events_of(a)._clock.advance(time.time_ns() + 3600 * 10**9)  # a clock an hour fast
    sid = new_id()
    event = make_event(sid, metadata={"k": 1})
    await a.write_events(scope, [event])
    assert await b.update_event(scope, event.event_id, EventUpdate(metadata={"k": 2}))
    for node in (a, b):
        got = await node.get_event(scope, event.event_id)
        assert got is not None and got.metadata == {"k": 2}


async def test_a_node_forgets_session_rows_another_node_changed(stores: Pair, scope: Scope) -> None:
    """A remembers the session row its group stored; B then widens that session; A's next event
    must widen B's row, not the one it remembers."""
    a, b = stores
    sid = new_id()
    await a.write_events(scope, [make_event(sid, start=5_000, end=6_000)])
    await b.write_events(scope, [make_event(sid, start=1_000, end=2_000)])  # earlier: widens the start
    await a.write_events(scope, [make_event(sid, start=8_000, end=9_000)])  # later: widens the end
    for node in (a, b):
        session = await node.get_event(scope, sid)
        assert session is not None and (session.start_time, session.end_time) == (1_000, 9_000)


async def test_reads_see_another_nodes_insert_into_a_merged_day(stores: Pair, scope: Scope, shim: Shim,
                                                                database: str) -> None:
    """A day merged into one part holds one version per event, and a store that is the only
    writer reads it without FINAL until it inserts there itself. B's insert into that day must
    not show A two versions of an event."""
    a, b = stores
    sid = new_id()
    event = make_event(sid, metadata={"v": 1})
    await a.write_events(scope, [event])
    shim.admin(f"OPTIMIZE TABLE {database}.events FINAL")
    query = EventQuery(limit=100)
    first, _ = await a.export_events(scope, query)
    assert sorted(e.event_id for e in first) == sorted([sid, event.event_id])
    assert await b.update_event(scope, event.event_id, EventUpdate(metadata={"v": 2}))
    again, total = await a.export_events(scope, query)
    assert total == 2 and sorted(e.event_id for e in again) == sorted([sid, event.event_id])
    assert [e.metadata for e in again if e.event_id == event.event_id] == [{"v": 2}]


async def test_many_projects_in_one_group_and_across_nodes(stores: Pair, scope: Scope) -> None:
    """Writes of several projects, queued together on each node, while the other node writes the
    same projects: every session covers its events (leases taken in one order: no deadlock)."""
    a, b = stores
    scopes = [scope, await scope_for(a, "race-2"), await scope_for(b, "race-3")]
    sids = [new_id() for _ in scopes]
    calls = []
    for round_ in range(6):
        for i, (s, sid) in enumerate(zip(scopes, sids)):
            node = (a, b)[(round_ + i) % 2]
            calls.append(node.write_events(s, [make_event(sid, start=1_000 + round_ * 100 + i, end=50_000 - round_)]))
    await races.race(*calls)
    for i, (s, sid) in enumerate(zip(scopes, sids)):
        session = await b.get_event(s, sid)
        assert session is not None and (session.start_time, session.end_time) == (1_000 + i, 50_000)
        assert len(await a.session_events(s, sid)) == 7  # the session and its six events


async def test_a_write_that_gets_no_lease_in_time_is_shed_and_the_next_is_stored(
        url: str, control_url: str, tmp_path: Path) -> None:
    """Another holder keeps the project's lease past the write timeout: every write queued on the
    node fails with Overloaded (503 + Retry-After), none hangs, and once the lease is free the
    node writes again."""
    node = store_from_settings(Settings(data_dir=tmp_path / "data", store=control_url, events_store=url,
                                        write_timeout_seconds=0.3))
    await node.open()
    blocker = PostgresWriteLeases(control_url, wait=10)
    try:
        scope = await scope_for(node, "held")
        sid = new_id()
        async with blocker.hold([scope.project_id]):
            results = await asyncio.wait_for(asyncio.gather(
                *(node.write_events(scope, [make_event(sid)]) for _ in range(3)), return_exceptions=True), 30)
            assert all(isinstance(r, Overloaded) for r in results), results
        event = make_event(sid)
        await node.write_events(scope, [event])
        assert await node.get_event(scope, event.event_id) is not None
    finally:
        await blocker.close()
        await node.close()


# The leases on PostgreSQL ------------------------------------------------------------------------


@pytest.fixture
async def leases(control_url: str, anyio_backend: str) -> AsyncIterator[Callable[..., PostgresWriteLeases]]:
    made: list[PostgresWriteLeases] = []

    def make(wait: float | None = 10.0) -> PostgresWriteLeases:
        made.append(PostgresWriteLeases(control_url, wait=wait))
        return made[-1]

    yield make
    for lease in made:
        await lease.close()


async def test_a_lease_serialises_holders_of_a_project_only(leases: Callable[..., PostgresWriteLeases]) -> None:
    first, second, third = leases(), leases(), leases()
    entered = asyncio.Event()

    async def second_holder() -> tuple[int, bool]:
        async with second.hold(["p1"]) as lease:
            entered.set()
            return lease.floor, lease.others_wrote

    async with first.hold(["p1", "p2"]) as lease:
        assert (lease.floor, lease.others_wrote) == (0, False)  # nobody published yet
        waiting = asyncio.create_task(second_holder())
        await asyncio.sleep(0.3)
        assert not entered.is_set()  # p1 is held
        async with third.hold(["p3"]):  # another project is not
            pass
        await first.publish(41)
        await first.publish(42)
    floor, others_wrote = await asyncio.wait_for(waiting, 10)
    assert (floor, others_wrote) == (42, True)
    async with first.hold(["p2"]) as lease:  # nobody else published p2 since
        assert (lease.floor, lease.others_wrote) == (42, False)


async def test_a_lease_wait_is_bounded(leases: Callable[..., PostgresWriteLeases]) -> None:
    holder, impatient = leases(), leases(wait=0.2)
    async with holder.hold(["p"]):
        began = time.monotonic()
        with pytest.raises(Overloaded):
            async with impatient.hold(["p"]):
                pass
        assert time.monotonic() - began < 5
    async with impatient.hold(["p"]):  # free again, and the impatient one still works
        pass


async def test_a_dead_holders_lease_is_freed_and_what_it_published_stays(
        leases: Callable[..., PostgresWriteLeases], control_url: str) -> None:
    dying, next_holder = leases(), leases()
    with pytest.raises(StoreUnavailable):
        async with dying.hold(["p"]):
            await dying.publish(7)
            # The holder's connection dies (its node was killed, the network was cut).
            with psycopg.connect(control_url, autocommit=True) as admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' "
                              "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
            await dying.publish(8)  # never a new connection: it would not hold the lease
    async with next_holder.hold(["p"]) as lease:
        assert (lease.floor, lease.others_wrote) == (7, True)
    async with dying.hold(["p"]) as lease:  # the dead one's object reconnects for its next hold
        assert lease.floor == 7


# Two server processes ----------------------------------------------------------------------------


@contextlib.contextmanager
def two_nodes(tmp_path: Path, url: str, control_url: str) -> Iterator[tuple[TracehiveServer, TracehiveServer, str]]:
    """Two ``tracehive serve`` on one PostgreSQL and one events store, and a key both accept."""
    args = ["--store", control_url, "--events-store", url]
    with TracehiveServer(tmp_path / "one", extra_args=args) as one, \
            TracehiveServer(tmp_path / "two", extra_args=args) as two:
        key = one.bootstrap_key or two.bootstrap_key
        assert key is not None
        yield one, two, key


def test_two_servers_share_one_events_store(url: str, control_url: str, tmp_path: Path) -> None:
    """Two ``tracehive serve`` on one PostgreSQL and one events store, sent every other batch of
    one session: one node's events widen its end, the other's its start, and each node sees the
    whole session, widened by both."""
    with two_nodes(tmp_path, url, control_url) as (one, two, key):
        headers = {"Authorization": f"Bearer {key}"}
        sid = str(uuid.uuid4())
        sent: list[str] = []
        with one.client(key) as c1, two.client(key) as c2:
            for i in range(20):
                start, end = (1_000_000 + i, 2_000_000 + i) if i % 2 == 0 else (1_000_000 - i, 1_500_000)
                event = {"event_id": str(uuid.uuid4()), "session_id": sid, "event_type": "tool",
                         "event_name": f"step-{i}", "inputs": {"i": i}, "start_time": start, "end_time": end}
                sent.append(event["event_id"])
                reply = (c1, c2)[i % 2].post("/v1/events/batch", json={"events": [event]}, headers=headers)
                assert reply.status_code == 200, reply.text
            for client in (c1, c2):
                tree = client.get(f"/v1/sessions/{sid}", headers=headers).json()
                assert sorted(c["event_id"] for c in tree["children"]) == sorted(sent)
                assert (tree["start_time"], tree["end_time"]) == (1_000_000 - 19, 2_000_000 + 18)


def test_a_node_killed_mid_traffic_leaves_the_others_writing(url: str, control_url: str, tmp_path: Path) -> None:
    """Node one is killed (SIGKILL) while its client sends batches of a session: node two then
    writes the same session at once (the dead node's lease went with its connection), and every
    batch node one acknowledged is stored."""
    with two_nodes(tmp_path, url, control_url) as (one, two, key):
        headers = {"Authorization": f"Bearer {key}"}
        sid = str(uuid.uuid4())
        acked: list[str] = []
        stop = threading.Event()

        def send_to_one() -> None:
            with one.client(key, timeout=10) as client:
                for i in range(10_000):
                    if stop.is_set():
                        return
                    batch = [{"event_id": str(uuid.uuid4()), "session_id": sid, "event_type": "tool",
                              "event_name": f"one-{i}-{j}", "inputs": {"j": j}} for j in range(20)]
                    try:
                        reply = client.post("/v1/events/batch", json={"events": batch}, headers=headers)
                    except httpx.HTTPError:
                        return  # the node died under this request: not acknowledged
                    if reply.status_code == 200:
                        acked.extend(e["event_id"] for e in batch)

        sender = threading.Thread(target=send_to_one)
        sender.start()
        deadline = time.monotonic() + 60
        while len(acked) < 200 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(acked) >= 200, "node one acknowledged too little before the kill"
        one.kill9()
        stop.set()
        sender.join(30)
        with two.client(key) as client:
            began = time.monotonic()
            eid = str(uuid.uuid4())
            reply = client.post("/v1/events/batch", headers=headers, json={"events": [
                {"event_id": eid, "session_id": sid, "event_type": "tool", "event_name": "two", "inputs": {}}]})
            assert reply.status_code == 200, reply.text
            assert time.monotonic() - began < 10
            tree = client.get(f"/v1/sessions/{sid}", headers=headers).json()
            stored = {c["event_id"] for c in tree["children"]}
            assert eid in stored
            missing = set(acked) - stored
            assert not missing, f"{len(missing)} acknowledged events are not stored"
