"""The storage contract (``tracehive.storage.base.Store``). Every backend passes this file unchanged.

Only the abstract ``Store`` methods are used here: no SQL, no backend imports. The ``store``
fixture (tests/storage/conftest.py) runs each test against every registered backend.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from tracehive.model.event import Event, EventUpdate
from tracehive.model.keys import INGESTION_KEY_RE, PROJECT_KEY_RE, SECRET_LENGTH
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.filters import EventQuery, parse_export_request
from tracehive.storage.base import Pruned, Store

pytestmark = pytest.mark.anyio

_SESSION = object()  # parent_id default: the event hangs under its session


def new_id() -> str:
    return str(uuid.uuid4())


def make_event(
    session_id: str,
    event_id: str | None = None,
    *,
    parent_id: Any = _SESSION,
    event_type: str = "tool",
    start: float = 1_000,
    end: float | None = None,
    name: str = "step",
    source: str = "test",
    **fields: Any,
) -> Event:
    end = start + 10 if end is None else end
    return Event(
        event_id=event_id or new_id(),
        session_id=session_id,
        parent_id=session_id if parent_id is _SESSION else parent_id,
        event_type=event_type,
        event_name=name,
        source=source,
        start_time=start,
        end_time=end,
        duration=end - start,
        **fields,
    )


def make_session(session_id: str | None = None, *, start: float = 1_000, end: float | None = None,
                 name: str = "session", **fields: Any) -> Event:
    sid = session_id or new_id()
    return make_event(sid, sid, parent_id=None, event_type="session", start=start,
                      end=start if end is None else end, name=name, **fields)


async def scope_for(store: Store, project: str, kind: KeyKind = KeyKind.PROJECT) -> Scope:
    record, _ = await store.ensure_project(project)
    _, key = await store.create_key(record.project_id, kind)
    scope = await store.resolve_key(key)
    assert scope is not None
    return scope


@pytest.fixture
async def scope_a(store: Store) -> Scope:
    return await scope_for(store, "project-a")


@pytest.fixture
async def scope_b(store: Store) -> Scope:
    return await scope_for(store, "project-b")


async def non_session_ids(store: Store, scope: Scope, session_id: str) -> list[str]:
    return [e.event_id for e in await store.session_events(scope, session_id) if e.event_type != "session"]


# Lifecycle --------------------------------------------------------------------------------------


async def test_health_open_and_close_are_idempotent(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    assert await store.health() is False
    await store.open()
    await store.open()
    try:
        assert await store.health() is True
        project, created = await store.ensure_project("p")
        assert created
    finally:
        await store.close()
        await store.close()
    assert await store.health() is False


async def test_returned_writes_survive_reopening(store_factory: Callable[[], Store]) -> None:
    store = store_factory()
    await store.open()
    try:
        scope = await scope_for(store, "durable")
        session = await store.create_session(scope, make_session(name="kept"))
        event = make_event(session.session_id, metadata={"k": 1})
        await store.write_events(scope, [event])
        await store.update_event(scope, event.event_id, EventUpdate(feedback={"rating": 5}))
    finally:
        await store.close()

    again = store_factory()
    await again.open()
    try:
        [project] = await again.list_projects()
        assert project.name == "durable"
        stored = await again.get_event(scope, event.event_id)
        assert stored is not None
        assert stored.metadata == {"k": 1} and stored.feedback == {"rating": 5}
        stored_session = await again.get_event(scope, session.session_id)
        assert stored_session is not None and stored_session.event_name == "kept"
    finally:
        await again.close()


# Projects ---------------------------------------------------------------------------------------


async def test_ensure_project_is_idempotent(store: Store) -> None:
    first, created = await store.ensure_project("alpha")
    again, created_again = await store.ensure_project("alpha")
    other, other_created = await store.ensure_project("beta")
    assert created is True and created_again is False and other_created is True
    assert again == first
    assert other.project_id != first.project_id
    assert first.name == "alpha" and other.name == "beta"
    for project in (first, other):
        assert project.project_id and project.org_id and project.workspace_id
        assert isinstance(project.created_at, int) and project.created_at > 0


async def test_list_projects(store: Store) -> None:
    assert await store.list_projects() == []
    alpha, _ = await store.ensure_project("alpha")
    beta, _ = await store.ensure_project("beta")
    await store.ensure_project("alpha")
    listed = await store.list_projects()
    assert sorted(listed, key=lambda p: p.name) == [alpha, beta]


# Keys -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "shape"), [(KeyKind.PROJECT, PROJECT_KEY_RE), (KeyKind.INGESTION, INGESTION_KEY_RE)]
)
async def test_create_key_resolves_to_its_scope(store: Store, kind: KeyKind, shape: Any) -> None:
    project, _ = await store.ensure_project("keyed")
    await store.ensure_project("other")
    record, key = await store.create_key(project.project_id, kind)
    assert shape.match(key), key
    assert record.kind is kind
    assert record.project_id == project.project_id
    assert record.project_name == "keyed"
    assert record.revoked_at is None
    assert record.key_id and record.key_id in key

    scope = await store.resolve_key(key)
    assert scope == Scope(
        org_id=project.org_id,
        workspace_id=project.workspace_id,
        project_id=project.project_id,
        project_name="keyed",
        key_kind=kind,
        key_id=record.key_id,
    )
    assert scope.can_read is (kind is KeyKind.PROJECT)


async def test_keys_of_two_projects_resolve_to_their_own_project(store: Store) -> None:
    a, _ = await store.ensure_project("a")
    b, _ = await store.ensure_project("b")
    _, key_a = await store.create_key(a.project_id, KeyKind.PROJECT)
    _, key_b = await store.create_key(b.project_id, KeyKind.PROJECT)
    scope_a, scope_b = await store.resolve_key(key_a), await store.resolve_key(key_b)
    assert scope_a is not None and scope_a.project_id == a.project_id and scope_a.project_name == "a"
    assert scope_b is not None and scope_b.project_id == b.project_id and scope_b.project_name == "b"


async def test_unknown_or_altered_key_resolves_to_none(store: Store) -> None:
    project, _ = await store.ensure_project("p")
    _, key = await store.create_key(project.project_id, KeyKind.PROJECT)
    altered = key[:-1] + ("A" if key[-1] != "A" else "B")
    assert await store.resolve_key(altered) is None
    assert await store.resolve_key("hh_" + "x" * 24 + "_" + "y" * 64) is None
    assert await store.resolve_key("") is None
    assert await store.resolve_key(key) is not None


async def test_revoke_key(store: Store) -> None:
    project, _ = await store.ensure_project("p")
    revoked, key = await store.create_key(project.project_id, KeyKind.PROJECT)
    kept, kept_key = await store.create_key(project.project_id, KeyKind.INGESTION)

    assert await store.revoke_key(revoked.key_id) is True
    assert await store.resolve_key(key) is None
    assert await store.resolve_key(kept_key) is not None
    assert await store.revoke_key(revoked.key_id) is False  # no longer active
    assert await store.revoke_key("no-such-key-id") is False

    by_id = {r.key_id: r for r in await store.list_keys()}
    assert by_id[revoked.key_id].revoked_at is not None
    assert by_id[kept.key_id].revoked_at is None


async def test_list_keys_never_exposes_the_secret(store: Store) -> None:
    a, _ = await store.ensure_project("a")
    b, _ = await store.ensure_project("b")
    minted = [
        await store.create_key(a.project_id, KeyKind.PROJECT),
        await store.create_key(a.project_id, KeyKind.INGESTION),
        await store.create_key(b.project_id, KeyKind.PROJECT),
    ]
    listed = await store.list_keys()
    assert sorted(listed, key=lambda r: r.key_id) == sorted((r for r, _ in minted), key=lambda r: r.key_id)
    text = repr(listed)
    for _, key in minted:
        secret = key[-SECRET_LENGTH:]
        assert key not in text and secret not in text
    assert {(r.project_name, r.kind) for r in listed} == {
        ("a", KeyKind.PROJECT), ("a", KeyKind.INGESTION), ("b", KeyKind.PROJECT)
    }


# Writes and reads -------------------------------------------------------------------------------


async def test_write_and_read_round_trip(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    event = make_event(
        sid,
        event_type="model",
        start=1_700_000_000_123,
        end=1_700_000_000_947.8056,
        name="llm call",
        source="sdk",
        error="boom",
        config={"model": "gpt", "temperature": 0.2},
        inputs={"messages": [{"role": "user", "content": "héllo ✓"}]},
        outputs={"text": "hi", "nested": {"list": [1, 2.5, None, True]}},
        metadata={"cost": 0.01, "total_tokens": 12},
        feedback={"rating": 4},
        metrics={"score": 0.9},
        user_properties={"user_id": "u1"},
    )
    await store.write_events(scope_a, [event])
    stored = await store.get_event(scope_a, event.event_id)
    assert stored is not None
    assert stored.duration == pytest.approx(824.8056)
    assert stored.end_time == pytest.approx(1_700_000_000_947.8056)
    expected = {
        **event.to_dict(),
        "duration": stored.duration,
        "end_time": stored.end_time,
        "org_id": scope_a.org_id,
        "workspace_id": scope_a.workspace_id,
        "project_id": scope_a.project_id,
        "tenant": scope_a.org_id,
    }
    assert stored.to_dict() == expected


async def test_outputs_none_and_empty_are_distinct(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    without = make_event(sid)
    empty = make_event(sid, outputs={})
    await store.write_events(scope_a, [without, empty])
    got_without = await store.get_event(scope_a, without.event_id)
    got_empty = await store.get_event(scope_a, empty.event_id)
    assert got_without is not None and got_without.outputs is None
    assert got_empty is not None and got_empty.outputs == {}


async def test_events_sent_without_a_source_take_their_sessions(store: Store, scope_a: Scope) -> None:
    """``inherit_source`` (set at ingest when no source was sent): the session started in the
    same batch, else the stored session, gives its source; a sent source is kept; a session not
    stored yet gives nothing."""
    stored_sid, batch_sid, unknown_sid = new_id(), new_id(), new_id()
    await store.create_session(scope_a, make_session(stored_sid, source="svc-stored"))
    late = make_event(stored_sid, source="unknown", inherit_source=True)
    own = make_event(stored_sid, source="mine")
    with_start = make_event(batch_sid, source="unknown", inherit_source=True)
    orphan = make_event(unknown_sid, source="unknown", inherit_source=True)
    await store.write_events(scope_a, [late, own, make_session(batch_sid, source="svc-batch"), with_start, orphan])

    async def source_of(event_id: str) -> str:
        got = await store.get_event(scope_a, event_id)
        assert got is not None
        return got.source

    assert await source_of(late.event_id) == "svc-stored"
    assert await source_of(own.event_id) == "mine"
    assert await source_of(with_start.event_id) == "svc-batch"
    assert await source_of(orphan.event_id) == "unknown"
    assert await source_of(unknown_sid) == "unknown"  # the session made up for it
    assert await source_of(stored_sid) == "svc-stored"
    # A later event of the made-up session inherits what that session has.
    again = make_event(unknown_sid, source="unknown", inherit_source=True)
    await store.write_events(scope_a, [again])
    assert await source_of(again.event_id) == "unknown"


async def test_get_unknown_event_is_none(store: Store, scope_a: Scope) -> None:
    assert await store.get_event(scope_a, new_id()) is None
    assert await store.session_events(scope_a, new_id()) == []


async def test_writing_the_same_event_twice_stores_one_event(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    event = make_event(sid, metadata={"a": 1, "nested": {"x": [1, 2]}}, outputs={"o": 1}, children_ids=[])
    await store.write_events(scope_a, [event])
    first = await store.get_event(scope_a, event.event_id)
    await store.write_events(scope_a, [event])
    await store.write_events(scope_a, [event, event])
    assert await store.get_event(scope_a, event.event_id) == first
    assert await non_session_ids(store, scope_a, sid) == [event.event_id]


async def test_rewriting_an_event_with_null_valued_keys_is_idempotent(store: Store, scope_a: Scope) -> None:
    """JSON null is a value like any other: re-sending the same event must not drop the key."""
    event = make_event(new_id(), metadata={"run_id": None, "n": {"x": None}}, config={"stop": None},
                       feedback={"ground_truth": None}, metrics={"m": None}, user_properties={"u": None})
    await store.write_events(scope_a, [event])
    first = await store.get_event(scope_a, event.event_id)
    assert first is not None and first.metadata == {"run_id": None, "n": {"x": None}}
    await store.write_events(scope_a, [event])
    assert await store.get_event(scope_a, event.event_id) == first


async def test_rewrite_replaces_scalars_and_merges_metadata(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    eid = new_id()
    await store.write_events(scope_a, [make_event(
        sid, eid, name="first", source="s1", start=1_000, end=1_100, inputs={"q": 1}, outputs={"o": 1},
        metadata={"a": 1, "shared": "old"}, feedback={"f": 1},
    )])
    await store.write_events(scope_a, [make_event(
        sid, eid, name="second", source="s2", start=1_050, end=1_500, error="failed", inputs={"q": 2},
        metadata={"b": 2, "shared": "new"}, feedback={"g": 2},
    )])
    stored = await store.get_event(scope_a, eid)
    assert stored is not None
    assert (stored.event_name, stored.source, stored.error) == ("second", "s2", "failed")
    assert (stored.start_time, stored.end_time, stored.duration) == (1_050, 1_500, 450)
    assert stored.inputs == {"q": 2}
    assert stored.outputs == {"o": 1}  # the re-write carried no outputs
    assert stored.metadata == {"a": 1, "b": 2, "shared": "new"}
    assert stored.feedback == {"f": 1, "g": 2}
    assert await non_session_ids(store, scope_a, sid) == [eid]


async def test_an_update_between_two_writes_is_not_lost(store: Store, scope_a: Scope) -> None:
    event = make_event(new_id(), metadata={"a": 1})
    await store.write_events(scope_a, [event])
    assert await store.update_event(scope_a, event.event_id, EventUpdate(metadata={"score": 3}, feedback={"r": 1}))
    await store.write_events(scope_a, [event])
    stored = await store.get_event(scope_a, event.event_id)
    assert stored is not None
    assert stored.metadata == {"a": 1, "score": 3}
    assert stored.feedback == {"r": 1}


# Hierarchy --------------------------------------------------------------------------------------


async def test_children_written_before_their_parents(store: Store, scope_a: Scope) -> None:
    sid, parent, child, grandchild, unknown = new_id(), new_id(), new_id(), new_id(), new_id()
    await store.write_events(scope_a, [make_event(sid, grandchild, parent_id=child, start=1_300)])
    await store.write_events(scope_a, [make_event(sid, child, parent_id=parent, start=1_200)])
    other_child = make_event(sid, parent_id=parent, start=1_250)
    await store.write_events(scope_a, [other_child])
    # The parent arrives last and names only a child that never arrives.
    await store.write_events(scope_a, [make_event(sid, parent, start=1_100, children_ids=[unknown])])

    got_parent = await store.get_event(scope_a, parent)
    assert got_parent is not None
    assert got_parent.children_ids[0] == unknown  # what the client sent comes first
    assert sorted(got_parent.children_ids) == sorted([unknown, child, other_child.event_id])
    got_child = await store.get_event(scope_a, child)
    assert got_child is not None and got_child.children_ids == [grandchild]
    got_session = await store.get_event(scope_a, sid)
    assert got_session is not None and got_session.children_ids == [parent]

    by_id = {e.event_id: e for e in await store.session_events(scope_a, sid)}
    assert set(by_id) == {sid, parent, child, grandchild, other_child.event_id}
    assert by_id[parent].children_ids == got_parent.children_ids
    assert by_id[child].children_ids == [grandchild]
    assert by_id[grandchild].children_ids == []
    assert by_id[sid].children_ids == [parent]


async def test_children_ids_sent_by_the_client_are_not_duplicated(store: Store, scope_a: Scope) -> None:
    sid, parent, child = new_id(), new_id(), new_id()
    await store.write_events(scope_a, [
        make_event(sid, parent, children_ids=[child]),
        make_event(sid, child, parent_id=parent),
    ])
    got = await store.get_event(scope_a, parent)
    assert got is not None and got.children_ids == [child]
    [from_session] = [e for e in await store.session_events(scope_a, sid) if e.event_id == parent]
    assert from_session.children_ids == [child]


async def test_session_events_are_oldest_first_and_confined_to_the_session(store: Store, scope_a: Scope) -> None:
    sid, other = new_id(), new_id()
    late, early, middle = (make_event(sid, start=s) for s in (3_000, 1_000, 2_000))
    await store.write_events(scope_a, [late, early, make_event(other, start=1_500), middle])
    events = await store.session_events(scope_a, sid)
    starts = [e.start_time for e in events]
    assert starts == sorted(starts)
    assert [e.event_id for e in events if e.event_type != "session"] == [early.event_id, middle.event_id,
                                                                         late.event_id]
    assert [e.event_id for e in events if e.event_type == "session"] == [sid]
    assert all(e.session_id == sid for e in events)


# Aliases (other ids an event answers to as a parent, contract 8.7) -------------------------------


async def parent_of(store: Store, scope: Scope, event_id: str) -> str | None:
    got = await store.get_event(scope, event_id)
    assert got is not None, event_id
    return got.parent_id


@pytest.mark.parametrize("parent_first", [True, False], ids=["parent-first", "child-first"])
async def test_children_naming_an_alias_link_to_the_aliased_event(
    store: Store, scope_a: Scope, parent_first: bool
) -> None:
    sid, parent, alias, child, grandchild = new_id(), new_id(), new_id(), new_id(), new_id()
    writes = [
        [make_event(sid, parent, aliases=(alias,), start=1_000, end=1_100)],
        [make_event(sid, child, parent_id=alias, start=1_010),
         make_event(sid, grandchild, parent_id=child, start=1_020)],
    ]
    for batch in writes if parent_first else writes[::-1]:
        await store.write_events(scope_a, batch)

    assert await parent_of(store, scope_a, child) == parent
    assert await parent_of(store, scope_a, grandchild) == child  # untouched
    assert await parent_of(store, scope_a, parent) == sid
    got = await store.get_event(scope_a, parent)
    assert got is not None and got.children_ids == [child] and got.aliases == ()
    by_id = {e.event_id: e for e in await store.session_events(scope_a, sid)}
    assert set(by_id) == {sid, parent, child, grandchild}
    assert by_id[sid].children_ids == [parent]
    assert by_id[parent].children_ids == [child] and by_id[child].parent_id == parent
    # Aliases only link parents: they are not ids of their own.
    assert await store.get_event(scope_a, alias) is None

    # Re-sending either side (retries) changes nothing.
    for batch in writes:
        await store.write_events(scope_a, batch)
    assert await parent_of(store, scope_a, child) == parent
    assert len(await store.session_events(scope_a, sid)) == 4


@pytest.mark.parametrize("parent_first", [True, False], ids=["parent-first", "child-first"])
async def test_an_alias_links_children_in_the_same_write(
    store: Store, scope_a: Scope, parent_first: bool
) -> None:
    sid, parent, alias, child = new_id(), new_id(), new_id(), new_id()
    batch = [make_event(sid, parent, aliases=(alias,)), make_event(sid, child, parent_id=alias)]
    await store.write_events(scope_a, batch if parent_first else batch[::-1])
    assert await parent_of(store, scope_a, child) == parent
    got = await store.get_event(scope_a, parent)
    assert got is not None and got.children_ids == [child]


async def test_aliases_link_across_sessions_and_sessions_stay_put(store: Store, scope_a: Scope) -> None:
    sid, other_sid, parent, alias = new_id(), new_id(), new_id(), new_id()
    early = make_event(other_sid, parent_id=alias)
    await store.write_events(scope_a, [early])
    # An alias that is the id of the event itself, or of its own session, is ignored.
    await store.write_events(scope_a, [make_event(sid, parent, aliases=(alias, parent, sid, alias))])
    late = make_event(other_sid, parent_id=alias)
    root = make_event(sid)
    await store.write_events(scope_a, [late, root])
    assert await parent_of(store, scope_a, early.event_id) == parent
    assert await parent_of(store, scope_a, late.event_id) == parent
    assert await parent_of(store, scope_a, root.event_id) == sid
    assert await parent_of(store, scope_a, parent) == sid


async def test_the_first_event_to_claim_an_alias_keeps_it(store: Store, scope_a: Scope) -> None:
    sid, first, second, alias = new_id(), new_id(), new_id(), new_id()
    before = make_event(sid, parent_id=alias, start=900)
    await store.write_events(scope_a, [before])
    await store.write_events(scope_a, [make_event(sid, first, aliases=(alias,))])
    await store.write_events(scope_a, [make_event(sid, second, aliases=(alias,))])
    after = make_event(sid, parent_id=alias, start=1_100)
    await store.write_events(scope_a, [after])
    assert await parent_of(store, scope_a, before.event_id) == first
    assert await parent_of(store, scope_a, after.event_id) == first


async def test_aliases_are_confined_to_their_project(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    sid, parent_a, parent_b, alias = new_id(), new_id(), new_id(), new_id()
    child_b_early = make_event(sid, parent_id=alias)
    await store.write_events(scope_b, [child_b_early])
    await store.write_events(scope_a, [make_event(sid, parent_a, aliases=(alias,))])
    child_b = make_event(sid, parent_id=alias)
    await store.write_events(scope_b, [child_b])
    # A's alias neither re-links B's early child nor catches B's later one.
    assert await parent_of(store, scope_b, child_b_early.event_id) == alias
    assert await parent_of(store, scope_b, child_b.event_id) == alias

    # B may give the same alias to its own event; each project links to its own.
    await store.write_events(scope_b, [make_event(sid, parent_b, aliases=(alias,))])
    child_a = make_event(sid, parent_id=alias)
    await store.write_events(scope_a, [child_a])
    assert await parent_of(store, scope_b, child_b_early.event_id) == parent_b
    assert await parent_of(store, scope_b, child_b.event_id) == parent_b
    assert await parent_of(store, scope_a, child_a.event_id) == parent_a

    # Deleting B's event forgets only B's alias.
    assert await store.delete_event(scope_b, parent_b) is True
    late_a, late_b = make_event(sid, parent_id=alias), make_event(sid, parent_id=alias)
    await store.write_events(scope_a, [late_a])
    await store.write_events(scope_b, [late_b])
    assert await parent_of(store, scope_a, late_a.event_id) == parent_a
    assert await parent_of(store, scope_b, late_b.event_id) == alias


@pytest.mark.parametrize("how", ["event", "session"])
async def test_deleting_the_aliased_event_forgets_its_aliases(store: Store, scope_a: Scope, how: str) -> None:
    sid, other_sid, parent, alias = new_id(), new_id(), new_id(), new_id()
    await store.write_events(scope_a, [make_event(sid, parent, aliases=(alias,))])
    if how == "event":
        assert await store.delete_event(scope_a, parent) is True
    else:
        assert await store.delete_session(scope_a, sid) == 2
    orphan = make_event(other_sid, parent_id=alias)
    await store.write_events(scope_a, [orphan])
    assert await parent_of(store, scope_a, orphan.event_id) == alias

    # The alias is free again: the next event to claim it links the orphan.
    replacement = new_id()
    await store.write_events(scope_a, [make_event(other_sid, replacement, aliases=(alias,))])
    assert await parent_of(store, scope_a, orphan.event_id) == replacement


# Sessions ---------------------------------------------------------------------------------------


async def test_unknown_session_is_created_implicitly(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    first = make_event(sid, start=2_000, end=2_500, source="sdk-x", session_name_hint="from span")
    second = make_event(sid, start=1_500, end=3_000, source="sdk-y")
    await store.write_events(scope_a, [first, second])
    session = await store.get_event(scope_a, sid)
    assert session is not None
    assert session.event_type == "session"
    assert session.event_id == session.session_id == sid
    assert session.parent_id is None
    assert session.event_name == "from span"
    assert session.source == "sdk-x"
    assert (session.start_time, session.end_time, session.duration) == (1_500, 3_000, 1_500)
    assert (session.org_id, session.workspace_id, session.project_id) == (
        scope_a.org_id, scope_a.workspace_id, scope_a.project_id)
    assert sorted(session.children_ids) == sorted([first.event_id, second.event_id])


async def test_implicit_session_without_a_name_hint_is_unknown(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    await store.write_events(scope_a, [make_event(sid)])
    session = await store.get_event(scope_a, sid)
    assert session is not None and session.event_type == "session" and session.event_name == "unknown"


async def test_session_span_widens_as_events_arrive(store: Store, scope_a: Scope) -> None:
    sid = new_id()

    async def span() -> tuple[Any, Any, Any]:
        session = await store.get_event(scope_a, sid)
        assert session is not None
        return session.start_time, session.end_time, session.duration

    await store.write_events(scope_a, [make_event(sid, start=1_000, end=2_000)])
    assert await span() == (1_000, 2_000, 1_000)
    await store.write_events(scope_a, [make_event(sid, start=500, end=600)])  # earlier
    assert await span() == (500, 2_000, 1_500)
    await store.write_events(scope_a, [make_event(sid, start=3_000, end=4_000)])  # later
    assert await span() == (500, 4_000, 3_500)
    await store.write_events(scope_a, [make_event(sid, start=700, end=800)])  # inside: no change
    assert await span() == (500, 4_000, 3_500)
    late = make_event(sid, start=3_500, end=3_600)
    await store.write_events(scope_a, [late])
    assert await store.update_event(scope_a, late.event_id, EventUpdate(end_time=5_000, duration=1_500))
    assert await span() == (500, 5_000, 4_500)


async def test_explicit_session_widens_to_cover_its_events(store: Store, scope_a: Scope) -> None:
    session = await store.create_session(scope_a, make_session(start=1_000, end=1_000))
    sid = session.session_id
    await store.write_events(scope_a, [make_event(sid, start=400, end=450), make_event(sid, start=1_900, end=2_000)])
    stored = await store.get_event(scope_a, sid)
    assert stored is not None
    assert (stored.start_time, stored.end_time, stored.duration) == (400, 2_000, 1_600)
    assert stored.event_name == "session"


async def test_create_session_returns_the_stored_session(store: Store, scope_a: Scope) -> None:
    sent = make_session(name="run", source="eval", start=1_000, end=1_200, config={"c": 1},
                        inputs={"i": 1}, metadata={"m": 1}, user_properties={"u": 1})
    created = await store.create_session(scope_a, sent)
    assert created.event_id == created.session_id == sent.event_id
    assert created.event_type == "session" and created.parent_id is None
    assert (created.event_name, created.source, created.config, created.inputs) == ("run", "eval", {"c": 1},
                                                                                    {"i": 1})
    assert (created.start_time, created.end_time, created.duration) == (1_000, 1_200, 200)
    assert (created.org_id, created.workspace_id, created.project_id) == (
        scope_a.org_id, scope_a.workspace_id, scope_a.project_id)
    assert await store.get_event(scope_a, sent.event_id) == created


async def test_create_session_is_idempotent_and_merges_deep(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    first = await store.create_session(scope_a, make_session(
        sid, name="original", source="src", start=1_000, inputs={"q": "first"},
        metadata={"keep": 1, "nested": {"x": 1, "y": {"deep": 1}}, "over": "old"},
        user_properties={"user": {"id": "u1"}},
    ))
    second = await store.create_session(scope_a, make_session(
        sid, name="renamed", source="other", start=5, end=9_999, inputs={"q": "second"},
        metadata={"nested": {"y": {"deeper": 2}, "z": 3}, "over": "new"},
        user_properties={"user": {"tier": "pro"}, "extra": True},
    ))
    assert second.event_name == "original" and second.source == "src"
    assert second.inputs == {"q": "first"}
    assert (second.start_time, second.end_time, second.duration) == (
        first.start_time, first.end_time, first.duration)
    assert second.metadata == {"keep": 1, "nested": {"x": 1, "y": {"deep": 1, "deeper": 2}, "z": 3}, "over": "new"}
    assert second.user_properties == {"user": {"id": "u1", "tier": "pro"}, "extra": True}
    assert await store.get_event(scope_a, sid) == second
    assert [e.event_id for e in await store.session_events(scope_a, sid)] == [sid]


async def test_create_session_adopts_an_implicit_session(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    child = make_event(sid, start=1_000, end=1_500, session_name_hint="implicit name")
    await store.write_events(scope_a, [child])
    created = await store.create_session(scope_a, make_session(
        sid, name="explicit", source="app", start=1_200, end=1_300, inputs={"topic": "x"}, config={"c": 1},
        metadata={"m": 1}, user_properties={"u": 1},
    ))
    assert (created.event_name, created.source) == ("explicit", "app")
    assert created.inputs == {"topic": "x"} and created.config == {"c": 1}
    assert created.metadata == {"m": 1} and created.user_properties == {"u": 1}
    assert (created.start_time, created.end_time, created.duration) == (1_000, 1_500, 500)
    assert created.children_ids == [child.event_id]
    assert await store.get_event(scope_a, sid) == created

    # Once adopted it is explicit: another start only merges.
    again = await store.create_session(scope_a, make_session(sid, name="third", metadata={"m2": 2}))
    assert again.event_name == "explicit" and again.metadata == {"m": 1, "m2": 2}


async def test_session_event_in_a_batch_with_its_events(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    child = make_event(sid, start=900, end=2_000)
    await store.write_events(scope_a, [child, make_session(sid, name="batched", start=1_000, end=1_100)])
    session = await store.get_event(scope_a, sid)
    assert session is not None
    assert session.event_name == "batched"
    assert (session.start_time, session.end_time) == (900, 2_000)
    assert session.children_ids == [child.event_id]


async def test_create_session_over_a_non_session_id_fails_and_changes_nothing(
    store: Store, scope_a: Scope
) -> None:
    event = make_event(new_id(), name="a tool")
    await store.write_events(scope_a, [event])
    before = await store.get_event(scope_a, event.event_id)
    with pytest.raises(Exception):
        await store.create_session(scope_a, make_session(event.event_id, metadata={"x": 1}))
    assert await store.get_event(scope_a, event.event_id) == before


# Updates ----------------------------------------------------------------------------------------


async def test_update_event_merge_rules(store: Store, scope_a: Scope) -> None:
    event = make_event(
        new_id(), start=1_000, end=1_100, outputs={"a": 1, "b": 2}, inputs={"in": 1},
        metadata={"keep": 1, "over": "old", "nested": {"x": 1}}, feedback={"f": 1}, metrics={"m": 1},
        config={"c": 1}, user_properties={"u": 1}, children_ids=[],
    )
    await store.write_events(scope_a, [event])
    eid = event.event_id

    assert await store.update_event(scope_a, eid, EventUpdate(
        metadata={"over": "new", "nested": {"y": 2}}, feedback={"g": 2}, metrics={"n": 2}, config={"d": 2},
        user_properties={"v": 2}, outputs={"c": 3}, duration=250, end_time=1_250, children_ids=[],
    )) is True
    stored = await store.get_event(scope_a, eid)
    assert stored is not None
    assert stored.metadata == {"keep": 1, "over": "new", "nested": {"y": 2}}  # key-wise, shallow
    assert stored.feedback == {"f": 1, "g": 2}
    assert stored.metrics == {"m": 1, "n": 2}
    assert stored.config == {"c": 1, "d": 2}
    assert stored.user_properties == {"u": 1, "v": 2}
    assert stored.outputs == {"c": 3}  # replaced, not merged
    assert (stored.start_time, stored.end_time, stored.duration) == (1_000, 1_250, 250)
    assert stored.children_ids == []  # an empty list is ignored
    assert stored.inputs == {"in": 1}

    child_ids = [new_id(), new_id()]
    assert await store.update_event(scope_a, eid, EventUpdate(outputs=None, children_ids=child_ids))
    stored = await store.get_event(scope_a, eid)
    assert stored is not None
    assert stored.outputs == {"c": 3}  # None keeps
    assert stored.children_ids == child_ids
    assert await store.update_event(scope_a, eid, EventUpdate(children_ids=[]))
    stored = await store.get_event(scope_a, eid)
    assert stored is not None and stored.children_ids == child_ids


async def test_update_of_a_session_event(store: Store, scope_a: Scope) -> None:
    session = await store.create_session(scope_a, make_session(metadata={"a": 1}))
    assert await store.update_event(scope_a, session.event_id, EventUpdate(metadata={"b": 2}, outputs={"o": 1}))
    stored = await store.get_event(scope_a, session.event_id)
    assert stored is not None and stored.event_type == "session"
    assert stored.metadata == {"a": 1, "b": 2} and stored.outputs == {"o": 1}


async def test_update_of_an_unknown_event_returns_false_and_changes_nothing(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    await store.write_events(scope_a, [make_event(sid)])
    before = await store.session_events(scope_a, sid)
    missing = new_id()
    assert await store.update_event(scope_a, missing, EventUpdate(metadata={"x": 1}, end_time=99_999)) is False
    assert await store.get_event(scope_a, missing) is None
    assert await store.session_events(scope_a, sid) == before

    # Without keep_if_missing the update is not remembered either.
    await store.write_events(scope_a, [make_event(sid, missing, metadata={"own": 1})])
    stored = await store.get_event(scope_a, missing)
    assert stored is not None and stored.metadata == {"own": 1}


async def test_kept_update_is_applied_when_the_event_arrives(store: Store, scope_a: Scope) -> None:
    sid, eid = new_id(), new_id()
    assert await store.update_event(
        scope_a, eid, EventUpdate(metadata={"a": 1, "shared": "update"}, outputs={"from": "update"}),
        keep_if_missing=True,
    ) is False
    assert await store.update_event(
        scope_a, eid, EventUpdate(metadata={"b": 2}, feedback={"rating": 1}), keep_if_missing=True
    ) is False
    assert await store.get_event(scope_a, eid) is None

    await store.write_events(scope_a, [make_event(sid, eid, metadata={"own": 0, "shared": "event"},
                                                  outputs={"from": "event"})])
    stored = await store.get_event(scope_a, eid)
    assert stored is not None
    assert stored.metadata == {"own": 0, "shared": "update", "a": 1, "b": 2}
    assert stored.feedback == {"rating": 1}
    assert stored.outputs == {"from": "update"}

    # Applied once: a later re-write is not overridden by the old update again.
    await store.write_events(scope_a, [make_event(sid, eid, outputs={"from": "rewrite"})])
    stored = await store.get_event(scope_a, eid)
    assert stored is not None and stored.outputs == {"from": "rewrite"}


async def test_kept_update_for_a_session_created_by_create_session(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    assert await store.update_event(
        scope_a, sid, EventUpdate(metadata={"enriched": True}, user_properties={"u": 1}), keep_if_missing=True
    ) is False
    created = await store.create_session(scope_a, make_session(sid, metadata={"m": 1}))
    assert created.metadata == {"m": 1, "enriched": True}
    assert created.user_properties == {"u": 1}
    assert await store.get_event(scope_a, sid) == created


async def test_kept_update_for_an_implicitly_created_session(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    assert await store.update_event(
        scope_a, sid, EventUpdate(metadata={"enriched": True}, outputs={"answer": 42}), keep_if_missing=True
    ) is False
    await store.write_events(scope_a, [make_event(sid)])
    session = await store.get_event(scope_a, sid)
    assert session is not None and session.event_type == "session"
    assert session.metadata == {"enriched": True}
    assert session.outputs == {"answer": 42}


# Deletes ----------------------------------------------------------------------------------------


async def test_delete_event(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    parent = make_event(sid)
    child = make_event(sid, parent_id=parent.event_id)
    await store.write_events(scope_a, [parent, child])
    assert await store.delete_event(scope_a, child.event_id) is True
    assert await store.get_event(scope_a, child.event_id) is None
    assert await store.delete_event(scope_a, child.event_id) is False
    assert await store.delete_event(scope_a, new_id()) is False
    got_parent = await store.get_event(scope_a, parent.event_id)
    assert got_parent is not None and got_parent.children_ids == []
    assert await non_session_ids(store, scope_a, sid) == [parent.event_id]


async def test_delete_session(store: Store, scope_a: Scope) -> None:
    sid, other = new_id(), new_id()
    await store.create_session(scope_a, make_session(sid))
    events = [make_event(sid, start=1_000 + i) for i in range(3)]
    kept = make_event(other)
    await store.write_events(scope_a, [*events, kept])

    assert await store.delete_session(scope_a, sid) == 4  # the session event and its three events
    assert await store.session_events(scope_a, sid) == []
    for event_id in [sid, *(e.event_id for e in events)]:
        assert await store.get_event(scope_a, event_id) is None
    assert await store.delete_session(scope_a, sid) == 0
    assert await store.delete_session(scope_a, new_id()) == 0
    assert await non_session_ids(store, scope_a, other) == [kept.event_id]
    assert await store.get_event(scope_a, other) is not None


# Project settings, retention, deleting a project (issue #17) ------------------------------------


async def test_update_project_sets_retention_and_redaction(store: Store) -> None:
    project, _ = await store.ensure_project("kept")
    assert (project.retention_days, project.redact) == (0, ())
    _, key = await store.create_key(project.project_id, KeyKind.INGESTION)
    updated = await store.update_project("kept", retention_days=7)
    assert updated is not None and (updated.retention_days, updated.redact) == (7, ())
    updated = await store.update_project("kept", redact=["email", "regex:a[0-9]+"])
    assert updated is not None and (updated.retention_days, updated.redact) == (7, ("email", "regex:a[0-9]+"))
    assert updated.project_id == project.project_id and updated.created_at == project.created_at
    assert [p for p in await store.list_projects() if p.name == "kept"] == [updated]
    assert (await store.ensure_project("kept"))[0] == updated
    scope = await store.resolve_key(key)
    assert scope is not None and scope.redact == ("email", "regex:a[0-9]+")
    cleared = await store.update_project("kept", retention_days=0, redact=[])
    assert cleared is not None and (cleared.retention_days, cleared.redact) == (0, ())
    assert await store.update_project("absent", retention_days=1) is None
    assert [p.name for p in await store.list_projects()] == ["kept"]


async def test_prune_deletes_old_events_and_settles_their_sessions(store: Store, scope_a: Scope,
                                                                   scope_b: Scope) -> None:
    gone, narrowed, lone, young = new_id(), new_id(), new_id(), new_id()
    await store.create_session(scope_a, make_session(lone, start=1_000))
    old_a = [make_event(gone, start=1_000), make_event(gone, start=2_000)]
    old_b, new_b = make_event(narrowed, start=1_500), make_event(narrowed, start=6_000)
    fresh = make_event(young, start=7_000)
    await store.write_events(scope_a, [*old_a, old_b, new_b, fresh])
    other = make_event(gone, start=1_000)  # the same session id in another project
    await store.write_events(scope_b, [other])

    total = Pruned()
    while (step := await store.prune_events(scope_a, 5_000, limit=1)).removed:
        assert step.events + step.sessions <= 2  # bounded: one event and what it leaves
        total += step
    # One event a step: ``gone`` starts at its second event before it goes, so two narrowings.
    assert total == Pruned(events=3, sessions=2, shrunk=2)

    for event_id in [gone, lone, old_b.event_id, *(e.event_id for e in old_a)]:
        assert await store.get_event(scope_a, event_id) is None
    session = await store.get_event(scope_a, narrowed)
    assert session is not None and session.start_time == 6_000 and session.duration == session.end_time - 6_000
    assert {e.event_id for e in await store.session_events(scope_a, narrowed)} == {narrowed, new_b.event_id}
    assert await non_session_ids(store, scope_a, young) == [fresh.event_id]
    assert await non_session_ids(store, scope_b, gone) == [other.event_id]
    assert await store.prune_events(scope_a, 5_000, limit=100) == Pruned()


async def test_deleting_a_project_removes_its_events_keys_and_records(store: Store, scope_a: Scope,
                                                                      scope_b: Scope) -> None:
    from tracehive.storage.records import RecordKind

    sid = new_id()
    await store.create_session(scope_a, make_session(sid))
    await store.write_events(scope_a, [make_event(sid) for _ in range(5)])
    await store.create_record(scope_a, RecordKind.DATASET, "ds", "golden", {"x": 1})
    kept = make_event(new_id())
    await store.write_events(scope_b, [kept])
    _, key_a = await store.create_key(scope_a.project_id, KeyKind.PROJECT)

    deleted = 0
    while count := await store.delete_project_events(scope_a.project_id, limit=2):
        assert count <= 2
        deleted += count
    assert deleted == 6  # the session and its five events
    keys, records = await store.remove_project(scope_a.project_id)
    assert keys == 2 and records == 1  # the fixture's key and this one
    assert await store.resolve_key(key_a) is None
    assert [p.name for p in await store.list_projects()] == ["project-b"]
    assert await store.session_events(scope_a, sid) == []
    assert await store.list_records(scope_a, RecordKind.DATASET) == []
    assert await store.get_event(scope_b, kept.event_id) is not None
    again, created = await store.ensure_project("project-a")
    assert created and again.project_id != scope_a.project_id


# Isolation --------------------------------------------------------------------------------------


async def test_projects_are_isolated(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    sid, shared, only_a = new_id(), new_id(), new_id()
    await store.write_events(scope_a, [make_event(sid, shared, name="a", metadata={"p": "a"}),
                                       make_event(sid, only_a, name="a only")])
    await store.write_events(scope_b, [make_event(sid, shared, name="b", metadata={"p": "b"})])

    got_a, got_b = await store.get_event(scope_a, shared), await store.get_event(scope_b, shared)
    assert got_a is not None and got_b is not None
    assert (got_a.event_name, got_a.metadata, got_a.project_id) == ("a", {"p": "a"}, scope_a.project_id)
    assert (got_b.event_name, got_b.metadata, got_b.project_id) == ("b", {"p": "b"}, scope_b.project_id)
    assert sorted(await non_session_ids(store, scope_a, sid)) == sorted([shared, only_a])
    assert await non_session_ids(store, scope_b, sid) == [shared]
    session_b = await store.get_event(scope_b, sid)
    assert session_b is not None and session_b.children_ids == [shared]

    # B can neither read, update nor delete what only A has.
    assert await store.get_event(scope_b, only_a) is None
    assert await store.update_event(scope_b, only_a, EventUpdate(metadata={"hacked": True})) is False
    assert await store.delete_event(scope_b, only_a) is False
    # Updates and deletes through B touch only B's copy.
    assert await store.update_event(scope_b, shared, EventUpdate(metadata={"touched": "b"}, outputs={"o": "b"}))
    assert await store.delete_event(scope_b, shared) is True
    assert await store.delete_session(scope_b, sid) == 1  # B's implicit session only

    after = await store.get_event(scope_a, only_a)
    assert after is not None and after.metadata == {}
    still_a = await store.get_event(scope_a, shared)
    assert still_a == got_a
    assert sorted(await non_session_ids(store, scope_a, sid)) == sorted([shared, only_a])
    assert await store.get_event(scope_a, sid) is not None


async def test_sessions_and_kept_updates_are_isolated(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    sid = new_id()
    created_a = await store.create_session(scope_a, make_session(sid, name="a", metadata={"p": "a"}))
    created_b = await store.create_session(scope_b, make_session(sid, name="b", metadata={"p": "b"}))
    assert created_a.project_id == scope_a.project_id and created_b.project_id == scope_b.project_id
    assert created_b.event_name == "b" and created_b.metadata == {"p": "b"}
    stored_a = await store.get_event(scope_a, sid)
    assert stored_a is not None and stored_a.event_name == "a" and stored_a.metadata == {"p": "a"}

    eid = new_id()
    assert await store.update_event(scope_a, eid, EventUpdate(metadata={"for": "a"}), keep_if_missing=True) is False
    await store.write_events(scope_b, [make_event(sid, eid)])
    got_b = await store.get_event(scope_b, eid)
    assert got_b is not None and got_b.metadata == {}
    await store.write_events(scope_a, [make_event(sid, eid)])
    got_a = await store.get_event(scope_a, eid)
    assert got_a is not None and got_a.metadata == {"for": "a"}


# Atomicity and concurrency ----------------------------------------------------------------------


async def test_a_failing_write_stores_nothing_of_its_batch(store: Store, scope_a: Scope) -> None:
    existing_sid = new_id()
    existing = make_event(existing_sid, name="tool")
    await store.write_events(scope_a, [existing])
    before = await store.get_event(scope_a, existing.event_id)
    before_session = await store.get_event(scope_a, existing_sid)

    fresh_sid = new_id()
    good = make_event(fresh_sid, name="would be stored")
    rewrite = make_event(existing_sid, existing.event_id, name="rewritten")
    widening = make_event(existing_sid, start=10, end=99_999)
    clash = make_session(existing.event_id, name="clashing session")
    with pytest.raises(Exception):
        await store.write_events(scope_a, [good, rewrite, widening, clash])

    assert await store.get_event(scope_a, good.event_id) is None
    assert await store.get_event(scope_a, fresh_sid) is None  # no implicit session either
    assert await store.session_events(scope_a, fresh_sid) == []
    assert await store.get_event(scope_a, widening.event_id) is None
    assert await store.get_event(scope_a, existing.event_id) == before
    assert await store.get_event(scope_a, existing_sid) == before_session


async def test_a_failing_write_does_not_sink_concurrent_writes(store: Store, scope_a: Scope) -> None:
    existing = make_event(new_id())
    await store.write_events(scope_a, [existing])
    sid = new_id()
    good = [make_event(sid, start=1_000 + i) for i in range(20)]
    bad_batch = [make_event(new_id()), make_session(existing.event_id)]
    results = await asyncio.gather(
        *(store.write_events(scope_a, [e]) for e in good[:10]),
        store.write_events(scope_a, bad_batch),
        *(store.write_events(scope_a, [e]) for e in good[10:]),
        return_exceptions=True,
    )
    assert [isinstance(r, Exception) for r in results] == [False] * 10 + [True] + [False] * 10
    assert sorted(await non_session_ids(store, scope_a, sid)) == sorted(e.event_id for e in good)
    assert await store.get_event(scope_a, bad_batch[0].event_id) is None


async def test_concurrent_writes_all_land(store: Store, scope_a: Scope) -> None:
    shared_sid = new_id()
    calls = []
    expected: dict[str, set[str]] = {shared_sid: set()}
    for i in range(50):
        own_sid = new_id()
        in_shared = make_event(shared_sid, start=10_000 + i * 10, end=10_000 + i * 10 + 5)
        in_own = make_event(own_sid, start=i, end=i + 1)
        expected[shared_sid].add(in_shared.event_id)
        expected[own_sid] = {in_own.event_id}
        calls.append(store.write_events(scope_a, [in_shared, in_own]))
    await asyncio.gather(*calls)

    for sid, event_ids in expected.items():
        assert set(await non_session_ids(store, scope_a, sid)) == event_ids
    session = await store.get_event(scope_a, shared_sid)
    assert session is not None
    assert (session.start_time, session.end_time, session.duration) == (10_000, 10_495, 495)
    assert len(session.children_ids) == 50


async def test_concurrent_session_starts_and_updates(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    await asyncio.gather(*(
        store.create_session(scope_a, make_session(sid, metadata={f"k{i}": i})) for i in range(20)
    ))
    session = await store.get_event(scope_a, sid)
    assert session is not None and session.metadata == {f"k{i}": i for i in range(20)}
    results = await asyncio.gather(*(
        store.update_event(scope_a, sid, EventUpdate(feedback={f"f{i}": i})) for i in range(20)
    ))
    assert results == [True] * 20
    session = await store.get_event(scope_a, sid)
    assert session is not None and session.feedback == {f"f{i}": i for i in range(20)}


# Export queries (``export_events``; semantics in tracehive.query.filters) -----------------------
#
# Queries are built with the backend-neutral parser, so these cases pin down what every backend's
# compiler must do with a parsed ``EventQuery``.


def query(*filters: dict[str, Any], **body: Any) -> EventQuery:
    return parse_export_request({"filters": list(filters), **body})


def flt(field: str, operator: str, value: Any = None, type: str = "string") -> dict[str, Any]:
    return {"field": field, "operator": operator, "value": value, "type": type}


async def seed_export(store: Store, scope: Scope) -> str:
    """A session at t=1000 with three events; newest first: c, b, a, session."""
    sid = new_id()
    await store.create_session(scope, make_session(sid, start=1_000, name="session"))
    await store.write_events(scope, [
        make_event(sid, name="a", event_type="model", start=2_000, end=2_250,
                   inputs={"chat": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "2+2?"}]},
                   outputs={"text": "4"},
                   metadata={"cost": 0.5, "ok": True, "when": "2024-05-01T00:00:00Z", "tags": ["alpha", "beta"],
                             "n": 42, "label": "Hello World", "nothing": None}),
        make_event(sid, name="b", event_type="tool", start=3_000, end=4_000.5, error="timeout",
                   metadata={"cost": 2, "ok": False, "when": 1_714_521_600_001, "tags": ["gamma"], "label": "hello"}),
        make_event(sid, name="c", event_type="chain", start=4_000, end=4_010,
                   inputs={"chat": [{"role": "user", "content": "hi"}]}, metadata={"cost": "3"}),
    ])  # fmt: skip
    return sid


async def exported_names(store: Store, scope: Scope, q: EventQuery) -> list[str]:
    events, total = await store.export_events(scope, q)
    assert total >= len(events)
    return [e.event_name for e in events]


EVERYTHING = ["c", "b", "a", "session"]

EXPORT_CASES: list[tuple[dict[str, Any], list[str]]] = [
    (flt("event_name", "is", "a"), ["a"]),
    (flt("event_name", "is not", "a"), ["c", "b", "session"]),
    (flt("metadata.label", "contains", "ello"), ["b", "a"]),
    (flt("metadata.label", "contains", "world"), []),  # case-sensitive
    (flt("metadata.label", "not contains", "World"), ["c", "b", "session"]),  # missing matches negations
    (flt("metadata.tags", "contains", "amm"), ["b"]),  # arrays: any element
    (flt("inputs", "contains", "2+2"), ["a"]),  # a whole JSON column: its JSON text
    (flt("metadata.n", "is", "42"), ["a"]),  # text form of a number
    (flt("metadata.ok", "is", "true"), ["a"]),  # text form of a boolean
    (flt("metadata.cost", "is", "2.0"), ["b"]),  # a numeric string value also matches equal numbers
    (flt("metadata.cost", "is", "3"), ["c"]),  # ...and the string "3" by its text
    (flt("metadata.cost", "is not", "0.50"), ["c", "b", "session"]),
    (flt("error", "exists"), ["b"]),
    (flt("error", "not exists"), ["c", "a", "session"]),
    (flt("metadata.nothing", "exists"), []),  # null is not a value
    (flt("metadata.nothing", "not exists"), EVERYTHING),
    (flt("outputs", "exists"), ["a"]),
    (flt("inputs.chat.1.content", "is", "2+2?"), ["a"]),
    (flt("inputs.chat.0.role", "is", "user"), ["c"]),
    (flt("inputs.chat.1", "exists"), ["a"]),
    (flt("metadata.cost", "is", "2", "number"), ["b"]),
    (flt("metadata.cost", "is not", 2, "number"), ["c", "a", "session"]),
    (flt("metadata.cost", "greater than", "0.1", "number"), ["b", "a"]),  # the string "3" is no number
    (flt("metadata.cost", "less than", 1, "number"), ["a"]),
    (flt("metadata.ok", "greater than", 0, "number"), []),  # booleans are no numbers
    (flt("duration", "greater than", 500, "number"), ["b", "session"]),
    (flt("duration", "is", "1000.5", "number"), ["b"]),
    (flt("metadata.ok", "is", True, "boolean"), ["a"]),
    (flt("metadata.ok", "is", "false", "boolean"), ["b"]),
    (flt("metadata.ok", "is not", True, "boolean"), ["c", "b", "session"]),
    (flt("metadata.n", "is", True, "boolean"), []),
    (flt("metadata.when", "after", "2024-05-01T00:00:00Z", "datetime"), ["b"]),
    (flt("metadata.when", "before", 1_714_521_600_001, "datetime"), ["a"]),
    (flt("metadata.when", "is", 1_714_521_600_000, "datetime"), ["a"]),
    (flt("metadata.when", "is not", "2024-05-01T00:00:00.000+00:00", "datetime"), ["c", "b", "session"]),
    (flt("start_time", "after", "1970-01-01T00:00:02Z", "datetime"), ["c", "b"]),
    (flt("start_time", "before", 2_000, "datetime"), ["session"]),
    (flt("start_time", "greater than", "2000"), ["c", "b"]),  # string promoted to number
]


@pytest.mark.parametrize(
    ("case", "expected"), EXPORT_CASES, ids=[f"{c['field']} {c['operator']} {c['type']}" for c, _ in EXPORT_CASES]
)
async def test_export_filter_semantics(
    store: Store, scope_a: Scope, case: dict[str, Any], expected: list[str]
) -> None:
    await seed_export(store, scope_a)
    assert await exported_names(store, scope_a, query(case)) == expected


async def test_export_orders_pages_and_counts(store: Store, scope_a: Scope) -> None:
    sid = await seed_export(store, scope_a)
    await store.write_events(scope_a, [make_event(new_id(), name="elsewhere", start=5_000)])
    by_session = flt("session_id", "is", sid.upper())  # ids compare case-insensitively
    events, total = await store.export_events(scope_a, query(by_session))
    assert [e.event_name for e in events] == EVERYTHING and total == 4
    assert [e.start_time for e in events] == sorted((e.start_time for e in events), reverse=True)
    assert all(e.project_id == scope_a.project_id and e.session_id == sid for e in events)

    pages = [await store.export_events(scope_a, query(by_session, limit=3, page=p)) for p in (1, 2, 3)]
    assert [[e.event_name for e in p] for p, _ in pages] == [EVERYTHING[:3], EVERYTHING[3:], []]
    assert [t for _, t in pages] == [4, 4, 4]
    unordered, total = await store.export_events(scope_a, query(by_session, ignore_order=True))
    assert sorted(e.event_name for e in unordered) == sorted(EVERYTHING) and total == 4

    everything, total = await store.export_events(scope_a, query())
    assert total == 6  # "elsewhere" and its implicit session, both at t=5000 (tie order is free)
    assert {e.event_name for e in everything[:2]} == {"elsewhere", "unknown"}
    assert await store.export_events(scope_a, query(limit=2, page=100)) == ([], 6)


async def test_export_filters_are_anded_and_date_ranges_inclusive(store: Store, scope_a: Scope) -> None:
    await seed_export(store, scope_a)
    assert await exported_names(store, scope_a, query(flt("metadata.cost", "greater than", 0, "number"),
                                                      flt("event_type", "is", "tool"))) == ["b"]
    assert await exported_names(store, scope_a, query(dateRange={"$gte": 2_000, "$lte": 3_000})) == ["b", "a"]
    assert await exported_names(
        store, scope_a, query(dateRange={"$gte": "1970-01-01T00:00:03Z", "$lte": "1970-01-01T00:00:04.000Z"})
    ) == ["c", "b"]
    assert await exported_names(store, scope_a, query(dateRange={"$lte": 1_000})) == ["session"]
    assert await exported_names(store, scope_a, query(dateRange={"relative": "1d"})) == []


async def test_export_returns_stored_events(store: Store, scope_a: Scope) -> None:
    sid = await seed_export(store, scope_a)
    events, _ = await store.export_events(scope_a, query(flt("event_name", "is", "a")))
    [event] = events
    stored = await store.get_event(scope_a, event.event_id)
    assert stored is not None and event.session_id == sid
    assert event.metadata == stored.metadata and event.inputs == stored.inputs and event.outputs == stored.outputs
    assert (event.start_time, event.end_time, event.duration) == (2_000, 2_250, 250)
    assert (event.org_id, event.workspace_id, event.project_id) == (scope_a.org_id, scope_a.workspace_id,
                                                                     scope_a.project_id)


async def test_export_is_confined_to_the_project(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    sid = await seed_export(store, scope_a)
    assert await store.export_events(scope_b, query()) == ([], 0)
    assert await store.export_events(scope_b, query(flt("session_id", "is", sid))) == ([], 0)
    assert await store.export_events(scope_b, query(flt("event_name", "is not", "zzz"))) == ([], 0)
    await store.write_events(scope_b, [make_event(sid, name="b's own", metadata={"cost": 2})])
    assert await exported_names(store, scope_b, query(flt("metadata.cost", "is", 2, "number"))) == ["b's own"]
    assert await exported_names(store, scope_a, query(flt("metadata.cost", "is", 2, "number"))) == ["b"]


@pytest.mark.parametrize("value", ["x' OR '1'='1", "'; DELETE FROM events; --", "%", "_", '"', "\\", "$.cost"])
async def test_export_values_are_literals(store: Store, scope_a: Scope, value: str) -> None:
    await seed_export(store, scope_a)
    for operator in ("is", "contains"):
        assert await exported_names(store, scope_a, query(flt("event_name", operator, value))) == []
        assert await exported_names(store, scope_a, query(flt("metadata.label", operator, value))) == []
    odd = make_event(new_id(), name=value, metadata={"label": value})
    await store.write_events(scope_a, [odd])
    for field in ("event_name", "metadata.label"):
        for operator in ("is", "contains"):
            events, _ = await store.export_events(scope_a, query(flt(field, operator, value)))
            assert [e.event_id for e in events] == [odd.event_id]
    assert (await store.export_events(scope_a, query()))[1] == 6


# Bulk export and import (``iter_events``, ``import_events``) -----------------------------------


async def streamed(store: Store, scope: Scope, q: EventQuery) -> list[list[Event]]:
    return [chunk async for chunk in store.iter_events(scope, q)]


async def test_iter_events_streams_every_match_in_order(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    sid = new_id()
    # 2,600 events over more than one chunk, many sharing a start_time (ties across chunk edges).
    events = [make_event(sid, name=f"e{i}", start=1_000 + i // 7, metadata={"i": i, "odd": i % 2 == 1})
              for i in range(2_600)]  # fmt: skip
    for at in range(0, len(events), 500):
        await store.write_events(scope_a, events[at : at + 500])
    await store.write_events(scope_b, [make_event(new_id(), name="other project")])
    chunks = await streamed(store, scope_a, query(limit=5, page=3, ignore_order=True))  # page is ignored
    assert len(chunks) > 1 and all(chunks)
    flat = [e for chunk in chunks for e in chunk]
    assert len(flat) == 2_601  # the events and their implicit session
    assert len({e.event_id for e in flat}) == len(flat)
    keys = [(e.start_time, e.event_id) for e in flat]
    assert keys == sorted(keys, reverse=True)  # newest first, ties by event_id descending
    assert all(e.project_id == scope_a.project_id for e in flat)

    odd = [e async for chunk in store.iter_events(scope_a, query(flt("metadata.odd", "is", True, "boolean")))
           for e in chunk]  # fmt: skip
    assert sorted(e.metadata["i"] for e in odd) == list(range(1, 2_600, 2))
    ranged = await streamed(store, scope_a, query(dateRange={"$gte": 1_100, "$lte": 1_101}))
    assert sorted(e.metadata["i"] for c in ranged for e in c) == list(range(700, 714))
    assert await streamed(store, scope_a, query(flt("event_name", "is", "nothing"))) == []
    assert sorted(e.event_name for c in await streamed(store, scope_b, query()) for e in c) == [
        "other project", "unknown"]  # the event and its implicit session


async def test_iter_events_matches_export_events(store: Store, scope_a: Scope) -> None:
    await seed_export(store, scope_a)
    for case, expected in EXPORT_CASES:
        got = [e.event_name for c in await streamed(store, scope_a, query(case)) for e in c]
        assert got == expected, case
    [stored] = [e for c in await streamed(store, scope_a, query(flt("event_name", "is", "a"))) for e in c]
    [paged], _ = await store.export_events(scope_a, query(flt("event_name", "is", "a")))
    assert stored == paged


async def _export_all(store: Store, scope: Scope) -> list[dict[str, Any]]:
    out = []
    async for chunk in store.iter_events(scope, query()):
        for event in chunk:
            row = event.to_dict()
            for key in ("org_id", "workspace_id", "project_id", "tenant"):
                assert row.pop(key) == (scope.org_id if key == "tenant" else getattr(scope, key))
            out.append(row)
    return out


async def seed_rich(store: Store, scope: Scope) -> None:
    """Sessions explicit and implicit, nesting, children_ids as sent, updates applied (also kept
    ones), a session narrowed by an update, unicode, floats, ties."""
    sid, other = new_id(), new_id()
    await store.create_session(scope, make_session(sid, start=1_000.25, name="sessión ☃",
                                                   metadata={"nested": {"a": [1, 2.5, {"b": None}]}}))
    chain, model = new_id(), new_id()
    await store.update_event(scope, model, EventUpdate(feedback={"rating": 4}), keep_if_missing=True)
    await store.write_events(scope, [
        make_event(sid, chain, event_type="chain", start=1_001, end=1_090.125, children_ids=[model, "gone"]),
        make_event(sid, model, parent_id=chain, event_type="model", start=1_002, end=1_003.3,
                   inputs={"chat_history": [{"role": "user", "content": "héllo 🐝 \u0000 \"q\""}]},
                   outputs={"content": "1e-7"}, metadata={"cost": 1e-7, "big": 2**53 + 1, "neg": -0.0}),
        make_event(sid, name="tie-a", start=1_050), make_event(sid, name="tie-b", start=1_050),
        make_event(other, name="orphan", parent_id="not-stored", start=2_000, error="boom"),
    ])  # fmt: skip
    await store.update_event(scope, chain, EventUpdate(metrics={"score": 0.75}, end_time=5_000, duration=3_999))
    await store.update_event(scope, sid, EventUpdate(end_time=1_001, duration=0.75, outputs={"done": True}))


async def seed_tricky(store: Store, scope: Scope) -> None:
    """``seed_rich`` plus values whose JSON text is easy to get wrong: number edges, escapes,
    unicode keys, null and empty outputs, deep nesting, merged metadata."""
    await seed_rich(store, scope)
    sid = new_id()
    nested: Any = {"leaf": [None, True, False, "", 0]}
    for depth in range(20):
        nested = {f"k{depth}": [nested, depth / 3]}
    await store.write_events(scope, [
        make_event(sid, name="numbers", start=3_000, end=3_000.1, metadata={
            "neg0": -0.0, "i64": 2**63 - 1, "min64": -(2**63), "u64": 2**64 - 1, "tiny": 5e-324,
            "huge": 1e300, "third": 1 / 3, "sum": 0.1 + 0.2, "whole": 1.0, "big_float": 1e16, "int": 7}),
        make_event(sid, name="téxt ☃ 🐝", start=3_001, error="lïne\x00\nbreak\t\u2028\u0001 \\ \"",
                   inputs={"ключ": "значение", "emoji 🐝": ["\ud7ff", "\ue000", "\U0010ffff"], "": {}},
                   outputs=None, config={"a": {"b": {"c": []}}}, user_properties={"user_id": "u-1"}),
        make_event(sid, name="empty outputs", start=3_002, outputs={}, children_ids=["x", "y"]),
        make_event(sid, name="deep", start=3_003, inputs=nested, feedback={"rating": 5, "comment": None}),
        make_event(sid, name="tie", start=3_004), make_event(sid, name="tie", start=3_004),
    ])  # fmt: skip
    # Merged on re-send (th_merge-style deep merge) and updated: stored text rewritten by the store.
    merged = make_event(sid, name="merged", start=3_005, metadata={"a": {"x": 1.5}, "n": None})
    await store.write_events(scope, [merged])
    merged.metadata = {"a": {"y": -0.0}, "z": 2**64 - 1}
    await store.write_events(scope, [merged])
    await store.update_event(scope, merged.event_id, EventUpdate(metrics={"m": 1e-7}, outputs={"o": [1, 2.0]}))


@pytest.mark.parametrize("scope_fields", [True, False])
async def test_iter_event_lines_are_the_bytes_of_iter_events(
    store: Store, scope_a: Scope, scope_fields: bool
) -> None:
    """The fast JSONL path gives exactly the bytes of dumping ``iter_events``' events (and so
    does the contract's default implementation), whatever the filter."""
    import orjson

    from tracehive.transfer import record

    await seed_tricky(store, scope_a)

    def slow(event: Event) -> bytes:
        return orjson.dumps(event.to_dict() if scope_fields else record(event), option=orjson.OPT_APPEND_NEWLINE)

    for q in (query(), query(flt("event_name", "is", "numbers")), query(dateRange={"$gte": 3_000, "$lte": 3_003})):
        expected = [slow(e) async for chunk in store.iter_events(scope_a, q) for e in chunk]
        fast = [line async for chunk in store.iter_event_lines(scope_a, q, scope_fields=scope_fields)
                for line in chunk]  # fmt: skip
        default = [line async for chunk in Store.iter_event_lines(store, scope_a, q, scope_fields=scope_fields)
                   for line in chunk]  # fmt: skip
        assert fast == expected
        assert default == expected
    assert len(expected) > 1 and all(line.endswith(b"\n") and line.count(b"\n") == 1 for line in expected)
    assert b'"neg0":-0.0' in b"".join(expected) and b'"u64":18446744073709551615' in b"".join(expected)
    assert (b'"tenant":' in expected[0]) is scope_fields


async def test_import_events_round_trip_is_exact(
    store: Store, scope_a: Scope, scope_b: Scope
) -> None:
    await seed_rich(store, scope_a)
    original = await _export_all(store, scope_a)
    assert len(original) == 7
    # Imported in chunks, newest first (as exported); and into a third project oldest first.
    events = [e async for chunk in store.iter_events(scope_a, query()) for e in chunk]
    for at in range(0, len(events), 3):
        await store.import_events(scope_b, events[at : at + 3])
    assert await _export_all(store, scope_b) == original
    scope_c = await scope_for(store, "project-c")
    for event in reversed(events):
        await store.import_events(scope_c, [event])
    assert await _export_all(store, scope_c) == original
    # Importing again changes nothing; the source project is untouched.
    await store.import_events(scope_b, events)
    assert await _export_all(store, scope_b) == original
    assert await _export_all(store, scope_a) == original
    for event in events:
        got = await store.get_event(scope_b, event.event_id)
        assert got is not None and (got.org_id, got.project_id) == (scope_b.org_id, scope_b.project_id)


async def test_import_without_the_session_row_creates_it(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    await store.import_events(scope_a, [make_event(sid, name="late", start=3_000, end=3_500)])
    await store.import_events(scope_a, [make_event(sid, name="early", start=1_000, end=1_200)])
    session = await store.get_event(scope_a, sid)
    assert session is not None and session.event_type == "session"
    assert (session.start_time, session.end_time, session.duration) == (1_000, 3_500, 2_500)
    # The exported session row, when it comes, replaces the made-up one exactly.
    real = make_session(sid, start=2_000, end=2_001, name="real")
    await store.import_events(scope_a, [real])
    await store.import_events(scope_a, [make_event(sid, name="later still", start=9_000)])
    session = await store.get_event(scope_a, sid)
    assert session is not None and (session.event_name, session.start_time, session.end_time) == ("real", 2_000, 2_001)


async def test_import_replaces_and_is_atomic(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    event = make_event(sid, metadata={"a": 1, "b": 2})
    await store.write_events(scope_a, [event])
    event.metadata = {"a": 3}
    await store.import_events(scope_a, [event])
    got = await store.get_event(scope_a, event.event_id)
    assert got is not None and got.metadata == {"a": 3}  # replaced, not merged
    bad = make_event(sid, name="bad")
    bad.metadata = {"x": object()}  # cannot be stored
    with pytest.raises(Exception):
        await store.import_events(scope_a, [make_event(sid, name="fine"), bad])
    assert [e.event_name for c in await streamed(store, scope_a, query(flt("event_name", "is", "fine")))
            for e in c] == []  # fmt: skip


# Charts (``chart_events``; semantics in tracehive.query.chart) ----------------------------------

from dataclasses import replace as _replace  # noqa: E402

from tracehive.model.errors import ValidationFailed  # noqa: E402
from tracehive.query.chart import ChartQuery, parse_chart_request  # noqa: E402

# 2024-02-29T23:59:59.999Z (Thursday, last ms of February) and neighbours, in ms.
_FEB_END = 1_709_251_199_999
_MAR_START = _FEB_END + 1
_SUN_END = 1_709_510_399_999  # 2024-03-03T23:59:59.999Z
_MON_START = _SUN_END + 1  # 2024-03-04T00:00:00Z


def chart_query(**params: Any) -> ChartQuery:
    return parse_chart_request(params, now=_MON_START + 86_400_000)


async def seed_chart(store: Store, scope: Scope) -> str:
    """A session (at _FEB_END - 1000, duration widened) and five events with durations 1, 2, 3, 4
    (one hour, Thursday Feb 29) and 10 (Monday Mar 4), with assorted metadata."""
    sid = new_id()
    await store.create_session(scope, make_session(sid, start=_FEB_END - 1_000, name="session"))
    await store.write_events(scope, [
        make_event(sid, name="a", event_type="model", start=_FEB_END - 3_000, end=_FEB_END - 2_999,
                   metadata={"cost": 1, "flag": True}, config={"model": "m1"}),
        make_event(sid, name="b", event_type="model", start=_FEB_END - 2_000.5, end=_FEB_END - 1_998.5,
                   metadata={"cost": 2.5, "flag": False}, config={"model": "m2"}),
        make_event(sid, name="c", event_type="tool", start=_FEB_END - 10, end=_FEB_END - 7,
                   metadata={"cost": "9", "flag": 1}),
        make_event(sid, name="d", event_type="tool", start=_FEB_END, end=_FEB_END + 4,
                   metadata={"cost": 4, "flag": "1"}, config={"model": "m1"}),
        make_event(sid, name="e", event_type="chain", start=_MON_START, end=_MON_START + 10,
                   metadata={"flag": {"x": [1]}}),
    ])  # fmt: skip
    return sid


_NOT_SESSION = '[{"field": "event_type", "operator": "is not", "value": "session"}]'


def _rows(rows: Any) -> list[tuple[Any, ...]]:
    return [(r.bucket, r.group, r.value, r.count) for r in rows]


@pytest.mark.parametrize(
    ("aggregation", "expected"),
    [
        ("avg", 2.5), ("sum", 10), ("min", 1), ("max", 4), ("count", 4),
        # linear interpolation between closest ranks over [1, 2, 3, 4]
        ("p50", 2.5), ("median", 2.5), ("p75", 3.25), ("p90", 3.7), ("p95", 3.85), ("p99", 3.97),
    ],
)  # fmt: skip
async def test_chart_aggregations(store: Store, scope_a: Scope, aggregation: str, expected: float) -> None:
    await seed_chart(store, scope_a)
    rows = await store.chart_events(scope_a, chart_query(aggregation=aggregation, bucket="day", filters=_NOT_SESSION))
    assert [(r.bucket, r.count) for r in rows] == [(_FEB_END - 86_399_999, 4), (_MON_START, 1)]
    assert rows[0].value == pytest.approx(expected)
    assert rows[0].group is None
    assert rows[1].value == (1 if aggregation == "count" else 10)


async def test_chart_percentile_of_one_value_and_of_none(store: Store, scope_a: Scope) -> None:
    await seed_chart(store, scope_a)
    rows = await store.chart_events(scope_a, chart_query(aggregation="p99", bucket="week", metric="metadata.cost",
                                                         filters=_NOT_SESSION))
    # week of Mon Feb 26: numeric costs 1, 2.5, 4 (the string "9" is no number); week of Mar 4: none
    assert _rows(rows) == [(_MON_START - 7 * 86_400_000, None, pytest.approx(3.97), 4),
                           (_MON_START, None, None, 1)]
    rows = await store.chart_events(scope_a, chart_query(aggregation="count", bucket="week", metric="metadata.cost",
                                                         filters=_NOT_SESSION))
    assert [(r.value, r.count) for r in rows] == [(3, 4), (0, 1)]


@pytest.mark.parametrize(
    ("bucket", "expected"),
    [
        ("minute", [(_FEB_END - 59_999, 4), (_MON_START, 1)]),
        ("hour", [(_FEB_END - 3_599_999, 4), (_MON_START, 1)]),
        ("day", [(_FEB_END - 86_399_999, 4), (_MON_START, 1)]),
        ("week", [(_MON_START - 7 * 86_400_000, 4), (_MON_START, 1)]),  # Mon Feb 26, Mon Mar 4
        ("month", [(1_706_745_600_000, 4), (_MAR_START, 1)]),  # Feb 1, Mar 1
    ],
)
async def test_chart_buckets(store: Store, scope_a: Scope, bucket: str, expected: list[tuple[int, int]]) -> None:
    await seed_chart(store, scope_a)
    rows = await store.chart_events(scope_a, chart_query(bucket=bucket, aggregation="count", filters=_NOT_SESSION))
    assert [(r.bucket, r.count) for r in rows] == expected


async def test_chart_bucket_edges(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    await store.write_events(scope_a, [
        make_event(sid, name="x", start=_SUN_END), make_event(sid, name="y", start=_MON_START),
        make_event(sid, name="z", start=_FEB_END + 0.5), make_event(sid, name="w", start=_MAR_START),
    ])  # fmt: skip
    week = await store.chart_events(scope_a, chart_query(bucket="week", aggregation="count", filters=_NOT_SESSION))
    assert [(r.bucket, r.count) for r in week] == [(_MON_START - 7 * 86_400_000, 3), (_MON_START, 1)]
    month = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="count", filters=_NOT_SESSION))
    assert [(r.bucket, r.count) for r in month] == [(1_706_745_600_000, 1), (_MAR_START, 3)]


async def test_chart_group_by_column_and_json_path(store: Store, scope_a: Scope) -> None:
    await seed_chart(store, scope_a)
    rows = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="sum", groupBy="event_type"))
    assert [(r.group, r.value, r.count) for r in rows] == [
        ("model", 3, 2), ("session", _MON_START + 10 - (_FEB_END - 3_000), 1), ("tool", 7, 2),  # session: widened
        ("chain", 10, 1),
    ]  # fmt: skip
    rows = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="max", groupBy="config.model",
                                                         filters=_NOT_SESSION))
    assert [(r.group, r.value, r.count) for r in rows] == [(None, 3, 1), ("m1", 4, 2), ("m2", 2, 1), (None, 10, 1)]
    rows = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="count", groupBy="metadata.flag",
                                                         filters=_NOT_SESSION))
    february = {repr(r.group): r.count for r in rows if r.bucket < _MAR_START}
    assert february == {"True": 1, "False": 1, "1": 1, "'1'": 1}
    assert [r.group for r in rows if r.bucket == _MAR_START] == [{"x": [1]}]


async def test_chart_group_by_a_column_that_may_be_null_and_by_a_number(store: Store, scope_a: Scope) -> None:
    """Groups of a text column that may be NULL (``error``: no error is the NULL group, first) and
    of a number column (``duration``: groups in numeric order)."""
    sid = new_id()
    await store.write_events(scope_a, [
        make_event(sid, name="a", start=_FEB_END - 3_000, end=_FEB_END - 2_998, error="boom"),  # 2
        make_event(sid, name="b", start=_FEB_END - 2_000, end=_FEB_END - 1_998),  # 2
        make_event(sid, name="c", start=_FEB_END - 1_000, end=_FEB_END - 999.5, error="boom"),  # 0.5
        make_event(sid, name="d", start=_FEB_END - 500, end=_FEB_END - 490),  # 10
    ])  # fmt: skip
    by_error = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="sum", groupBy="error",
                                                             filters=_NOT_SESSION))
    assert [(r.group, r.value, r.count) for r in by_error] == [(None, 12, 2), ("boom", 2.5, 2)]
    by_duration = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="count",
                                                                groupBy="duration", filters=_NOT_SESSION))
    assert [(r.group, r.count) for r in by_duration] == [(0.5, 1), (2, 2), (10, 1)]


async def test_chart_filters_and_date_ranges(store: Store, scope_a: Scope) -> None:
    await seed_chart(store, scope_a)
    model = '[{"field": "event_type", "operator": "is", "value": "model"}]'
    rows = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="sum", filters=model))
    assert [(r.value, r.count) for r in rows] == [(3, 2)]
    for date_range in ({"$gte": _FEB_END - 2_000.5, "$lte": _FEB_END}, {"start_time": _FEB_END - 2_000.5,
                                                                        "end_time": _FEB_END}):
        rows = await store.chart_events(scope_a, chart_query(bucket="month", aggregation="count", dateRange=date_range,
                                                             filters=_NOT_SESSION))
        assert [r.count for r in rows] == [3]  # inclusive bounds
    rows = await store.chart_events(scope_a, chart_query(bucket="day", dateRange={"relative": "1d"}))
    assert [r.count for r in rows] == [1]  # now = Mar 5 00:00: only Mar 4's event
    rows = await store.chart_events(scope_a, chart_query(bucket="day", evaluation_id="nope"))
    assert rows == []


async def test_chart_limits(store: Store, scope_a: Scope) -> None:
    await seed_chart(store, scope_a)
    base = chart_query(bucket="minute", aggregation="count", groupBy="event_name")
    assert len(await store.chart_events(scope_a, _replace(base, max_buckets=2))) == 6
    with pytest.raises(ValidationFailed, match="bigger bucket"):
        await store.chart_events(scope_a, _replace(base, max_buckets=1))
    assert len(await store.chart_events(scope_a, _replace(base, max_rows=6))) == 6
    with pytest.raises(ValidationFailed, match="fewer values"):
        await store.chart_events(scope_a, _replace(base, max_rows=5))
    with pytest.raises(ValidationFailed, match="bigger bucket"):
        chart_query(bucket="minute", dateRange={"relative": "7w"})


async def test_chart_is_confined_to_the_project(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    await seed_chart(store, scope_a)
    assert await store.chart_events(scope_b, chart_query()) == []
    assert await store.chart_events(scope_b, chart_query(groupBy="event_type", aggregation="p50")) == []
    await store.write_events(scope_b, [make_event(new_id(), start=_MON_START, end=_MON_START + 99)])
    rows = await store.chart_events(scope_b, chart_query(aggregation="max", filters=_NOT_SESSION))
    assert [(r.value, r.count) for r in rows] == [(99, 1)]


# Schema fields (``schema_fields``; names in tracehive.query.schema) ------------------------------


async def test_schema_fields_per_event_type(store: Store, scope_a: Scope) -> None:
    await seed_export(store, scope_a)
    fields = await store.schema_fields(scope_a, query())
    assert fields == sorted(fields, key=lambda pair: (pair[1], pair[0])) and len(fields) == len(set(fields))
    by_type: dict[str, set[str]] = {}
    for name, event_type in fields:
        by_type.setdefault(event_type, set()).add(name)
    assert set(by_type) == {"session", "model", "tool", "chain"}
    model = by_type["model"]
    assert {"event_id", "event_name", "start_time", "inputs", "inputs.chat", "outputs.text", "metadata",
            "metadata.cost", "metadata.tags", "metadata.label"} <= model
    assert "metadata.nothing" not in model  # null members are not values
    assert not any(name.startswith("inputs.chat.") for name in model)  # arrays are not followed
    assert "error" in by_type["tool"] and "error" not in model
    assert "outputs" not in by_type["chain"]


async def test_schema_fields_follow_the_query_and_the_sample(store: Store, scope_a: Scope) -> None:
    await seed_export(store, scope_a)
    only_tool = await store.schema_fields(scope_a, query(flt("event_type", "is", "tool")))
    assert {t for _, t in only_tool} == {"tool"}
    window = await store.schema_fields(scope_a, query(dateRange={"$gte": 2_000, "$lte": 2_000}))
    assert {t for _, t in window} == {"model"}
    newest = await store.schema_fields(scope_a, query(), sample=1)  # only "c", the newest
    assert {t for _, t in newest} == {"chain"}
    assert await store.schema_fields(scope_a, query(flt("event_name", "is", "none"))) == []


async def test_schema_fields_quote_keys_a_bare_segment_cannot_hold(store: Store, scope_a: Scope) -> None:
    """Keys with other characters, or of digits only, are reported quoted (the filter language's
    form); a key no segment can hold (a double quote) is left out."""
    sid = new_id()
    await store.write_events(scope_a, [make_event(sid, metadata={
        "a.b": {"c": 1}, "sp ace": 1, "7": 1, 'q"uote': {"under": 1}, "fine_-1": {"x": [1]}, "Ünï": 1})])
    names = {n for n, t in await store.schema_fields(scope_a, query()) if t == "tool"}
    assert {n for n in names if n.startswith("metadata")} == {
        "metadata", "metadata.fine_-1", "metadata.fine_-1.x", 'metadata."a.b"', 'metadata."a.b".c',
        'metadata."sp ace"', 'metadata."7"', 'metadata."Ünï"'}


async def test_schema_fields_are_confined_to_the_project(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    await seed_export(store, scope_a)
    assert await store.schema_fields(scope_b, query()) == []
    await store.write_events(scope_b, [make_event(new_id(), metadata={"only_b": 1})])
    assert ("metadata.only_b", "tool") in await store.schema_fields(scope_b, query())
    assert ("metadata.only_b", "tool") not in await store.schema_fields(scope_a, query())


# Session list (``list_sessions``; semantics in tracehive.query.session_list) --------------------

import sys  # noqa: E402

from tracehive.query.session_list import SessionListQuery, parse_session_list_request  # noqa: E402


def sessions_query(**body: Any) -> SessionListQuery:
    return parse_session_list_request(body)


async def seed_sessions(store: Store, scope: Scope) -> dict[str, str]:
    """Four sessions; their expected summaries are ``expected_summaries``.

    alpha (t=1000): 3 events, one with an error, one with feedback, a cost that is a string (not
      summed); its stored end_time is then shrunk below its events' (the summary's is computed).
    beta (t=2000): no event; feedback set on the session event itself.
    gamma (t=3000): 2 events, an empty error and empty feedback (neither counts); a cost on the
      session event itself (summed).
    unknown (t=500): an implicit session, made up from its 2 events.
    """
    alpha, beta, gamma, implicit = new_id(), new_id(), new_id(), new_id()
    await store.create_session(scope, make_session(alpha, start=1_000, name="alpha", source="src1",
                                                   user_properties={"user_id": "u1"}, metadata={"tag": "x"}))
    await store.create_session(scope, make_session(beta, start=2_000, name="beta"))
    await store.create_session(scope, make_session(gamma, start=3_000, name="gamma", metadata={"cost": 10}))
    await store.write_events(scope, [
        make_event(alpha, start=1_100, end=1_500, metadata={"cost": 0.5, "total_tokens": 100}),
        make_event(alpha, start=1_200, end=4_000, event_type="model", error="boom",
                   metadata={"cost": 1, "total_tokens": 50}),
        make_event(alpha, start=1_300, end=1_400, event_type="chain", feedback={"rating": 1},
                   metadata={"cost": "3", "total_tokens": None}),
        make_event(gamma, start=3_050, end=3_500, error="", metadata={"cost": 2, "total_tokens": 7}),
        make_event(gamma, start=3_100, end=3_200, feedback={}, metadata={"cost": True}),
        make_event(implicit, start=500, end=900, metadata={"cost": 0.25, "total_tokens": 20}),
        make_event(implicit, start=600, end=700, metadata={"cost": 0.25, "total_tokens": 20}),
    ])  # fmt: skip
    assert await store.update_event(scope, alpha, EventUpdate(end_time=1_000, duration=0))
    assert await store.update_event(scope, beta, EventUpdate(feedback={"note": "good"}))
    return {"alpha": alpha, "beta": beta, "gamma": gamma, "unknown": implicit}


def expected_summaries(ids: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {
        "alpha": {"session_id": ids["alpha"], "event_name": "alpha", "source": "src1", "start_time": 1_000,
                  "end_time": 4_000, "duration": 3_000, "num_events": 3, "cost": 1.5, "total_tokens": 150,
                  "has_error": True, "has_feedback": True, "user_properties": {"user_id": "u1"},
                  "metadata": {"tag": "x"}},
        "beta": {"session_id": ids["beta"], "event_name": "beta", "source": "test", "start_time": 2_000,
                 "end_time": 2_000, "duration": 0, "num_events": 0, "cost": 0, "total_tokens": 0,
                 "has_error": False, "has_feedback": True, "user_properties": {}, "metadata": {}},
        "gamma": {"session_id": ids["gamma"], "event_name": "gamma", "source": "test", "start_time": 3_000,
                  "end_time": 3_500, "duration": 500, "num_events": 2, "cost": 12, "total_tokens": 7,
                  "has_error": False, "has_feedback": False, "user_properties": {}, "metadata": {"cost": 10}},
        "unknown": {"session_id": ids["unknown"], "event_name": "unknown", "source": "test", "start_time": 500,
                    "end_time": 900, "duration": 400, "num_events": 2, "cost": 0.5, "total_tokens": 40,
                    "has_error": False, "has_feedback": False, "user_properties": {}, "metadata": {}},
    }  # fmt: skip


async def listed(store: Store, scope: Scope, **body: Any) -> tuple[list[str], int]:
    summaries, total = await store.list_sessions(scope, sessions_query(**body))
    return [s.event_name for s in summaries], total


async def test_list_sessions_summarises_every_session(store: Store, scope_a: Scope) -> None:
    ids = await seed_sessions(store, scope_a)
    summaries, total = await store.list_sessions(scope_a, SessionListQuery())
    assert total == 4
    expected = expected_summaries(ids)
    assert [s.to_dict() for s in summaries] == [expected[n] for n in ("gamma", "beta", "alpha", "unknown")]
    for summary in summaries:  # integral totals are ints, not 3.0
        assert type(summary.total_tokens) is int and type(summary.num_events) is int
        assert type(summary.has_error) is bool and type(summary.has_feedback) is bool
    # The aggregates agree with the session's events as the store reads them back.
    for summary in summaries:
        events = await store.session_events(scope_a, summary.session_id)
        assert summary.num_events == len(events) - 1
        assert summary.end_time == max(e.end_time for e in events)


SESSION_SORTS = [
    ("start_time", ["gamma", "beta", "alpha", "unknown"]),
    ("event_name", ["unknown", "gamma", "beta", "alpha"]),
    ("duration", ["alpha", "gamma", "unknown", "beta"]),
    ("cost", ["gamma", "alpha", "unknown", "beta"]),
    ("total_tokens", ["alpha", "unknown", "gamma", "beta"]),
]


@pytest.mark.parametrize(("sort_by", "descending"), SESSION_SORTS, ids=[s for s, _ in SESSION_SORTS])
async def test_list_sessions_sorts_both_ways(store: Store, scope_a: Scope, sort_by: str, descending: list[str]) -> None:
    await seed_sessions(store, scope_a)
    assert await listed(store, scope_a, sort_by=sort_by) == (descending, 4)
    assert await listed(store, scope_a, sort_by=sort_by, sort_order="desc") == (descending, 4)
    assert await listed(store, scope_a, sort_by=sort_by, sort_order="asc") == (descending[::-1], 4)


async def test_list_sessions_ties_go_newest_first_then_by_id(store: Store, scope_a: Scope) -> None:
    await seed_sessions(store, scope_a)
    # gamma and unknown both have 2 events: gamma (t=3000) before unknown (t=500) either way.
    assert await listed(store, scope_a, sort_by="num_events") == (["alpha", "gamma", "unknown", "beta"], 4)
    assert await listed(store, scope_a, sort_by="num_events", sort_order="asc") == (
        ["beta", "gamma", "unknown", "alpha"], 4)
    # Equal aggregates: the newer session first even when its id sorts after the older one's.
    older, newer = "00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"
    await store.create_session(scope_a, make_session(older, start=7_000, name="tie"))
    await store.create_session(scope_a, make_session(newer, start=8_000, name="tie"))
    window = {"start_time": "1970-01-01T00:00:07Z", "end_time": "1970-01-01T00:00:08Z"}
    for sort_by in ("event_name", "duration", "num_events", "cost", "total_tokens"):
        for order in ("asc", "desc"):
            summaries, _ = await store.list_sessions(scope_a, sessions_query(sort_by=sort_by, sort_order=order,
                                                                             dateRange=window))
            assert [s.session_id for s in summaries] == [newer, older], (sort_by, order)
    # Equal start_time and name: by session_id, so pages of one never overlap or skip.
    same = sorted(new_id() for _ in range(5))
    for sid in reversed(same):
        await store.create_session(scope_a, make_session(sid, start=9_000, name="same"))
    for sort_by in ("start_time", "event_name", "duration", "cost"):
        window = dict(dateRange={"start_time": "1970-01-01T00:00:09Z", "end_time": "1970-01-01T00:00:09Z"})
        pages = [await store.list_sessions(scope_a, sessions_query(sort_by=sort_by, limit=2, page=p, **window))
                 for p in (1, 2, 3)]
        assert [s.session_id for page, _ in pages for s in page] == same, sort_by
        assert [total for _, total in pages] == [5, 5, 5]


@pytest.mark.parametrize("sort_by", ["start_time", "event_name", "duration", "num_events", "cost", "total_tokens"])
async def test_list_sessions_pages(store: Store, scope_a: Scope, sort_by: str) -> None:
    await seed_sessions(store, scope_a)
    everything, total = await listed(store, scope_a, sort_by=sort_by, sort_order="asc")
    assert total == 4 and len(everything) == 4
    pages = [await listed(store, scope_a, sort_by=sort_by, sort_order="asc", limit=3, page=p) for p in (1, 2, 3)]
    assert pages == [(everything[:3], 4), (everything[3:], 4), ([], 4)]
    ones = [await listed(store, scope_a, sort_by=sort_by, sort_order="asc", limit=1, page=p) for p in range(1, 5)]
    assert [names[0] for names, _ in ones] == everything
    assert await listed(store, scope_a, sort_by=sort_by, limit=500, page=1_000_000) == ([], 4)


async def test_list_sessions_filters_apply_to_the_session_rows(store: Store, scope_a: Scope) -> None:
    await seed_sessions(store, scope_a)
    assert await listed(store, scope_a, filters=[flt("user_properties.user_id", "is", "u1")]) == (["alpha"], 1)
    assert await listed(store, scope_a, filters=[flt("event_name", "contains", "a")]) == (
        ["gamma", "beta", "alpha"], 3)
    assert await listed(store, scope_a, filters=[flt("event_name", "contains", "a"),
                                                 flt("metadata.tag", "is", "x")]) == (["alpha"], 1)  # ANDed
    assert await listed(store, scope_a, filters=[flt("metadata.cost", "greater than", 5, "number")]) == (
        ["gamma"], 1)  # the session event's own metadata, not its events' sum
    # Fields only the sessions' events have match no session row.
    assert await listed(store, scope_a, filters=[flt("error", "exists")]) == ([], 0)
    assert await listed(store, scope_a, filters=[flt("event_type", "is", "model")]) == ([], 0)
    assert await listed(store, scope_a, filters=[{"field": "start_time", "operator": "after",
                                                  "value": "1970-01-01T00:00:01.500Z"}]) == (["gamma", "beta"], 2)


async def test_list_sessions_date_range_is_inclusive_on_the_session_start(store: Store, scope_a: Scope) -> None:
    await seed_sessions(store, scope_a)
    both_ends = {"start_time": "1970-01-01T00:00:01Z", "end_time": "1970-01-01T00:00:02Z"}
    assert await listed(store, scope_a, dateRange=both_ends) == (["beta", "alpha"], 2)
    # alpha's events start in this window, alpha itself does not.
    events_only = {"start_time": "1970-01-01T00:00:01.100Z", "end_time": "1970-01-01T00:00:01.900Z"}
    assert await listed(store, scope_a, dateRange=events_only) == ([], 0)
    assert await listed(store, scope_a, dateRange=both_ends, sort_by="cost", sort_order="asc") == (
        ["alpha", "beta"][::-1], 2)


async def test_list_sessions_are_confined_to_the_project(store: Store, scope_a: Scope, scope_b: Scope) -> None:
    ids = await seed_sessions(store, scope_a)
    assert await store.list_sessions(scope_b, SessionListQuery()) == ([], 0)
    # Project B reuses alpha's id for a session of its own, with a big cost and many tokens.
    await store.write_events(scope_b, [make_event(ids["alpha"], start=50, end=60_000,
                                                  metadata={"cost": 1_000, "total_tokens": 10**6})])
    b_only, total = await store.list_sessions(scope_b, sessions_query(sort_by="cost"))
    assert total == 1 and [(s.session_id, s.num_events, s.cost, s.end_time) for s in b_only] == [
        (ids["alpha"], 1, 1_000, 60_000)]
    expected = expected_summaries(ids)
    for sort_by in ("start_time", "cost", "duration", "total_tokens"):
        summaries, total = await store.list_sessions(scope_a, sessions_query(sort_by=sort_by))
        assert total == 4
        assert sorted((s.to_dict() for s in summaries), key=lambda d: d["event_name"]) == [
            expected[n] for n in ("alpha", "beta", "gamma", "unknown")]


async def test_list_sessions_sums_huge_numbers_without_overflow(store: Store, scope_a: Scope) -> None:
    sid = new_id()
    big = 2**63 - 1
    other = new_id()
    await store.write_events(scope_a, [
        make_event(sid, metadata={"total_tokens": big, "cost": 1e308}),
        make_event(sid, metadata={"total_tokens": big, "cost": 1e308}),
        make_event(other, start=2_000, metadata={"cost": 1e308}), make_event(other, start=2_000, metadata={"cost": -1e308}),
    ])  # fmt: skip
    for sort_by in ("start_time", "total_tokens", "cost"):
        summaries, total = await store.list_sessions(scope_a, sessions_query(sort_by=sort_by, sort_order="asc"))
        by_id = {s.session_id: s for s in summaries}
        assert total == 2 and by_id[sid].num_events == 2
        assert by_id[sid].total_tokens == pytest.approx(2.0 * big)
        assert by_id[sid].cost == sys.float_info.max  # overflowed: the largest finite number, never inf
        assert by_id[other].cost == 0
