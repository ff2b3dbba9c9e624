"""Authentication (contract 7.1), key kinds and shapes, key storage, and project isolation,
through the real app and the real SQLite store."""

from __future__ import annotations

import asyncio
import hashlib
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.routing import APIRoute
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, make_key
from tracehive import cli
from tracehive.app import create_app
from tracehive.model.scope import KeyKind
from tracehive.settings import Settings
from tracehive.storage.factory import store_from_settings

INGESTION_KEY_SHAPE = re.compile(r"^hh_ingst_[A-Za-z0-9]{24}_[A-Za-z0-9_-]{64}$")
PROJECT_KEY_SHAPE = re.compile(r"^hh_")
# The UI shell and its static files hold no data (every datum comes from the keyed API).
UNAUTHENTICATED = {("GET", "/healthz"), ("GET", "/"), ("GET", "/ui/{relative}")}
SESSION_AND_EVENT_ROUTES = [
    ("POST", "/v1/sessions"), ("POST", "/v1/sessions/{session_id}/events/batch"),
    ("GET", "/v1/sessions/{session_id}"), ("GET", "/v1/session/{session_id}"), ("GET", "/session/{session_id}"),
    ("DELETE", "/v1/sessions/{session_id}"), ("DELETE", "/v1/session/{session_id}"),
    ("POST", "/v1/events"), ("POST", "/v1/events/batch"),
    ("GET", "/v1/events/{event_id}"), ("PUT", "/v1/events/{event_id}"), ("DELETE", "/v1/events/{event_id}"),
]


def event(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool", "inputs": {}, **fields}


def request_for(method: str, path: str, sid: str, eid: str) -> tuple[str, str, Any]:
    """A request that would succeed with a good key: real ids in the path, a valid body."""
    filled = path.replace("{session_id}", sid).replace("{event_id}", eid).replace("{id}", eid)
    body: Any = None
    if method == "POST" and path.endswith("/batch"):
        body = {"events": [event()]}
    elif method == "POST" and path == "/v1/sessions":
        body = {"session_name": "s"}
    elif method == "POST":
        body = event()
    elif method == "PUT":
        body = {"metadata": {"touched": True}, "outputs": {"touched": True}}
    return method, filled, body


def _walk(routes: Any) -> Iterator[APIRoute]:
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers nested
            yield from _walk(route.original_router.routes)


def api_routes(client: TestClient) -> list[tuple[str, str]]:
    """Every (method, path) the app serves, so that a route added later is covered too."""
    app: Any = client.app
    routes = {(m, r.path_format) for r in _walk(app.routes) for m in r.methods - {"HEAD"}}
    assert ("GET", "/healthz") in routes
    return sorted(routes)


def key_id_of(key: str) -> str:
    prefix = "hh_ingst_" if key.startswith("hh_ingst_") else "hh_"
    return key[len(prefix) : len(prefix) + 24]


# ------------------------------------------------------------------------------------------------
# Project A's data and the "A is unchanged" check
# ------------------------------------------------------------------------------------------------


@dataclass
class AData:
    sid: str  # an explicit session with a chain and a tool under it
    chain_id: str
    tool_id: str
    other_sid: str  # an implicit session made by a lone event
    lone_id: str
    project_id: str

    @property
    def event_ids(self) -> list[str]:
        return [self.sid, self.chain_id, self.tool_id, self.other_sid, self.lone_id]

    @property
    def session_ids(self) -> list[str]:
        return [self.sid, self.other_sid]


def snapshot_a(api: Api, a: AData) -> dict[str, Any]:
    shot: dict[str, Any] = {}
    for sid in a.session_ids:
        for path in (f"/v1/sessions/{sid}", f"/v1/session/{sid}", f"/session/{sid}"):
            response = api.get(path)
            assert response.status_code == 200, response.text
            shot[path] = response.json()
    for eid in a.event_ids:
        response = api.get(f"/v1/events/{eid}")
        assert response.status_code == 200, response.text
        assert response.json()["event"]["project_id"] == a.project_id
        shot[eid] = response.json()
    return shot


@pytest.fixture
def a_data(api: Api) -> AData:
    session = api.post("/v1/sessions", json={"session_name": "a", "metadata": {"owner": "a"}, "user_properties": {"u": "a"}})
    assert session.status_code == 200, session.text
    sid = session.json()["session_id"]
    chain_id, tool_id = str(uuid.uuid4()), str(uuid.uuid4())
    batch = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [
        event(event_id=chain_id, event_type="chain", inputs={"who": "a"}),
        event(event_id=tool_id, parent_id=chain_id, inputs={"who": "a"}, outputs={"out": "a"}, metadata={"m": "a"}),
    ]})
    assert batch.status_code == 200, batch.text
    assert api.put(f"/v1/events/{tool_id}", json={"feedback": {"rating": 5}}).status_code == 200
    lone = api.post("/v1/events", json=event(inputs={"who": "a"}))
    assert lone.status_code == 200, lone.text
    lone_event = api.get(f"/v1/events/{lone.json()['event_id']}").json()["event"]
    return AData(sid, chain_id, tool_id, lone_event["session_id"], lone_event["event_id"], lone_event["project_id"])


def b_project_id(api_b: Api) -> str:
    eid = api_b.post("/v1/events", json=event()).json()["event_id"]
    return str(api_b.get(f"/v1/events/{eid}").json()["event"]["project_id"])


# ------------------------------------------------------------------------------------------------
# 401: missing, malformed, unknown, revoked keys
# ------------------------------------------------------------------------------------------------


def bad_authorizations(keys: dict[str, str]) -> list[tuple[str, dict[str, Any], str]]:
    good = keys["a"]
    unknown_project = "hh_" + "A" * 24 + "_" + "s" * 64
    unknown_ingest = "hh_ingst_" + "B" * 24 + "_" + "t" * 64
    return [
        ("missing", {}, "Authorization"),
        ("basic", {"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ("token-scheme", {"Authorization": f"Token {good}"}, "Bearer"),
        ("no-scheme", {"Authorization": good}, "Bearer"),
        ("bearer-only", {"Authorization": "Bearer"}, "Bearer"),
        ("bearer-space", {"Authorization": "Bearer "}, "Bearer"),
        ("bearer-spaces", {"Authorization": "Bearer     "}, "Bearer"),
        ("empty-header", {"Authorization": ""}, "Authorization"),
        ("unknown-project-key", {"Authorization": f"Bearer {unknown_project}"}, "API key"),
        ("unknown-ingestion-key", {"Authorization": f"Bearer {unknown_ingest}"}, "API key"),
        ("not-a-key", {"Authorization": "Bearer hello"}, "API key"),
        ("key-plus-char", {"Authorization": f"Bearer {good}x"}, "API key"),
        ("key-minus-char", {"Authorization": f"Bearer {good[:-1]}"}, "API key"),
        ("key-upper-cased", {"Authorization": f"Bearer {good.upper()}"}, "API key"),
        ("key-id-only", {"Authorization": f"Bearer {key_id_of(good)}"}, "API key"),
        ("key-hash", {"Authorization": f"Bearer {hashlib.sha256(good.encode()).hexdigest()}"}, "API key"),
        ("latin1", {"Authorization": "Bearer caf\xe9".encode("latin-1")}, "API key"),
        ("huge", {"Authorization": "Bearer " + "k" * 20_000}, "API key"),
    ]


def test_every_route_but_healthz_needs_a_valid_key(
    client: TestClient, keys: dict[str, str], api: Api, a_data: AData
) -> None:
    before = snapshot_a(api, a_data)
    routes = [r for r in api_routes(client) if r not in UNAUTHENTICATED]
    assert set(SESSION_AND_EVENT_ROUTES) <= set(routes)
    for label, headers, fragment in bad_authorizations(keys):
        for method, path in routes:
            method, filled, body = request_for(method, path, a_data.sid, a_data.tool_id)
            response = client.request(method, filled, json=body, headers=headers)
            assert_error(response, 401, fragment)
            assert response.json()["errorCode"] == "UNAUTHORIZED", (label, method, path)
    assert snapshot_a(api, a_data) == before


def test_the_same_requests_succeed_with_the_key(client: TestClient, api: Api, a_data: AData) -> None:
    """Control for the test above: with A's key each of those requests is a 200."""
    routes = SESSION_AND_EVENT_ROUTES
    deletes = [r for r in routes if r[0] == "DELETE"]
    for method, path in [r for r in routes if r[0] != "DELETE"] + deletes:
        method, filled, body = request_for(method, path, a_data.sid, a_data.tool_id)
        if method == "DELETE" and "{event_id}" not in path:
            sid = api.post("/v1/sessions", json={}).json()["session_id"]  # each delete gets its own
            filled = filled.replace(a_data.sid, sid)
        response = api.request(method, filled, json=body)
        assert response.status_code == 200, (method, path, response.text)


def test_bearer_scheme_is_case_insensitive(client: TestClient, keys: dict[str, str], a_data: AData) -> None:
    for scheme in ("bearer", "BEARER", "Bearer"):
        response = client.get(f"/v1/events/{a_data.tool_id}", headers={"Authorization": f"{scheme} {keys['a']}"})
        assert response.status_code == 200, response.text


def test_auth_is_checked_before_the_path_and_the_body(client: TestClient) -> None:
    assert_error(client.get("/v1/events/not-a-uuid"), 401)
    assert_error(client.delete("/v1/sessions/not-a-uuid"), 401)
    assert_error(client.post("/v1/events", content=b"{not json"), 401)
    assert_error(client.post("/v1/sessions/not-a-uuid/events/batch", content=b"[]"), 401)
    assert_error(client.put("/v1/events/x", content=b"\xff", headers={"Content-Type": "multipart/form-data"}), 401)


def test_healthz_needs_no_key(client: TestClient) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic x"}):
        response = client.get("/healthz", headers=headers)
        assert response.status_code == 200 and response.json() == {"status": "ok"}


def revoke(settings: Settings, key: str) -> int:
    """``tracehive keys revoke`` on the test's store (SQLite in its data dir, or PostgreSQL)."""
    return cli.main(["keys", "revoke", key_id_of(key), "--data-dir", str(settings.data_dir),
                     *(["--store", settings.store] if settings.store else [])])


def test_revoked_keys_are_401_on_every_route(settings: Settings, keys: dict[str, str]) -> None:
    # Data written with A's key before the revocation, read back with a second key afterwards.
    settings = replace(settings, key_cache_seconds=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        written = Api(client, keys["a"]).post("/v1/events", json=event(inputs={"kept": True}))
        assert written.status_code == 200
    eid = written.json()["event_id"]
    assert revoke(settings, keys["a"]) == 0
    assert revoke(settings, keys["ingest_a"]) == 0
    assert revoke(settings, keys["a"]) == 1  # no active key with that id any more
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        routes = [r for r in api_routes(client) if r not in UNAUTHENTICATED]
        for key in (keys["a"], keys["ingest_a"]):
            for method, path in routes:
                method, filled, body = request_for(method, path, eid, eid)
                response = client.request(method, filled, json=body, headers={"Authorization": f"Bearer {key}"})
                assert_error(response, 401, "revoked")
        # Other keys are untouched; the project's data survives the revocation of one key.
        assert Api(client, keys["b"]).post("/v1/events", json=event()).status_code == 200
        fresh_a = Api(client, make_key(settings, "project-a"))
        kept = fresh_a.get(f"/v1/events/{eid}")
        assert kept.status_code == 200 and kept.json()["event"]["inputs"] == {"kept": True}


def test_revocation_takes_effect_on_a_running_app_without_cache(settings: Settings, keys: dict[str, str]) -> None:
    settings = replace(settings, key_cache_seconds=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        a, ingest, b = Api(client, keys["a"]), Api(client, keys["ingest_a"]), Api(client, keys["b"])
        eid = a.post("/v1/events", json=event()).json()["event_id"]
        assert a.get(f"/v1/events/{eid}").status_code == 200
        assert ingest.put(f"/v1/events/{eid}", json={"metadata": {"x": 1}}).status_code == 200
        assert revoke(settings, keys["a"]) == 0
        assert revoke(settings, keys["ingest_a"]) == 0
        assert_error(a.get(f"/v1/events/{eid}"), 401, "revoked")
        assert_error(a.post("/v1/events", json=event()), 401, "revoked")
        assert_error(ingest.put(f"/v1/events/{eid}", json={"metadata": {"y": 1}}), 401, "revoked")
        assert_error(ingest.post("/v1/sessions", json={}), 401, "revoked")
        assert b.post("/v1/events", json=event()).status_code == 200
        fresh_a = Api(client, make_key(settings, "project-a"))
        assert fresh_a.get(f"/v1/events/{eid}").json()["event"]["metadata"] == {"x": 1}


# ------------------------------------------------------------------------------------------------
# Ingestion keys: write only
# ------------------------------------------------------------------------------------------------


def test_ingestion_key_may_write_and_its_writes_land_in_its_project(ingest: Api, api: Api, api_b: Api) -> None:
    session = ingest.post("/v1/sessions", json={"session_name": "ingested", "metadata": {"via": "ingest"}})
    assert session.status_code == 200, session.text
    sid = session.json()["session_id"]
    one = ingest.post("/v1/events", json=event(session_id=sid, inputs={"n": 1}))
    assert one.status_code == 200, one.text
    in_session = ingest.post(f"/v1/sessions/{sid}/events/batch", json={"events": [event(inputs={"n": 2})]})
    assert in_session.status_code == 200, in_session.text
    many = ingest.post("/v1/events/batch", json={"events": [event(session_id=sid, inputs={"n": 3})]})
    assert many.status_code == 200, many.text
    single = ingest.post("/v1/events/batch", json={"events": [event()], "single_session": True,
                                                   "session_properties": {"session_name": "single"}})
    assert single.status_code == 200, single.text
    put = ingest.put(f"/v1/events/{one.json()['event_id']}", json={"outputs": {"done": True}, "metadata": {"p": 1}})
    assert put.status_code == 200 and put.json() == {"success": True}

    tree = api.get(f"/v1/sessions/{sid}")
    assert tree.status_code == 200, tree.text
    assert sorted(c["inputs"]["n"] for c in tree.json()["children"]) == [1, 2, 3]
    assert tree.json()["metadata"]["via"] == "ingest"
    updated = api.get(f"/v1/events/{one.json()['event_id']}").json()["event"]
    assert updated["outputs"] == {"done": True} and updated["metadata"] == {"p": 1}
    assert api.get(f"/v1/sessions/{single.json()['session_id']}").status_code == 200
    # ...and they are project A's, not B's.
    assert_error(api_b.get(f"/v1/sessions/{sid}"), 404)
    assert_error(api_b.get(f"/v1/events/{one.json()['event_id']}"), 404)


def test_ingestion_key_gets_403_on_every_read_and_delete(client: TestClient, ingest: Api, api: Api, a_data: AData) -> None:
    before = snapshot_a(api, a_data)
    routes = [r for r in api_routes(client) if r not in UNAUTHENTICATED and r[0] in ("GET", "DELETE")]
    assert {r for r in SESSION_AND_EVENT_ROUTES if r[0] in ("GET", "DELETE")} <= set(routes)
    for method, path in routes:
        for sid, eid in ((a_data.sid, a_data.tool_id), (a_data.other_sid, a_data.lone_id),
                         (str(uuid.uuid4()), str(uuid.uuid4()))):  # unknown ids: 403 too, not 404
            method, filled, _ = request_for(method, path, sid, eid)
            response = ingest.request(method, filled)
            assert_error(response, 403, "ingestion key")
            assert response.json()["errorCode"] == "FORBIDDEN"
    assert snapshot_a(api, a_data) == before


# ------------------------------------------------------------------------------------------------
# Key shapes and key storage
# ------------------------------------------------------------------------------------------------


def mint(settings: Settings, kind: KeyKind, n: int) -> list[str]:
    async def run() -> list[str]:
        store = store_from_settings(settings)
        await store.open()
        try:
            project, _ = await store.ensure_project("shapes")
            return [(await store.create_key(project.project_id, kind))[1] for _ in range(n)]
        finally:
            await store.close()

    return asyncio.run(run())


def test_key_shapes(settings: Settings, keys: dict[str, str]) -> None:
    project_keys = [keys["a"], keys["b"], *mint(settings, KeyKind.PROJECT, 30)]
    ingestion_keys = [keys["ingest_a"], *mint(settings, KeyKind.INGESTION, 30)]
    for key in project_keys:
        assert PROJECT_KEY_SHAPE.match(key), key
        assert not key.startswith("hh_ingst_") and not INGESTION_KEY_SHAPE.match(key), key
    for key in ingestion_keys:
        assert INGESTION_KEY_SHAPE.match(key), key
    everything = project_keys + ingestion_keys
    assert len(set(everything)) == len(everything)
    assert len({key_id_of(k) for k in everything}) == len(everything)


def database_bytes(data_dir: Path) -> bytes:
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    assert any(p.name == "tracehive.db" for p in files), files
    return b"".join(p.read_bytes() for p in files)


def assert_only_hashes_stored(blob: bytes, keys: dict[str, str]) -> None:
    for name, key in keys.items():
        prefix = "hh_ingst_" if key.startswith("hh_ingst_") else "hh_"
        secret = key[len(prefix) + 25 :]
        assert len(secret) == 64
        assert key.encode() not in blob, name
        assert secret.encode() not in blob, name
        assert hashlib.sha256(key.encode()).hexdigest().encode() in blob, name


@pytest.mark.parametrize("backend", ["sqlite"])  # the SQLite files, byte for byte
def test_plaintext_keys_never_reach_the_database_files(data_dir: Path, keys: dict[str, str]) -> None:
    assert_only_hashes_stored(database_bytes(data_dir), keys)
    settings = Settings(data_dir=data_dir, key_cache_seconds=0)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        for key in keys.values():  # resolve every key, write with every key
            api = Api(client, key)
            assert api.post("/v1/events", json=event(inputs={"k": "v"})).status_code == 200
            assert api.post("/v1/sessions", json={"metadata": {"m": 1}}).status_code == 200
        assert revoke(settings, keys["b"]) == 0
        assert_error(Api(client, keys["b"]).get(f"/v1/events/{uuid.uuid4()}"), 401)
        wal = data_dir / "tracehive.db-wal"
        assert wal.exists() and wal.stat().st_size > 0  # the running app's WAL is read too
        assert_only_hashes_stored(database_bytes(data_dir), keys)
    assert_only_hashes_stored(database_bytes(data_dir), keys)


# ------------------------------------------------------------------------------------------------
# Isolation: project B cannot see, change, delete or join project A's data
# ------------------------------------------------------------------------------------------------


def id_variants(value: str) -> list[str]:
    return [value, value.upper()]


def test_b_cannot_read_a(api: Api, api_b: Api, a_data: AData) -> None:
    for eid in a_data.event_ids:
        for variant in id_variants(eid):
            assert_error(api_b.get(f"/v1/events/{variant}"), 404, "not found")
    for sid in a_data.session_ids:
        for variant in id_variants(sid):
            for path in (f"/v1/sessions/{variant}", f"/v1/session/{variant}", f"/session/{variant}"):
                assert_error(api_b.get(path), 404, "not found")
    # The same reads work for A (the 404s are about the project, not the ids).
    snapshot_a(api, a_data)


def test_b_cannot_update_a(api: Api, api_b: Api, a_data: AData) -> None:
    before = snapshot_a(api, a_data)
    update = {"metadata": {"by": "b"}, "feedback": {"by": "b"}, "metrics": {"b": 1}, "config": {"b": 1},
              "user_properties": {"b": 1}, "outputs": {"by": "b"}, "duration": 1, "end_time": 9_999_999_999_999,
              "children_ids": [str(uuid.uuid4())]}
    for eid in a_data.event_ids:
        for variant in id_variants(eid):
            assert_error(api_b.put(f"/v1/events/{variant}", json=update), 404, "not found")
    assert snapshot_a(api, a_data) == before


def test_b_cannot_delete_a(api: Api, api_b: Api, a_data: AData) -> None:
    before = snapshot_a(api, a_data)
    for eid in a_data.event_ids:
        for variant in id_variants(eid):
            assert_error(api_b.delete(f"/v1/events/{variant}"), 404, "not found")
    for sid in a_data.session_ids:
        for variant in id_variants(sid):
            for path in (f"/v1/sessions/{variant}", f"/v1/session/{variant}"):
                assert_error(api_b.delete(path), 404, "not found")
    assert snapshot_a(api, a_data) == before


def tree_nodes(node: dict[str, Any]) -> list[dict[str, Any]]:
    return [node] + [n for child in node["children"] for n in tree_nodes(child)]


def test_b_cannot_write_into_a_session(api: Api, api_b: Api, a_data: AData) -> None:
    before = snapshot_a(api, a_data)
    sid = a_data.sid
    replies = [
        api_b.post("/v1/sessions", json={"session_id": sid, "metadata": {"owner": "b"}, "user_properties": {"u": "b"}}),
        api_b.post("/v1/events", json=event(session_id=sid, parent_id=a_data.chain_id, inputs={"who": "b"},
                                            project_id=a_data.project_id)),
        api_b.post(f"/v1/sessions/{sid}/events/batch",
                   json={"events": [event(parent_id=a_data.tool_id, inputs={"who": "b"})]}),
        api_b.post(f"/v1/sessions/{sid.upper()}/events/batch", json={"events": [event(inputs={"who": "b"})]}),
        api_b.post("/v1/events/batch", json={"events": [event(session_id=sid, inputs={"who": "b"})]}),
        api_b.post("/v1/events/batch", json={"events": [event(inputs={"who": "b"})], "single_session": True,
                                              "session_properties": {"session_id": sid, "metadata": {"owner": "b"}}}),
        api_b.post("/v1/events", json=event(event_type="session", event_id=a_data.other_sid, inputs={"who": "b"})),
        api_b.post("/v1/events", json=event(session_id=a_data.other_sid, event_id=a_data.lone_id, inputs={"who": "b"})),
    ]
    for reply in replies:
        assert reply.status_code == 200, reply.text
    first = replies[0].json()
    assert first["session_id"] == sid and first["metadata"] == {"owner": "b"} and first["user_properties"] == {"u": "b"}
    b_project = first["project_id"]
    assert b_project != a_data.project_id

    assert snapshot_a(api, a_data) == before
    # B got its own session with that id: only B's events, all in B's project.
    tree = api_b.get(f"/v1/sessions/{sid}")
    assert tree.status_code == 200, tree.text
    nodes = tree_nodes(tree.json())
    assert {n["project_id"] for n in nodes} == {b_project}
    assert [n["inputs"] for n in nodes if n["event_type"] != "session"] == [{"who": "b"}] * 5
    assert not {n["event_id"] for n in nodes} & {a_data.chain_id, a_data.tool_id}
    lone_b = api_b.get(f"/v1/events/{a_data.lone_id}").json()["event"]
    assert lone_b["inputs"] == {"who": "b"} and lone_b["project_id"] == b_project


def test_same_event_id_in_both_projects_is_two_separate_events(api: Api, api_b: Api) -> None:
    eid, sid = str(uuid.uuid4()), str(uuid.uuid4())
    assert api.post("/v1/events", json=event(event_id=eid, session_id=sid, inputs={"who": "a"})).status_code == 200
    assert api_b.post("/v1/events", json=event(event_id=eid, session_id=sid, inputs={"who": "b"},
                                               event_type="model")).status_code == 200
    a_event = api.get(f"/v1/events/{eid}").json()["event"]
    b_event = api_b.get(f"/v1/events/{eid}").json()["event"]
    assert (a_event["inputs"], a_event["event_type"]) == ({"who": "a"}, "tool")
    assert (b_event["inputs"], b_event["event_type"]) == ({"who": "b"}, "model")
    assert a_event["project_id"] != b_event["project_id"]
    for who, client in (("a", api), ("b", api_b)):
        tree = client.get(f"/v1/sessions/{sid}").json()
        assert [c["inputs"] for c in tree["children"]] == [{"who": who}]

    assert api_b.put(f"/v1/events/{eid}", json={"metadata": {"b": 1}, "outputs": {"b": 1}}).status_code == 200
    assert api.get(f"/v1/events/{eid}").json()["event"] == a_event
    assert api_b.delete(f"/v1/events/{eid}").status_code == 200
    assert api_b.delete(f"/v1/sessions/{sid}").status_code == 200
    assert_error(api_b.get(f"/v1/events/{eid}"), 404)
    assert api.get(f"/v1/events/{eid}").json()["event"] == a_event
    assert api.get(f"/v1/sessions/{sid}").status_code == 200
    assert_error(api_b.put(f"/v1/events/{eid}", json={"metadata": {"late": 1}}), 404)
    assert api.get(f"/v1/events/{eid}").json()["event"] == a_event


def test_same_ids_through_batches_and_session_types_stay_apart(api: Api, api_b: Api, a_data: AData) -> None:
    """B reuses A's ids in batches, including a session-typed event whose id is A's tool event
    (which A itself could not do: in A that id is taken by a non-session event)."""
    before = snapshot_a(api, a_data)
    reply = api_b.post(f"/v1/sessions/{a_data.sid}/events/batch", json={"events": [
        event(event_id=a_data.chain_id, event_type="chain", inputs={"who": "b"}),
        event(event_id=a_data.tool_id, parent_id=a_data.chain_id, inputs={"who": "b"}),
    ]})
    assert reply.status_code == 200, reply.text
    assert reply.json()["event_ids"] == [a_data.chain_id, a_data.tool_id]
    as_session = api_b.post("/v1/events/batch", json={"events": [event(event_type="session", event_id=a_data.tool_id)]})
    assert as_session.status_code == 400  # in B, that id is now B's own tool event
    fresh = api_b.post("/v1/events/batch", json={"events": [event(event_type="session", event_id=a_data.lone_id)]})
    assert fresh.status_code == 200, fresh.text
    assert_error(api.post("/v1/events", json=event(event_type="session", event_id=a_data.tool_id)), 400, "already")
    assert snapshot_a(api, a_data) == before
    b_tool = api_b.get(f"/v1/events/{a_data.tool_id}").json()["event"]
    assert b_tool["inputs"] == {"who": "b"} and b_tool["project_id"] != a_data.project_id
    assert b_tool["feedback"] == {} and b_tool["outputs"] == {}  # nothing of A's tool leaked in


def test_b_sees_none_of_a_in_its_own_reads(api_b: Api, a_data: AData) -> None:
    """B's fresh event and tree carry B's scope only."""
    b_project = b_project_id(api_b)
    assert b_project != a_data.project_id
    eid = api_b.post("/v1/events", json=event(session_id=a_data.sid)).json()["event_id"]
    tree = api_b.get(f"/v1/sessions/{a_data.sid}").json()
    assert [n["event_id"] for n in tree_nodes(tree)] == [a_data.sid, eid]
    assert tree["metadata"]["num_events"] == 1


@pytest.mark.parametrize("backend", ["postgres"])
def test_plaintext_keys_never_reach_postgresql(settings: Settings, keys: dict[str, str]) -> None:
    """Every row of every table, as PostgreSQL's text, holds key hashes and never a key."""
    with TestClient(create_app(replace(settings, key_cache_seconds=0)), raise_server_exceptions=False) as client:
        for key in keys.values():
            assert Api(client, key).post("/v1/events", json=event(inputs={"k": "v"})).status_code == 200
    with psycopg.connect(settings.store) as conn:
        tables = [r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")]
        blob = "\n".join(
            str(row) for table in tables for row in conn.execute(f'SELECT t::text FROM "{table}" AS t')
        ).encode()
    assert_only_hashes_stored(blob, keys)
