"""The real ``HoneyHiveTracer`` (honeyhive 1.7.0) against a real ``tracehive serve``, in both OTLP
dialects it speaks: ``http/json`` (its default, hex ids, enum names) and ``http/protobuf``
(``HH_OTLP_PROTOCOL=http/protobuf``, the stock OTel exporter). The instrumented app is
``apps/tracer_app.py``, run in a fresh process per scenario; what it sent is read back through
``GET /v1/sessions/{id}`` and ``GET /v1/events/{id}``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.clients import client_env
from tests.conformance.readback import (
    assert_same_event,
    assert_subset,
    count_events,
    get_event,
    meta,
    text_of,
    nodes_by_name,
    shape,
    wait_for_tree,
    walk,
)
from tests.process.server import TracehiveServer

pytest.importorskip("honeyhive")

APP = Path(__file__).parent / "apps" / "tracer_app.py"
APP_TIMEOUT = 25.0
PROTOCOLS = ["http/json", "http/protobuf"]
ROUTING_PREFIXES = ("honeyhive.", "honeyhive_", "traceloop.association.properties.")
# The tracer's own stopwatch; a server may keep it when it disagrees with the span timestamps.
NOT_ROUTING = {"honeyhive_duration_ms"}


class AppRun:
    def __init__(self, result: subprocess.CompletedProcess[str]) -> None:
        self.stdout = result.stdout
        self.stderr = result.stderr
        lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
        assert result.returncode == 0 and lines, (
            f"tracer app exited {result.returncode}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        )
        self.out: dict[str, Any] = json.loads(lines[-1])

    def context(self) -> str:
        return f"\n--- tracer app stderr ---\n{self.stderr[-4000:]}"


def run_app(scenario: str, server: TracehiveServer, key: str, protocol: str, *extra: str,
            env_extra: dict[str, str] | None = None) -> AppRun:
    env = client_env(server.url, {"HH_OTLP_PROTOCOL": protocol, **(env_extra or {})})
    if protocol == "http/protobuf" and scenario == "batched":
        # The stock protobuf exporter the tracer uses then sends Content-Encoding: gzip.
        env["OTEL_EXPORTER_OTLP_COMPRESSION"] = "gzip"
    result = subprocess.run(
        [sys.executable, str(APP), scenario, server.url, key, *extra],
        capture_output=True, text=True, env=env, timeout=APP_TIMEOUT, cwd=APP.parent,
    )
    return AppRun(result)


def assert_no_routing_keys(node: dict[str, Any]) -> None:
    """HoneyHive routing attributes (session id, source, project, event type ...) are consumed by
    the mapping, not dumped into metadata."""
    md = node.get("metadata") or {}
    kept = md.get("attributes") if isinstance(md.get("attributes"), dict) else {}
    leaked = [k for k in [*md, *kept] if (k.startswith(ROUTING_PREFIXES) and k not in NOT_ROUTING)
              or k in ("honeyhive", "traceloop")]
    assert not leaked, f"{node['event_name']}: routing attributes left in metadata: {leaked} ({md})"


def assert_times(node: dict[str, Any], parent: dict[str, Any] | None) -> None:
    name = node["event_name"]
    for k in ("start_time", "end_time", "duration"):
        value = node[k]
        assert isinstance(value, (int, float)) and not isinstance(value, bool), f"{name}.{k} = {value!r}"
    assert node["end_time"] >= node["start_time"], name
    assert node["duration"] == pytest.approx(node["end_time"] - node["start_time"], abs=1.0), name
    if parent is not None:  # a span lies inside its parent span (ms, allow rounding)
        inside = parent["start_time"] <= node["start_time"] + 1 and node["end_time"] <= parent["end_time"] + 1
        assert inside, (
            f"{name} [{node['start_time']}, {node['end_time']}] outside parent {parent['event_name']} "
            f"[{parent['start_time']}, {parent['end_time']}]"
        )


NESTED_SHAPE = {
    "pipeline": {
        "__main__.lookup": {},
        "async_fetch": {},
        "answer": {"call_llm": {"ChatCompletion": {}}},
        "broken_tool": {},
        "broken_tool_error": {},
        "manual-span": {},
    }
}
COMPLETION = "WHAT IS OTEL? ['DOC-1', 'DOC-2']"


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nested_traced_functions(server: TracehiveServer, key: str, api: httpx.Client, protocol: str) -> None:
    run = run_app("nested", server, key, protocol)
    session_id = run.out["session_id"]
    assert run.out["flushed"] is True, run.context()
    assert str(uuid.UUID(session_id)) == session_id

    tree = wait_for_tree(api, session_id, count_events(9))
    assert shape(tree) == NESTED_SHAPE, f"tree shape {shape(tree)}{run.context()}"

    # The session: started by /session/start, enriched by PUT /events (event_id = session_id),
    # which reaches the server before the spans that mention it.
    assert tree["event_id"] == session_id and tree["event_type"] == "session"
    assert tree["event_name"] == "tracer-nested"
    assert tree["source"] == "conformance-src"
    assert tree["inputs"] == {"topic": "otel"}
    assert tree["outputs"] == {"final": "ok"}
    assert tree["feedback"] == {"liked": True}
    assert tree["metrics"] == {"latency_ms": 123}
    assert tree["user_properties"] == {"user_id": "u-1"}
    assert_subset(tree["metadata"], {"sess": 1, "num_events": 9, "num_model_events": 2, "has_feedback": True,
                                     "prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
                  "session metadata")

    n = nodes_by_name(tree)
    pipeline, lookup, answer, llm = n["pipeline"], n["__main__.lookup"], n["answer"], n["call_llm"]
    broken, broken_err, manual = n["broken_tool"], n["broken_tool_error"], n["manual-span"]
    fetch, chat = n["async_fetch"], n["ChatCompletion"]

    # Parents and children.
    assert pipeline["parent_id"] == session_id
    for child in (lookup, fetch, answer, broken, broken_err, manual):
        assert child["parent_id"] == pipeline["event_id"], child["event_name"]
    assert llm["parent_id"] == answer["event_id"]
    assert chat["parent_id"] == llm["event_id"] and llm["children_ids"] == [chat["event_id"]]
    assert sorted(pipeline["children_ids"]) == sorted(
        c["event_id"] for c in (lookup, fetch, answer, broken, broken_err, manual)
    )
    assert answer["children_ids"] == [llm["event_id"]]
    assert tree["children_ids"] == [pipeline["event_id"]]
    ids = [node["event_id"] for node in walk(tree)]
    assert len(set(ids)) == 9 and all(str(uuid.UUID(i)) == i for i in ids)

    # Event types and mapped payloads (flattened honeyhive_* attributes rebuilt into objects).
    assert {name: node["event_type"] for name, node in n.items()} == {
        "pipeline": "chain", "__main__.lookup": "tool", "async_fetch": "tool", "answer": "chain",
        "call_llm": "model", "ChatCompletion": "model",
        "broken_tool": "tool", "broken_tool_error": "tool", "manual-span": "tool",
    }
    assert pipeline["inputs"] == {"question": "what is otel?"}
    assert pipeline["outputs"] == {"result": {"completion": COMPLETION}}

    assert lookup["inputs"] == {"term": "what is otel?"}
    assert lookup["outputs"] == {"hits": 2, "result": ["doc-1", "doc-2"]}, "list items .0/.1 rebuild a list"
    assert lookup["user_properties"] == {"tier": "pro"}
    assert_subset(lookup["metadata"], {"tags": ["a", "b"], "nested": {"deep": {"x": 1}}}, "lookup metadata")
    assert fetch["inputs"] == {"url": "http://127.0.0.1/doc"}
    assert fetch["outputs"] == {"result": {"status": 200}}

    assert answer["inputs"]["question"] == "what is otel?"
    assert answer["inputs"]["docs"] in ('["doc-1", "doc-2"]', ["doc-1", "doc-2"])  # list args: JSON text

    assert llm["inputs"] == {"prompt": "what is otel? ['doc-1', 'doc-2']", "temperature": 0.2}
    assert llm["outputs"] == {"result": {"completion": COMPLETION}}
    assert llm["config"] == {"model": "gpt-x"}
    assert llm["metrics"] == {"tokens": 7}
    assert llm["feedback"] == {"rating": 4}
    assert_subset(llm["metadata"], {"provider": "fake"}, "call_llm metadata")

    # The instrumentor's span: the tracer stamped the session and an event type on it; its
    # OpenInference attributes fill the payload (HoneyHive attributes would win, there are none).
    prompt = "what is otel? ['doc-1', 'doc-2']"
    assert prompt in text_of(chat["inputs"]) and "user" in text_of(chat["inputs"]), chat["inputs"]
    assert prompt.upper() in text_of(chat["outputs"]), chat["outputs"]
    assert "gpt-4o-mini" in text_of(chat["config"]), chat["config"]
    assert_subset(chat["metadata"], {"prompt_tokens": 3, "completion_tokens": 2}, "instrumentor tokens")

    # A traced function that raises: its span (ERROR status + exception event) and the sibling
    # <name>_error span both carry the error.
    assert broken["error"] and "tool exploded" in broken["error"], broken
    assert broken_err["error"] and "tool exploded" in broken_err["error"], broken_err
    assert broken["inputs"] == {"x": "what is otel?"}
    for node in (pipeline, lookup, fetch, answer, llm, chat, manual):
        assert node["error"] in (None, ""), node

    # An attribute the mapping does not know stays in metadata.
    assert meta(manual["metadata"], "custom.key") == "custom-value", manual["metadata"]
    assert meta(manual["metadata"], "custom.list") == ["x", "y"], manual["metadata"]
    assert meta(manual["metadata"], "custom.ints") == [1, 2], manual["metadata"]

    for node in n.values():
        assert node["session_id"] == session_id
        assert node["source"] == "conformance-src", node["event_name"]
        assert_no_routing_keys(node)
    parents = [(pipeline, tree), (lookup, pipeline), (fetch, pipeline), (answer, pipeline), (llm, answer),
               (chat, llm), (broken, pipeline), (broken_err, pipeline), (manual, pipeline)]
    for node, parent in parents:
        assert_times(node, parent)
    for node in n.values():
        assert_same_event(node, get_event(api, node["event_id"]))


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_batched_export_explicit_event_id(
    server: TracehiveServer, key: str, ingestion_key: str, api: httpx.Client, protocol: str
) -> None:
    """Default batching (child and parent in one export), a caller-chosen session id (sent
    upper-case, lower-cased by the tracer), ``@trace(event_id=...)`` overriding the derived event
    id (the child's parent must follow it), ``enrich_span(event_id=...)`` both before the span is
    exported (an update for an event the server has not seen) and after, and the free
    ``enrich_session``; writes go with the ingestion key (protobuf: gzip-compressed)."""
    run = run_app("batched", server, key, protocol, ingestion_key)
    session_id, fixed_id = run.out["session_id"], run.out["fixed_id"]
    assert run.out["flushed"] is True, run.context()
    assert session_id == run.out["sent_session_id"], "the server must keep a caller-supplied session id"

    tree = wait_for_tree(api, session_id, count_events(2))
    assert shape(tree) == {"outer": {"inner": {}}}, f"tree shape {shape(tree)}{run.context()}"
    assert tree["event_name"] == "tracer-batched" and tree["source"] == "batched-src"
    assert_subset(tree["metadata"], {"via": "free-function", "num_events": 2}, "session metadata")

    outer, inner = nodes_by_name(tree)["outer"], nodes_by_name(tree)["inner"]
    assert outer["event_id"] == fixed_id, "honeyhive_event_id overrides the derived event id"
    assert outer["parent_id"] == session_id
    assert inner["parent_id"] == fixed_id, "a child's parent_id follows its parent's overridden event id"
    assert (outer["event_type"], inner["event_type"]) == ("chain", "tool")
    assert outer["inputs"] == {"n": 1} and outer["outputs"] == {"result": 20}
    assert inner["inputs"] == {"n": 1} and inner["outputs"] == {"result": 2}
    assert_subset(outer["metadata"], {"early": True, "late": True},
                  "outer metadata (enrich_span(event_id=...))")
    assert outer["feedback"] == {"score": 3}
    assert_times(inner, outer)
    event = get_event(api, fixed_id)
    assert_same_event(outer, event)


def test_explicit_event_id_parent_exported_after_child(
    server: TracehiveServer, key: str, api: httpx.Client
) -> None:
    """``@trace(event_id=...)`` with ``disable_batch=True``: the child span ends first and is
    exported alone, naming its parent only by span id; the parent, carrying the explicit event
    id, comes in the next request. The child must still end up under that parent."""
    run = run_app("explicit_unbatched", server, key, "http/json")
    session_id, fixed_id = run.out["session_id"], run.out["fixed_id"]
    tree = wait_for_tree(api, session_id, count_events(2))
    outer = nodes_by_name(tree).get("outer")
    assert outer is not None and outer["event_id"] == fixed_id, shape(tree)
    assert shape(tree) == {"outer": {"inner": {}}}, f"tree shape {shape(tree)}{run.context()}"
    assert nodes_by_name(tree)["inner"]["parent_id"] == fixed_id


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_per_request_sessions(server: TracehiveServer, key: str, api: httpx.Client, protocol: str) -> None:
    """Configured only through HH_API_URL / HH_API_KEY / HH_SOURCE (the README's adoption path).
    Two sessions from one tracer (the web-server pattern): one created through
    ``create_session`` (POST /session/start), one only named by its spans
    (``honeyhive.session_auto_create`` + ``honeyhive.session_name``) and enriched before they
    arrive. Each gets exactly its own spans; the span-side name does not rename an existing session."""
    run = run_app("sessions", server, key, protocol, env_extra={"HH_API_KEY": key, "HH_SOURCE": "web"})
    first, second = run.out["first"], run.out["second"]
    assert run.out["flushed"] is True, run.context()
    assert first and first != second

    one = wait_for_tree(api, first, count_events(2))
    assert shape(one) == {"handle": {"step": {}}}, f"{shape(one)}{run.context()}"
    assert one["event_name"] == "request-1", "a session started through the API keeps its name"
    assert one["inputs"] == {"path": "/a"}
    assert_subset(one["metadata"], {"req": 1, "num_events": 2}, "request-1 metadata")
    assert [n["inputs"] for n in walk(one)] == [{"q": "a"}, {"q": "a"}]

    two = wait_for_tree(api, second, count_events(2))
    assert shape(two) == {"handle": {"step": {}}}, f"{shape(two)}{run.context()}"
    assert two["event_type"] == "session" and two["event_id"] == second
    assert two["event_name"] == "request-2", "an auto-created session takes honeyhive.session_name"
    assert two["source"] == "web"
    assert_subset(two["metadata"], {"early": True, "num_events": 2}, "an update that came before the session")
    assert two["feedback"] == {"ok": True}
    assert [n["outputs"] for n in walk(two)] == [{"result": "bb"}, {"result": "bb"}]
    for tree in (one, two):
        for node in walk(tree):
            assert node["source"] == "web"
            assert_same_event(node, get_event(api, node["event_id"]))
