"""Session routes (contract section 3) through the real app and the real SQLite store."""

from __future__ import annotations

import time
import uuid

from tests.helpers import Api, assert_error

SESSION_KEYS = {"event_id", "session_id", "org_id", "workspace_id", "project_id"}


def test_create_session_with_no_fields_gets_every_default(api: Api) -> None:
    before = int(time.time() * 1000)
    reply = api.post("/v1/sessions", json={})
    after = int(time.time() * 1000)
    assert reply.status_code == 200
    s = reply.json()
    assert SESSION_KEYS <= s.keys() and all(isinstance(s[k], str) and s[k] for k in SESSION_KEYS)
    assert uuid.UUID(s["session_id"]).version == 4
    assert s["event_id"] == s["session_id"]
    assert s["event_type"] == "session"
    assert s["event_name"] == "unknown"
    assert s["source"] == "unknown"
    assert s["parent_id"] is None
    assert s["children_ids"] == []
    assert before <= s["start_time"] <= after
    assert s["tenant"] == s["org_id"]


def test_create_session_with_every_optional_field(api: Api) -> None:
    sid = str(uuid.uuid4())
    body = {
        "session_id": sid,
        "session_name": "checkout",
        "event_name": "checkout-flow",
        "source": "prod",
        "start_time": 1_700_000_000_000,
        "end_time": 1_700_000_000_500,
        "duration": 500,
        "config": {"model": "gpt-x"},
        "inputs": {"q": "hi"},
        "outputs": {"a": "hello"},
        "metadata": {"team": "a"},
        "user_properties": {"user_id": "u-1"},
        "children_ids": [],
    }
    s = api.post("/v1/sessions", json=body).json()
    for key in ("session_id", "source", "start_time", "end_time", "duration", "config", "inputs", "outputs",
                "metadata", "user_properties"):
        assert s[key] == body[key], key
    assert s["event_name"] == "checkout-flow"
    stored = api.get(f"/v1/events/{sid}").json()["event"]
    assert stored["inputs"] == {"q": "hi"} and stored["event_type"] == "session"


def test_invalid_session_id_is_replaced_and_name_falls_back_to_session_name(api: Api) -> None:
    s = api.post("/v1/sessions", json={"session_id": "not-a-uuid", "session_name": "a"}).json()
    assert s["session_id"] != "not-a-uuid" and uuid.UUID(s["session_id"])
    assert s["event_name"] == "a"


def test_session_ids_are_lower_cased(api: Api) -> None:
    sid = str(uuid.uuid4())
    s = api.post("/v1/sessions", json={"session_id": sid.upper()}).json()
    assert s["session_id"] == sid


def test_string_times_silently_become_now(api: Api) -> None:
    before = int(time.time() * 1000)
    s = api.post("/v1/sessions", json={"start_time": "1700000000000", "end_time": "soon"}).json()
    assert s["start_time"] >= before
    assert s["end_time"] >= before


def test_posting_same_session_twice_merges_metadata_and_user_properties(api: Api) -> None:
    sid = str(uuid.uuid4())
    first = api.post("/v1/sessions", json={"session_id": sid, "session_name": "one", "start_time": 1000,
                                           "metadata": {"a": 1, "nested": {"x": 1}}, "user_properties": {"u": 1}}).json()
    second = api.post("/v1/sessions", json={"session_id": sid, "session_name": "two", "start_time": 5000,
                                            "metadata": {"b": 2, "nested": {"y": 2}}, "user_properties": {"v": 2}})
    assert second.status_code == 200
    s = second.json()
    assert s["metadata"] == {"a": 1, "b": 2, "nested": {"x": 1, "y": 2}}
    assert s["user_properties"] == {"u": 1, "v": 2}
    assert s["event_name"] == "one" and s["start_time"] == first["start_time"] == 1000


def test_strict_session_body_rejects_unknown_fields(api: Api) -> None:
    assert_error(api.post("/v1/sessions", json={"project": "x"}), 400, "project")


def test_seed_batch_call_minimal_and_full(api: Api) -> None:
    sid = api.post("/v1/sessions", json={"session_name": "seed"}).json()["session_id"]
    minimal = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [{"event_type": "tool", "inputs": {}}]})
    assert minimal.status_code == 200 and minimal.json()["success"] is True
    eid = str(uuid.uuid4())
    full = {
        "event_id": eid, "event_type": "model", "event_name": "llm", "source": "prod",
        "config": {"model": "m"}, "inputs": {"messages": [{"role": "user", "content": "q"}]},
        "outputs": {"content": "a"}, "error": None, "start_time": 10, "end_time": 30, "duration": 20,
        "metadata": {"cost": 0.1}, "feedback": {"rating": 4}, "metrics": {"score": 1},
        "user_properties": {"user_id": "u"}, "children_ids": [], "parent_id": sid,
    }
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [full]}).status_code == 200
    stored = api.get(f"/v1/events/{eid}").json()["event"]
    for key, value in full.items():
        if key != "children_ids":
            assert stored[key] == value, key
    assert stored["session_id"] == sid


def test_path_session_id_overrides_body(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    other = str(uuid.uuid4())
    eid = str(uuid.uuid4())
    reply = api.post(f"/v1/sessions/{sid}/events/batch",
                     json={"events": [{"event_id": eid, "event_type": "chain", "inputs": {}, "session_id": other}]})
    assert reply.status_code == 200
    assert api.get(f"/v1/events/{eid}").json()["event"]["session_id"] == sid
    assert api.get(f"/v1/sessions/{other}").status_code == 404


def test_batch_for_unknown_session_creates_it_covering_its_events(api: Api) -> None:
    sid = str(uuid.uuid4())
    events = [
        {"event_type": "chain", "inputs": {}, "start_time": 2000, "end_time": 2500},
        {"event_type": "tool", "inputs": {}, "start_time": 1000, "end_time": 1200},
    ]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert tree["event_type"] == "session" and tree["event_id"] == sid
    assert (tree["start_time"], tree["end_time"], tree["duration"]) == (1000, 2500, 1500)
    assert [c["start_time"] for c in tree["children"]] == [1000, 2000]


def test_session_times_widen_to_cover_later_and_earlier_events(api: Api) -> None:
    sid = api.post("/v1/sessions", json={"start_time": 5000, "end_time": 6000}).json()["session_id"]
    api.post(f"/v1/sessions/{sid}/events/batch",
             json={"events": [{"event_type": "tool", "inputs": {}, "start_time": 5500, "end_time": 9000}]})
    api.post(f"/v1/sessions/{sid}/events/batch",
             json={"events": [{"event_type": "tool", "inputs": {}, "start_time": 4000, "end_time": 4100}]})
    s = api.get(f"/v1/events/{sid}").json()["event"]
    assert (s["start_time"], s["end_time"], s["duration"]) == (4000, 9000, 5000)


def test_batch_events_processed_in_order_with_nesting(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    chain, model, tool = (str(uuid.uuid4()) for _ in range(3))
    events = [
        {"event_id": chain, "event_type": "chain", "inputs": {}, "start_time": 1, "end_time": 10},
        {"event_id": model, "parent_id": chain, "event_type": "model", "inputs": {}, "start_time": 2, "end_time": 5,
         "metadata": {"cost": 0.25, "prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
         "feedback": {"rating": 5}},
        {"event_id": tool, "parent_id": model, "event_type": "tool", "inputs": {}, "start_time": 3, "end_time": 4,
         "metadata": {"cost": 0.5}},
    ]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert [c["event_id"] for c in tree["children"]] == [chain]
    assert tree["children_ids"] == [chain]
    chain_node = tree["children"][0]
    assert chain_node["children_ids"] == [model]
    assert chain_node["children"][0]["children"][0]["event_id"] == tool
    meta = tree["metadata"]
    assert meta["num_events"] == 3 and meta["num_model_events"] == 1 and meta["has_feedback"] is True
    assert meta["cost"] == 0.75 and meta["total_tokens"] == 15
    assert meta["prompt_tokens"] == 10 and meta["completion_tokens"] == 5
    assert meta["scope"] == {"name": "project-a"}


def test_tree_is_served_on_all_three_paths(api: Api) -> None:
    sid = api.post("/v1/sessions", json={"session_name": "t"}).json()["session_id"]
    api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [{"event_type": "tool", "inputs": {}}]})
    trees = [api.get(p).json() for p in (f"/v1/sessions/{sid}", f"/v1/session/{sid}", f"/session/{sid}")]
    assert trees[0] == trees[1] == trees[2]
    assert len(trees[0]["children"]) == 1


def test_tree_keeps_orphans_under_the_root(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    missing_parent = str(uuid.uuid4())
    eid = str(uuid.uuid4())
    api.post(f"/v1/sessions/{sid}/events/batch",
             json={"events": [{"event_id": eid, "parent_id": missing_parent, "event_type": "tool", "inputs": {}}]})
    tree = api.get(f"/v1/sessions/{sid}").json()
    assert [c["event_id"] for c in tree["children"]] == [eid]
    assert tree["children"][0]["orphan"] is True


def test_unknown_session_tree_is_404(api: Api) -> None:
    assert_error(api.get(f"/v1/sessions/{uuid.uuid4()}"), 404)


def test_delete_session_deletes_every_event(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    ids = api.post("/v1/events/batch", json={"events": [
        {"event_type": "tool", "inputs": {}, "session_id": sid} for _ in range(3)]}).json()["event_ids"]
    reply = api.delete(f"/v1/sessions/{sid}")
    assert reply.status_code == 200 and reply.json() == {"success": True, "deleted": sid}
    assert api.get(f"/v1/sessions/{sid}").status_code == 404
    for eid in ids:
        assert api.get(f"/v1/events/{eid}").status_code == 404
    assert_error(api.delete(f"/v1/sessions/{sid}"), 404)


def test_delete_session_singular_alias(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    assert api.delete(f"/v1/session/{sid}").json() == {"success": True, "deleted": sid}
    assert api.get(f"/v1/sessions/{sid}").status_code == 404


def test_a_very_deep_session_tree_is_served_not_a_500(api: Api) -> None:
    sid = api.post("/v1/sessions", json={}).json()["session_id"]
    ids = [str(uuid.uuid4()) for _ in range(400)]
    events = [{"event_id": eid, "parent_id": ids[i - 1] if i else sid, "event_type": "chain", "inputs": {},
               "start_time": i} for i, eid in enumerate(ids)]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    reply = api.get(f"/v1/sessions/{sid}")
    assert reply.status_code == 200, reply.text
    tree = reply.json()
    assert tree["metadata"]["num_events"] == 400
    found, stack = [], list(tree["children"])
    while stack:
        node = stack.pop()
        found.append(node["event_id"])
        stack.extend(node["children"])
    assert sorted(found) == sorted(ids)


def test_a_session_of_50000_events_returns_whole(api: Api) -> None:
    sid = api.post("/v1/sessions", json={"session_name": "big"}).json()["session_id"]
    parents = [sid]
    for batch in range(5):  # 5 batches of 10,000 (the default batch cap), nested 2 levels
        events = []
        for i in range(10_000):
            eid = str(uuid.uuid4())
            n = batch * 10_000 + i
            events.append({"event_id": eid, "parent_id": parents[n // 100], "event_type": "model",
                           "inputs": {"q": "x" * 50}, "start_time": n, "end_time": n + 1,
                           "metadata": {"cost": 0.001, "total_tokens": 10}})
            if n < 500:
                parents.append(eid)
        reply = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
        assert reply.status_code == 200, reply.text
    tree = api.get(f"/v1/sessions/{sid}")
    assert tree.status_code == 200
    body = tree.json()
    assert body["metadata"]["num_events"] == 50_000
    assert body["metadata"]["total_tokens"] == 500_000
    count, stack = 0, list(body["children"])
    while stack:
        node = stack.pop()
        count += 1
        stack.extend(node["children"])
    assert count == 50_000
