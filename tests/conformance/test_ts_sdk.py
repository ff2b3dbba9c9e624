"""The real HoneyHive TypeScript client (npm ``honeyhive`` 1.0.42) against a real ``tracehive serve``.

``ts/scenario.js`` makes every data-plane call the client has (session start, events one by one
and in batches, a model event, an update, the session read and event searches) and reports each
answer as the client parsed it: its reads validate every response with zod, so a field the
server answers in a shape it refuses (``"outputs": null``, a fractional ``end_time``) fails the
call. Here every call must succeed, and what the client read must be what tracehive stored.

The package is installed by ``npm ci --prefix tests/conformance/ts`` (``.ci/run`` does it and sets
``TRACEHIVE_REQUIRE_TS_SDK``, which turns a missing Node.js or package into a failure).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.readback import get_event, get_tree, walk
from tests.process.server import TracehiveServer

TS_DIR = Path(__file__).resolve().parent / "ts"
PACKAGE = TS_DIR / "node_modules" / "honeyhive" / "package.json"
REQUIRED = os.environ.get("TRACEHIVE_REQUIRE_TS_SDK", "") not in ("", "0", "false")


def _node() -> str:
    node = shutil.which("node")
    reason = None
    if node is None:
        reason = "Node.js is not installed"
    elif not PACKAGE.exists():
        reason = f"the TypeScript client is not installed: run npm ci --prefix {TS_DIR}"
    if reason is not None:
        if REQUIRED:
            pytest.fail(f"{reason}, and TRACEHIVE_REQUIRE_TS_SDK is set")
        pytest.skip(reason)
    assert node is not None
    return node


@pytest.fixture(scope="module")
def run(server: TracehiveServer, key: str) -> dict[str, Any]:
    """The scenario's answers by step name, with the tag that names its events."""
    node = _node()
    assert json.loads(PACKAGE.read_text())["version"] == "1.0.42"
    tag = f"ts-{uuid.uuid4().hex[:8]}"
    env = {"PATH": os.environ.get("PATH", ""), "HOME": os.environ.get("HOME", "/tmp"),
           "TRACEHIVE_URL": server.url, "TRACEHIVE_KEY": key, "RUN_TAG": tag,
           "NO_PROXY": "127.0.0.1,localhost"}
    done = subprocess.run([node, str(TS_DIR / "scenario.js")], env=env, cwd=TS_DIR,
                          capture_output=True, text=True, timeout=120)
    steps = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:], steps)
    return {"tag": tag, "steps": {s["step"]: s for s in steps}}


def _answer(run: dict[str, Any], step: str) -> Any:
    got = run["steps"].get(step)
    assert got is not None, f"the scenario never reached {step}: {sorted(run['steps'])}"
    assert got["ok"], f"{step} failed in the TypeScript client: {got['error']}"
    return got["result"]


def test_every_call_of_the_client_succeeds(run: dict[str, Any]) -> None:
    failed = {name: s["error"][:600] for name, s in run["steps"].items() if not s["ok"]}
    assert failed == {}
    assert set(run["steps"]) == {
        "startSession", "createEvent.model", "createEvent.chain", "createEventBatch", "createModelEvent",
        "getEvents.byName", "updateEvent", "getSession", "getEvents.bySession", "getEvents.dateRangeProjected",
    }


def test_get_session_reads_the_stored_session(run: dict[str, Any], api: httpx.Client) -> None:
    session_id = _answer(run, "startSession")["sessionId"]
    read = _answer(run, "getSession")
    tree = get_tree(api, session_id)
    assert read["eventId"] == read["sessionId"] == session_id and read["eventType"] == "session"
    assert read["eventName"] == f"{run['tag']}-session" and read["source"] == f"{run['tag']}-source"
    assert read["inputs"] == {"question": "hi"} and read["userProperties"] == {"user_id": f"{run['tag']}-user"}
    # A session never given outputs reads as an empty object (the client refuses null).
    assert read["outputs"] == {}
    assert sorted(read["childrenIds"]) == sorted(node["event_id"] for node in walk(tree))
    assert len(read["childrenIds"]) == 4
    assert isinstance(read["endTime"], int)


def test_get_events_reads_what_was_stored(run: dict[str, Any], api: httpx.Client) -> None:
    tag = run["tag"]
    session_id = _answer(run, "startSession")["sessionId"]
    events = _answer(run, "getEvents.bySession")["events"]
    by_name = {e["eventName"]: e for e in events}
    assert set(by_name) == {f"{tag}-session", f"{tag}-llm", f"{tag}-chain", f"{tag}-tool-1", f"{tag}-tool-2"}
    assert all(e["sessionId"] == session_id for e in events)
    for read in events:
        stored = get_event(api, read["eventId"])
        for wire, name in (("config", "config"), ("inputs", "inputs"), ("metadata", "metadata"),
                           ("feedback", "feedback"), ("metrics", "metrics"), ("userProperties", "user_properties")):
            assert read[wire] == stored[name], (read["eventName"], name)
        assert read["outputs"] == (stored["outputs"] or {})
        assert read["startTime"] == stored["start_time"] and read["duration"] == stored["duration"]
        assert read["endTime"] == stored["end_time"] and isinstance(read["endTime"], int)

    model = by_name[f"{tag}-llm"]
    assert model["duration"] == 12.5 and model["endTime"] == math.ceil(model["startTime"] + 12.5)
    chain = by_name[f"{tag}-chain"]
    assert chain["outputs"] == {"answer": 42}
    assert chain["feedback"] == {"rating": 4, "comment": "good"} and chain["metrics"] == {"score": 0.5}
    tools = [by_name[f"{tag}-tool-{i}"] for i in (1, 2)]
    assert [t["outputs"] for t in tools] == [{"o": 1}, {"o": 2}]
    assert _answer(run, "createEventBatch")["eventIds"] == [t["eventId"] for t in tools]


def test_the_model_event_starts_its_own_session(run: dict[str, Any], api: httpx.Client) -> None:
    event_id = _answer(run, "createModelEvent")["eventId"]
    stored = get_event(api, event_id)
    assert stored["event_type"] == "model" and stored["event_name"] == f"{run['tag']}-model-event"
    # The legacy model-event aliases, stored as the contract says (section 4.8).
    assert stored["config"]["model"] == "gpt-4o" and stored["inputs"]["provider"] == "openai"
    assert stored["inputs"]["messages"] == [{"role": "user", "content": "hello"}]
    assert stored["outputs"] == {"response": {"role": "assistant", "content": "hey"}}
    assert stored["metadata"]["total_tokens"] == 5
    assert stored["session_id"] != _answer(run, "startSession")["sessionId"]


def test_projected_search_in_a_date_range(run: dict[str, Any]) -> None:
    events = _answer(run, "getEvents.dateRangeProjected")["events"]
    assert len(events) == 5
    for read in events:
        assert set(read) == {"eventId", "eventName", "eventType", "endTime", "outputs"}, read
        assert isinstance(read["endTime"], int) and isinstance(read["outputs"], dict)


def test_the_stored_times_are_kept_as_sent(run: dict[str, Any], api: httpx.Client) -> None:
    """Only the JSON answers round end_time: the NDJSON export (tracehive's own format) keeps the
    stored value, start_time + 12.5 ms."""
    session_id = _answer(run, "startSession")["sessionId"]
    r = api.post("/v1/events/export", headers={"Accept": "application/x-ndjson"},
                 json={"filters": [{"field": "session_id", "operator": "is", "value": session_id}]})
    assert r.status_code == 200, r.text
    lines = [json.loads(line) for line in r.text.splitlines()]
    model = next(e for e in lines if e["event_name"] == f"{run['tag']}-llm")
    assert model["end_time"] == model["start_time"] + 12.5
    session = next(e for e in lines if e["event_type"] == "session")
    assert session["outputs"] is None
