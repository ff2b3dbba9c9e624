"""The real ``honeyhive-logger==0.0.11`` (stdlib-only: ``start``, ``log``, ``update``) against a real
``tracehive serve``, read back through tracehive's own API.

The logger always sends its own ``session_id`` (a fresh UUIDv4) and wraps bodies as
``{"session": ...}`` / ``{"event": ...}``; ``verbose=True`` makes it raise instead of printing and
returning None, so a server error fails the test.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.conformance.readback import assert_same_event, assert_subset, get_event, get_tree, shape, walk
from tests.process.server import TracehiveServer

pytest.importorskip("honeyhive_logger")
import honeyhive_logger  # noqa: E402

pytestmark = pytest.mark.usefixtures("restore_socket_timeout")


def test_start_log_update(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    common = {"api_key": key, "server_url": server.url, "verbose": True}
    before_ms = time.time() * 1000
    session_id = honeyhive_logger.start(
        project="conformance-project",
        session_name="logger-session",
        source="logger-src",
        config={"app": "v1"},
        inputs={"q": "hi"},
        metadata={"m": 1},
        user_properties={"user_id": "u-9"},
        **common,
    )
    assert str(uuid.UUID(session_id)) == session_id

    model_id = honeyhive_logger.log(
        project="conformance-project",
        session_id=session_id,
        source="logger-src",
        event_name="generate",
        event_type="MODEL",  # the logger lower-cases it
        config={"model": "gpt-x"},
        inputs={"chat_history": [{"role": "user", "content": "hi"}]},
        outputs={"content": "hello"},
        metadata={"total_tokens": 12},
        duration_ms=25,
        **common,
    )
    tool_id = honeyhive_logger.log(
        project="conformance-project",
        session_id=session_id,
        event_name="lookup",
        inputs={"q": "hi"},
        outputs={"a": "hello"},
        **common,
    )
    for eid in (model_id, tool_id):
        assert str(uuid.UUID(eid)) == eid
    assert model_id != tool_id

    honeyhive_logger.update(event_id=session_id, metadata={"done": True}, feedback={"rating": 5},
                            outputs={"final": "hello"}, **common)
    honeyhive_logger.update(event_id=tool_id, metrics={"score": 1.0}, feedback={"ok": True},
                            user_properties={"tier": "pro"}, duration_ms=30, **common)

    tree = get_tree(api, session_id)
    assert shape(tree) == {"generate": {}, "lookup": {}}
    assert tree["event_id"] == session_id and tree["event_type"] == "session"
    assert tree["event_name"] == "logger-session"
    assert tree["source"] == "logger-src"
    assert tree["config"] == {"app": "v1"}
    assert tree["inputs"] == {"q": "hi"}
    assert tree["outputs"] == {"final": "hello"}
    assert tree["feedback"] == {"rating": 5}
    assert tree["user_properties"] == {"user_id": "u-9"}
    assert_subset(tree["metadata"], {"m": 1, "done": True, "num_events": 2, "num_model_events": 1,
                                     "total_tokens": 12}, "session metadata")
    # The logger sends start_time (ms) on session start and on each event.
    assert tree["start_time"] >= before_ms - 1000

    by_id = {n["event_id"]: n for n in walk(tree)}
    model, tool = by_id[model_id], by_id[tool_id]
    assert model["event_type"] == "model" and model["event_name"] == "generate"
    assert model["parent_id"] == session_id and model["session_id"] == session_id
    assert model["source"] == "logger-src"
    assert model["config"] == {"model": "gpt-x"}
    assert model["inputs"] == {"chat_history": [{"role": "user", "content": "hi"}]}
    assert model["outputs"] == {"content": "hello"}
    assert model["duration"] == 25
    assert model["end_time"] == pytest.approx(model["start_time"] + 25)

    assert tool["event_type"] == "tool", "the logger's default event type"
    assert tool["source"] == "dev", "the logger's default source"
    assert tool["metrics"] == {"score": 1.0}
    assert tool["feedback"] == {"ok": True}
    assert tool["user_properties"] == {"tier": "pro"}
    assert tool["duration"] == 30
    for node in (model, tool):
        assert_same_event(node, get_event(api, node["event_id"]))


def test_log_without_session_creates_one(server: TracehiveServer, key: str, api: httpx.Client) -> None:
    """``log()`` with no session_id invents one the server has never seen: the event must not be
    dropped, and the implicit session must be readable."""
    event_id = honeyhive_logger.log(api_key=key, server_url=server.url, verbose=True, project="p",
                                    event_name="orphan-log", event_type="chain", inputs={"x": 1})
    event = get_event(api, event_id)
    assert event["event_name"] == "orphan-log" and event["event_type"] == "chain"
    tree = get_tree(api, event["session_id"])
    assert [n["event_id"] for n in walk(tree)] == [event_id]
    assert event["parent_id"] == event["session_id"]



def test_configured_by_environment(server: TracehiveServer, key: str, api: httpx.Client,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """With ``server_url=None`` the logger reads HH_API_URL (and HH_API_KEY, HH_PROJECT)."""
    monkeypatch.setenv("HH_API_URL", server.url)
    monkeypatch.setenv("HH_API_KEY", key)
    monkeypatch.setenv("HH_PROJECT", "env-project")
    session_id = honeyhive_logger.start(server_url=None, verbose=True)
    event_id = honeyhive_logger.log(server_url=None, verbose=True, session_id=session_id,
                                    event_name="env-log")
    tree = get_tree(api, session_id)
    assert tree["event_name"] == "env-project", "the logger names a session after the project by default"
    assert [n["event_id"] for n in walk(tree)] == [event_id]
