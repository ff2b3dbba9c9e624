"""Event routes (contract 4.1 to 4.5 and section 5) through the real app and store."""

from __future__ import annotations

import time
import uuid

from tests.helpers import Api, assert_error


def _create(api: Api, **fields: object) -> str:
    body = {"event_type": "tool", "inputs": {}, **fields}
    reply = api.post("/v1/events", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["success"] is True
    return reply.json()["event_id"]


def test_create_event_fills_every_default_and_creates_its_session(api: Api) -> None:
    before = int(time.time() * 1000)
    eid = _create(api)
    event = api.get(f"/v1/events/{eid}").json()["event"]
    assert uuid.UUID(event["event_id"]).version == 4
    assert uuid.UUID(event["session_id"]).version == 4
    assert event["parent_id"] == event["session_id"]
    assert event["event_name"] == "unknown" and event["source"] == "unknown"
    assert event["start_time"] >= before and event["end_time"] == event["start_time"] and event["duration"] == 0
    session = api.get(f"/v1/sessions/{event['session_id']}").json()
    assert session["event_type"] == "session" and session["children_ids"] == [eid]
    assert {"org_id", "workspace_id", "project_id"} <= event.keys()


def test_an_event_sent_without_a_source_takes_its_session_s(api: Api) -> None:
    """Issue 16, point 10: the session's source, whichever route wrote the event; a sent one wins."""
    sid = api.post("/v1/sessions", json={"session_name": "s", "source": "web-app"}).json()["session_id"]
    bare = _create(api, session_id=sid, event_name="bare")
    own = _create(api, session_id=sid, event_name="own", source="worker")
    legacy = api.post("/events", json={"event": {"event_type": "tool", "event_name": "legacy", "session_id": sid,
                                                 "inputs": {}}})
    assert legacy.status_code == 200, legacy.text
    batch = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [{"event_type": "chain", "inputs": {}}]})
    assert batch.status_code == 200, batch.text
    sources = {e["event_id"]: e["source"] for e in api.get(f"/v1/sessions/{sid}").json()["children"]}
    assert sources[bare] == "web-app" and sources[own] == "worker"
    assert sorted(sources.values()) == ["web-app", "web-app", "web-app", "worker"]


def test_contract_vectors_for_post_event(api: Api) -> None:
    assert_error(api.post("/v1/events", json={"event_type": "tool"}), 400, "inputs")
    assert_error(api.post("/v1/events", json={"event_type": "tool", "inputs": {}, "project": "x"}), 400, "project")
    assert_error(api.post("/v1/events", json={"event_type": "agent", "inputs": {}}), 400, "event_type")
    eid = _create(api, event_type="MODEL")
    assert api.get(f"/v1/events/{eid}").json()["event"]["event_type"] == "model"


def test_ids_are_lower_cased_and_non_uuid_ids_rejected(api: Api) -> None:
    eid, sid = str(uuid.uuid4()), str(uuid.uuid4())
    assert _create(api, event_id=eid.upper(), session_id=sid.upper()) == eid
    event = api.get(f"/v1/events/{eid.upper()}").json()["event"]
    assert event["session_id"] == sid and event["parent_id"] == sid
    for field in ("event_id", "session_id", "parent_id"):
        assert_error(api.post("/v1/events", json={"event_type": "tool", "inputs": {}, field: "nope"}), 400, field)


def test_time_derivation(api: Api) -> None:
    e1 = api.get(f"/v1/events/{_create(api, start_time=1000, duration=250)}").json()["event"]
    assert (e1["start_time"], e1["end_time"], e1["duration"]) == (1000, 1250, 250)
    e2 = api.get(f"/v1/events/{_create(api, end_time=5000, duration=1000.5)}").json()["event"]
    assert (e2["start_time"], e2["end_time"], e2["duration"]) == (3999.5, 5000, 1000.5)
    e3 = api.get(f"/v1/events/{_create(api, start_time=100, end_time=400)}").json()["event"]
    assert e3["duration"] == 300
    before = int(time.time() * 1000)
    e4 = api.get(f"/v1/events/{_create(api, start_time='yesterday')}").json()["event"]
    assert e4["start_time"] >= before


def test_children_ids_complete_when_children_arrive_before_parent(api: Api) -> None:
    sid, parent = str(uuid.uuid4()), str(uuid.uuid4())
    child1 = _create(api, session_id=sid, parent_id=parent, start_time=2)
    child2 = _create(api, session_id=sid, parent_id=parent, start_time=3)
    _create(api, event_id=parent, session_id=sid, event_type="chain", start_time=1)
    assert api.get(f"/v1/events/{parent}").json()["event"]["children_ids"] == [child1, child2]
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert [c["event_id"] for c in tree["children"]] == [parent]
    assert [c["event_id"] for c in tree["children"][0]["children"]] == [child1, child2]


def test_explicit_children_ids_kept_and_completed(api: Api) -> None:
    sid = str(uuid.uuid4())
    announced = str(uuid.uuid4())
    parent = _create(api, session_id=sid, event_type="chain", children_ids=[announced])
    actual = _create(api, session_id=sid, parent_id=parent)
    assert api.get(f"/v1/events/{parent}").json()["event"]["children_ids"] == [announced, actual]


def test_reposting_an_event_is_an_idempotent_upsert(api: Api) -> None:
    sid = str(uuid.uuid4())
    eid = str(uuid.uuid4())
    body = {"event_id": eid, "session_id": sid, "event_type": "tool", "inputs": {"x": 1}, "start_time": 1}
    api.post("/v1/events", json=body)
    api.post("/v1/events", json={**body, "event_name": "renamed"})
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert [c["event_id"] for c in tree["children"]] == [eid]
    assert tree["children"][0]["event_name"] == "renamed"


def test_get_event_unknown_is_404_and_session_id_returns_session_event(api: Api) -> None:
    assert_error(api.get(f"/v1/events/{uuid.uuid4()}"), 404)
    sid = api.post("/v1/sessions", json={"session_name": "x"}).json()["session_id"]
    event = api.get(f"/v1/events/{sid}").json()["event"]
    assert event["event_type"] == "session" and "children" not in event


def test_put_merge_rules(api: Api) -> None:
    eid = _create(api, metadata={"a": 1, "b": 1}, feedback={"f": 1}, metrics={"m": 1}, config={"c": 1},
                  user_properties={"u": 1}, outputs={"old": True}, children_ids=[], start_time=100, duration=5)
    child = str(uuid.uuid4())
    reply = api.put(f"/v1/events/{eid}", json={
        "metadata": {"b": 2, "c": 3}, "feedback": {"g": 2}, "metrics": {"m": 2}, "config": {"d": 4},
        "user_properties": {"v": 2}, "outputs": {"new": True}, "duration": 50, "end_time": 150,
        "children_ids": [child], "inputs": {"ignored": True}, "event_name": "ignored", "unknown_field": 1,
    })
    assert reply.status_code == 200 and reply.json() == {"success": True}
    e = api.get(f"/v1/events/{eid}").json()["event"]
    assert e["metadata"] == {"a": 1, "b": 2, "c": 3}
    assert e["feedback"] == {"f": 1, "g": 2} and e["metrics"] == {"m": 2}
    assert e["config"] == {"c": 1, "d": 4} and e["user_properties"] == {"u": 1, "v": 2}
    assert e["outputs"] == {"new": True}
    assert e["duration"] == 50 and e["end_time"] == 150
    assert e["children_ids"] == [child]
    assert e["inputs"] == {} and e["event_name"] == "unknown"

    assert api.put(f"/v1/events/{eid}", json={"children_ids": [], "outputs": None, "foo": 1}).status_code == 200
    e2 = api.get(f"/v1/events/{eid}").json()["event"]
    assert e2["children_ids"] == [child] and e2["outputs"] == {"new": True}


def test_put_contract_vectors(api: Api) -> None:
    eid = _create(api, outputs={"keep": 1})
    assert_error(api.put(f"/v1/events/{eid}", json={"outputs": "text"}), 400, "outputs")
    assert api.get(f"/v1/events/{eid}").json()["event"]["outputs"] == {"keep": 1}
    assert_error(api.put(f"/v1/events/{uuid.uuid4()}", json={"metadata": {"a": 1}}), 404)


def test_put_end_time_widens_session(api: Api) -> None:
    sid = str(uuid.uuid4())
    eid = _create(api, session_id=sid, start_time=1000, end_time=1100)
    api.put(f"/v1/events/{eid}", json={"end_time": 9000})
    session = api.get(f"/v1/events/{sid}").json()["event"]
    assert session["end_time"] == 9000 and session["duration"] == 8000


def test_delete_event(api: Api) -> None:
    eid = _create(api)
    assert api.delete(f"/v1/events/{eid}").json() == {"success": True, "deleted": eid}
    assert api.get(f"/v1/events/{eid}").status_code == 404
    assert_error(api.delete(f"/v1/events/{eid}"), 404)


def test_batch_without_single_session_keeps_or_makes_session_per_event(api: Api) -> None:
    sid = str(uuid.uuid4())
    reply = api.post("/v1/events/batch", json={"events": [
        {"event_type": "tool", "inputs": {}, "session_id": sid},
        {"event_type": "tool", "inputs": {}},
    ]})
    assert reply.status_code == 200
    body = reply.json()
    assert body["success"] is True and len(body["event_ids"]) == 2 and "session_id" not in body
    sessions = [api.get(f"/v1/events/{e}").json()["event"]["session_id"] for e in body["event_ids"]]
    assert sessions[0] == sid and sessions[1] != sid
    assert api.get(f"/v1/sessions/{sessions[1]}").status_code == 200


def test_batch_with_single_session_and_properties(api: Api) -> None:
    other = str(uuid.uuid4())
    reply = api.post("/v1/events/batch", json={
        "single_session": True,
        "session_properties": {"session_name": "batch", "start_time": 10, "metadata": {"k": 1},
                               "user_properties": {"user_id": "u"}, "extra_key": "allowed"},
        "events": [{"event_type": "model", "inputs": {}, "session_id": other, "start_time": 20},
                   {"event_type": "tool", "inputs": {}, "start_time": 30}],
    })
    assert reply.status_code == 200
    body = reply.json()
    sid = body["session_id"]
    assert sid != other
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert tree["event_name"] == "batch" and tree["start_time"] == 10
    assert tree["user_properties"] == {"user_id": "u"} and tree["metadata"]["k"] == 1
    assert sorted(c["event_id"] for c in tree["children"]) == sorted(body["event_ids"])
    assert api.get(f"/v1/sessions/{other}").status_code == 404


def test_batch_rejects_legacy_aliases_and_reports_index(api: Api) -> None:
    events = [{"event_type": "tool", "inputs": {}}]
    assert_error(api.post("/v1/events/batch", json={"events": events, "is_single_session": True}), 400,
                 "is_single_session")
    assert_error(api.post("/v1/events/batch", json={"events": events, "session": {}}), 400, "session")
    bad = events + [{"event_type": "tool", "inputs": {}, "project": "p"}]
    assert_error(api.post("/v1/events/batch", json={"events": bad}), 400, "events[1].project")


def test_session_typed_event_via_post_event_is_a_session(api: Api) -> None:
    sid = str(uuid.uuid4())
    assert _create(api, event_type="session", session_id=sid, event_name="via-events") == sid
    s = api.get(f"/v1/events/{sid}").json()["event"]
    assert s["event_type"] == "session" and s["parent_id"] is None and s["event_name"] == "via-events"


def test_every_success_is_200_with_json(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    eid = _create(api, session_id=sid)
    replies = [
        api.get(f"/v1/sessions/{sid}"), api.get(f"/v1/events/{eid}"),
        api.put(f"/v1/events/{eid}", json={}), api.delete(f"/v1/events/{eid}"), api.delete(f"/v1/sessions/{sid}"),
        api.client.get("/healthz"),
    ]
    for reply in replies:
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("application/json")
        assert isinstance(reply.json(), dict)


def test_an_event_may_not_reuse_a_session_id(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    assert_error(api.post("/v1/events", json={"event_type": "tool", "inputs": {}, "event_id": sid}), 400, sid)
    assert api.get(f"/v1/events/{sid}").json()["event"]["event_type"] == "session"
    # In a session batch, an event that takes the path's session id would hide the session.
    other = str(uuid.uuid4())
    assert_error(api.post(f"/v1/sessions/{other}/events/batch",
                          json={"events": [{"event_type": "tool", "inputs": {}, "event_id": other}]}), 400, other)
    assert api.get(f"/v1/events/{other}").status_code == 404


def test_a_session_id_may_not_be_another_events_id(api: Api) -> None:
    eid = _create(api)
    reply = api.post("/v1/events", json={"event_type": "tool", "inputs": {}, "session_id": eid})
    assert_error(reply, 400, eid)
    assert api.get(f"/v1/events/{eid}").json()["event"]["event_type"] == "tool"
