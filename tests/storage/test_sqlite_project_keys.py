"""Migration 8 (issue #15): the events tables hold a small integer per project instead of its
36-character id. Rows of every project, of a project being removed, pending updates and aliases
survive the rebuild; keys are never reused; a key given by a rolled-back write is not cached."""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path

import orjson
import pytest

from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.filters import parse_export_request
from tracehive.storage.sqlite import SQLiteStore
from tracehive.storage.sqlite.migrations import MIGRATIONS
from tracehive.storage.sqlite.project_keys import NO_ROWS, ProjectKeys

pytestmark = pytest.mark.anyio

ORG, WORKSPACE = "org-1", "workspace-1"


def _event(session_id: str, i: int) -> Event:
    return Event(event_id=str(uuid.uuid4()), session_id=session_id, parent_id=session_id, event_type="tool",
                 event_name=f"e{i}", source="test", start_time=i, end_time=i + 1, duration=1, inputs={"i": i})


def _version_7(path: Path) -> sqlite3.Connection:
    """A database as the release before migration 8 left it (its own migration steps)."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at TEXT)")
    for step, sql in MIGRATIONS:
        if step > 7:
            break
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.execute("INSERT INTO schema_migrations VALUES (?, datetime('now'))", (step,))
    conn.execute("INSERT INTO meta VALUES ('org_id', ?), ('workspace_id', ?)", (ORG, WORKSPACE))
    return conn


def _insert_v7_event(conn: sqlite3.Connection, project_id: str, event_id: str, session_id: str,
                     event_type: str, start: int, parent_id: str | None = None) -> None:
    conn.execute(
        "INSERT INTO events (project_id, event_id, session_id, parent_id, event_type, event_name, source, "
        "start_time, end_time, duration, error, config, inputs, outputs, metadata, feedback, metrics, "
        "user_properties, children_ids, org_id, workspace_id, implicit, updated_at) "
        "VALUES (?, ?, ?, ?, ?, ?, 'old', ?, ?, 5, NULL, '{\"model\":\"m\"}', '{\"q\":1}', NULL, "
        "'{\"cost\":0.5}', '{}', '{}', '{}', '[]', ?, ?, 0, 1)",
        (project_id, event_id, session_id, parent_id, event_type, f"{event_type}-{event_id[:4]}",
         start, start + 5, ORG, WORKSPACE),
    )


async def _scope_of(store: SQLiteStore, project_id: str) -> Scope:
    _, key = await store.create_key(project_id, KeyKind.PROJECT)
    scope = await store.resolve_key(key)
    assert scope is not None
    return scope


async def test_migration_8_moves_every_row_to_its_project_key(tmp_path: Path) -> None:
    path = tmp_path / "tracehive.db"
    conn = _version_7(path)
    projects = {name: str(uuid.uuid4()) for name in ("a", "b")}
    for n, (name, project_id) in enumerate(projects.items()):
        conn.execute("INSERT INTO projects VALUES (?, ?, ?, ?, ?)", (project_id, name, ORG, WORKSPACE, n))
    removed = str(uuid.uuid4())  # a project whose row is gone while its events are being deleted
    sessions = {p: str(uuid.uuid4()) for p in (*projects.values(), removed)}
    children: dict[str, list[str]] = {}
    for project_id, sid in sessions.items():
        _insert_v7_event(conn, project_id, sid, sid, "session", 1000)
        children[project_id] = [str(uuid.uuid4()) for _ in range(3)]
        for i, eid in enumerate(children[project_id]):
            _insert_v7_event(conn, project_id, eid, sid, "model", 1001 + i, parent_id=sid)
    # An update waiting for its event, and an alias, in project a.
    waiting = str(uuid.uuid4())
    conn.execute("INSERT INTO pending_updates VALUES (?, ?, ?, 1)",
                 (projects["a"], waiting, orjson.dumps(EventUpdate(metadata={"late": True}).to_dict()).decode()))
    alias = str(uuid.uuid4())
    conn.execute("INSERT INTO event_aliases VALUES (?, ?, ?)", (projects["a"], alias, children[projects["a"]][0]))
    conn.close()

    store = SQLiteStore(path)
    assert await store.migrate() == MIGRATIONS[-1][0]
    await store.open()
    try:
        for project_id in projects.values():
            scope = await _scope_of(store, project_id)
            events = await store.session_events(scope, sessions[project_id])
            assert sorted(e.event_id for e in events) == sorted([sessions[project_id], *children[project_id]])
            assert {e.project_id for e in events} == {project_id}
            assert all(e.config == {"model": "m"} and e.metadata == {"cost": 0.5} for e in events
                       if e.event_type == "model")
            found = await store.export_events(scope, parse_export_request({"limit": 100}))
            assert found[1] == 4 and {e.project_id for e in found[0]} == {project_id}
        # The waiting update and the alias kept their project: the update lands when the event
        # arrives, and a child naming the alias as parent is linked to the alias's owner.
        scope_a = await _scope_of(store, projects["a"])
        late = _event(sessions[projects["a"]], 9)
        late.event_id = waiting
        child = _event(sessions[projects["a"]], 10)
        child.parent_id = alias
        await store.write_events(scope_a, [late, child])
        stored = await store.get_event(scope_a, waiting)
        assert stored is not None and stored.metadata == {"late": True}
        linked = await store.get_event(scope_a, child.event_id)
        assert linked is not None and linked.parent_id == children[projects["a"]][0]
        # The removed project's rows kept a key: its deletion resumes and finishes.
        deleted = 0
        while step := await store.delete_project_events(removed, limit=2):
            deleted += step
        assert deleted == 4
    finally:
        await store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("SELECT DISTINCT typeof(project_key) FROM events").fetchall() == [("integer",)]
        keys = dict(db.execute("SELECT project_id, project_key FROM project_keys").fetchall())
        assert set(keys) == {*projects.values(), removed}
        assert db.execute("SELECT count(*) FROM events WHERE project_key = ?", (keys[removed],)).fetchone()[0] == 0
    finally:
        db.close()


async def test_keys_are_never_reused(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "tracehive.db")
    await store.open()
    try:
        first, _ = await store.ensure_project("first")
        second, _ = await store.ensure_project("second")
        await store.remove_project(second.project_id)
        third, _ = await store.ensure_project("third")
    finally:
        await store.close()
    db = sqlite3.connect(tmp_path / "tracehive.db")
    try:
        keys = dict(db.execute("SELECT project_id, project_key FROM project_keys").fetchall())
    finally:
        db.close()
    assert keys[first.project_id] < keys[second.project_id] < keys[third.project_id]


def test_a_key_given_by_a_rolled_back_write_is_not_cached(tmp_path: Path) -> None:
    path = tmp_path / "tracehive.db"
    _version_7(path).close()
    conn = sqlite3.connect(path, isolation_level=None)
    for _step, sql in MIGRATIONS[7:]:
        for statement in sql.split(";"):
            if statement.strip():
                conn.execute(statement)
    keys = ProjectKeys()
    conn.execute("BEGIN")
    given = keys.for_write(conn, "p-1")
    conn.execute("ROLLBACK")
    assert keys.cached("p-1") is None and keys.for_read(conn, "p-1") == NO_ROWS
    conn.execute("BEGIN")
    keys.for_write(conn, "p-2")  # the key p-1 was given is free again: p-2 may take it
    conn.execute("COMMIT")
    assert keys.for_read(conn, "p-2") == given and keys.cached("p-2") == given
    conn.close()
