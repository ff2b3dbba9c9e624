"""Many writers, one database: the write rules of ``storage/base.py`` hold under races.

Every test opens TWO store instances over ONE database (two ``PostgresStore`` on the same
database, each with its own pool; two ``SQLiteStore`` on the same file, each with its own writer
thread, serialised by SQLite's write lock) and races them on the same sessions and events with
``asyncio.gather``: many coroutines per instance, so PostgreSQL runs real concurrent
transactions. Each case is repeated for a number of rounds with fresh ids, so that the racy
interleavings (a kept update committed while its event is being inserted, an alias claimed while
a child is being linked, opposite lock orders) come up, and after every round the stored state is
checked exactly. No exception other than the one a case expects may escape a store call: no
psycopg error, no ``StoreUnavailable`` (a lost retry), never a 500.

Only the write-side ``Store`` methods are used, plus ``get_event`` and ``session_events``. One
backend-specific look is taken: the kept-update table must be empty once the events it waited
for are stored (an update kept but never applied, or applied and kept, would show there).

PostgreSQL's ``deadlock_timeout`` (1 s by default: how long a lock wait lasts before the deadlock
check runs) is lowered on the test database so the deadlock-prone cases run many rounds in
seconds; it changes when a deadlock is found, not whether.
"""

from __future__ import annotations

import asyncio
import copy
import random
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import psycopg
import pytest

from tests.storage.test_contract import make_event, make_session, new_id
from tracehive.model.errors import BadRequest, IdRoleClash
from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import KeyKind, Scope
from tracehive.storage.base import Store
from tracehive.storage.clickhouse import ClickHouseEventStore, CombinedStore
from tracehive.storage.postgres import PostgresStore
from tracehive.storage.sqlite import SQLiteStore

pytestmark = pytest.mark.anyio

Pair = tuple[Store, Store]
# How many rounds a race runs, given the count written in the test (the ``rounds`` fixture).
Rounds = Callable[[int], int]


# Fixtures and helpers ----------------------------------------------------------------------------


@pytest.fixture
def rounds() -> Rounds:
    """Every race as many rounds as written; a module whose backend writes slowly (over HTTP)
    overrides this with fewer."""
    return lambda written: written


@pytest.fixture
async def stores(store_factory: Callable[[], Store], anyio_backend: str) -> AsyncIterator[Pair]:
    """Two instances over the same data (``store_factory`` returns a store over the same
    database or file on every call), both open."""
    first, second = store_factory(), store_factory()
    if isinstance(first, PostgresStore):
        with psycopg.connect(first.url, autocommit=True) as conn:
            dbname = conn.info.dbname
            conn.execute(f"ALTER DATABASE \"{dbname}\" SET deadlock_timeout = '20ms'")
    await first.open()
    await second.open()
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


@pytest.fixture
async def scope(stores: Pair) -> Scope:
    """A project made on one instance; its key resolves alike on the other (one database)."""
    project, _ = await stores[0].ensure_project("race")
    again, created = await stores[1].ensure_project("race")
    assert again == project and not created
    _, key = await stores[0].create_key(project.project_id, KeyKind.PROJECT)
    scope = await stores[1].resolve_key(key)
    assert scope is not None and scope == await stores[0].resolve_key(key)
    return scope


async def race(*calls: Awaitable[Any], expected: tuple[type[BaseException], ...] = ()) -> list[Any]:
    """Run the calls at once; return their results (or expected exceptions). Any other exception
    fails the test, with every unexpected one listed."""
    results = await asyncio.gather(*calls, return_exceptions=True)
    unexpected = [r for r in results if isinstance(r, BaseException) and not isinstance(r, expected)]
    if unexpected:
        kinds = ", ".join(f"{type(e).__module__}.{type(e).__name__}: {e}" for e in unexpected)
        raise AssertionError(f"{len(unexpected)} unexpected exception(s) escaped the store: {kinds}") \
            from unexpected[0]
    return results


def shuffled(calls: list[Awaitable[Any]], rng: random.Random) -> list[Awaitable[Any]]:
    rng.shuffle(calls)
    return calls


async def pending_updates(store: Store) -> int:
    """Rows in the kept-update table (backend-specific: a look under the contract)."""
    if isinstance(store, CombinedStore) and isinstance(store.events, ClickHouseEventStore):
        [(count,)] = await store.events._executor().query("SELECT count() FROM pending_updates")
        return int(count)
    if isinstance(store, PostgresStore):
        async with await psycopg.AsyncConnection.connect(store.url, autocommit=True) as conn:
            row = await (await conn.execute("SELECT count(*) FROM pending_updates")).fetchone()
            assert row is not None
            return int(row[0])
    assert isinstance(store, SQLiteStore)
    conn = sqlite3.connect(store.path)
    try:
        return int(conn.execute("SELECT count(*) FROM pending_updates").fetchone()[0])
    finally:
        conn.close()


async def stored(store: Store, scope: Scope, event_id: str) -> Event:
    got = await store.get_event(scope, event_id)
    assert got is not None, f"event {event_id} is not stored"
    return got


async def ids_of_session(store: Store, scope: Scope, session_id: str) -> list[str]:
    return [e.event_id for e in await store.session_events(scope, session_id)]


def assert_listed_once(listed: Sequence[str], expected: set[str]) -> None:
    assert len(listed) == len(set(listed)), f"listed twice: {sorted(i for i in listed if listed.count(i) > 1)}"
    assert set(listed) == expected


# 1. Session start: concurrent merges ----------------------------------------------------------------


async def test_concurrent_session_starts_merge_every_key(stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """K starts of one session at once (create_session, and session events in write_events),
    each with its own metadata and user_properties key: one session, every key kept."""
    rng = random.Random(1)
    racers = 10
    for _ in range(rounds(20)):
        sid = new_id()
        calls: list[Awaitable[Any]] = []
        for i in range(racers):
            session = make_session(sid, name="started", metadata={f"m{i}": i, "nested": {f"n{i}": i}},
                                   user_properties={f"u{i}": i})
            store = stores[i % 2]
            if i % 4 == 3:
                calls.append(store.write_events(scope, [session]))
            else:
                calls.append(store.create_session(scope, session))
        results = await race(*shuffled(calls, rng))
        # Every create_session returns what is stored: at least its own keys.
        for result in results:
            if isinstance(result, Event):
                assert result.event_id == sid and result.event_type == "session"

        got = await stored(stores[rng.randrange(2)], scope, sid)
        assert got.event_type == "session" and got.event_name == "started"
        assert got.metadata == {**{f"m{i}": i for i in range(racers)},
                                "nested": {f"n{i}": i for i in range(racers)}}
        assert got.user_properties == {f"u{i}": i for i in range(racers)}
        assert await ids_of_session(stores[0], scope, sid) == [sid]


async def test_session_starts_racing_its_events_adopt_the_implicit_session(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """Starts of a session racing events that name it (which create it implicitly): the start
    always adopts it (its name, every start's keys) and its times cover every event."""
    rng = random.Random(2)
    for _ in range(rounds(20)):
        sid = new_id()
        calls: list[Awaitable[Any]] = []
        events: list[Event] = []
        for i in range(6):
            calls.append(stores[i % 2].create_session(
                scope, make_session(sid, name="explicit", start=1_000, metadata={f"m{i}": i})))
            start = rng.randrange(500, 3_000)
            event = make_event(sid, start=start, end=start + rng.randrange(1, 500))
            events.append(event)
            calls.append(stores[(i + 1) % 2].write_events(scope, [event]))
        await race(*shuffled(calls, rng))

        got = await stored(stores[0], scope, sid)
        assert got.event_type == "session" and got.event_name == "explicit"
        assert got.metadata == {f"m{i}": i for i in range(6)}
        assert got.start_time == min(1_000, *(e.start_time for e in events))
        assert got.end_time == max(1_000, *(e.end_time for e in events))
        assert got.duration == got.end_time - got.start_time
        assert sorted(got.children_ids) == sorted(e.event_id for e in events)
        assert_listed_once(await ids_of_session(stores[1], scope, sid), {sid, *(e.event_id for e in events)})


# 2. Session widening -----------------------------------------------------------------------------------


async def test_concurrent_batches_create_and_widen_one_session(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """Many batches naming the same unknown session, from both instances, with different times:
    the session exists once and covers every event exactly."""
    rng = random.Random(3)
    for _ in range(rounds(20)):
        sid = new_id()
        batches: list[list[Event]] = []
        for _ in range(16):
            batch = []
            for _ in range(rng.randrange(1, 4)):
                start = rng.randrange(1_000, 100_000)
                batch.append(make_event(sid, start=start, end=start + rng.randrange(0, 50_000)))
            batches.append(batch)
        await race(*[stores[i % 2].write_events(scope, batch) for i, batch in enumerate(batches)])

        events = [e for batch in batches for e in batch]
        session = await stored(stores[1], scope, sid)
        assert session.event_type == "session" and session.parent_id is None
        assert session.start_time == min(e.start_time for e in events)
        assert session.end_time == max(e.end_time for e in events)
        assert session.duration == session.end_time - session.start_time
        listed = await ids_of_session(stores[0], scope, sid)
        assert_listed_once(listed, {sid, *(e.event_id for e in events)})


# 3. Re-sent events merge their dicts -------------------------------------------------------------------


async def test_concurrent_resends_of_one_event_merge_every_key(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    rng = random.Random(4)
    for _ in range(rounds(20)):
        sid, eid = new_id(), new_id()
        racers = 10
        calls = [
            stores[i % 2].write_events(scope, [make_event(
                sid, eid, start=1_000, end=1_100, metadata={f"k{i}": i, "deep": {f"d{i}": i}},
                feedback={f"f{i}": i}, metrics={f"x{i}": i}, config={f"c{i}": i},
                user_properties={f"u{i}": i},
            )])
            for i in range(racers)
        ]
        await race(*shuffled(calls, rng))

        got = await stored(stores[0], scope, eid)
        assert got.metadata == {**{f"k{i}": i for i in range(racers)}, "deep": {f"d{i}": i for i in range(racers)}}
        assert got.feedback == {f"f{i}": i for i in range(racers)}
        assert got.metrics == {f"x{i}": i for i in range(racers)}
        assert got.config == {f"c{i}": i for i in range(racers)}
        assert got.user_properties == {f"u{i}": i for i in range(racers)}
        assert_listed_once(await ids_of_session(stores[1], scope, sid), {sid, eid})


async def test_concurrent_updates_and_resends_of_a_stored_event_merge_every_key(
    stores: Pair, scope: Scope, rounds: Rounds
) -> None:
    """Updates of a stored event at once on both instances, racing re-sends of it: no update's
    key is lost (each update merges into the latest committed version of the row)."""
    rng = random.Random(14)
    for round_ in range(rounds(20)):
        sid, eid = new_id(), new_id()
        await stores[round_ % 2].write_events(scope, [make_event(sid, eid, metadata={"own": 0})])
        calls: list[Awaitable[Any]] = []
        for i in range(8):
            calls.append(stores[i % 2].update_event(
                scope, eid, EventUpdate(metadata={f"u{i}": i}, feedback={f"f{i}": i}, metrics={f"m{i}": i})))
        for i in range(4):
            calls.append(stores[i % 2].write_events(scope, [make_event(sid, eid, metadata={f"w{i}": i})]))
        results = await race(*shuffled(calls, rng))
        assert results.count(True) == 8  # every update found the event
        got = await stored(stores[0], scope, eid)
        assert got.metadata == {"own": 0, **{f"u{i}": i for i in range(8)}, **{f"w{i}": i for i in range(4)}}
        assert got.feedback == {f"f{i}": i for i in range(8)}
        assert got.metrics == {f"m{i}": i for i in range(8)}


# 4. Kept updates racing their event ---------------------------------------------------------------------


async def test_kept_update_racing_its_event_is_applied_exactly_once(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """``update_event(keep_if_missing=True)`` on one instance while the event is written on the
    other: the update is applied every time, after the event's own values, and only once (a
    later re-send of the event is not overridden by it again)."""
    rng = random.Random(5)
    for round_ in range(rounds(25)):
        sid = new_id()
        pairs = 6  # events raced at once in this round, each by an update and a write
        eids = [new_id() for _ in range(pairs)]
        calls: list[Awaitable[Any]] = []
        for i, eid in enumerate(eids):
            updater, writer = (stores[0], stores[1]) if (round_ + i) % 2 == 0 else (stores[1], stores[0])
            calls.append(updater.update_event(
                scope, eid, EventUpdate(metadata={"upd": "kept", f"only{i}": i}, feedback={"rating": i},
                                        outputs={"from": "update"}),
                keep_if_missing=True))
            calls.append(writer.write_events(scope, [make_event(
                sid, eid, start=1_000 + i, metadata={"own": i, "upd": "event"}, outputs={"from": "event"})]))
        await race(*shuffled(calls, rng))

        for i, eid in enumerate(eids):
            got = await stored(stores[i % 2], scope, eid)
            assert got.metadata == {"own": i, "upd": "kept", f"only{i}": i}, f"round {round_}, event {i}"
            assert got.feedback == {"rating": i} and got.outputs == {"from": "update"}
        assert await pending_updates(stores[0]) == 0, f"round {round_}: a kept update was left behind"

        # Applied once: re-sending the events is not overridden by the update again.
        await race(*[stores[(i + 1) % 2].write_events(scope, [make_event(
            sid, eid, start=1_000 + i, metadata={"upd": "rewrite"}, outputs={"from": "rewrite"})])
            for i, eid in enumerate(eids)])
        for i, eid in enumerate(eids):
            got = await stored(stores[0], scope, eid)
            assert got.metadata == {"own": i, "upd": "rewrite", f"only{i}": i}
            assert got.outputs == {"from": "rewrite"} and got.feedback == {"rating": i}


async def test_kept_updates_racing_each_other_are_all_applied(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """Two kept updates for one missing event at once on the two instances (both kept, merged),
    then the event arrives; and the same three-way, with the event racing both updates."""
    rng = random.Random(6)
    for round_ in range(rounds(20)):
        sid, eid, eid3 = new_id(), new_id(), new_id()
        first, second = (stores[0], stores[1]) if round_ % 2 == 0 else (stores[1], stores[0])
        found = await race(
            first.update_event(scope, eid, EventUpdate(metadata={"a": 1, "shared": "a"}, feedback={"fa": 1}),
                               keep_if_missing=True),
            second.update_event(scope, eid, EventUpdate(metadata={"b": 2, "shared": "b"}, metrics={"mb": 2}),
                                keep_if_missing=True),
        )
        assert found == [False, False]
        assert await stores[0].get_event(scope, eid) is None
        await stores[round_ % 2].write_events(scope, [make_event(sid, eid, metadata={"own": 0, "shared": "own"})])
        got = await stored(stores[1], scope, eid)
        assert got.metadata["own"] == 0 and got.metadata["a"] == 1 and got.metadata["b"] == 2
        # Kept updates are applied after the event's own values, in one of the two orders.
        assert got.metadata["shared"] in ("a", "b") and len(got.metadata) == 4
        assert got.feedback == {"fa": 1} and got.metrics == {"mb": 2}

        calls = [
            first.update_event(scope, eid3, EventUpdate(metadata={"a": 1}), keep_if_missing=True),
            second.update_event(scope, eid3, EventUpdate(metadata={"b": 2}), keep_if_missing=True),
            stores[rng.randrange(2)].write_events(scope, [make_event(sid, eid3, metadata={"own": 0})]),
        ]
        await race(*shuffled(calls, rng))
        got = await stored(stores[0], scope, eid3)
        assert got.metadata == {"own": 0, "a": 1, "b": 2}, f"round {round_}"
        assert await pending_updates(stores[1]) == 0, f"round {round_}: a kept update was left behind"


@pytest.mark.parametrize("how", ["implicit", "create_session"])
async def test_kept_session_update_racing_the_session(
        stores: Pair, scope: Scope, rounds: Rounds, how: str) -> None:
    """An update kept for a session while the session is created (implicitly by an event that
    names it, or by its start) on the other instance."""
    rng = random.Random(7)
    for round_ in range(rounds(20)):
        sids = [new_id() for _ in range(5)]
        calls: list[Awaitable[Any]] = []
        for i, sid in enumerate(sids):
            updater, writer = (stores[0], stores[1]) if (round_ + i) % 2 == 0 else (stores[1], stores[0])
            calls.append(updater.update_event(
                scope, sid, EventUpdate(metadata={"enriched": i}, user_properties={"u": i}), keep_if_missing=True))
            if how == "implicit":
                calls.append(writer.write_events(scope, [make_event(sid)]))
            else:
                calls.append(writer.create_session(scope, make_session(sid, metadata={"m": i})))
        await race(*shuffled(calls, rng))
        for i, sid in enumerate(sids):
            got = await stored(stores[i % 2], scope, sid)
            assert got.event_type == "session"
            own = {"m": i} if how == "create_session" else {}
            assert got.metadata == {**own, "enriched": i}, f"round {round_}"
            assert got.user_properties == {"u": i}
        assert await pending_updates(stores[0]) == 0


# 5. Aliases racing ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("where", ["same-session", "other-session"])
async def test_child_naming_an_alias_racing_its_claim_is_linked(
        stores: Pair, scope: Scope, rounds: Rounds, where: str) -> None:
    """A child whose parent is alias X, written on one instance while the event claiming X is
    written on the other: after both return, the child's parent is the claiming event."""
    rng = random.Random(8)
    for round_ in range(rounds(25)):
        calls: list[Awaitable[Any]] = []
        cases: list[tuple[str, str, str]] = []  # (alias, owner, child)
        for i in range(5):
            sid, alias, owner = new_id(), new_id(), new_id()
            child_sid = sid if where == "same-session" else new_id()
            child = make_event(child_sid, parent_id=alias, start=1_010)
            claimer, writer = (stores[0], stores[1]) if (round_ + i) % 2 == 0 else (stores[1], stores[0])
            calls.append(claimer.write_events(scope, [make_event(sid, owner, aliases=(alias,), start=1_000)]))
            calls.append(writer.write_events(scope, [child]))
            cases.append((alias, owner, child.event_id))
        await race(*shuffled(calls, rng))

        for alias, owner, child in cases:
            got = await stored(stores[rng.randrange(2)], scope, child)
            assert got.parent_id == owner, f"round {round_}: the child still points at alias {alias}"
            parent = await stored(stores[rng.randrange(2)], scope, owner)
            assert parent.children_ids == [child]
            assert await stores[0].get_event(scope, alias) is None


async def test_many_children_and_two_claimers_racing_for_one_alias(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """Two events claim the same alias at once on the two instances while children naming it are
    written on both: one claimer keeps it, and every child links to that one."""
    rng = random.Random(9)
    for round_ in range(rounds(20)):
        sid, other_sid, alias = new_id(), new_id(), new_id()
        claimers = [new_id(), new_id()]
        children = [make_event(sid if i % 2 else other_sid, parent_id=alias, start=1_000 + i) for i in range(6)]
        calls: list[Awaitable[Any]] = [
            stores[0].write_events(scope, [make_event(sid, claimers[0], aliases=(alias,))]),
            stores[1].write_events(scope, [make_event(sid, claimers[1], aliases=(alias,))]),
            *(stores[i % 2].write_events(scope, [child]) for i, child in enumerate(children)),
        ]
        await race(*shuffled(calls, rng))

        parents = {(await stored(stores[i % 2], scope, c.event_id)).parent_id for i, c in enumerate(children)}
        assert len(parents) == 1, f"round {round_}: children split over {parents}"
        [winner] = parents
        assert winner in claimers, f"round {round_}: children left at {winner} (alias {alias})"
        loser = claimers[1 - claimers.index(winner)]
        assert sorted((await stored(stores[0], scope, winner)).children_ids) == sorted(c.event_id for c in children)
        assert (await stored(stores[1], scope, loser)).children_ids == []
        # The alias stays with the winner for later children too.
        late = make_event(other_sid, parent_id=alias, start=2_000)
        await stores[round_ % 2].write_events(scope, [late])
        assert (await stored(stores[0], scope, late.event_id)).parent_id == winner


async def test_a_link_to_the_childs_own_session_is_never_redirected_under_races(
    stores: Pair, scope: Scope, rounds: Rounds
) -> None:
    """An alias X that is also the child's own session (the child hangs under its session X):
    the racing claim of X never redirects that link, while a child of X in another session is
    redirected."""
    rng = random.Random(10)
    for round_ in range(rounds(20)):
        calls: list[Awaitable[Any]] = []
        cases = []
        for i in range(4):
            x, owner_sid, owner = new_id(), new_id(), new_id()
            under_session = make_event(x, start=1_000)  # session_id = parent_id = X
            elsewhere = make_event(new_id(), parent_id=x, start=1_000)
            claimer, writer = (stores[0], stores[1]) if (round_ + i) % 2 == 0 else (stores[1], stores[0])
            calls.append(claimer.write_events(scope, [make_event(owner_sid, owner, aliases=(x,))]))
            calls.append(writer.write_events(scope, [under_session]))
            calls.append(claimer.write_events(scope, [elsewhere]))
            cases.append((x, owner, under_session.event_id, elsewhere.event_id))
        await race(*shuffled(calls, rng))

        for x, owner, under_session, elsewhere in cases:
            assert (await stored(stores[0], scope, under_session)).parent_id == x, f"round {round_}"
            assert (await stored(stores[1], scope, elsewhere)).parent_id == owner, f"round {round_}"
            session = await stored(stores[0], scope, x)
            assert session.event_type == "session" and session.children_ids == [under_session]
            assert (await stored(stores[1], scope, owner)).children_ids == [elsewhere]


# 6. Role clashes --------------------------------------------------------------------------------------------


async def test_role_clash_race_has_exactly_one_winner(stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """A non-session event whose id is S, racing events that name S as their session: one batch
    wins, the other is refused with IdRoleClash and none of it is stored."""
    rng = random.Random(11)
    wins = {"event": 0, "session": 0}
    for round_ in range(rounds(30)):
        s, t = new_id(), new_id()
        # Batch 1: an event with id S (in session T) among innocent siblings, at a varying place.
        event_s = make_event(t, s, start=1_000)
        siblings = [make_event(t, start=1_001 + i) for i in range(rng.randrange(1, 5))]
        batch_1 = [*siblings]
        batch_1.insert(rng.randrange(len(batch_1) + 1), event_s)
        # Batch 2: events in session S, and one in a session of its own.
        in_s = [make_event(s, start=1_000 + i) for i in range(rng.randrange(1, 4))]
        bystander = make_event(new_id(), start=1_000)
        batch_2 = [*in_s]
        batch_2.insert(rng.randrange(len(batch_2) + 1), bystander)
        one, two = (stores[0], stores[1]) if round_ % 2 == 0 else (stores[1], stores[0])
        calls = [one.write_events(scope, batch_1), two.write_events(scope, batch_2)]
        order = [0, 1] if rng.random() < 0.5 else [1, 0]
        results = await race(*[calls[i] for i in order], expected=(IdRoleClash,))
        results = [results[order.index(i)] for i in range(2)]
        failed = [isinstance(r, IdRoleClash) for r in results]
        assert failed.count(True) == 1, f"round {round_}: {results}"
        clash = next(r for r in results if isinstance(r, IdRoleClash))
        assert s in clash.ids

        got = await stored(stores[0], scope, s)
        if failed[1]:  # the event with id S won
            wins["event"] += 1
            assert got.event_type == "tool" and got.session_id == t
            assert_listed_once(await ids_of_session(stores[1], scope, t), {t, s, *(e.event_id for e in siblings)})
            for lost in [*in_s, bystander]:
                assert await stores[1].get_event(scope, lost.event_id) is None
            assert await stores[0].get_event(scope, bystander.session_id) is None
            assert await ids_of_session(stores[0], scope, s) == []
        else:  # the session S won
            wins["session"] += 1
            assert got.event_type == "session"
            assert_listed_once(await ids_of_session(stores[1], scope, s), {s, *(e.event_id for e in in_s)})
            for lost in siblings:
                assert await stores[0].get_event(scope, lost.event_id) is None
            assert await stores[1].get_event(scope, t) is None
            assert await ids_of_session(stores[0], scope, t) == []
    # Both outcomes come up (seen with -s); not asserted, since which one does is timing.
    print(f"role clash winners: {wins}")


async def test_session_start_racing_an_event_with_its_id(stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """create_session(S) racing a non-session event with id S: one wins, the other is refused
    (BadRequest, IdRoleClash being one) and leaves nothing behind."""
    for round_ in range(rounds(20)):
        s, t = new_id(), new_id()
        one, two = (stores[0], stores[1]) if round_ % 2 == 0 else (stores[1], stores[0])
        results = await race(
            one.create_session(scope, make_session(s, metadata={"m": 1})),
            two.write_events(scope, [make_event(t, s, start=1_000)]),
            expected=(BadRequest,),
        )
        failed = [isinstance(r, BadRequest) for r in results]
        assert failed.count(True) == 1, f"round {round_}: {results}"
        got = await stored(stores[0], scope, s)
        if failed[0]:
            assert got.event_type == "tool" and got.metadata == {}
            assert await ids_of_session(stores[1], scope, s) == []
        else:
            assert got.event_type == "session" and got.metadata == {"m": 1}
            assert await stores[1].get_event(scope, t) is None


# 7. Idempotent retries ---------------------------------------------------------------------------------------


def _batch(sid: str, other_sid: str, ids: list[str]) -> list[Event]:
    root, child, grandchild, elsewhere = ids
    return [
        make_session(sid, name="retried", start=900, metadata={"s": 1}),
        make_event(sid, root, start=1_000, end=1_500, metadata={"k": "root"}, metrics={"n": 1}),
        make_event(sid, child, parent_id=root, start=1_100, end=1_200, inputs={"q": "x"}),
        make_event(sid, grandchild, parent_id=child, start=1_150, end=1_160, outputs={"a": 1}),
        make_event(other_sid, elsewhere, start=2_000, end=2_100),
    ]


async def test_the_same_batch_written_concurrently_is_stored_once(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    rng = random.Random(12)
    for _ in range(rounds(15)):
        sid, other_sid = new_id(), new_id()
        ids = [new_id() for _ in range(4)]
        for _ in range(2):
            await race(*shuffled([stores[i % 2].write_events(scope, copy.deepcopy(_batch(sid, other_sid, ids)))
                                  for i in range(8)], rng))
        root, child, grandchild, elsewhere = ids
        assert_listed_once(await ids_of_session(stores[0], scope, sid), {sid, root, child, grandchild})
        assert_listed_once(await ids_of_session(stores[1], scope, other_sid), {other_sid, elsewhere})
        expected = {e.event_id: e for e in _batch(sid, other_sid, ids)}
        for event in await stores[1].session_events(scope, sid):
            if event.event_id == sid:
                continue  # checked below (its times cover its events)
            want = expected[event.event_id]
            assert (event.event_name, event.parent_id, event.metadata, event.inputs, event.outputs) == (
                want.event_name, want.parent_id, want.metadata, want.inputs, want.outputs)
            assert (event.start_time, event.end_time) == (want.start_time, want.end_time)
        session = await stored(stores[0], scope, sid)
        assert session.event_name == "retried" and session.metadata == {"s": 1}
        assert (session.start_time, session.end_time, session.duration) == (900, 1_500, 600)
        assert session.children_ids == [root]
        assert (await stored(stores[0], scope, root)).children_ids == [child]
        assert (await stored(stores[1], scope, root)).metrics == {"n": 1}


# 8. Deadlock-prone batches ---------------------------------------------------------------------------------------


async def _opposite_order_rounds(stores: Pair, scope: Scope, *, batches: int, rounds: int) -> None:
    """``batches`` writes at once per round, re-sending the same stored events, every other one
    in reverse order, spread over both instances; each adds its own key to every event."""
    sid = new_id()
    ids = [new_id() for _ in range(8)]
    await stores[0].write_events(scope, [make_event(sid, eid, start=1_000 + i) for i, eid in enumerate(ids)])
    rng = random.Random(13)
    expected: dict[str, dict[str, int]] = {eid: {} for eid in ids}
    for round_ in range(rounds):
        calls = []
        for b in range(batches):
            order = ids if b % 2 == 0 else ids[::-1]
            key = f"r{round_}b{b}"
            calls.append(stores[(b // 2 + b) % 2].write_events(scope, [
                make_event(sid, eid, start=1_000 + ids.index(eid), metadata={key: b}, metrics={key: b})
                for eid in order
            ]))
            for eid in ids:
                expected[eid][key] = b
        await race(*shuffled(calls, rng))
        for eid in rng.sample(ids, 2):
            got = await stored(stores[round_ % 2], scope, eid)
            assert got.metadata == expected[eid] and got.metrics == expected[eid], f"round {round_}"
    listed = await stores[1].session_events(scope, sid)
    assert_listed_once([e.event_id for e in listed], {sid, *ids})
    for event in listed:
        if event.event_id != sid:
            assert event.metadata == expected[event.event_id] and event.metrics == expected[event.event_id]


async def test_two_batches_sharing_events_in_opposite_orders_always_succeed(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """Two batches re-sending the same stored events in opposite orders, at once on the two
    instances: both succeed (PostgreSQL upserts rows sorted by id, so they lock them in one
    order) and both batches' keys are merged into every event."""
    await _opposite_order_rounds(stores, scope, batches=2, rounds=rounds(30))


async def test_many_batches_sharing_events_in_opposite_orders_always_succeed(
        stores: Pair, scope: Scope, rounds: Rounds) -> None:
    """The same with eight batches at once (four per instance, both orders on each)."""
    await _opposite_order_rounds(stores, scope, batches=8, rounds=rounds(20))
