"""``ingest/event_transfer``: events cross from a decode worker to the server unchanged, as JSON
when they can and as themselves when they cannot."""

from __future__ import annotations

import pickle

import pytest

from tests.otlp_data import tracer_spans
from tracehive.ingest.event_transfer import pack, unpack
from tracehive.ingest.span_mapping import spans_to_events
from tracehive.model.event import Event


def event(**overrides: object) -> Event:
    base: dict[str, object] = {
        "event_id": "e1", "session_id": "s1", "event_type": "model", "event_name": "chat", "source": "sdk",
        "start_time": 1_700_000_000_123.5, "end_time": 1_700_000_000_200, "duration": 76.5}
    return Event(**{**base, **overrides})  # type: ignore[arg-type]


def test_mapped_tracer_spans_round_trip_as_json() -> None:
    events = spans_to_events(tracer_spans()).events
    assert len(events) > 3
    packed = pack(events)
    assert isinstance(packed, bytes)
    assert unpack(packed) == events


def test_every_field_survives_with_its_type() -> None:
    original = event(
        parent_id="p", error="boom", config={"model": "gpt-4o", "temperature": 0.0},
        inputs={"chat_history": [{"role": "user", "content": "héllo ☃"}]}, outputs=None,
        metadata={"n": -(2**63), "big": 2**64 - 1, "f": 1e300, "neg_zero": -0.0, "nested": {"t": True, "x": None}},
        feedback={"rating": 3}, metrics={"score": 0.25}, user_properties={"user_id": "u"},
        children_ids=["c1", "c2"], org_id="o", workspace_id="w", project_id="pr",
        session_name_hint="named", aliases=("a1", "a2"), inherit_source=True)
    back = unpack(pack(original_list := [original]))
    assert back == original_list
    got = back[0]
    assert type(got.aliases) is tuple and type(got.start_time) is float and type(got.end_time) is int
    assert type(got.metadata["n"]) is int and str(got.metadata["neg_zero"]) == "-0.0"
    assert got.outputs is None and got.inherit_source is True


@pytest.mark.parametrize("odd", [
    {"huge": 2**70},          # past 64 bits: JSON would not keep it an int
    {1: "int key"},           # a non-str key
    {"text": "\ud800"},       # a lone surrogate
], ids=["int-past-64-bits", "non-str-key", "lone-surrogate"])
def test_what_json_cannot_hold_travels_as_the_events_themselves(odd: dict[object, object]) -> None:
    events = [event(), event(event_id="e2", metadata=odd)]  # type: ignore[arg-type]
    packed = pack(events)
    assert packed is events
    back = unpack(pickle.loads(pickle.dumps(packed)))  # as the pool sends it
    assert back == events
    assert back[1].metadata == odd


def test_no_events() -> None:
    assert unpack(pack([])) == []
