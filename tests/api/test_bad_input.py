"""Bad input on the write routes: a 4xx with the contract's error body (section 1.4) that names
the offending field (and, in batches, the event's index), and nothing already stored changes.

Every rejection test first stores a session with three events, sends one bad request aimed at
that data (same session id, same event ids, so a partial write would show), then checks through
GET that the session tree and each event are exactly as before and that the database holds no
extra event anywhere.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, make_key
from tracehive.app import create_app
from tracehive.settings import Settings

# ------------------------------------------------------------------------------------------------
# Seeded data and the "nothing changed" check
# ------------------------------------------------------------------------------------------------

SID, EID = "@SID@", "@EID@"  # replaced by the seeded session id / the seeded tool event's id


@dataclass
class World:
    api: Api
    db: Path
    sid: str
    chain_id: str
    tool_id: str
    model_id: str

    @property
    def event_ids(self) -> list[str]:
        return [self.sid, self.chain_id, self.tool_id, self.model_id]

    def fill(self, text: str) -> str:
        return text.replace(SID, self.sid).replace(EID, self.tool_id)

    def fill_bytes(self, body: bytes) -> bytes:
        return body.replace(SID.encode(), self.sid.encode()).replace(EID.encode(), self.tool_id.encode())


def seed(api: Api, db: Path) -> World:
    session = api.post(
        "/v1/sessions",
        json={"session_name": "seeded", "metadata": {"m": 1}, "user_properties": {"u": 1}, "start_time": 1_700_000_000_000},
    )
    assert session.status_code == 200, session.text
    sid = session.json()["session_id"]
    chain_id, tool_id, model_id = (str(uuid.uuid4()) for _ in range(3))
    batch = api.post(
        f"/v1/sessions/{sid}/events/batch",
        json={
            "events": [
                {"event_id": chain_id, "event_type": "chain", "event_name": "c", "inputs": {"q": "hi"},
                 "start_time": 1_700_000_000_100, "end_time": 1_700_000_000_900},
                {"event_id": tool_id, "parent_id": chain_id, "event_type": "tool", "event_name": "t",
                 "inputs": {"x": 1}, "outputs": {"y": 2}, "metadata": {"k": "v"},
                 "start_time": 1_700_000_000_200, "duration": 100},
                {"event_id": model_id, "parent_id": chain_id, "event_type": "model", "event_name": "m",
                 "inputs": {"chat_history": []}, "outputs": {"text": "hello"}, "config": {"model": "gpt"},
                 "start_time": 1_700_000_000_300, "duration": 500},
            ]
        },
    )
    assert batch.status_code == 200, batch.text
    return World(api, db, sid, chain_id, tool_id, model_id)


def stored_event_count(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])
    finally:
        conn.close()


def snapshot(world: World) -> dict[str, Any]:
    tree = world.api.get(f"/v1/sessions/{world.sid}")
    assert tree.status_code == 200, tree.text
    events = {}
    for eid in world.event_ids:
        got = world.api.get(f"/v1/events/{eid}")
        assert got.status_code == 200, got.text
        events[eid] = got.json()
    return {"tree": tree.json(), "events": events, "rows": stored_event_count(world.db)}


def tree_ids(node: dict[str, Any]) -> list[str]:
    return [node["event_id"]] + [i for child in node["children"] for i in tree_ids(child)]


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Api, Path]]:
    """One app (default settings) for the whole module: each test seeds its own session in it."""
    data_dir = tmp_path_factory.mktemp("bad-input") / "data"
    key = make_key(data_dir, "bad-input")
    settings = Settings(data_dir=data_dir)
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, key), settings.database_path


@pytest.fixture
def world(shared: tuple[Api, Path]) -> World:
    api, db = shared
    rows = stored_event_count(db)
    w = seed(api, db)
    before = snapshot(w)
    # The seed itself is what we think it is: 4 events in one tree, nothing else stored.
    assert sorted(tree_ids(before["tree"])) == sorted(w.event_ids)
    assert before["rows"] == rows + 4
    return w


SMALL_DEPTH, SMALL_BODY, SMALL_BATCH = 8, 4096, 5


@pytest.fixture
def small(tmp_path: Path) -> Iterator[World]:
    """An app with small caps: depth 8, bodies of 4096 bytes, batches of 5 events."""
    data_dir = tmp_path / "small"
    key = make_key(data_dir, "small")
    settings = Settings(
        data_dir=data_dir, max_json_depth=SMALL_DEPTH, max_body_bytes=SMALL_BODY, max_batch_events=SMALL_BATCH
    )
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        api = Api(client, key)
        yield seed(api, settings.database_path)


# ------------------------------------------------------------------------------------------------
# Cases
# ------------------------------------------------------------------------------------------------

MISSING = object()  # drop the field


@dataclass
class Case:
    name: str
    method: str
    path: str
    body: bytes
    status: int
    fragments: tuple[str, ...]
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, world: World) -> Any:
        headers = {"Content-Type": "application/json", **self.headers}
        return world.api.request(self.method, world.fill(self.path), content=world.fill_bytes(self.body), headers=headers)


def dumps(obj: Any) -> bytes:
    # json (not orjson) so that float('nan') etc. are written as the NaN / Infinity literals.
    return json.dumps(obj).encode()


def without_missing(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if v is not MISSING}


def ev(**fields: Any) -> dict[str, Any]:
    """An event aimed at the seeded session (so that wrongly storing it would show in its tree)."""
    return without_missing({"event_type": "tool", "inputs": {"ok": True}, "session_id": SID, **fields})


def batch(bad_event: Any, **top: Any) -> dict[str, Any]:
    """Three valid events, then the bad one at index 3."""
    return without_missing({"events": [ev(event_name=f"good{i}") for i in range(3)] + [bad_event], **top})


ROUTE_EVENT = ("POST", "/v1/events")
ROUTE_BATCH = ("POST", "/v1/events/batch")
ROUTE_SESSION_BATCH = ("POST", f"/v1/sessions/{SID}/events/batch")
ROUTE_SESSION = ("POST", "/v1/sessions")
ROUTE_PUT = ("PUT", f"/v1/events/{EID}")
WRITE_ROUTES = [ROUTE_EVENT, ROUTE_BATCH, ROUTE_SESSION_BATCH, ROUTE_SESSION, ROUTE_PUT]


def event_cases(name: str, fields: dict[str, Any], fragment: str, status: int = 400) -> list[Case]:
    """The same bad event on the three routes that take events: alone and at index 3 of a batch."""
    return [
        Case(f"event-{name}", *ROUTE_EVENT, dumps(ev(**fields)), status, (fragment,)),
        Case(f"batch-{name}", *ROUTE_BATCH, dumps(batch(ev(**fields))), status, (f"events[3].{fragment}",)),
        Case(f"sbatch-{name}", *ROUTE_SESSION_BATCH, dumps(batch(ev(**fields))), status, (f"events[3].{fragment}",)),
    ]


def session_case(name: str, fields: dict[str, Any], fragment: str) -> Case:
    # Same session id as the seeded one with a metadata change: a merge would show.
    body = without_missing({"session_id": SID, "metadata": {"changed": True}, **fields})
    return Case(f"session-{name}", *ROUTE_SESSION, dumps(body), 400, (fragment,))


def put_case(name: str, fields: dict[str, Any], fragment: str) -> Case:
    # A valid metadata change rides along: a partial update would show.
    return Case(f"put-{name}", *ROUTE_PUT, dumps({"metadata": {"changed": True}, **fields}), 400, (fragment,))


def build_cases() -> list[Case]:
    cases: list[Case] = []

    # Malformed JSON, empty body, JSON that is not an object: every write route.
    for method, path in WRITE_ROUTES:
        tag = f"{method} {path}"
        for label, raw, fragment in [
            ("malformed", b"{bad", "not valid JSON"),
            ("truncated", b'{"event_type": "tool", "inputs": {', "not valid JSON"),
            ("trailing-garbage", b'{"event_type": "tool", "inputs": {}} x', "not valid JSON"),
            ("single-quotes", b"{'event_type': 'tool', 'inputs': {}}", "not valid JSON"),
            ("empty", b"", "empty"),
            ("whitespace", b" \n\t ", "empty"),
            ("array", b'[{"event_type": "tool", "inputs": {}}]', "body"),
            ("empty-array", b"[]", "body"),
            ("string", b'"hello"', "body"),
            ("number", b"5", "body"),
            ("float", b"1.5", "body"),
            ("true", b"true", "body"),
            ("null", b"null", "body"),
        ]:
            cases.append(Case(f"{label}:{tag}", method, path, raw, 400, (fragment,)))

    # Wrong types and bad values for every kind of event field, on /v1/events and both batches.
    wrong: list[tuple[str, dict[str, Any], str]] = []
    for name in ("inputs", "config", "outputs", "metadata", "feedback", "metrics", "user_properties"):
        for label, value in (("str", "text"), ("list", [1]), ("num", 5), ("bool", True)):
            wrong.append((f"{name}-{label}", {name: value}, name))
    wrong += [
        ("inputs-null", {"inputs": None}, "inputs"),
        ("inputs-missing", {"inputs": MISSING}, "inputs"),
        ("event_type-missing", {"event_type": MISSING}, "event_type"),
        ("event_type-enum", {"event_type": "agent"}, "event_type"),
        ("event_type-empty", {"event_type": ""}, "event_type"),
        ("event_type-space", {"event_type": "tool "}, "event_type"),
        ("event_type-num", {"event_type": 5}, "event_type"),
        ("event_type-null", {"event_type": None}, "event_type"),
        ("duration-str", {"duration": "5"}, "duration"),
        ("duration-bool", {"duration": True}, "duration"),
        ("duration-obj", {"duration": {"ms": 5}}, "duration"),
        ("duration-huge", {"duration": 2**64}, "duration"),
        # Issue 16, point 3: no negative duration is stored.
        ("duration-negative", {"duration": -5}, "duration: must not be negative"),
        ("end_time-before-start_time", {"start_time": 2_000, "end_time": 1_000},
         "end_time: must not be before start_time"),
        ("start_time-huge", {"start_time": 2**63}, "start_time"),
        ("end_time-huge", {"end_time": -(10**300)}, "end_time"),
        ("event_id-num", {"event_id": 5}, "event_id"),
        ("event_id-obj", {"event_id": {"id": 1}}, "event_id"),
        ("event_id-not-uuid", {"event_id": "not-a-uuid"}, "event_id"),
        ("event_id-empty", {"event_id": ""}, "event_id"),
        ("event_id-uuid-plus", {"event_id": str(uuid.uuid4()) + "0"}, "event_id"),
        ("session_id-num", {"session_id": 12345}, "session_id"),
        ("session_id-not-uuid", {"session_id": "session-1"}, "session_id"),
        ("parent_id-num", {"parent_id": 7}, "parent_id"),
        ("parent_id-not-uuid", {"parent_id": "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"}, "parent_id"),
        ("children_ids-str", {"children_ids": "abc"}, "children_ids"),
        ("children_ids-num-item", {"children_ids": [5]}, "children_ids[0]"),
        ("children_ids-bad-item", {"children_ids": [str(uuid.uuid4()), "nope"]}, "children_ids[1]"),
        ("event_name-num", {"event_name": 5}, "event_name"),
        ("event_name-obj", {"event_name": {"n": 1}}, "event_name"),
        ("event_name-long", {"event_name": "x" * 1025}, "event_name"),
        ("source-list", {"source": ["dev"]}, "source"),
        ("source-long", {"source": "s" * 1025}, "source"),
        ("error-num", {"error": 500}, "error"),
        ("error-long", {"error": "e" * ((1 << 20) + 1)}, "error"),
        ("project_id-num", {"project_id": 1}, "project_id"),
        # Unknown per-event keys (contract 5.1: additionalProperties false; 10: `project` is 400).
        ("unknown-project", {"project": "x"}, "project"),
        ("unknown-foo", {"foo": 1}, "foo"),
        ("unknown-children", {"children": []}, "children"),
        ("unknown-org_id", {"org_id": "o"}, "org_id"),
    ]
    for name, fields, fragment in wrong:
        cases += event_cases(name, fields, fragment)

    # Top level of POST /v1/events/batch.
    tree_of_events = [ev() for _ in range(2)]
    for name, body, fragment in [
        ("events-missing", {"single_session": False}, "events"),
        ("events-str", {"events": "x"}, "events"),
        ("events-obj", {"events": {"0": ev()}}, "events"),
        ("events-null", {"events": None}, "events"),
        ("events-item-num", batch(5), "events[3]"),
        ("events-item-list", batch([ev()]), "events[3]"),
        ("single_session-str", {"events": tree_of_events, "single_session": "yes"}, "single_session"),
        ("single_session-num", {"events": tree_of_events, "single_session": 1}, "single_session"),
        ("session_properties-str", {"events": tree_of_events, "session_properties": "s"}, "session_properties"),
        ("session_properties-list", {"events": tree_of_events, "session_properties": []}, "session_properties"),
        ("session_properties-metadata", {"events": tree_of_events, "single_session": True,
                                         "session_properties": {"metadata": "m"}}, "session_properties.metadata"),
        ("session_properties-name", {"events": tree_of_events, "single_session": True,
                                     "session_properties": {"session_name": 5}}, "session_properties.session_name"),
        ("is_single_session", {"events": tree_of_events, "is_single_session": True}, "is_single_session"),
        ("session", {"events": tree_of_events, "session": {"session_name": "s"}}, "session"),
        ("unknown-top", {"events": tree_of_events, "foo": 1}, "foo"),
        ("unknown-project-top", {"events": tree_of_events, "project": "p"}, "project"),
    ]:
        cases.append(Case(f"batch-top-{name}", *ROUTE_BATCH, dumps(body), 400, (fragment,)))

    # Top level of POST /v1/sessions/{id}/events/batch.
    for name, body, fragment in [
        ("events-missing", {}, "events"),
        ("events-str", {"events": "x"}, "events"),
        ("events-item-str", batch("event"), "events[3]"),
        ("unknown-top", {"events": tree_of_events, "foo": 1}, "foo"),
        ("unknown-session_id", {"events": tree_of_events, "session_id": SID}, "session_id"),
        ("unknown-single_session", {"events": tree_of_events, "single_session": True}, "single_session"),
    ]:
        cases.append(Case(f"sbatch-top-{name}", *ROUTE_SESSION_BATCH, dumps(body), 400, (fragment,)))

    # POST /v1/sessions.
    for name, fields, fragment in [
        ("session_name-num", {"session_name": 5}, "session_name"),
        ("session_name-long", {"session_name": "n" * 1025}, "session_name"),
        ("event_name-long", {"event_name": "n" * 1025}, "event_name"),
        ("source-obj", {"source": {}}, "source"),
        ("duration-str", {"duration": "5"}, "duration"),
        ("duration-bool", {"duration": False}, "duration"),
        ("start_time-huge", {"start_time": 10**20}, "start_time"),
        ("config-str", {"config": "c"}, "config"),
        ("inputs-list", {"inputs": []}, "inputs"),
        ("outputs-num", {"outputs": 3}, "outputs"),
        ("metadata-str", {"metadata": "m"}, "metadata"),
        ("user_properties-list", {"user_properties": ["u"]}, "user_properties"),
        ("children_ids-str", {"children_ids": "c"}, "children_ids"),
        ("children_ids-num-item", {"children_ids": [1]}, "children_ids[0]"),
        ("unknown-project", {"project": "p"}, "project"),
        ("unknown-foo", {"foo": "bar"}, "foo"),
        ("unknown-session", {"session": {"session_name": "s"}}, "session"),
    ]:
        cases.append(session_case(name, fields, fragment))

    # PUT /v1/events/{id}: outputs must be an object (contract 10), and typed fields are typed.
    for name, fields, fragment in [
        ("outputs-str", {"outputs": "text"}, "outputs"),
        ("outputs-list", {"outputs": ["a"]}, "outputs"),
        ("outputs-num", {"outputs": 42}, "outputs"),
        ("outputs-bool", {"outputs": False}, "outputs"),
        ("feedback-str", {"feedback": "good"}, "feedback"),
        ("metrics-list", {"metrics": [1]}, "metrics"),
        ("config-num", {"config": 1}, "config"),
        ("user_properties-str", {"user_properties": "u"}, "user_properties"),
        ("metadata-str-alone", {"metadata": "m"}, "metadata"),
        ("duration-str", {"duration": "10"}, "duration"),
        ("duration-bool", {"duration": True}, "duration"),
        ("end_time-str", {"end_time": "1700000000000"}, "end_time"),
        ("end_time-huge", {"end_time": 2**63}, "end_time"),
        ("children_ids-str", {"children_ids": "c"}, "children_ids"),
        ("children_ids-bad-item", {"children_ids": ["nope"]}, "children_ids[0]"),
        ("children_ids-num-item", {"children_ids": [5]}, "children_ids[0]"),
    ]:
        cases.append(put_case(name, fields, fragment))

    # Invalid path ids (400, naming the parameter), on every route with an id in its path.
    valid_batch = dumps({"events": [ev()]})
    for bad in ("not-a-uuid", "12345", EID + "0", "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz", "%7B" + EID + "%7D",
                "0" + EID, EID.replace("@", "%40")):
        for method, path, body, fragment in [
            ("GET", f"/v1/events/{bad}", b"", "event_id"),
            ("PUT", f"/v1/events/{bad}", dumps({"metadata": {"changed": True}}), "event_id"),
            ("DELETE", f"/v1/events/{bad}", b"", "event_id"),
            ("POST", f"/v1/sessions/{bad}/events/batch", valid_batch, "session_id"),
            ("GET", f"/v1/sessions/{bad}", b"", "session_id"),
            ("GET", f"/v1/session/{bad}", b"", "session_id"),
            ("GET", f"/session/{bad}", b"", "session_id"),
            ("DELETE", f"/v1/sessions/{bad}", b"", "session_id"),
            ("DELETE", f"/v1/session/{bad}", b"", "session_id"),
        ]:
            cases.append(Case(f"path-{bad}:{method} {path}", method, path, body, 400, (fragment, "UUID")))

    # NaN / Infinity / -Infinity / 1e400, invalid UTF-8 and lone surrogates: 400 on every route,
    # with the message showing where (the field just before the parser stopped).
    body_for = {
        ROUTE_EVENT: lambda v: {**ev(), "duration": v},
        ROUTE_BATCH: lambda v: batch({**ev(), "duration": v}),
        ROUTE_SESSION_BATCH: lambda v: batch({**ev(), "duration": v}),
        ROUTE_SESSION: lambda v: {"session_id": SID, "metadata": {"changed": True}, "duration": v},
        ROUTE_PUT: lambda v: {"metadata": {"changed": True}, "duration": v},
    }
    for route, make in body_for.items():
        tag = f"{route[0]} {route[1]}"
        for label, literal in [("nan", b"NaN"), ("inf", b"Infinity"), ("-inf", b"-Infinity"),
                               ("1e400", b"1e400"), ("-1e400", b"-1e400"), ("nan-nested", None)]:
            if literal is None:  # inside a nested object instead of a number field
                raw = dumps(make(1)).replace(b'"changed": true', b'"changed": NaN').replace(b'"ok": true', b'"ok": NaN')
            else:
                raw = dumps(make("@LIT@")).replace(b'"@LIT@"', literal)
            fragment = "NaN" if literal is None else "duration"
            cases.append(Case(f"{label}:{tag}", *route, raw, 400, ("not valid JSON", fragment)))
        for label, bad_bytes in [("utf8-ff", b"\xff"), ("utf8-truncated", b"\xc3"), ("utf8-overlong", b"\xc0\xaf"),
                                 ("utf8-encoded-surrogate", b"\xed\xa0\x80"), ("latin1", b"caf\xe9")]:
            raw = dumps(make(1)).replace(b'"changed"', b'"ch' + bad_bytes + b'"').replace(b'"ok"', b'"o' + bad_bytes + b'"')
            assert bad_bytes in raw
            cases.append(Case(f"{label}:{tag}", *route, raw, 400, ("not valid UTF-8", "offset")))
        for label, escape in [("lone-high", b"\\ud800"), ("lone-low", b"\\udc00"), ("high-then-letter", b"\\ud800\\u0041"),
                              ("reversed-pair", b"\\ude00\\ud83d")]:
            raw = dumps(make(1)).replace(b'"changed"', b'"' + escape + b'"').replace(b'"ok"', b'"' + escape + b'"')
            assert escape in raw
            cases.append(Case(f"{label}:{tag}", *route, raw, 400, ("not valid JSON", "surrogate")))
        # An unsupported Content-Type (415) even with a perfectly good JSON body.
        for ctype in ("multipart/form-data; boundary=xyz", "application/xml", "application/octet-stream"):
            cases.append(Case(f"ctype-{ctype.split(';')[0]}:{tag}", *route, dumps(make(1)), 415,
                              ("Content-Type", ctype.split(";")[0]), {"Content-Type": ctype}))
    return cases


CASES = build_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_rejected_and_nothing_changes(world: World, case: Case) -> None:
    before = snapshot(world)
    response = case.send(world)
    assert_error(response, case.status, *case.fragments)
    assert snapshot(world) == before


def test_there_are_cases_for_every_write_route() -> None:
    paths = {(c.method, c.path) for c in CASES}
    assert set(WRITE_ROUTES) <= paths
    assert len(CASES) > 400


# ------------------------------------------------------------------------------------------------
# Accepted inputs next to the rejected ones (so the rejections are about the value, not the route)
# ------------------------------------------------------------------------------------------------


def test_valid_twin_of_each_route_is_accepted(world: World) -> None:
    """The same bodies as the rejection cases with the bad value taken out are accepted."""
    for method, path, body in [
        (*ROUTE_EVENT, ev()),
        (*ROUTE_BATCH, batch(ev())),
        (*ROUTE_SESSION_BATCH, batch(ev())),
        (*ROUTE_SESSION, {"session_id": SID, "metadata": {"changed": True}}),
        (*ROUTE_PUT, {"metadata": {"changed": True}}),
    ]:
        response = world.api.request(method, world.fill(path), content=world.fill_bytes(dumps(body)),
                                     headers={"Content-Type": "application/json"})
        assert response.status_code == 200, (path, response.text)
    tree = world.api.get(f"/v1/sessions/{world.sid}").json()
    assert len(tree_ids(tree)) == 4 + 1 + 4 + 4  # seed + /v1/events + two batches of 4
    assert tree["metadata"]["changed"] is True
    assert world.api.get(f"/v1/events/{world.tool_id}").json()["event"]["metadata"] == {"k": "v", "changed": True}


def test_non_uuid_session_id_on_create_session_is_replaced(world: World) -> None:
    before = snapshot(world)
    # Any value that is not a UUID string is replaced (contract 3.1), whatever its type or length.
    invalid = ("not-a-uuid", "", "12345", world.sid + "0", "x" * 5000, 5, {"id": world.sid}, [world.sid])
    for sent in invalid:
        response = world.api.post("/v1/sessions", json={"session_id": sent, "session_name": "a"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["session_id"] != sent and body["session_id"] != world.sid
        assert str(uuid.UUID(body["session_id"])) == body["session_id"]
        assert body["event_id"] == body["session_id"] and body["event_name"] == "a"
    after = snapshot(world)
    assert after["tree"] == before["tree"] and after["events"] == before["events"]
    assert after["rows"] == before["rows"] + len(invalid)


def test_upper_case_event_type_and_ids_are_lower_cased(world: World) -> None:
    eid = str(uuid.uuid4())
    response = world.api.post("/v1/events", json={"event_type": "TOOL", "inputs": {}, "event_id": eid.upper(),
                                                  "session_id": world.sid.upper(), "parent_id": world.chain_id.upper()})
    assert response.status_code == 200, response.text
    assert response.json()["event_id"] == eid
    stored = world.api.get(f"/v1/events/{eid.upper()}").json()["event"]
    assert (stored["event_type"], stored["session_id"], stored["parent_id"]) == ("tool", world.sid, world.chain_id)
    reply = world.api.post(f"/v1/sessions/{world.sid.upper()}/events/batch",
                           json={"events": [{"event_type": "Model", "inputs": {}}, {"event_type": "cHaIn", "inputs": {}}]})
    assert reply.status_code == 200, reply.text
    types = [world.api.get(f"/v1/events/{i}").json()["event"]["event_type"] for i in reply.json()["event_ids"]]
    assert types == ["model", "chain"]
    batch_reply = world.api.post("/v1/events/batch", json={"events": [{"event_type": "SESSION", "inputs": {}}]})
    assert batch_reply.status_code == 200, batch_reply.text
    session_id = batch_reply.json()["event_ids"][0]
    assert world.api.get(f"/v1/events/{session_id}").json()["event"]["event_type"] == "session"


def test_string_times_are_replaced_by_now_but_string_durations_rejected(world: World) -> None:
    """Contract 3.1/5.4: start_time/end_time are read getInt64-style (a string becomes now);
    duration is a plain number field, so a string there is a 400 (see the cases above)."""
    response = world.api.post("/v1/events", json={"event_type": "tool", "inputs": {}, "start_time": "1700000000000"})
    assert response.status_code == 200, response.text
    stored = world.api.get(f"/v1/events/{response.json()['event_id']}").json()["event"]
    assert stored["start_time"] != 1_700_000_000_000 and stored["start_time"] > 1_700_000_000_000


def test_create_session_never_stores_a_negative_duration(world: World) -> None:
    """POST /v1/sessions has a fallback for every field (the seed): a negative duration counts as
    not sent, and so does an end before the start; the duration then comes from the times."""
    for sent, expected in [
        ({"start_time": 1_000, "end_time": 3_000, "duration": -5}, (1_000, 3_000, 2_000)),
        ({"start_time": 1_000, "duration": -5}, (1_000, 1_000, 0)),
        ({"start_time": 5_000, "end_time": 1_000}, (5_000, 5_000, 0)),
        ({"start_time": 5_000, "end_time": 1_000, "duration": 250}, (5_000, 5_250, 250)),
    ]:
        response = world.api.post("/v1/sessions", json={"session_name": "times", **sent})
        assert response.status_code == 200, response.text
        stored = world.api.get(f"/v1/events/{response.json()['session_id']}").json()["event"]
        assert (stored["start_time"], stored["end_time"], stored["duration"]) == expected, sent


def test_longest_allowed_strings_are_accepted(world: World) -> None:
    name, error = "n" * 1024, "e" * (1 << 20)
    response = world.api.post("/v1/events", json={**world_event(world), "event_name": name, "error": error})
    assert response.status_code == 200, response.text
    stored = world.api.get(f"/v1/events/{response.json()['event_id']}").json()["event"]
    assert stored["event_name"] == name and stored["error"] == error


def world_event(world: World) -> dict[str, Any]:
    return {"event_type": "tool", "inputs": {}, "session_id": world.sid}


def test_valid_surrogate_pair_and_unicode_are_stored(world: World) -> None:
    raw = b'{"event_type":"tool","inputs":{"emoji":"\\ud83d\\ude00","raw":"\xf0\x9f\x98\x80 caf\xc3\xa9"}}'
    response = world.api.request("POST", "/v1/events", content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    stored = world.api.get(f"/v1/events/{response.json()['event_id']}").json()["event"]
    assert stored["inputs"] == {"emoji": "\U0001F600", "raw": "\U0001F600 café"}


def test_json_compatible_content_types_are_accepted(world: World) -> None:
    for ctype in ("application/json; charset=utf-8", "application/vnd.api+json", "text/plain",
                  "application/x-www-form-urlencoded"):
        response = world.api.request("POST", "/v1/events", content=dumps(world_event(world)),
                                     headers={"Content-Type": ctype})
        assert response.status_code == 200, (ctype, response.text)


# ------------------------------------------------------------------------------------------------
# PUT: outputs null keeps them; unknown keys ignored
# ------------------------------------------------------------------------------------------------


def test_put_outputs_null_with_unknown_key_is_ok_and_changes_nothing(world: World) -> None:
    before = snapshot(world)
    response = world.api.put(f"/v1/events/{world.tool_id}", json={"outputs": None, "foo": 1})
    assert response.status_code == 200, response.text
    assert response.json() == {"success": True}
    assert snapshot(world) == before
    assert before["events"][world.tool_id]["event"]["outputs"] == {"y": 2}


def test_put_outputs_null_keeps_outputs_while_merging_metadata(world: World) -> None:
    response = world.api.put(f"/v1/events/{world.tool_id}",
                             json={"outputs": None, "metadata": {"n": 1}, "event_name": "ignored", "inputs": {"no": 1}})
    assert response.status_code == 200, response.text
    event = world.api.get(f"/v1/events/{world.tool_id}").json()["event"]
    assert event["outputs"] == {"y": 2}
    assert event["metadata"] == {"k": "v", "n": 1}
    assert event["event_name"] == "t" and event["inputs"] == {"x": 1}


def test_put_to_unknown_event_is_404_and_creates_nothing(world: World) -> None:
    before = snapshot(world)
    assert_error(world.api.put(f"/v1/events/{uuid.uuid4()}", json={"metadata": {"a": 1}}), 404, "not found")
    assert snapshot(world) == before


# ------------------------------------------------------------------------------------------------
# Depth, body and batch caps
# ------------------------------------------------------------------------------------------------


def nest(levels: int) -> dict[str, Any]:
    """``levels`` nested non-empty objects: {"d1": {"d2": ... {"leaf": 1}}}."""
    node: dict[str, Any] = {"leaf": 1}
    for i in range(levels - 1, 0, -1):
        node = {f"d{i}": node}
    return node


def depth_bodies(limit: int, extra: int) -> list[tuple[str, str, dict[str, Any], str]]:
    """Bodies whose deepest container is at depth ``limit + extra`` (the body itself is level 1)."""
    n = limit + extra
    return [
        (*ROUTE_EVENT, {**ev(), "inputs": nest(n - 1)}, "inputs.d1"),
        (*ROUTE_BATCH, batch({**ev(), "metadata": nest(n - 3)}), "events[3].metadata.d1"),
        (*ROUTE_SESSION_BATCH, batch({**ev(), "metadata": nest(n - 3)}), "events[3].metadata.d1"),
        (*ROUTE_SESSION, {"session_id": SID, "metadata": nest(n - 1)}, "metadata.d1"),
        (*ROUTE_PUT, {"metadata": nest(n - 1)}, "metadata.d1"),
    ]


def send_json(world: World, method: str, path: str, body: Any) -> Any:
    return world.api.request(method, world.fill(path), content=world.fill_bytes(dumps(body)),
                             headers={"Content-Type": "application/json"})


def test_nesting_past_max_json_depth_is_400_naming_where(small: World) -> None:
    before = snapshot(small)
    for method, path, body, where in depth_bodies(SMALL_DEPTH, 1):
        response = send_json(small, method, path, body)
        assert_error(response, 400, "nesting", f"limit of {SMALL_DEPTH}", where)
        assert snapshot(small) == before, path


def test_nesting_at_max_json_depth_is_accepted(small: World) -> None:
    for method, path, body, _ in depth_bodies(SMALL_DEPTH, 0):
        response = send_json(small, method, path, body)
        assert response.status_code == 200, (path, response.text)


def test_nesting_past_default_depth_is_400(world: World) -> None:
    before = snapshot(world)
    for method, path, body, where in depth_bodies(64, 1):
        assert_error(send_json(world, method, path, body), 400, "nesting", "limit of 64", where)
    for method, path, body, _ in depth_bodies(64, 0)[:1]:
        assert send_json(world, method, path, body).status_code == 200
    after = snapshot(world)
    assert after["rows"] == before["rows"] + 1


@pytest.mark.parametrize("depth", [100, 1000, 10_000, 100_000])
@pytest.mark.parametrize("shape", ["arrays", "objects", "in-inputs"])
def test_absurd_nesting_is_400_not_a_crash(world: World, depth: int, shape: str) -> None:
    before = snapshot(world)
    if shape == "arrays":
        raw = b"[" * depth + b"]" * depth
    elif shape == "objects":
        raw = b'{"a":' * depth + b"1" + b"}" * depth
    else:
        raw = b'{"event_type":"tool","inputs":' + b'{"a":' * depth + b"{}" + b"}" * depth + b"}"
    for method, path in WRITE_ROUTES:
        response = world.api.request(method, world.fill(path), content=raw, headers={"Content-Type": "application/json"})
        body = assert_error(response, 400)
        assert "depth" in body["message"] or "nesting" in body["message"], body
    assert world.api.get("/healthz").status_code == 200
    assert snapshot(world) == before


def padded_event(size: int) -> bytes:
    """A valid /v1/events body of exactly ``size`` bytes."""
    head, tail = b'{"event_type":"tool","inputs":{"pad":"', b'"}}'
    return head + b"p" * (size - len(head) - len(tail)) + tail


def test_body_over_the_cap_with_content_length_is_413(small: World) -> None:
    before = snapshot(small)
    big = padded_event(SMALL_BODY + 1)
    for method, path in WRITE_ROUTES:
        response = small.api.request(method, small.fill(path), content=big, headers={"Content-Type": "application/json"})
        assert response.request.headers["content-length"] == str(SMALL_BODY + 1)
        assert_error(response, 413, str(SMALL_BODY))
    # Garbage is refused for its size before anyone tries to parse it.
    assert_error(small.api.request("POST", "/v1/events", content=b"\xff" * (SMALL_BODY * 4)), 413, str(SMALL_BODY))
    assert snapshot(small) == before


def test_chunked_body_over_the_cap_without_content_length_is_413(small: World) -> None:
    before = snapshot(small)
    for method, path in WRITE_ROUTES:
        body = padded_event(SMALL_BODY * 3)

        def chunks() -> Iterator[bytes]:
            for i in range(0, len(body), 1000):
                yield body[i : i + 1000]

        request = small.api.client.build_request(method, small.fill(path), content=chunks(),
                                                 headers=small.api.headers({"Content-Type": "application/json"}))
        assert "content-length" not in request.headers
        assert request.headers["transfer-encoding"] == "chunked"
        assert_error(small.api.client.send(request), 413, str(SMALL_BODY))
    assert snapshot(small) == before


def test_body_exactly_at_the_cap_is_accepted(small: World) -> None:
    exact = padded_event(SMALL_BODY)
    assert len(exact) == SMALL_BODY
    response = small.api.request("POST", "/v1/events", content=exact, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text

    def chunks() -> Iterator[bytes]:
        yield exact[:100]
        yield exact[100:]

    assert small.api.request("POST", "/v1/events", content=chunks()).status_code == 200


def test_batch_over_the_cap_is_413_naming_the_count(small: World) -> None:
    before = snapshot(small)
    too_many = {"events": [{"event_type": "tool", "inputs": {}, "session_id": SID} for _ in range(SMALL_BATCH + 1)]}
    for method, path in (ROUTE_BATCH, ROUTE_SESSION_BATCH):
        response = send_json(small, method, path, too_many)
        assert_error(response, 413, "events", f"{SMALL_BATCH + 1} events", f"limit of {SMALL_BATCH}")
    assert snapshot(small) == before
    at_cap = {"events": too_many["events"][:SMALL_BATCH]}
    for method, path in (ROUTE_BATCH, ROUTE_SESSION_BATCH):
        response = send_json(small, method, path, at_cap)
        assert response.status_code == 200, response.text
    assert len(tree_ids(small.api.get(f"/v1/sessions/{small.sid}").json())) == 4 + 2 * SMALL_BATCH


# ------------------------------------------------------------------------------------------------
# No input yields a 500
# ------------------------------------------------------------------------------------------------


def nested_lists(levels: int) -> list[Any]:
    node: list[Any] = [1]
    for _ in range(levels - 1):
        node = [node]
    return node


def hostile_bodies() -> list[bytes]:
    u = str(uuid.uuid4())
    objects: list[Any] = [
        {}, [], [{}], {"events": None}, {"events": [None]}, {"events": [[]]}, {"events": [{}]},
        {"events": [{"event_type": "tool"}]}, {"events": []}, {"events": [], "single_session": True},
        {"events": [], "single_session": True, "session_properties": {"session_id": SID, "start_time": "x"}},
        {"event_type": {"$ne": 1}, "inputs": {}}, {"__proto__": {"admin": True}, "event_type": "tool", "inputs": {}},
        {"constructor": {"prototype": {}}}, {"event_type": "tool", "inputs": {"a": 2**64}},
        {"event_type": "tool", "inputs": {"a": -(2**63) - 1}}, {"event_type": "tool", "inputs": {}, "start_time": 2**63 - 1},
        {"event_type": "tool", "inputs": {}, "start_time": 2**53, "duration": 2**53},
        {"event_type": "tool", "inputs": {}, "start_time": -(2**53), "end_time": 2**53},
        {"event_type": "tool", "inputs": {}, "start_time": 1e308, "end_time": -1e308, "duration": 5e-324},
        {"event_type": "tool", "inputs": {}, "start_time": -1, "end_time": -5, "duration": -10},
        {"event_type": "tool", "inputs": {}, "start_time": [], "end_time": {}, "duration": None},
        {"event_type": "session", "inputs": {}, "event_id": EID},
        {"event_type": "session", "inputs": {}, "session_id": EID, "parent_id": EID},
        {"event_type": "tool", "inputs": {}, "event_id": SID},
        {"event_type": "tool", "inputs": {}, "event_id": SID, "session_id": SID},
        {"event_type": "tool", "inputs": {}, "event_id": u, "parent_id": u, "session_id": SID},
        {"event_type": "tool", "inputs": {}, "event_id": EID, "session_id": SID, "parent_id": EID},
        {"event_type": "chain", "inputs": {}, "session_id": SID, "children_ids": [EID, SID, EID]},
        {"event_type": "tool", "inputs": {}, "children_ids": [str(uuid.uuid4()) for _ in range(2000)]},
        {"events": [{"event_type": "tool", "inputs": {}, "event_id": u}] * 50},
        {"events": [{"event_type": "session", "inputs": {}, "event_id": SID}, {"event_type": "session", "inputs": {}}]},
        {"events": [{"event_type": "tool", "inputs": {}, "parent_id": u, "event_id": u}]},
        {"event_type": "tool", "inputs": {"k\u0000": "v\u0000"}, "event_name": "\u0000", "error": "\u0000"},
        {"event_type": "tool", "inputs": {"'; DROP TABLE events; --": "\"); DELETE FROM api_keys; --"}},
        {"event_type": "tool", "inputs": {str(i): i for i in range(20_000)}},
        {"event_type": "tool", "inputs": {"k" * 100_000: "v" * 100_000}},
        {"event_type": "tool", "inputs": {"a": nest(63)}},
        {"event_type": "tool", "inputs": {"a": nested_lists(60)}},
        {"metadata": None, "feedback": None, "metrics": None, "config": None, "user_properties": None,
         "outputs": None, "duration": None, "end_time": None, "children_ids": None},
        {"children_ids": []}, {"children_ids": [EID]}, {"end_time": -(2**53)}, {"duration": 2**53},
        {"session_id": SID, "start_time": 1e15, "end_time": 1}, {"session_id": SID.upper()},
        {"session_id": "\u0000" * 64}, {"session_name": "\ud7ff\ue000\uffff"},
        {"metadata": {"": {"": {"": None}}}}, {"metadata": {"a": float(2**60)}}, {"user_properties": {"$set": 1}},
    ]
    raw: list[bytes] = [
        b"", b" ", b"\x00", b"\x00" * 100, b"{", b"}", b"[", b"]", b'{"', b"nul", b"null", b"true", b"0", b"-0",
        b"1e400", b"-1e400", b"NaN", b"Infinity", b"-Infinity", b'"\\ud800"', b"\xff\xfe{\x00}\x00",
        b"\xef\xbb\xbf{}", b'{"a":1,"a":2}', b'{"event_type":"tool","event_type":"model","inputs":{}}',
        b'{"events":[' + b"{}," * 999 + b"{}]}", b"[" * 1025 + b"]" * 1025, b'{"a":' * 64 + b"1" + b"}" * 64,
        b'{"event_type":"tool","inputs":{"x":"' + b"\\u0000" * 1000 + b'"}}',
        b'{"event_type":"tool","inputs":{"x":1.7976931348623157e308,"y":-0.0,"z":1e-400}}',
        b'{"event_type":"tool","inputs":{},"duration":1.7976931348623157e308,"start_time":1.7976931348623157e308}',
        b'{"event_type":"tool","inputs":{},"end_time":1.7976931348623157e308}',
        b"\t\n\r {\t\n\r}\t\n\r ",
    ]
    return raw + [dumps(o) for o in objects]


HOSTILE = hostile_bodies()


@pytest.mark.parametrize("route", WRITE_ROUTES, ids=[f"{m} {p}" for m, p in WRITE_ROUTES])
def test_no_input_yields_a_500(world: World, route: tuple[str, str]) -> None:
    method, path = route
    statuses = set()
    for raw in HOSTILE:
        for body in (raw, b'{"events":[' + raw + b"]}"):
            response = world.api.request(method, world.fill(path), content=world.fill_bytes(body),
                                         headers={"Content-Type": "application/json"})
            assert response.status_code < 500, (body[:200], response.text)
            statuses.add(response.status_code)
            if response.status_code >= 400:
                assert_error(response, response.status_code)
    assert 400 in statuses
    # The server still answers, the seeded tree still reads, and the tables are intact.
    assert world.api.get("/healthz").status_code == 200
    tree = world.api.get(f"/v1/sessions/{world.sid}")
    assert tree.status_code == 200, tree.text
    assert stored_event_count(world.db) >= 1
