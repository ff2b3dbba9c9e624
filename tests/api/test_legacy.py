"""Legacy write routes (contract 3.5, 3.6, 4.11, 5.2, 5.5, 9.9, 10, 11) through the real app and
store: lenient bodies, wrappers as strings, bare bodies, aliases, model-event remapping, legacy id
rules, per-event batch failures, updates kept until their event arrives, isolation, and a replay of
every legacy request that the real honeyhive 1.7.0 packages sent."""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, shared_fixture
from tracehive.app import create_app
from tracehive.settings import Settings


FIXTURE = shared_fixture()
SESSION_KEYS = ("session_id", "event_id", "org_id", "workspace_id", "project_id")
LEGACY_WRITES = [
    ("POST", "/session/start"), ("POST", "/session/{session_id}/traces"), ("POST", "/events"), ("PUT", "/events"),
    ("POST", "/events/batch"), ("POST", "/events/model"), ("POST", "/events/model/batch"),
]  # fmt: skip


def new_id() -> str:
    return str(uuid.uuid4())


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def ev(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool", "inputs": {}, **fields}


def get_event(api: Api, eid: str) -> dict[str, Any]:
    reply = api.get(f"/v1/events/{eid}")
    assert reply.status_code == 200, reply.text
    return reply.json()["event"]  # type: ignore[no-any-return]


def tree(api: Api, sid: str) -> dict[str, Any]:
    reply = api.get(f"/v1/sessions/{sid}")
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def ok(reply: Any) -> dict[str, Any]:
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/json")
    return reply.json()  # type: ignore[no-any-return]


def create(api: Api, body: Any) -> str:
    reply = ok(api.post("/events", json=body))
    assert reply["success"] is True and set(reply) == {"event_id", "success"}
    return reply["event_id"]  # type: ignore[no-any-return]


# ------------------------------------------------------------------------------------------------
# POST /session/start
# ------------------------------------------------------------------------------------------------


def test_session_start_wrapper_string_and_bare_bodies(api: Api) -> None:
    fields = {"session_name": "s", "source": "dev", "metadata": {"m": 1}, "user_properties": {"u": 1},
              "config": {"c": 1}, "inputs": {"q": "hi"}}
    bodies: list[dict[str, Any]] = [{"session": fields}, {"session": json.dumps(fields)}, fields]
    for body in bodies:
        s = ok(api.post("/session/start", json=body))
        for key in SESSION_KEYS:
            assert isinstance(s[key], str) and s[key], key
        assert uuid.UUID(s["session_id"]).version == 4 and s["event_id"] == s["session_id"]
        assert s["event_type"] == "session" and s["parent_id"] is None and s["tenant"] == s["org_id"]
        assert (s["event_name"], s["source"], s["config"], s["inputs"]) == ("s", "dev", {"c": 1}, {"q": "hi"})
        assert s["metadata"] == {"m": 1} and s["user_properties"] == {"u": 1}
        assert get_event(api, s["session_id"]) == s


def test_session_start_ignores_extra_keys_and_keeps_spec_v0_extras(api: Api) -> None:
    sid = new_id()
    body = {"project": "demo", "event_type": "model", "children_ids": ["not-a-uuid"], "anything": {"x": 1},
            "session_id": sid, "feedback": {"rating": 4}, "metrics": {"acc": 1}, "error": "e"}
    s = ok(api.post("/session/start", json={"session": body, "project": "demo", "extra": 1}))
    assert s["session_id"] == sid and s["event_type"] == "session" and "project" not in s and "anything" not in s
    assert s["children_ids"] == [] and s["feedback"] == {"rating": 4} and s["metrics"] == {"acc": 1} and s["error"] == "e"
    bare = ok(api.post("/session/start", json={"session_name": "bare", "event_type": "session", "project": "p"}))
    assert bare["event_name"] == "bare" and bare["event_type"] == "session"


def test_session_start_contract_vectors(api: Api) -> None:
    """Contract section 10's session vectors, through the legacy route (same defaults, 3.5)."""
    empty: list[dict[str, Any]] = [{}, {"session": {}}, {"session": "{}"}, {"session": None}]
    for body in empty:
        s = ok(api.post("/session/start", json=body))
        assert uuid.UUID(s["session_id"]).version == 4 and s["event_id"] == s["session_id"]
        assert (s["event_name"], s["source"], s["event_type"]) == ("unknown", "unknown", "session")
    s = ok(api.post("/session/start", json={"session": {"session_id": "not-a-uuid", "session_name": "a"}}))
    assert uuid.UUID(s["session_id"]) and s["session_id"] != "not-a-uuid" and s["event_name"] == "a"
    before = now_ms()
    s = ok(api.post("/session/start", json={"session": {"start_time": "1700000000000"}}))
    assert s["start_time"] >= before
    sid = new_id()
    first = ok(api.post("/session/start", json={"session": {"session_id": sid.upper(), "metadata": {"a": 1}}}))
    second = ok(api.post("/session/start", json={"session_id": sid, "metadata": {"b": 2}, "session_name": "late"}))
    assert first["session_id"] == sid
    assert second["session_id"] == sid and second["metadata"] == {"a": 1, "b": 2}
    assert second["event_name"] == "unknown" and second["start_time"] == first["start_time"]


def test_session_start_bad_bodies_are_400(api: Api) -> None:
    assert_error(api.post("/session/start", json={"session": 5}), 400, "session", "JSON object")
    assert_error(api.post("/session/start", json={"session": "[1, 2]"}), 400, "session", "JSON object")
    body = assert_error(api.post("/session/start", json={"session": "{not json"}), 400, "session")
    assert body["errorCode"] == "MALFORMED_JSON"
    assert_error(api.post("/session/start", json={"session": {"metadata": "text"}}), 400, "session.metadata")
    assert_error(api.post("/session/start", json={"session": json.dumps({"metadata": [1]})}), 400, "session.metadata")
    assert_error(api.post("/session/start", json={"metadata": 5}), 400, "metadata")
    assert_error(api.post("/session/start", json={"session_name": {"a": 1}}), 400, "session_name")
    assert_error(api.post("/session/start", json=[{"session_name": "x"}]), 400, "body")


# ------------------------------------------------------------------------------------------------
# POST /session/{session_id}/traces
# ------------------------------------------------------------------------------------------------


def test_traces_need_exactly_one_of_logs_or_events(api: Api) -> None:
    sid = new_id()
    assert_error(api.post(f"/session/{sid}/traces", json={}), 400, "logs or events")
    assert_error(api.post(f"/session/{sid}/traces", json={"logs": None, "events": None}), 400, "logs or events")
    assert_error(api.post(f"/session/{sid}/traces", json={"logs": [ev()], "events": [ev()]}), 400, "not both")
    assert_error(api.post(f"/session/{sid}/traces", json={"events": {"a": 1}}), 400, "events", "list")
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


@pytest.mark.parametrize("key", ["logs", "events"])
def test_traces_store_every_event_under_the_path_session(api: Api, key: str) -> None:
    sid, other = new_id(), new_id()
    reply = ok(api.post(f"/session/{sid.upper()}/traces", json={key: [
        ev(session_id=other, project="demo", event_name="a", start_time=10),
        ev(event_type="session", event_name="b", start_time=20, extra={"x": 1}),
    ], "project": "demo"}))
    assert reply["success"] is True and reply["session_id"] == sid and len(reply["event_ids"]) == 2
    t = tree(api, sid)
    assert [(c["event_name"], c["event_type"], c["session_id"]) for c in t["children"]] == [
        ("a", "tool", sid), ("b", "tool", sid)]
    assert api.get(f"/v1/sessions/{other}").status_code == 404


def test_traces_with_an_invalid_path_id_get_a_fresh_session(api: Api) -> None:
    reply = ok(api.post("/session/my-session/traces", json={"events": [ev(), ev()]}))
    sid = reply["session_id"]
    assert uuid.UUID(sid).version == 4
    assert sorted(c["event_id"] for c in tree(api, sid)["children"]) == sorted(reply["event_ids"])


def test_traces_report_invalid_events_and_store_the_rest(api: Api) -> None:
    sid = new_id()
    reply = ok(api.post(f"/session/{sid}/traces", json={"logs": [ev(event_name="good"), {"event_type": "tool"}]}))
    assert reply["success"] is False and len(reply["event_ids"]) == 1
    assert reply["errors"] == ["logs[1].inputs: field required"]
    assert [c["event_name"] for c in tree(api, sid)["children"]] == ["good"]


# ------------------------------------------------------------------------------------------------
# POST /events
# ------------------------------------------------------------------------------------------------


def test_post_event_wrapper_string_and_bare(api: Api) -> None:
    sid = new_id()
    inner = ev(event_type="chain", inputs={"q": 1}, session_id=sid, event_name="n", project="demo", extra=[1])
    for body in ({"event": inner}, {"event": json.dumps(inner)}, inner):
        eid = create(api, body)
        e = get_event(api, eid)
        assert (e["event_type"], e["inputs"], e["session_id"], e["event_name"]) == ("chain", {"q": 1}, sid, "n")
        assert e["parent_id"] == sid and "project" not in e and "extra" not in e
    assert len(tree(api, sid)["children"]) == 3


def test_post_event_contract_vectors_and_required_fields(api: Api) -> None:
    create(api, {"event": {"event_type": "tool", "inputs": {}, "project": "x"}})
    assert_error(api.post("/events", json={"event": {"event_type": "tool"}}), 400, "event.inputs", "required")
    assert_error(api.post("/events", json={"event": {"inputs": {}}}), 400, "event.event_type", "required")
    assert_error(api.post("/events", json={"event_type": "tool"}), 400, "inputs", "required")
    assert_error(api.post("/events", json={"inputs": {}, "project": "x"}), 400, "event", "required")
    assert_error(api.post("/events", json={"event": {"event_type": None, "inputs": {}}}), 400, "event.event_type")
    assert_error(api.post("/events", json={"event": {"event_type": "tool", "inputs": []}}), 400, "event.inputs")
    assert_error(api.post("/events", json={"event": "{oops"}), 400, "event")
    assert_error(api.post("/events", json={"event": 7}), 400, "event", "JSON object")
    assert_error(api.post("/events", json={"event": ev(duration="5")}), 400, "event.duration")
    assert_error(api.post("/events", json={"event": ev(start_time=2**63)}), 400, "event.start_time")


def test_event_type_is_coerced_on_legacy_routes(api: Api) -> None:
    cases: list[tuple[Any, str]] = [
        ("MODEL", "model"), (" Chain ", "chain"), ("tool", "tool"), ("agent", "tool"), ("session", "tool"),
        ("SESSION", "tool"), ("", "tool"), (5, "tool"), (True, "tool"), (["model"], "tool"), ({"t": 1}, "tool"),
    ]
    for sent, stored in cases:
        eid = create(api, {"event": ev(event_type=sent)})
        assert get_event(api, eid)["event_type"] == stored, sent


def test_legacy_ids_are_lower_cased_or_replaced(api: Api) -> None:
    eid, sid, parent = new_id(), new_id(), new_id()
    assert create(api, {"event": ev(event_id=eid.upper(), session_id=sid.upper(), parent_id=parent.upper())}) == eid
    e = get_event(api, eid)
    assert (e["session_id"], e["parent_id"]) == (sid, parent)
    for bad in ("not-a-uuid", "", 12345, {"id": 1}, [1], eid + "0"):
        got = create(api, {"event": ev(event_id=bad, session_id=bad, parent_id=bad)})
        e = get_event(api, got)
        assert uuid.UUID(e["event_id"]).version == 4 and uuid.UUID(e["session_id"]).version == 4
        assert e["event_id"] != e["session_id"]
        assert e["parent_id"] == e["session_id"]  # a dangling home-made parent: under the session
        assert tree(api, e["session_id"])["children"][0]["event_id"] == got


def test_non_numeric_times_become_now(api: Api) -> None:
    before = now_ms()
    e = get_event(api, create(api, {"event": ev(start_time="yesterday", end_time={"t": 1}, duration=5)}))
    assert e["start_time"] >= before and e["end_time"] >= e["start_time"]
    e = get_event(api, create(api, ev(start_time=1000, duration=250.5)))
    # Stored as 1250.5; reads answer whole milliseconds, rounded up (model/event.for_readers).
    assert (e["start_time"], e["end_time"], e["duration"]) == (1000, 1251, 250.5)


def test_legacy_events_never_store_a_negative_duration(api: Api) -> None:
    """The legacy routes read every field leniently: a negative duration or an end before the
    start counts as not sent (README, "Legacy routes"), as on POST /v1/sessions."""
    e = get_event(api, create(api, ev(start_time=1000, end_time=4000, duration=-5)))
    assert (e["start_time"], e["end_time"], e["duration"]) == (1000, 4000, 3000)
    e = get_event(api, create(api, ev(start_time=5000, end_time=1000)))
    assert (e["start_time"], e["end_time"], e["duration"]) == (5000, 5000, 0)


# ------------------------------------------------------------------------------------------------
# PUT /events
# ------------------------------------------------------------------------------------------------


def test_put_events_updates_with_the_v1_rules(api: Api) -> None:
    eid = create(api, ev(metadata={"a": 1}, feedback={"f": 1}, outputs={"old": 1}, start_time=100))
    child = new_id()
    reply = ok(api.put("/events", json={
        "event_id": eid.upper(), "metadata": {"b": 2}, "feedback": {"g": 2}, "metrics": {"m": 1}, "config": {"c": 1},
        "user_properties": {"u": 1}, "outputs": {"new": 1}, "duration": 50, "end_time": 150, "children_ids": [child],
        "inputs": {"ignored": 1}, "event_name": "ignored", "project": "demo", "unknown": True,
    }))
    assert reply == {"success": True}
    e = get_event(api, eid)
    assert e["metadata"] == {"a": 1, "b": 2} and e["feedback"] == {"f": 1, "g": 2} and e["metrics"] == {"m": 1}
    assert e["config"] == {"c": 1} and e["user_properties"] == {"u": 1} and e["outputs"] == {"new": 1}
    assert (e["duration"], e["end_time"], e["children_ids"]) == (50, 150, [child])
    assert e["inputs"] == {} and e["event_name"] == "unknown"
    assert ok(api.put("/events", json={"event_id": eid, "outputs": None, "children_ids": [], "foo": 1})) == {"success": True}
    assert get_event(api, eid)["outputs"] == {"new": 1} and get_event(api, eid)["children_ids"] == [child]


def test_put_events_bad_bodies_are_400(api: Api) -> None:
    eid = create(api, ev(outputs={"keep": 1}))
    assert_error(api.put("/events", json={"metadata": {"a": 1}}), 400, "event_id", "required")
    assert_error(api.put("/events", json={"event_id": "not-a-uuid", "metadata": {"a": 1}}), 400, "event_id", "UUID")
    assert_error(api.put("/events", json={"event_id": eid, "outputs": "text"}), 400, "outputs")
    assert_error(api.put("/events", json={"event_id": eid, "metadata": [1]}), 400, "metadata")
    assert_error(api.put("/events", json={"event_id": eid, "duration": "5"}), 400, "duration")
    assert_error(api.put("/events", json=[{"event_id": eid}]), 400, "body")
    assert get_event(api, eid)["outputs"] == {"keep": 1}


@pytest.mark.parametrize("order", ["start-then-events", "events-then-start", "legacy-batch-single-session"])
def test_enrich_before_create_is_kept_and_merged(api: Api, order: str) -> None:
    """The tracer's ``enrich_session`` (``PUT /events`` with the session id) usually arrives before
    the session exists; the update is kept and applied when it does, whatever comes first."""
    sid = new_id()
    ok(api.put("/events", json={"event_id": sid, "metadata": {"session_meta": "m", "inputs": {"late": "x"}},
                                "feedback": {"satisfied": True}, "metrics": {"latency_ms": 123},
                                "outputs": {"answer": "done"}, "config": {"k": 1}, "user_properties": {"user_id": "u"}}))
    ok(api.put("/events", json={"event_id": sid, "metadata": {"via": "free-function"}, "feedback": {"rating": 5}}))
    assert api.get(f"/v1/events/{sid}").status_code == 404  # kept, not applied to anything yet
    start = {"session": {"session_id": sid, "session_name": "late", "metadata": {"own": 1}}}
    events = {"events": [ev(session_id=sid, event_name="step", start_time=1_000, duration=10)]}
    if order == "start-then-events":
        ok(api.post("/session/start", json=start))
        ok(api.post("/events/batch", json=events))
    elif order == "events-then-start":
        ok(api.post("/events/batch", json=events))
        ok(api.post("/session/start", json=start))
    else:
        ok(api.post("/events/batch", json={**events, "is_single_session": True, "session": {"session_name": "late"}}))
    root = tree(api, sid)
    assert root["event_name"] == "late"
    assert {k: v for k, v in root["metadata"].items() if k not in ("num_events", "num_model_events", "has_feedback",
            "cost", "total_tokens", "prompt_tokens", "completion_tokens", "scope")} == {
        **({"own": 1} if order != "legacy-batch-single-session" else {}),
        "session_meta": "m", "inputs": {"late": "x"}, "via": "free-function"}
    assert root["feedback"] == {"satisfied": True, "rating": 5} and root["metrics"] == {"latency_ms": 123}
    assert root["outputs"] == {"answer": "done"} and root["config"] == {"k": 1}
    assert root["user_properties"] == {"user_id": "u"}
    assert [c["event_name"] for c in root["children"]] == ["step"]


def test_enrich_span_before_its_event(api: Api) -> None:
    eid = new_id()
    ok(api.put("/events", json={"event_id": eid, "metrics": {"score": 1.0}, "duration": 30, "outputs": {"o": 1}}))
    create(api, {"event": ev(event_id=eid, start_time=1000, duration=5, outputs={"first": 1}, metrics={"m": 0})})
    e = get_event(api, eid)
    assert e["metrics"] == {"m": 0, "score": 1.0} and e["duration"] == 30 and e["outputs"] == {"o": 1}


# ------------------------------------------------------------------------------------------------
# POST /events/batch
# ------------------------------------------------------------------------------------------------


def test_batch_partial_failure_stores_the_valid_events(api: Api) -> None:
    sid = new_id()
    events = [ev(session_id=sid, event_name="a"), {"event_type": "tool"}, "text", ev(session_id=sid, event_name="b"),
              ev(session_id=sid, metadata="x"), ev(session_id=sid, event_type=None), None]
    reply = ok(api.post("/events/batch", json={"events": events}))
    assert reply["success"] is False and len(reply["event_ids"]) == 2 and reply["session_id"] == sid
    assert reply["errors"] == [
        "events[1].inputs: field required", "events[2]: must be a JSON object", "events[4].metadata: must be a JSON object",
        "events[5].event_type: must not be null", "events[6]: must be a JSON object",
    ]
    assert [get_event(api, e)["event_name"] for e in reply["event_ids"]] == ["a", "b"]
    assert [c["event_name"] for c in tree(api, sid)["children"]] == ["a", "b"]


def test_batch_with_no_valid_event_is_400_and_stores_nothing(api: Api) -> None:
    sid = new_id()
    body = assert_error(api.post("/events/batch", json={"events": [{"event_type": "tool", "session_id": sid}, 5],
                                                        "is_single_session": True,
                                                        "session_properties": {"session_id": sid}}),
                        400, "no event was stored", "events[0].inputs")
    assert body["errors"] == [
        {"index": 0, "field": "events[0].inputs", "message": "field required"},
        {"index": 1, "field": "events[1]", "message": "must be a JSON object"},
    ]
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


def test_batch_shape_errors_are_400(api: Api) -> None:
    assert_error(api.post("/events/batch", json={}), 400, "events", "required")
    assert_error(api.post("/events/batch", json={"events": {"a": 1}}), 400, "events", "list")
    assert_error(api.post("/events/batch", json={"events": [ev()], "session": "{bad"}), 400, "session")
    assert_error(api.post("/events/batch", json={"events": [ev()], "session_properties": [1]}), 400, "session_properties")
    assert_error(api.post("/events/batch", json={"events": [ev()], "single_session": "maybe"}), 400, "single_session")
    empty = ok(api.post("/events/batch", json={"events": []}))
    assert empty == {"event_ids": [], "success": True}


def test_batch_store_refusals_are_per_event(api: Api) -> None:
    """An event id that is a stored session's id only the store can see; only that event is refused."""
    sid = ok(api.post("/session/start", json={}))["session_id"]
    good = new_id()
    reply = ok(api.post("/events/batch", json={"events": [ev(event_id=sid), ev(event_id=good, session_id=sid)]}))
    assert reply["success"] is False and reply["event_ids"] == [good]
    assert len(reply["errors"]) == 1 and reply["errors"][0].startswith("events[0]: ") and sid in reply["errors"][0]
    assert get_event(api, sid)["event_type"] == "session"
    assert_error(api.post("/events/batch", json={"events": [ev(event_id=sid)]}), 400, "events[0]", sid)
    # In a single-session batch: an event that takes the batch session's id is refused alone...
    batch_sid, other = new_id(), new_id()
    reply = ok(api.post("/events/batch", json={"events": [ev(event_id=batch_sid), ev(event_id=other)], "single_session": True,
                                               "session_properties": {"session_id": batch_sid, "metadata": {"k": 1}}}))
    assert reply["event_ids"] == [other] and reply["session_id"] == batch_sid and reply["errors"][0].startswith("events[0]")
    root = tree(api, batch_sid)
    assert root["event_type"] == "session" and root["metadata"]["k"] == 1
    assert [c["event_id"] for c in root["children"]] == [other]
    # ...and a batch session whose id is taken by an event refuses every event, writing nothing.
    taken = ok(api.post("/events/batch", json={"events": [ev(session_id=sid)]}))["event_ids"][0]
    stray = new_id()
    assert_error(api.post("/events/batch", json={"events": [ev(event_id=stray)], "is_single_session": True,
                                                 "session": {"session_id": taken}}), 400, "no event was stored", taken)
    assert api.get(f"/v1/events/{stray}").status_code == 404
    assert get_event(api, taken)["event_type"] == "tool"


@pytest.mark.parametrize(
    "options",
    [
        {"single_session": True, "session_properties": {"session_name": "one", "metadata": {"k": 1}}},
        {"is_single_session": True, "session": {"session_name": "one", "metadata": {"k": 1}}},
        {"is_single_session": "true", "session": json.dumps({"session_name": "one", "metadata": {"k": 1}})},
        {"single_session": True, "is_single_session": False, "session_properties": {"session_name": "one", "metadata": {"k": 1}},
         "session": {"session_name": "alias-loses"}},
    ],
    ids=["canonical", "aliases", "alias-strings", "canonical-wins"],
)
def test_batch_single_session_and_aliases(api: Api, options: dict[str, Any]) -> None:
    a, b = new_id(), new_id()
    reply = ok(api.post("/events/batch", json={"events": [ev(session_id=a, start_time=20), ev(session_id=b, start_time=30)],
                                               **options}))
    sid = reply["session_id"]
    assert reply["success"] is True and sid not in (a, b) and "errors" not in reply
    root = tree(api, sid)
    assert root["event_name"] == "one" and root["metadata"]["k"] == 1
    assert sorted(c["event_id"] for c in root["children"]) == sorted(reply["event_ids"])
    assert api.get(f"/v1/sessions/{a}").status_code == 404 and api.get(f"/v1/sessions/{b}").status_code == 404


def test_batch_single_session_keeps_the_session_its_events_name(api: Api) -> None:
    """``client.events.create_batch`` sends ``is_single_session`` with events that all name the
    session the caller started: they stay in it (and its properties merge into it)."""
    sid = ok(api.post("/session/start", json={"session": {"session_name": "mine", "metadata": {"m": 1}}}))["session_id"]
    reply = ok(api.post("/events/batch", json={"events": [ev(session_id=sid), ev(session_id=sid.upper())],
                                               "is_single_session": True,
                                               "session_properties": {"session_name": "ignored", "metadata": {"n": 2}}}))
    assert reply["session_id"] == sid
    root = tree(api, sid)
    assert root["event_name"] == "mine" and root["metadata"]["m"] == 1 and root["metadata"]["n"] == 2
    assert len(root["children"]) == 2
    named = new_id()
    reply = ok(api.post("/events/batch", json={"events": [ev(session_id=sid)], "single_session": True,
                                               "session_properties": {"session_id": named}}))
    assert reply["session_id"] == named and get_event(api, reply["event_ids"][0])["session_id"] == named


def test_batch_without_single_session_keeps_each_events_session(api: Api) -> None:
    sid = new_id()
    reply = ok(api.post("/events/batch", json={"events": [ev(session_id=sid), ev()], "single_session": False}))
    assert "session_id" not in reply
    sessions = [get_event(api, e)["session_id"] for e in reply["event_ids"]]
    assert sessions[0] == sid and sessions[1] != sid and uuid.UUID(sessions[1]).version == 4


def test_home_made_ids_keep_their_links_within_a_request(api: Api) -> None:
    """Invalid ids are replaced by fresh UUIDs, the same one for the same string in one request:
    a batch that links its events with its own ids keeps its tree."""
    reply = ok(api.post("/events/batch", json={"events": [
        ev(event_id="child", parent_id="root", session_id="my-session", event_name="child", start_time=2),
        ev(event_id="root", session_id="my-session", event_type="chain", event_name="root", start_time=1,
           children_ids=["child", "nowhere"]),
        ev(event_id="other", parent_id="my-session", session_id="my-session", event_name="other", start_time=3),
    ]}))
    sid = reply["session_id"]
    assert uuid.UUID(sid).version == 4
    child, root_id, other = reply["event_ids"]
    root = tree(api, sid)
    assert [c["event_id"] for c in root["children"]] == [root_id, other]
    assert [c["event_id"] for c in root["children"][0]["children"]] == [child]
    assert get_event(api, root_id)["children_ids"] == [child]
    # A new request: the same strings get new ids (the mapping lives for one request).
    again = ok(api.post("/events/batch", json={"events": [ev(event_id="root", session_id="my-session")]}))
    assert again["event_ids"][0] not in reply["event_ids"] and again["session_id"] != sid


def test_batch_cap_is_413(data_dir: Path, store_url: str, keys: dict[str, str]) -> None:
    with TestClient(create_app(Settings(data_dir=data_dir, store=store_url, max_batch_events=3)), raise_server_exceptions=False) as c:
        api = Api(c, keys["a"])
        for path, key in (("/events/batch", "events"), ("/events/model/batch", "model_events"),
                          (f"/session/{new_id()}/traces", "events"), (f"/session/{new_id()}/traces", "logs")):
            assert_error(api.post(path, json={key: [ev(event_name="m")] * 4}), 413, "limit of 3")
            assert ok(api.post(path, json={key: [ev(event_name="m")] * 3}))["success"] is True


# ------------------------------------------------------------------------------------------------
# Model events
# ------------------------------------------------------------------------------------------------


def test_model_event_remapping(api: Api) -> None:
    body = {
        "model": "gpt-4o", "model_version": "2024-08", "provider": "openai", "messages": [{"role": "user", "content": "hi"}],
        "response": {"role": "assistant", "content": "hello"}, "usage": {"prompt_tokens": 3, "completion_tokens": 2,
        "total_tokens": 5}, "cost": 0.01, "hyperparameters": {"temperature": 0}, "template": [{"role": "system"}],
        "template_inputs": {"x": 1}, "tools": [{"name": "t"}], "tool_choice": "auto", "response_format": {"type": "text"},
        "duration": 120, "error": "rate limited", "event_type": "tool", "project": "demo", "start_time": 1000,
        "inputs": {"chat_history": []}, "metadata": {"keep": True},
    }  # fmt: skip
    reply = ok(api.post("/events/model", json={"model_event": body}))
    e = get_event(api, reply["event_id"])
    assert e["event_type"] == "model" and e["event_name"] == "gpt-4o"
    assert e["config"] == {"model": "gpt-4o"}
    assert e["inputs"] == {
        "chat_history": [], "messages": body["messages"], "provider": "openai", "usage": body["usage"], "cost": 0.01,
        "hyperparameters": {"temperature": 0}, "template": [{"role": "system"}], "template_inputs": {"x": 1},
        "tools": [{"name": "t"}], "tool_choice": "auto", "response_format": {"type": "text"}, "duration": 120,
        "error": "rate limited",
    }
    assert e["outputs"] == {"response": body["response"]}
    assert (e["duration"], e["error"], e["start_time"], e["end_time"]) == (120, "rate limited", 1000, 1120)
    assert e["metadata"] == {"keep": True, "model_version": "2024-08", "cost": 0.01, "prompt_tokens": 3,
                             "completion_tokens": 2, "total_tokens": 5}
    root = tree(api, e["session_id"])
    assert root["metadata"]["num_model_events"] == 1 and root["metadata"]["total_tokens"] == 5


def test_model_event_explicit_fields_win_over_aliases(api: Api) -> None:
    body = {"model_name": "named", "model": "alias", "event_name": "call", "config": {"model": "configured", "t": 1},
            "messages": ["alias"], "inputs": {"messages": ["explicit"]}, "response": "alias",
            "outputs": {"response": "explicit", "other": 1}, "cost": 9, "metadata": {"cost": 1}}
    e = get_event(api, ok(api.post("/events/model", json={"model_event": json.dumps(body)}))["event_id"])
    assert e["event_name"] == "call" and e["config"] == {"model": "configured", "t": 1}
    assert e["metadata"] == {"cost": 1, "model_name": "named"}
    assert e["inputs"] == {"messages": ["explicit"], "cost": 9}
    assert e["outputs"] == {"response": "explicit", "other": 1}


def test_model_event_bodies_and_required_name(api: Api) -> None:
    bare = get_event(api, ok(api.post("/events/model", json={"model_name": "m", "response": "r"}))["event_id"])
    assert bare["event_type"] == "model" and bare["outputs"] == {"response": "r"} and bare["inputs"] == {}
    named = get_event(api, ok(api.post("/events/model", json={"model_event": {"event_name": "n"}}))["event_id"])
    assert named["event_name"] == "n" and named["config"] == {}
    assert_error(api.post("/events/model", json={"model_event": {"messages": []}}), 400, "model_event.model_name")
    assert_error(api.post("/events/model", json={}), 400, "model_name")
    assert_error(api.post("/events/model", json={"model_event": {"model": 5}}), 400, "model_event.model")
    assert_error(api.post("/events/model", json={"model_event": {"model": "m", "inputs": "x"}}), 400, "model_event.inputs")


def test_model_event_batch(api: Api) -> None:
    sid = new_id()
    reply = ok(api.post("/events/model/batch", json={"model_events": [
        {"model": "a", "messages": [1], "session_id": sid, "start_time": 1},
        {"messages": []},
        {"model_name": "b", "event_type": "chain", "session_id": sid, "start_time": 2},
    ], "is_single_session": True, "session": {"session_name": "models"}}))
    assert reply["success"] is False and len(reply["event_ids"]) == 2 and reply["session_id"] == sid
    assert reply["errors"] == ["model_events[1].model_name: field required (a model event needs model_name, model or event_name)"]
    root = tree(api, sid)
    assert [(c["event_name"], c["event_type"], c["config"]) for c in root["children"]] == [
        ("a", "model", {"model": "a"}), ("b", "model", {"model": "b"})]
    assert root["metadata"]["num_model_events"] == 2
    assert_error(api.post("/events/model/batch", json={"events": [{"model": "a"}]}), 400, "model_events", "required")


# ------------------------------------------------------------------------------------------------
# The recorded traffic of honeyhive 1.7.0 / honeyhive-logger 0.0.11, replayed
# ------------------------------------------------------------------------------------------------

# Ids the recording server handed out in its replies, by the request that received them; later
# requests use them, so a replay substitutes what this server answered.
REPLY_IDS = {
    0: ("session_id", "59f47753-f370-4c79-a782-fc20dc3b642e"),  # client.sessions.start
    2: ("event_id", "887e11b5-dad8-4c1d-8201-b2ab5ec95f91"),  # client.events.create, then .update
    7: ("session_id", "b73069bf-dd9e-4cca-ad9a-257b89c8c7d8"),  # HoneyHiveTracer.init, then enrich_session
    12: ("event_id", "933b54bd-92da-4f14-8325-a67a7f75a8ec"),  # logger log(), then update()
}
LEGACY_PATHS = {("POST", "/session/start"), ("POST", "/events/batch"), ("POST", "/events"), ("PUT", "/events")}
DROPPED_HEADERS = {"host", "authorization", "content-length", "connection", "accept-encoding"}


def recorded() -> list[tuple[int, dict[str, Any]]]:
    lines = FIXTURE.read_text().splitlines()
    return [(i, json.loads(line)) for i, line in enumerate(lines) if line.strip()]


def replay(api: Api) -> dict[str, Any]:
    """Send every legacy request of the recording, with the recorded headers (client provenance
    included) and the ids this server gave out; return the replies by request index."""
    ids: dict[str, str] = {}
    replies: dict[str, Any] = {}
    for index, req in recorded():
        if (req["method"], req["path"]) not in LEGACY_PATHS:
            continue
        text = json.dumps(req["body"])
        for old, new in ids.items():
            text = text.replace(old, new)
        headers = {k: v for k, v in req["headers"].items() if k.lower() not in DROPPED_HEADERS}
        reply = api.request(req["method"], req["path"], content=text.encode(), headers=headers)
        replies[str(index)] = ok(reply)
        if index in REPLY_IDS:
            key, old = REPLY_IDS[index]
            assert old in FIXTURE.read_text()
            ids[old] = replies[str(index)][key]
    return replies


def test_fixture_holds_the_legacy_requests_replayed() -> None:
    seen = [(r["method"], r["path"]) for _, r in recorded() if (r["method"], r["path"]) in LEGACY_PATHS]
    assert len(seen) == 11 and set(seen) == LEGACY_PATHS
    bodies = {i: json.dumps(r["body"]) for i, r in recorded()}
    for index, (_, old) in REPLY_IDS.items():
        assert old not in bodies[index] and any(old in bodies[j] for j in bodies if j > index)


@pytest.mark.parametrize("writer", ["project_key", "ingestion_key"])
def test_replay_of_the_real_clients_traffic(api: Api, ingest: Api, writer: str) -> None:
    replies = replay(api if writer == "project_key" else ingest)
    for index in ("0", "7", "11"):
        for key in SESSION_KEYS:
            assert isinstance(replies[index][key], str) and replies[index][key], (index, key)
    for index in ("2", "12"):
        assert replies[index]["success"] is True and uuid.UUID(replies[index]["event_id"])
    for index in ("3", "8", "9", "13", "14"):
        assert replies[index] == {"success": True}

    # The REST client's session: its batch (is_single_session, events naming the session) and
    # its single event landed in it; the update of the single event applied.
    api_sid = replies["0"]["session_id"]
    assert replies["1"]["success"] is True and replies["1"]["session_id"] == api_sid
    root = tree(api, api_sid)
    assert (root["event_name"], root["source"], root["config"], root["inputs"]) == (
        "api-session", "dev", {"model": "gpt-x"}, {"question": "What is 2+2?"})
    assert root["metadata"]["team"] == "probe" and root["user_properties"] == {"user_id": "u-1"}
    names = {c["event_name"]: c for c in root["children"]}
    assert set(names) == {"retrieve", "generate", "single"}
    assert names["retrieve"]["event_type"] == "tool" and names["generate"]["metrics"] == {"tokens": 42}
    assert names["generate"]["start_time"] == 1795856061132.3354 and names["generate"]["duration"] == 12.0
    single = get_event(api, replies["2"]["event_id"])
    assert single["event_type"] == "chain" and single["parent_id"] == api_sid
    assert single["metadata"] == {"n": 1, "edited": True} and single["feedback"] == {"rating": 5, "thumbs": "up"}
    assert single["metrics"] == {"score": 0.9} and single["outputs"] == {"a": "4"} and single["duration"] == 15.0

    # The tracer's session, enriched twice (enrich_session and the free function).
    tracer = get_event(api, replies["7"]["session_id"])
    assert tracer["event_name"] == "tracer-session" and tracer["inputs"] == {"topic": "probe"}
    assert tracer["metadata"] == {"session_meta": "m", "inputs": {"late_input": "x"}, "via": "free-function"}
    assert tracer["feedback"] == {"satisfied": True} and tracer["metrics"] == {"latency_ms": 123}
    assert tracer["outputs"] == {"answer": "done"} and tracer["user_properties"] == {"user_id": "u-1"}

    # The logger's session (client-chosen id), its event, and both updates.
    logger_sid = "9c5899cb-4a0c-4d7c-a1c1-744c0703b8a3"
    assert replies["11"]["session_id"] == logger_sid and replies["11"]["start_time"] == 1795856061507
    logger = tree(api, logger_sid)
    assert logger["metadata"]["m"] == 1 and logger["metadata"]["done"] is True and logger["feedback"] == {"rating": 5}
    [lookup] = logger["children"]
    assert lookup["event_id"] == replies["12"]["event_id"] and lookup["event_name"] == "lookup"
    assert lookup["outputs"] == {"a": "hello"} and lookup["metrics"] == {"score": 1.0}
    assert (lookup["start_time"], lookup["duration"]) == (1795856061535, 30)


def test_replay_is_idempotent_for_client_chosen_ids(api: Api) -> None:
    """Re-sending the recording (a client retry) duplicates nothing the client named itself."""
    replay(api)
    replay(api)
    logger = tree(api, "9c5899cb-4a0c-4d7c-a1c1-744c0703b8a3")
    assert len(logger["children"]) == 2  # the logger's event id is server-made: one per send


# ------------------------------------------------------------------------------------------------
# Isolation, auth, bounds, documentation
# ------------------------------------------------------------------------------------------------


def test_b_cannot_update_a_through_put_events(api: Api, api_b: Api) -> None:
    eid = create(api, {"event": ev(metadata={"owner": "a"}, outputs={"o": "a"})})
    sid = ok(api.post("/session/start", json={"session": {"metadata": {"owner": "a"}}}))["session_id"]
    before = (get_event(api, eid), tree(api, sid))
    for target in (eid, eid.upper(), sid):
        reply = api_b.put("/events", json={"event_id": target, "metadata": {"owner": "b"}, "outputs": {"o": "b"},
                                           "feedback": {"by": "b"}})
        assert ok(reply) == {"success": True}  # kept as B's own pending update
    assert (get_event(api, eid), tree(api, sid)) == before
    assert api_b.get(f"/v1/events/{eid}").status_code == 404
    # When B writes its own event with that id, B's kept update applies there, and only there.
    create(api_b, {"event": ev(event_id=eid, metadata={"first": "b"})})
    mine = get_event(api_b, eid)
    assert mine["metadata"] == {"first": "b", "owner": "b"} and mine["outputs"] == {"o": "b"}
    assert mine["project_id"] != before[0]["project_id"]
    b_session = ok(api_b.post("/session/start", json={"session_id": sid}))
    assert b_session["feedback"] == {"by": "b"} and b_session["project_id"] == mine["project_id"]
    assert (get_event(api, eid), tree(api, sid)) == before


def test_b_cannot_write_into_a_session_through_legacy_routes(api: Api, api_b: Api) -> None:
    sid = ok(api.post("/session/start", json={"session": {"metadata": {"owner": "a"}}}))["session_id"]
    a_child = create(api, ev(session_id=sid))
    before = tree(api, sid)
    ok(api_b.post("/session/start", json={"session": {"session_id": sid, "metadata": {"owner": "b"}}}))
    ok(api_b.post("/events", json={"event": ev(session_id=sid, event_id=a_child)}))
    ok(api_b.post(f"/session/{sid}/traces", json={"events": [ev()]}))
    ok(api_b.post("/events/batch", json={"events": [ev(session_id=sid)], "is_single_session": True}))
    ok(api_b.post("/events/model", json={"model_event": {"model": "m", "session_id": sid}}))
    assert tree(api, sid) == before
    assert len(tree(api_b, sid)["children"]) == 4


def test_legacy_writes_need_a_key(client: TestClient) -> None:
    for method, path in LEGACY_WRITES:
        response = client.request(method, path.replace("{session_id}", new_id()), json=ev())
        assert_error(response, 401, "Authorization")


def test_legacy_routes_refuse_bad_transport_with_the_error_body(api: Api) -> None:
    for method, path in LEGACY_WRITES:
        filled = path.replace("{session_id}", new_id())
        for raw, status, fragment in [
            (b"{bad", 400, "not valid JSON"), (b"", 400, "empty"), (b"[]", 400, "body"), (b"null", 400, "body"),
            (b'"text"', 400, "body"),
        ]:
            assert_error(api.request(method, filled, content=raw, headers={"Content-Type": "application/json"}),
                         status, fragment)
        assert_error(api.request(method, filled, content=b"{}", headers={"Content-Type": "multipart/form-data"}), 415)
        deep = b'{"inputs":' + b'{"a":' * 100 + b"1" + b"}" * 100 + b', "event_type": "tool"}'
        assert_error(api.request(method, filled, content=deep), 400, "nesting")


def test_nesting_limit_applies_inside_string_wrappers(api: Api) -> None:
    deep: Any = {}
    for _ in range(70):
        deep = {"a": deep}
    inner = json.dumps({"event_type": "tool", "inputs": deep})
    assert_error(api.post("/events", json={"event": inner}), 400, "nesting")
    assert_error(api.post("/session/start", json={"session": json.dumps({"metadata": deep})}), 400, "nesting")


@pytest.fixture
def small_client(data_dir: Path, store_url: str, keys: dict[str, str]) -> Iterator[Api]:
    with TestClient(create_app(Settings(data_dir=data_dir, store=store_url, max_body_bytes=2048)), raise_server_exceptions=False) as c:
        yield Api(c, keys["a"])


def test_body_cap_is_413_on_legacy_routes(small_client: Api) -> None:
    big = json.dumps({"event": ev(inputs={"pad": "p" * 4096})}).encode()
    for method, path in LEGACY_WRITES:
        assert_error(small_client.request(method, path.replace("{session_id}", new_id()), content=big), 413, "2048")


def test_openapi_documents_the_legacy_routes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    bodies = {
        ("post", "/session/start"): "LegacyStartSessionRequest",
        ("post", "/session/{session_id}/traces"): "AddSessionTracesRequest",
        ("post", "/events"): "LegacyCreateEventRequest",
        ("put", "/events"): "LegacyUpdateEventRequest",
        ("post", "/events/batch"): "LegacyEventBatchRequest",
        ("post", "/events/model"): "LegacyCreateModelEventRequest",
        ("post", "/events/model/batch"): "LegacyModelEventBatchRequest",
    }
    for (method, path), model in bodies.items():
        operation = doc["paths"][path][method]
        assert operation["requestBody"]["content"]["application/json"]["schema"]["$ref"] == f"#/components/schemas/{model}"
        assert operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert {"400", "401", "413"} <= set(operation["responses"])
        assert operation["security"] == [{"BearerAuth": []}]
        assert model in schemas
    assert schemas["LegacyEvent"]["additionalProperties"] is True
    assert set(schemas["LegacyEvent"]["required"]) == {"event_type", "inputs"}
    assert schemas["LegacyUpdateEventRequest"]["required"] == ["event_id"]
    assert {s.get("$ref") for s in schemas["LegacyCreateEventRequest"]["anyOf"]} == {
        "#/components/schemas/LegacyEventWrapper", "#/components/schemas/LegacyEvent"}
    assert "errors" in schemas["LegacyBatchResponse"]["properties"]


def test_ids_in_replies_are_uuids(api: Api) -> None:
    pattern = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
    reply = ok(api.post("/events/batch", json={"events": [ev(event_id="E1", session_id="S1")]}))
    assert pattern.match(reply["event_ids"][0]) and pattern.match(reply["session_id"])
