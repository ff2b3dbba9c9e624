"""The real ``honeyhive==1.7.0`` REST client (``HoneyHive(...)``) against a real ``tracehive serve``.

The client talks only to the legacy write routes (``/session/start``, ``/events``, ``PUT /events``,
``/events/batch``) and to ``POST /v1/events/export`` (contract section 11); everything it wrote is
read back through tracehive's own ``GET /v1/sessions/{id}`` and ``GET /v1/events/{id}``.
"""

from __future__ import annotations

import datetime as dt
import math
import time
import uuid
import warnings
from typing import Any

import httpx
import pytest

from tests.conformance.readback import (
    assert_same_event,
    assert_subset,
    get_event,
    get_tree,
    nodes_by_name,
    shape,
    walk,
)
from tests.process.server import TracehiveServer

pytest.importorskip("honeyhive")
from honeyhive import HoneyHive  # noqa: E402
from honeyhive.models import (  # noqa: E402
    EventFilter,
    PostEventBatchRequest,
    PostEventRequest,
    StartSessionRequest,
    UpdateEventRequest,
)
from honeyhive.utils.error_handler import APIError  # noqa: E402


def make_client(server: TracehiveServer, key: str, **kwargs: Any) -> HoneyHive:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return HoneyHive(api_key=key, base_url=server.url, timeout=10.0, **kwargs)


def is_uuid(value: Any) -> bool:
    try:
        return str(uuid.UUID(str(value))) == value
    except ValueError:
        return False


def start_session(client: HoneyHive, name: str) -> str:
    return str(client.sessions.start(StartSessionRequest(session={"session_name": name})).session_id)


def plain(event: Any) -> dict[str, Any]:
    """An exported event as the server sent it (export() wraps them in LegacyEvent models)."""
    return event if isinstance(event, dict) else event.model_dump(exclude_unset=True)


def now_ms() -> float:
    return time.time() * 1000


def test_session_events_update_and_tree(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    """sessions.start, events.create_batch (into that session, nested by parent_id), events.create,
    events.update (an event, then the session itself): the tree and each event read back."""
    client = make_client(server, key)
    session_id = str(uuid.uuid4())
    started = client.sessions.start(
        StartSessionRequest(
            session={
                "session_id": session_id,
                "session_name": "rest-session",
                "source": "conformance",
                "config": {"model": "gpt-x"},
                "inputs": {"question": "What is 2+2?"},
                "metadata": {"team": "probe"},
                "user_properties": {"user_id": "u-1"},
                "project": "ignored-project-name",
            }
        )
    )
    assert started.session_id == session_id
    assert started.event_id == session_id
    for scope_key in ("org_id", "workspace_id", "project_id"):
        assert isinstance(getattr(started, scope_key), str) and getattr(started, scope_key)
    assert started.event_type == "session"
    assert started.event_name == "rest-session"
    assert started.source == "conformance"

    t0 = now_ms()
    chain_id, model_id, tool_id = (str(uuid.uuid4()) for _ in range(3))
    common = {"project": "ignored", "source": "conformance", "session_id": session_id,
              "config": {"model": "gpt-x"}}
    batch = client.events.create_batch(
        PostEventBatchRequest(
            events=[
                {**common, "event_id": chain_id, "event_name": "answer", "event_type": "chain",
                 "inputs": {"q": "2+2?"}, "outputs": {"a": "4"}, "start_time": t0, "end_time": t0 + 30,
                 "duration": 30.0},
                {**common, "event_id": model_id, "parent_id": chain_id, "event_name": "generate",
                 "event_type": "model", "inputs": {"chat_history": [{"role": "user", "content": "2+2?"}]},
                 "outputs": {"content": "4"}, "start_time": t0 + 10, "end_time": t0 + 22, "duration": 12.0,
                 "metadata": {"n": 1, "prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
                 "metrics": {"tokens": 42}},
                {**common, "event_id": tool_id, "parent_id": chain_id, "event_name": "retrieve",
                 "event_type": "tool", "inputs": {"q": "retrieve"}, "outputs": {"docs": ["d1", "d2"]},
                 "start_time": t0 + 1, "end_time": t0 + 9, "duration": 8.0, "error": "partial results"},
            ]
        )
    )
    assert batch.success is True
    assert batch.event_ids == [chain_id, model_id, tool_id]

    created = client.events.create(
        PostEventRequest(
            event={**common, "event_name": "single", "event_type": "tool",
                   "inputs": {"q": "single", "text": "héllo wörld 🌍 — 你好"}, "outputs": {"a": "SINGLE"},
                   "start_time": t0 + 40, "duration": 5.0, "metadata": {"n": 1}, "feedback": {"rating": 5},
                   "user_properties": {"tier": "pro"}}
        )
    )
    assert created.success is True
    single_id = created.event_id
    assert is_uuid(single_id)

    assert client.events.update(
        UpdateEventRequest(event_id=single_id, metadata={"edited": True}, feedback={"thumbs": "up"},
                           metrics={"score": 0.9}, outputs={"a": "4"}, duration=15.0)
    ) is None
    client.events.update(
        UpdateEventRequest(event_id=session_id, metadata={"done": True}, feedback={"liked": True},
                           outputs={"final": "ok"}, user_properties={"plan": "free"})
    )

    tree = get_tree(api, session_id)
    assert shape(tree) == {"answer": {"generate": {}, "retrieve": {}}, "single": {}}
    assert tree["event_id"] == tree["session_id"] == session_id
    assert tree["event_type"] == "session"
    assert tree["event_name"] == "rest-session"
    assert tree["source"] == "conformance"
    assert tree["parent_id"] is None
    assert tree["inputs"] == {"question": "What is 2+2?"}
    assert tree["config"] == {"model": "gpt-x"}
    assert tree["outputs"] == {"final": "ok"}
    assert tree["feedback"] == {"liked": True}
    assert tree["user_properties"] == {"user_id": "u-1", "plan": "free"}
    assert_subset(tree["metadata"], {"team": "probe", "done": True, "num_events": 4, "num_model_events": 1,
                                     "total_tokens": 6, "prompt_tokens": 5, "completion_tokens": 1,
                                     "has_feedback": True}, "session roll-ups")
    assert sorted(tree["children_ids"]) == sorted([chain_id, single_id])
    # The session covers its events.
    assert tree["start_time"] <= t0 and tree["end_time"] >= t0 + 40

    nodes = nodes_by_name(tree)
    answer, generate, retrieve, single = (nodes[n] for n in ("answer", "generate", "retrieve", "single"))
    assert answer["event_id"] == chain_id and answer["parent_id"] == session_id
    assert generate["parent_id"] == chain_id and retrieve["parent_id"] == chain_id
    assert single["event_id"] == single_id and single["parent_id"] == session_id
    assert sorted(answer["children_ids"]) == sorted([model_id, tool_id])

    assert answer["event_type"] == "chain" and answer["outputs"] == {"a": "4"}
    # end_time is read back in whole milliseconds (what the TypeScript client's schema wants).
    assert (answer["start_time"], answer["end_time"], answer["duration"]) == (t0, math.ceil(t0 + 30), 30.0)
    assert generate["event_type"] == "model"
    assert generate["inputs"] == {"chat_history": [{"role": "user", "content": "2+2?"}]}
    assert generate["metrics"] == {"tokens": 42}
    assert_subset(generate["metadata"], {"n": 1, "total_tokens": 6}, "generate.metadata")
    assert retrieve["error"] == "partial results"
    assert retrieve["outputs"] == {"docs": ["d1", "d2"]}
    assert single["event_type"] == "tool"
    assert single["inputs"] == {"q": "single", "text": "héllo wörld 🌍 — 你好"}
    assert single["outputs"] == {"a": "4"}, "PUT /events replaces outputs"
    assert single["metadata"] == {"n": 1, "edited": True}, "PUT /events merges metadata"
    assert single["feedback"] == {"rating": 5, "thumbs": "up"}
    assert single["metrics"] == {"score": 0.9}
    assert single["user_properties"] == {"tier": "pro"}
    assert single["duration"] == 15.0
    for node in walk(tree):
        assert node["session_id"] == session_id
        assert node["source"] == "conformance"
        assert node["config"] == {"model": "gpt-x"}
        assert "project" not in node or node["project"] != "ignored"
        assert_same_event(node, get_event(api, node["event_id"]))
    session_event = get_event(api, session_id)
    assert session_event["event_type"] == "session" and session_event["event_id"] == session_id


def test_single_session_batch(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    """create_batch with the legacy ``is_single_session`` + ``session_properties``: one new session
    holds every event, and the reply names it."""
    client = make_client(server, key)
    batch = client.events.create_batch(
        PostEventBatchRequest(
            events=[
                {"project": "ignored", "event_name": "step-1", "event_type": "tool", "inputs": {"i": 1}},
                {"project": "ignored", "event_name": "step-2", "event_type": "model", "inputs": {"i": 2},
                 "outputs": {"o": 2}},
            ],
            is_single_session=True,
            session_properties={"session_name": "batch-session", "metadata": {"origin": "batch"}},
        )
    )
    assert batch.success is True and len(batch.event_ids) == 2
    assert batch.session_id and is_uuid(batch.session_id)
    tree = get_tree(api, batch.session_id)
    assert tree["event_name"] == "batch-session"
    assert_subset(tree["metadata"], {"origin": "batch", "num_events": 2}, "batch session")
    assert shape(tree) == {"step-1": {}, "step-2": {}}
    assert sorted(n["event_id"] for n in walk(tree)) == sorted(batch.event_ids)
    assert {n["event_name"]: n["event_type"] for n in walk(tree)} == {"step-1": "tool", "step-2": "model"}


def test_export_list_and_get_by_session_id(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    """events.export / events.list / events.get_by_session_id, all on POST /v1/events/export."""
    client = make_client(server, key)
    session_id = start_session(client, "export-session")
    t0 = now_ms()
    events = [
        {"event_id": str(uuid.uuid4()), "session_id": session_id, "event_name": f"e{i}",
         "event_type": "model" if i == 1 else "tool", "inputs": {"i": i}, "start_time": t0 + 10 * i,
         "end_time": t0 + 10 * i + 5}
        for i in range(3)
    ]
    client.events.create_batch(PostEventBatchRequest(events=events))
    wanted = {e["event_id"] for e in events}
    by_session = EventFilter(field="session_id", operator="is", value=session_id, type="string")

    exported = client.events.export(filters=[by_session], limit=50)
    got = {e["event_id"]: e for e in map(plain, exported.events)}
    # The session is itself an event of the session (event_id == session_id, contract 2.1).
    assert set(got) == wanted | {session_id}, f"missing {wanted - set(got)}, extra {set(got) - wanted}"
    assert got[session_id]["event_type"] == "session"
    assert exported.total_events == 4
    for e in events:
        assert got[e["event_id"]]["event_name"] == e["event_name"]
        assert got[e["event_id"]]["inputs"] == e["inputs"]

    now = dt.datetime.now(dt.timezone.utc)
    projected = client.events.export(
        filters=[by_session],
        date_range={"$gte": (now - dt.timedelta(days=1)).isoformat(),
                    "$lte": (now + dt.timedelta(days=1)).isoformat()},
        projections=["event_id", "event_name"],
        limit=50,
    )
    assert {plain(e)["event_id"] for e in projected.events} == wanted | {session_id}
    for e in map(plain, projected.events):
        assert set(e) == {"event_id", "event_name"}, e

    listed = client.events.list(
        {"filters": [by_session.to_dict(),
                     {"field": "event_type", "operator": "is", "value": "model", "type": "string"}]}
    )
    assert [plain(e)["event_name"] for e in listed.events] == ["e1"]
    assert listed.totalEvents == 1

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        ordered = client.events.get_by_session_id(session_id)
    names = [e["event_name"] for e in map(plain, ordered.events) if e["event_id"] in wanted]
    assert names == ["e0", "e1", "e2"]
    assert ordered.total_events == 4

    pages = [client.events.export(filters=[by_session], limit=2, page=p) for p in (1, 2, 3)]
    assert [len(p.events) for p in pages] == [2, 2, 0]
    assert all(p.total_events == 4 for p in pages)
    assert {plain(e)["event_id"] for p in pages for e in p.events} == wanted | {session_id}


def test_ingestion_key_writes_project_key_reads(
    server: TracehiveServer, key: str, ingestion_key: str, api: httpx.Client
) -> None:
    """With ``ingestion_api_key`` the client sends session starts and event writes with the
    ``hh_ingst_`` key, and reads (export) with the project key."""
    client = make_client(server, key, ingestion_api_key=ingestion_key)
    session_id = start_session(client, "ingest-session")
    created = client.events.create(
        PostEventRequest(event={"session_id": session_id, "event_name": "via-ingest", "event_type": "chain",
                                "inputs": {"k": "v"}})
    )
    client.events.update(UpdateEventRequest(event_id=created.event_id, metrics={"m": 1}))
    exported = client.events.export(
        filters=[EventFilter(field="session_id", operator="is", value=session_id, type="string")]
    )
    assert created.event_id in {plain(e)["event_id"] for e in exported.events}
    event = get_event(api, created.event_id)
    assert (event["event_name"], event["event_type"], event["metrics"]) == ("via-ingest", "chain", {"m": 1})

    # The ingestion key alone cannot read: refused with 401/403, which the client raises on.
    only_ingest = make_client(server, ingestion_key)
    with pytest.raises(APIError) as refused:
        only_ingest.events.export(
            filters=[EventFilter(field="session_id", operator="is", value=session_id, type="string")]
        )
    assert "403" in str(refused.value) or "401" in str(refused.value), str(refused.value)


def test_configured_by_environment(server: TracehiveServer, key: str, api: httpx.Client,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """``HoneyHive()`` with no arguments: HH_API_URL and HH_API_KEY point it at tracehive."""
    monkeypatch.setenv("HH_API_URL", server.url)
    monkeypatch.setenv("HH_API_KEY", key)
    client = HoneyHive()
    session_id = start_session(client, "env-session")
    assert get_tree(api, session_id)["event_name"] == "env-session"


def test_session_ids_normalized(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    """A session id that is not a UUID is replaced by a fresh one, an upper-case UUID is lower-cased
    (contract 3.1); the client carries on with the id in the reply."""
    client = make_client(server, key)
    replaced = client.sessions.start(
        StartSessionRequest(session={"session_id": "not-a-uuid", "session_name": "bad"})
    )
    assert is_uuid(replaced.session_id) and replaced.session_id == replaced.event_id
    assert get_tree(api, replaced.session_id)["event_name"] == "bad"

    wanted = str(uuid.uuid4())
    lowered = client.sessions.start(
        StartSessionRequest(session={"session_id": wanted.upper(), "session_name": "up"})
    )
    assert lowered.session_id == wanted
    event = client.events.create(PostEventRequest(event={"session_id": wanted.upper(), "event_type": "tool",
                                                         "event_name": "under-upper", "inputs": {}}))
    tree = get_tree(api, wanted)
    assert tree["event_name"] == "up"
    assert [n["event_id"] for n in walk(tree)] == [event.event_id]
