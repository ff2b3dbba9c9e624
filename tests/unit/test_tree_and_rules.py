"""Unit tests of the pure rules: session trees (query/tree.py), time derivation (model/times.py)
and request defaulting (ingest/normalize.py)."""

from __future__ import annotations

import math
import uuid
from typing import Any

import orjson
import pytest

from tracehive.ingest.normalize import event_from_request, session_from_request
from tracehive.model.event import Event
from tracehive.model.times import derive_times, now_ms
from tracehive.model.wire import PostEventRequest, SessionProperties, StartSessionRequest
from tracehive.query.tree import MAX_TREE_DEPTH, build_tree

SID = "00000000-0000-4000-8000-000000000000"
NOW = 1_700_000_000_000


def event(event_id: str, parent_id: str | None = SID, *, event_type: str = "tool", start: float = 0,
          **fields: Any) -> Event:
    return Event(event_id=event_id, session_id=SID, parent_id=parent_id, event_type=event_type,
                 event_name=event_id, source="test", start_time=start, end_time=start + 1, duration=1, **fields)


def session(**fields: Any) -> Event:
    return event(SID, None, event_type="session", start=0, **fields)


def ids(node: dict[str, Any]) -> list[str]:
    return [c["event_id"] for c in node["children"]]


def child(node: dict[str, Any], event_id: str) -> dict[str, Any]:
    [found] = [c for c in node["children"] if c["event_id"] == event_id]
    return found


def all_ids(node: dict[str, Any]) -> list[str]:
    out = []
    for c in node["children"]:
        out.append(c["event_id"])
        out += all_ids(c)
    return out


def is_uuid4(value: str) -> bool:
    parsed = uuid.UUID(value)
    return parsed.version == 4 and str(parsed) == value


# build_tree ------------------------------------------------------------------------------------


def test_tree_nests_by_parent_id() -> None:
    root = session()
    events = [root, event("a", start=1), event("a1", "a", start=2), event("a1x", "a1", start=3),
              event("b", start=4), event("a2", "a", start=5)]
    tree = build_tree(root, events, "proj")
    assert tree["event_id"] == SID and tree["event_type"] == "session"
    assert ids(tree) == ["a", "b"]
    assert ids(child(tree, "a")) == ["a1", "a2"]
    assert ids(child(child(tree, "a"), "a1")) == ["a1x"]
    assert child(tree, "b")["children"] == []
    assert child(tree, "a")["event_name"] == "a" and child(tree, "a")["parent_id"] == SID
    assert all("orphan" not in c for c in tree["children"])
    assert sorted(all_ids(tree)) == sorted(e.event_id for e in events if e is not root)


def test_children_follow_start_time_not_children_ids() -> None:
    root = session(children_ids=["late", "early"])
    parent = event("p", start=1, children_ids=["z", "y", "x"])
    # Oldest first (the store's order); a child may even start before its parent.
    events = [event("x", "p", start=0.5), root, parent, event("early", start=2), event("y", "p", start=3),
              event("z", "p", start=4), event("late", start=9)]
    tree = build_tree(root, events, "proj")
    assert ids(tree) == ["p", "early", "late"]
    assert ids(child(tree, "p")) == ["x", "y", "z"]


def test_root_need_not_be_among_the_events() -> None:
    root = session()
    tree = build_tree(root, [event("a", start=1), event("b", "a", start=2)], "proj")
    assert ids(tree) == ["a"] and ids(child(tree, "a")) == ["b"]
    assert tree["metadata"]["num_events"] == 2


def test_rollups_on_the_root_metadata() -> None:
    root = session(metadata={"run_id": "r1"})
    events = [
        root,
        event("m1", event_type="model", start=1,
              metadata={"cost": 0.25, "total_tokens": 30, "prompt_tokens": 20, "completion_tokens": 10}),
        event("m2", "m1", event_type="model", start=2,
              metadata={"cost": 1, "total_tokens": 5, "prompt_tokens": 2, "completion_tokens": 3}),
        # Non-numbers (strings, booleans) are not counted.
        event("t", event_type="tool", start=3, metadata={"cost": "7", "total_tokens": True}),
        event("c", event_type="chain", start=4, feedback={"rating": 1}),
    ]
    tree = build_tree(root, events, "my project")
    meta = tree["metadata"]
    assert meta["run_id"] == "r1"
    assert meta["num_events"] == 4
    assert meta["num_model_events"] == 2
    assert meta["has_feedback"] is True
    assert meta["cost"] == pytest.approx(1.25)
    assert (meta["total_tokens"], meta["prompt_tokens"], meta["completion_tokens"]) == (35, 22, 13)
    assert meta["scope"] == {"name": "my project"}
    assert root.metadata == {"run_id": "r1"}  # the stored event is not modified


def test_rollups_of_an_empty_session() -> None:
    root = session()
    tree = build_tree(root, [root], "p")
    assert tree["children"] == []
    assert tree["metadata"] == {"num_events": 0, "num_model_events": 0, "has_feedback": False, "cost": 0,
                                "total_tokens": 0, "prompt_tokens": 0, "completion_tokens": 0,
                                "scope": {"name": "p"}}


def test_feedback_on_the_session_itself_counts() -> None:
    root = session(feedback={"ok": True})
    tree = build_tree(root, [root, event("a")], "p")
    assert tree["metadata"]["has_feedback"] is True
    no_feedback = session()
    assert build_tree(no_feedback, [no_feedback, event("a", feedback={})], "p")["metadata"]["has_feedback"] is False


def test_orphans_hang_under_the_root_with_their_subtree() -> None:
    root = session()
    events = [root, event("a", start=1), event("o", "missing-parent", start=2), event("o1", "o", start=3),
              event("o1x", "o1", start=4), event("b", start=5)]
    tree = build_tree(root, events, "p")
    assert ids(tree) == ["a", "o", "b"]
    orphan = child(tree, "o")
    assert orphan["orphan"] is True
    assert orphan["parent_id"] == "missing-parent"  # the event itself is unchanged
    assert ids(orphan) == ["o1"] and ids(child(orphan, "o1")) == ["o1x"]
    assert "orphan" not in child(orphan, "o1") and "orphan" not in child(tree, "a")


def test_orphan_processed_after_its_children() -> None:
    root = session()
    # The descendants come first in the list, so they are resolved before their orphaned ancestor.
    events = [event("o1x", "o1", start=0), event("o1", "o", start=1), event("o", "gone", start=2), root]
    tree = build_tree(root, events, "p")
    assert ids(tree) == ["o"] and child(tree, "o")["orphan"] is True
    assert ids(child(tree, "o")) == ["o1"] and ids(child(child(tree, "o"), "o1")) == ["o1x"]


def test_a_parent_cycle_loses_no_event() -> None:
    root = session()
    events = [root, event("a", "b", start=1), event("b", "a", start=2), event("c", "a", start=3),
              event("ok", start=4)]
    tree = build_tree(root, events, "p")
    assert sorted(all_ids(tree)) == ["a", "b", "c", "ok"]
    assert len(all_ids(tree)) == 4  # each exactly once
    orphans = [c for c in tree["children"] if c.get("orphan")]
    assert len(orphans) == 1 and orphans[0]["event_id"] in {"a", "b"}
    assert "orphan" not in child(tree, "ok")
    assert tree["metadata"]["num_events"] == 4


@pytest.mark.parametrize("order", [["a", "b", "c"], ["c", "b", "a"], ["b", "c", "a"]])
def test_a_longer_cycle_in_any_order_loses_no_event(order: list[str]) -> None:
    parents = {"a": "c", "b": "a", "c": "b"}
    root = session()
    events = [root] + [event(e, parents[e], start=i) for i, e in enumerate(order)] + [event("tail", "b", start=9)]
    tree = build_tree(root, events, "p")
    assert sorted(all_ids(tree)) == ["a", "b", "c", "tail"]
    assert len([c for c in tree["children"] if c.get("orphan")]) == 1


def test_a_self_parent_is_an_orphan_not_lost() -> None:
    root = session()
    events = [root, event("self", "self", start=1), event("under", "self", start=2)]
    tree = build_tree(root, events, "p")
    assert ids(tree) == ["self"]
    assert child(tree, "self")["orphan"] is True
    assert ids(child(tree, "self")) == ["under"]


def test_events_without_a_parent_hang_under_the_root() -> None:
    root = session()
    tree = build_tree(root, [root, event("loose", None, start=1)], "p")
    assert ids(tree) == ["loose"] and "orphan" not in child(tree, "loose")


def test_a_deep_chain_is_nested_to_the_limit_then_flattened_and_serialises() -> None:
    root = session()
    depth = 5_000
    events = [root] + [event(f"e{i}", f"e{i - 1}" if i else SID, start=i) for i in range(depth)]
    tree = build_tree(root, events, "p")
    node, seen = tree, 0
    while len(node["children"]) == 1:
        [node] = node["children"]
        seen += 1
    # The event at the depth limit holds every deeper one, in order, flagged and with parent_id kept.
    assert seen == MAX_TREE_DEPTH and node["event_id"] == f"e{MAX_TREE_DEPTH - 1}"
    deep = node["children"]
    assert [n["event_id"] for n in deep] == [f"e{i}" for i in range(MAX_TREE_DEPTH, depth)]
    assert all(n["flattened"] is True and n["children"] == [] for n in deep)
    assert deep[0]["parent_id"] == f"e{MAX_TREE_DEPTH - 1}" and deep[-1]["parent_id"] == f"e{depth - 2}"
    assert "flattened" not in node
    # Every JSON encoder has a nesting limit (orjson's is 254): the tree must stay under it.
    assert len(orjson.dumps(tree)) > 0


def test_wide_and_deep_trees_lose_no_event() -> None:
    root = session()
    events = [root]
    for i in range(3_000):  # each event hangs under one of the previous ten: deep and bushy
        parent = SID if i == 0 else f"e{max(0, i - 1 - (i * 7) % 10)}"
        events.append(event(f"e{i}", parent, start=i))
    tree = build_tree(root, events, "p")
    found: list[str] = []
    stack = list(tree["children"])
    while stack:
        n = stack.pop()
        found.append(n["event_id"])
        stack.extend(n["children"])
    assert sorted(found) == sorted(f"e{i}" for i in range(3_000))
    orjson.dumps(tree)


# derive_times ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "duration", "expected"),
    [
        (1_000, 1_500, 500, (1_000, 1_500, 500)),  # all given: kept as sent
        (1_000, 1_500, 7, (1_000, 1_500, 7)),  # even when inconsistent
        (None, 1_500, 500, (1_000, 1_500, 500)),  # start missing: end - duration
        (None, NOW + 100, None, (NOW, NOW + 100, 100)),  # start missing, no duration: now
        (None, None, 250, (NOW, NOW + 250, 250)),  # start missing, no end: now, end = start + duration
        (None, None, None, (NOW, NOW, 0)),  # nothing: now, zero length
        (1_000, None, 250, (1_000, 1_250, 250)),  # end missing: start + duration
        (1_000, None, None, (1_000, 1_000, 0)),  # end and duration missing: end = start
        (1_000, 1_500, None, (1_000, 1_500, 500)),  # duration missing: end - start
        (1_000.5, None, 824.8056, (1_000.5, 1_000.5 + 824.8056, 824.8056)),  # floats survive
    ],
)
def test_derive_times(start: Any, end: Any, duration: Any, expected: tuple[Any, Any, Any]) -> None:
    assert derive_times(start, end, duration, now=NOW) == expected


@pytest.mark.parametrize("bad", ["1700000000000", "now", True, False, float("nan"), float("inf"), [1], {}])
def test_non_numeric_times_count_as_missing(bad: Any) -> None:
    assert derive_times(bad, 1_500, 500, now=NOW) == (1_000, 1_500, 500)
    assert derive_times(bad, None, None, now=NOW) == (NOW, NOW, 0)
    assert derive_times(1_000, bad, 250, now=NOW) == (1_000, 1_250, 250)
    assert derive_times(1_000, 1_500, bad, now=NOW) == (1_000, 1_500, 500)


def test_derive_times_defaults_to_the_clock() -> None:
    before = now_ms()
    start, end, duration = derive_times(None, None, 10)
    after = now_ms()
    assert before <= start <= after and end == start + 10 and duration == 10
    assert isinstance(start, int)


def test_derived_values_are_finite_numbers() -> None:
    for values in [(None, 1e3, 1.5), (2.5, None, None), (None, None, None)]:
        assert all(isinstance(v, (int, float)) and math.isfinite(v) for v in derive_times(*values, now=NOW))


# session_from_request ---------------------------------------------------------------------------


def start(**body: Any) -> StartSessionRequest:
    return StartSessionRequest.model_validate(body)


@pytest.mark.parametrize("raw", [None, "", "not-a-uuid", "12345", "00000000-0000-4000-8000-00000000000g"])
def test_session_id_missing_or_invalid_is_replaced(raw: Any) -> None:
    made = session_from_request(start(session_id=raw), now=NOW)
    assert is_uuid4(made.session_id)
    assert made.event_id == made.session_id != raw


def test_session_ids_are_fresh_each_time() -> None:
    assert session_from_request(start(), now=NOW).session_id != session_from_request(start(), now=NOW).session_id


def test_session_ids_are_lower_cased() -> None:
    upper = "ABCDEF01-2345-4789-ABCD-EF0123456789"
    kid = "0A0B0C0D-1111-4222-8333-44445555AAAA"
    made = session_from_request(start(session_id=upper, children_ids=[kid]), now=NOW)
    assert made.session_id == made.event_id == upper.lower()
    assert made.children_ids == [kid.lower()]


def test_session_shape_and_defaults() -> None:
    made = session_from_request(start(), now=NOW)
    assert made.event_type == "session"
    assert made.parent_id is None
    assert made.event_name == "unknown"
    assert made.source == "unknown"
    assert (made.start_time, made.end_time, made.duration) == (NOW, NOW, 0)
    assert (made.config, made.inputs, made.metadata, made.user_properties) == ({}, {}, {}, {})
    assert made.outputs is None and made.children_ids == []


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({"event_name": "ev", "session_name": "sess"}, "ev"),
        ({"session_name": "sess"}, "sess"),
        ({"event_name": "", "session_name": "sess"}, "sess"),
        ({"session_name": ""}, "unknown"),
        ({}, "unknown"),
    ],
)
def test_session_event_name_fallbacks(body: dict[str, Any], name: str) -> None:
    assert session_from_request(start(**body), now=NOW).event_name == name


def test_session_fields_are_carried() -> None:
    made = session_from_request(start(
        session_id=SID, session_name="s", source="app", start_time=1_000, end_time=1_600, config={"c": 1},
        inputs={"i": 1}, outputs={"o": 1}, metadata={"m": 1}, user_properties={"u": 1},
    ), now=NOW)
    assert (made.event_id, made.source, made.start_time, made.end_time, made.duration) == (SID, "app", 1_000,
                                                                                            1_600, 600)
    assert (made.config, made.inputs, made.outputs, made.metadata, made.user_properties) == (
        {"c": 1}, {"i": 1}, {"o": 1}, {"m": 1}, {"u": 1})


@pytest.mark.parametrize("raw", ["1700000000000", "yesterday", True, None])
def test_session_non_numeric_start_time_is_now(raw: Any) -> None:
    made = session_from_request(start(start_time=raw), now=NOW)
    assert made.start_time == NOW and made.end_time == NOW and made.duration == 0


def test_session_start_time_defaults_to_the_clock() -> None:
    before = now_ms()
    made = session_from_request(start(start_time="soon"))
    assert before <= made.start_time <= now_ms()


def test_session_from_batch_session_properties() -> None:
    made = session_from_request(SessionProperties(session_name="batch", start_time="x", metadata={"m": 1}), now=NOW)
    assert is_uuid4(made.session_id) and made.event_id == made.session_id
    assert (made.event_name, made.source, made.start_time, made.metadata) == ("batch", "unknown", NOW, {"m": 1})
    assert made.event_type == "session" and made.parent_id is None


# event_from_request -----------------------------------------------------------------------------


def post(**body: Any) -> PostEventRequest:
    return PostEventRequest.model_validate({"event_type": "tool", "inputs": {}, **body})


def test_event_defaults() -> None:
    made = event_from_request(post(), now=NOW)
    assert is_uuid4(made.event_id) and is_uuid4(made.session_id) and made.event_id != made.session_id
    assert made.parent_id == made.session_id
    assert (made.event_name, made.source, made.event_type) == ("unknown", "unknown", "tool")
    assert (made.start_time, made.end_time, made.duration) == (NOW, NOW, 0)
    assert (made.config, made.inputs, made.metadata, made.feedback, made.metrics, made.user_properties) == (
        {}, {}, {}, {}, {}, {})
    assert made.outputs is None and made.error is None and made.children_ids == []


def test_event_parent_defaults_to_its_session() -> None:
    made = event_from_request(post(session_id=SID), now=NOW)
    assert made.session_id == made.parent_id == SID
    parent = str(uuid.uuid4())
    assert event_from_request(post(session_id=SID, parent_id=parent), now=NOW).parent_id == parent


def test_event_session_id_override() -> None:
    override = str(uuid.uuid4())
    made = event_from_request(post(session_id=SID), session_id=override, now=NOW)
    assert made.session_id == made.parent_id == override
    assert event_from_request(post(), session_id=override, now=NOW).session_id == override


def test_event_ids_are_lower_cased() -> None:
    eid, sid, pid, kid = (str(uuid.uuid4()).upper() for _ in range(4))
    made = event_from_request(post(event_id=eid, session_id=sid, parent_id=pid, children_ids=[kid],
                                   event_type="MODEL"), now=NOW)
    assert (made.event_id, made.session_id, made.parent_id) == (eid.lower(), sid.lower(), pid.lower())
    assert made.children_ids == [kid.lower()] and made.event_type == "model"


def test_event_fields_and_times() -> None:
    made = event_from_request(post(event_name="n", source="s", start_time=1_000, duration=24.5, error="e",
                                   inputs={"i": 1}, outputs={"o": 1}, config={"c": 1}, metadata={"m": 1},
                                   feedback={"f": 1}, metrics={"x": 1}, user_properties={"u": 1}), now=NOW)
    assert (made.event_name, made.source, made.error) == ("n", "s", "e")
    assert (made.start_time, made.end_time, made.duration) == (1_000, 1_024.5, 24.5)
    assert (made.inputs, made.outputs, made.config, made.metadata, made.feedback, made.metrics,
            made.user_properties) == ({"i": 1}, {"o": 1}, {"c": 1}, {"m": 1}, {"f": 1}, {"x": 1}, {"u": 1})
    assert event_from_request(post(start_time="later"), now=NOW).start_time == NOW


def test_session_typed_event_is_its_own_session() -> None:
    eid, pid = str(uuid.uuid4()), str(uuid.uuid4())
    made = event_from_request(post(event_type="session", session_id=SID, event_id=eid, parent_id=pid), now=NOW)
    assert made.event_id == made.session_id == SID
    assert made.parent_id is None and made.event_type == "session"

    by_event_id = event_from_request(post(event_type="session", event_id=eid), now=NOW)
    assert by_event_id.event_id == by_event_id.session_id == eid and by_event_id.parent_id is None

    fresh = event_from_request(post(event_type="session"), now=NOW)
    assert is_uuid4(fresh.event_id) and fresh.event_id == fresh.session_id and fresh.parent_id is None

    override = str(uuid.uuid4())
    in_path = event_from_request(post(event_type="session", event_id=eid), session_id=override, now=NOW)
    assert in_path.event_id == in_path.session_id == override and in_path.parent_id is None
