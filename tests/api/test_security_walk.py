"""Security, walked from the app's own ``/openapi.json`` (issue 7, part 3).

Every operation the document lists has an entry in ``CASES``, and the test fails when the two sets
differ, so a route added later without a case here fails the build. For each operation:

(a) without a key it is a 401 in the contract's shape (``/healthz`` alone is open);
(b) with project B's key and project A's ids substituted into its path and body, B reads none of
    A's data (no A id, marker, project id or name in the answer, while the same request with A's
    key does return A's data), and B's updates, deletes and writes leave A exactly as it was;
(c) keys (and the metrics token) are stored hashed: neither appears in the database files;
(d) a real ``tracehive serve`` logs JSON lines with request ids (the ``X-Request-Id`` answered)
    and never the key nor anything of a payload.

Routes the document hides (aliases, UI) and the non-API routes are swept too: without a key and
with B's key they show nothing of A's, and the aliases get their API checks.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from starlette.routing import Mount
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, make_key
from tests.otlp_data import SESSION_ID as OTLP_SESSION_ID
from tests.otlp_data import tracer_request
from tests.process.server import TracehiveServer
from tracehive.settings import Settings

METRICS_TOKEN = "metrics-" + uuid.uuid4().hex
ADMIN_TOKEN = "admin-" + uuid.uuid4().hex
MARK_A = "markA" + uuid.uuid4().hex  # in every payload of project A
MARK_B = "markB" + uuid.uuid4().hex  # in every payload of project B


@pytest.fixture
def settings(data_dir: Path, store_url: str) -> Settings:
    return Settings(data_dir=data_dir, store=store_url, metrics_token=METRICS_TOKEN, admin_token=ADMIN_TOKEN)


def ev(**fields: Any) -> dict[str, Any]:
    return {"event_type": "tool", "inputs": {}, **fields}


# ------------------------------------------------------------------------------------------------
# The two projects' data
# ------------------------------------------------------------------------------------------------


@dataclass
class World:
    client: TestClient
    a: Api
    b: Api
    anon: Api
    sid: str = ""  # A's explicit session: a chain, and a tool under it
    chain_id: str = ""
    tool_id: str = ""
    other_sid: str = ""  # A's implicit session, made by a lone event
    lone_id: str = ""
    project_id: str = ""
    otlp_event_ids: list[str] = field(default_factory=list)
    b_sid: str = ""
    # A's experiment records (issue #13: datasets, datapoints, configurations, metric definitions)
    dataset_id: str = ""
    datapoint_ids: list[str] = field(default_factory=list)
    config_id: str = ""
    metric_id: str = ""
    run_id: str = ""  # A's experiment run (its events: the chain event, metadata.run_id)

    @property
    def record_ids(self) -> list[str]:
        return [i for i in (self.dataset_id, *self.datapoint_ids, self.config_id, self.metric_id, self.run_id) if i]

    @property
    def session_ids(self) -> list[str]:
        return [self.sid, self.other_sid, OTLP_SESSION_ID]

    @property
    def event_ids(self) -> list[str]:
        return [self.chain_id, self.tool_id, self.lone_id, *self.otlp_event_ids, *self.session_ids]

    def a_strings(self) -> list[str]:
        """What must never show in an answer to B (before B reuses A's ids for its own data)."""
        return [MARK_A.lower(), self.project_id, "project-a", *self.event_ids, *self.record_ids]


def ok(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def otlp_body() -> dict[str, Any]:
    return tracer_request()[1]


def build_world(client: TestClient, keys: dict[str, str]) -> World:
    world = World(client, Api(client, keys["a"]), Api(client, keys["b"]), Api(client, None))
    a = world.a
    world.sid = ok(a.post("/v1/sessions", json={"session_name": f"a {MARK_A}", "metadata": {"owner": MARK_A}}))["session_id"]
    world.chain_id, world.tool_id = str(uuid.uuid4()), str(uuid.uuid4())
    ok(a.post(f"/v1/sessions/{world.sid}/events/batch", json={"events": [
        ev(event_id=world.chain_id, event_type="chain", inputs={"q": MARK_A}),
        ev(event_id=world.tool_id, parent_id=world.chain_id, inputs={"q": MARK_A}, outputs={"a": MARK_A},
           metadata={"cost": 0.5, f"k_{MARK_A}": 1}, feedback={"rating": 5}),
    ]}))
    world.lone_id = ok(a.post("/v1/events", json=ev(inputs={"q": MARK_A})))["event_id"]
    lone = ok(a.get(f"/v1/events/{world.lone_id}"))["event"]
    world.other_sid, world.project_id = lone["session_id"], lone["project_id"]
    assert ok(a.post("/opentelemetry/v1/traces", json=otlp_body())) == {}
    world.otlp_event_ids = [n["event_id"] for n in nodes(ok(a.get(f"/v1/sessions/{OTLP_SESSION_ID}")))][1:]
    assert len(world.otlp_event_ids) >= 5
    # B has data of its own, so that its reads return something (B's, and only B's).
    world.b_sid = ok(world.b.post("/v1/sessions", json={"session_name": f"b {MARK_B}", "metadata": {"owner": MARK_B}}))["session_id"]
    ok(world.b.post(f"/v1/sessions/{world.b_sid}/events/batch",
                    json={"events": [ev(inputs={"q": MARK_B}, metadata={f"k_{MARK_B}": 1})]}))
    build_experiment_records(world)
    build_runs(world)
    return world


def nodes(tree: dict[str, Any]) -> list[dict[str, Any]]:
    return [tree] + [n for child in tree["children"] for n in nodes(child)]


def snapshot_a(world: World) -> dict[str, Any]:
    """Everything of A's, read with A's key: every tree, every event, and the full export."""
    shot: dict[str, Any] = {}
    for sid in world.session_ids:
        shot[f"tree {sid}"] = ok(world.a.get(f"/v1/sessions/{sid}"))
    for eid in world.event_ids:
        shot[f"event {eid}"] = ok(world.a.get(f"/v1/events/{eid}"))
    export = ok(world.a.post("/v1/events/export", json={"limit": 7500}))
    shot["export"] = sorted(export["events"], key=lambda e: e["event_id"])
    assert len(shot["export"]) == len(world.event_ids)
    shot.update(snapshot_experiment_records(world))
    shot.update(snapshot_runs(world))
    assert MARK_B.lower() not in json.dumps(shot).lower()
    return shot


# ------------------------------------------------------------------------------------------------
# Requests and cases
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    json: Any = None
    params: Any = None
    headers: dict[str, str] | None = None

    def send(self, api: Api, headers: dict[str, str] | None = None) -> Any:
        return api.request(self.method, self.path, json=self.json, params=self.params,
                           headers={**(self.headers or {}), **(headers or {})})


# What B's request must get, by kind of operation:
READ = "read"  # 200, B's data only; A's key gets A's data with the same request
READ_BY_ID = "read_by_id"  # 404 for B (the id is A's); A's key reads it
CHANGE = "change"  # PUT / DELETE naming A's ids: B gets `status`; A is unchanged
CREATE = "create"  # a write reusing A's ids: 200 for B (its own copy); A is unchanged
PUBLIC = "public"  # /healthz: no key needed, no data
METRICS = "metrics"  # the metrics token only: 403 for B's project key
ADMIN = "admin"  # the admin token only: 403 for B's project key, A unchanged


@dataclass(frozen=True)
class Case:
    kind: str
    calls: Callable[[World], list[Call]]
    status: int = 200  # for CHANGE


def read_all(path: str, body: Any = None, **params: Any) -> Callable[[World], list[Call]]:
    method = "GET" if body is None else "POST"
    return lambda w: [Call(method, path, json=body, params=params or None)]


CASES: dict[tuple[str, str], Case] = {
    ("GET", "/healthz"): Case(PUBLIC, lambda w: [Call("GET", "/healthz")]),
    ("GET", "/metrics"): Case(METRICS, lambda w: [Call("GET", "/metrics")]),
    ("GET", "/v1/admin/projects"): Case(ADMIN, lambda w: [Call("GET", "/v1/admin/projects")]),
    ("PUT", "/v1/admin/projects/{name}"): Case(ADMIN, lambda w: [
        Call("PUT", "/v1/admin/projects/project-a", json={"retention_days": 1, "redact": []})]),
    # Reads: everything B may see; only B's data may come back.
    ("GET", "/v1/whoami"): Case(READ, read_all("/v1/whoami")),
    ("POST", "/v1/sessions/search"): Case(READ, read_all("/v1/sessions/search", {"limit": 100})),
    ("POST", "/v1/events/search"): Case(READ, lambda w: [
        Call("POST", "/v1/events/search", json={"limit": 1000}),
        Call("POST", "/v1/events/search", json={"filters": [
            {"field": "session_id", "operator": "is", "value": w.sid, "type": "string"}]}),
    ]),
    ("POST", "/v1/events/export"): Case(READ, lambda w: [
        Call("POST", "/v1/events/export", json={"limit": 7500}),
        Call("POST", "/v1/events/export", json={}, headers={"Accept": "application/x-ndjson"}),  # streamed
        Call("POST", "/v1/events/export", json={"filters": [
            {"field": "event_id", "operator": "is", "value": w.tool_id, "type": "string"}]}),
    ]),
    ("POST", "/events/export"): Case(READ, read_all("/events/export", {"limit": 7500})),
    ("GET", "/v1/events"): Case(READ, lambda w: [
        Call("GET", "/v1/events", params={"limit": 7500}),
        Call("GET", "/v1/events", params={"filters": json.dumps(
            [{"field": "inputs.q", "operator": "contains", "value": "mark", "type": "string"}])}),
    ]),
    ("GET", "/events"): Case(READ, read_all("/events", limit=7500)),
    ("GET", "/v1/events/chart"): Case(READ, read_all("/v1/events/chart", aggregation="count", bucket="day",
                                                     groupBy="session_id", dateRange='{"relative": "7d"}')),
    ("GET", "/v1/events/schema"): Case(READ, read_all("/v1/events/schema")),
    # Reads by id: A's ids are not found for B.
    ("GET", "/v1/sessions/{session_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/sessions/{sid}") for sid in w.session_ids]),
    ("GET", "/session/{session_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/session/{sid}") for sid in w.session_ids]),
    ("GET", "/v1/events/{event_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/events/{eid}") for eid in w.event_ids]),
    # Updates and deletes of A's ids.
    ("PUT", "/v1/events/{event_id}"): Case(CHANGE, lambda w: [
        Call("PUT", f"/v1/events/{eid}", json={"metadata": {"by": MARK_B}, "feedback": {"by": MARK_B},
                                              "outputs": {"by": MARK_B}, "duration": 1, "children_ids": [w.b_sid]})
        for eid in w.event_ids], status=404),
    ("DELETE", "/v1/events/{event_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/events/{eid}") for eid in w.event_ids], status=404),
    ("DELETE", "/v1/sessions/{session_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/sessions/{sid}") for sid in w.session_ids], status=404),
    # Legacy update: an unknown event's update is kept for later, in B's project (so a 200).
    ("PUT", "/events"): Case(CHANGE, lambda w: [
        Call("PUT", "/events", json={"event_id": eid, "metadata": {"by": MARK_B}, "outputs": {"by": MARK_B}})
        for eid in w.event_ids], status=200),
    # Writes that reuse A's ids: B gets its own copies; A's stay as they were.
    ("POST", "/v1/sessions"): Case(CREATE, lambda w: [
        Call("POST", "/v1/sessions", json={"session_id": sid, "metadata": {"owner": MARK_B},
                                           "user_properties": {"u": MARK_B}}) for sid in w.session_ids]),
    ("POST", "/v1/sessions/{session_id}/events/batch"): Case(CREATE, lambda w: [
        Call("POST", f"/v1/sessions/{w.sid}/events/batch", json={"events": [
            ev(event_id=w.tool_id, parent_id=w.chain_id, inputs={"q": MARK_B}),
            ev(event_id=w.chain_id, event_type="chain", inputs={"q": MARK_B})]})]),
    ("POST", "/v1/events"): Case(CREATE, lambda w: [
        Call("POST", "/v1/events", json=ev(event_id=w.lone_id, session_id=w.other_sid, inputs={"q": MARK_B},
                                           project_id=w.project_id))]),
    ("POST", "/v1/events/batch"): Case(CREATE, lambda w: [
        Call("POST", "/v1/events/batch", json={"events": [
            ev(event_id=eid, session_id=w.sid, inputs={"q": MARK_B}) for eid in (w.chain_id, w.tool_id)]}),
        Call("POST", "/v1/events/batch", json={"events": [ev(inputs={"q": MARK_B})], "single_session": True,
                                               "session_properties": {"session_id": w.other_sid}})]),
    ("POST", "/events"): Case(CREATE, lambda w: [
        Call("POST", "/events", json={"event": ev(event_id=w.tool_id, session_id=w.sid, inputs={"q": MARK_B},
                                                  project="project-a")})]),
    ("POST", "/events/model"): Case(CREATE, lambda w: [
        Call("POST", "/events/model", json={"model_event": {"event_id": w.chain_id, "session_id": w.sid,
                                                            "inputs": {"q": MARK_B}, "model": "m"}})]),
    ("POST", "/events/batch"): Case(CREATE, lambda w: [
        Call("POST", "/events/batch", json={"events": [
            ev(event_id=w.lone_id, session_id=w.other_sid, inputs={"q": MARK_B})]})]),
    ("POST", "/events/model/batch"): Case(CREATE, lambda w: [
        Call("POST", "/events/model/batch", json={"model_events": [
            {"event_id": w.tool_id, "session_id": w.sid, "inputs": {"q": MARK_B}, "model": "m"}]})]),
    ("POST", "/session/start"): Case(CREATE, lambda w: [
        Call("POST", "/session/start", json={"session": {"session_id": w.sid, "metadata": {"owner": MARK_B},
                                                         "project": "project-a"}})]),
    ("POST", "/session/{session_id}/traces"): Case(CREATE, lambda w: [
        Call("POST", f"/session/{w.sid}/traces", json={"events": [
            ev(event_id=w.tool_id, parent_id=w.chain_id, inputs={"q": MARK_B})]})]),
    # The same spans A exported: their ids are derived from (trace, span), so B's copies share them.
    ("POST", "/opentelemetry/v1/traces"): Case(CREATE, lambda w: [
        Call("POST", "/opentelemetry/v1/traces", json=otlp_body())]),
    ("POST", "/v1/traces"): Case(CREATE, lambda w: [Call("POST", "/v1/traces", json=otlp_body())]),
}


# ------------------------------------------------------------------------------------------------
# Experiment records (issue #13): datasets, datapoints, configurations, metric definitions
# ------------------------------------------------------------------------------------------------


def build_experiment_records(world: World) -> None:
    """A has a dataset holding two datapoints (one from a row, one created on its own), a
    configuration, and a metric with one version; B has one of each too, so its reads show B's."""
    a, b = world.a, world.b
    world.dataset_id = ok(a.post("/v1/datasets", json={"name": f"ds {MARK_A}", "description": MARK_A}))["result"]["insertedId"]
    world.datapoint_ids = ok(a.post(f"/v1/datasets/{world.dataset_id}/datapoints", json={
        "data": [{"q": MARK_A, "a": MARK_A}], "mapping": {"inputs": ["q"], "ground_truth": ["a"]}}))["datapoint_ids"]
    world.datapoint_ids += ok(a.post("/v1/datapoints", json={
        "inputs": {"q": MARK_A}, "metadata": {"m": MARK_A}, "linked_datasets": [world.dataset_id]}))["result"]["insertedIds"]
    world.config_id = ok(a.post("/v1/configurations", json={
        "name": f"cfg {MARK_A}", "provider": "openai", "parameters": {"call_type": "chat", "model": MARK_A}}))["insertedId"]
    world.metric_id = ok(a.post("/v1/metrics", json={"name": f"m {MARK_A}", "type": "PYTHON", "criteria": MARK_A}))["metric_id"]
    ok(a.post(f"/v1/metrics/{world.metric_id}/versions", json={
        "message": MARK_A, "content": {"name": f"m {MARK_A}", "type": "PYTHON", "criteria": MARK_A}}))
    b_dataset = ok(b.post("/v1/datasets", json={"name": f"ds {MARK_B}"}))["result"]["insertedId"]
    ok(b.post("/v1/datapoints", json={"inputs": {"q": MARK_B}, "linked_datasets": [b_dataset]}))
    ok(b.post("/v1/configurations", json={"name": f"cfg {MARK_B}", "provider": "p",
                                          "parameters": {"call_type": "chat", "model": MARK_B}}))
    ok(b.post("/v1/metrics", json={"name": f"m {MARK_B}", "type": "PYTHON", "criteria": MARK_B}))


def snapshot_experiment_records(world: World) -> dict[str, Any]:
    a = world.a
    shot = {
        "datasets": ok(a.get("/v1/datasets")),
        "datapoints": ok(a.get("/v1/datapoints")),
        "configurations": ok(a.get("/v1/configurations")),
        "metrics": ok(a.get("/v1/metrics")),
        "versions": ok(a.get(f"/v1/metrics/{world.metric_id}/versions")),
    }
    for dp in world.datapoint_ids:
        shot[f"datapoint {dp}"] = ok(a.get(f"/v1/datapoints/{dp}"))
    assert [d["id"] for d in shot["datasets"]["datasets"]] == [world.dataset_id]
    assert shot["datasets"]["datasets"][0]["datapoints"] == world.datapoint_ids
    return shot


def _rows(body: dict[str, Any]) -> dict[str, Any]:
    return {"data": [body], "mapping": {"inputs": list(body)}}


CASES.update({
    # Reads: B's lists show B's records only, even when filtered by A's ids or names.
    ("GET", "/v1/datasets"): Case(READ, lambda w: [
        Call("GET", "/v1/datasets"),
        Call("GET", "/v1/datasets", params={"dataset_id": w.dataset_id}),
        Call("GET", "/v1/datasets", params={"name": f"ds {MARK_A}"})]),
    ("GET", "/v1/datapoints"): Case(READ, lambda w: [
        Call("GET", "/v1/datapoints"),
        Call("GET", "/v1/datapoints", params={"datapoint_ids[]": w.datapoint_ids}),
        Call("GET", "/v1/datapoints", params={"dataset_name": f"ds {MARK_A}"})]),
    ("GET", "/v1/configurations"): Case(READ, lambda w: [
        Call("GET", "/v1/configurations"),
        Call("GET", "/v1/configurations", params={"name": f"cfg {MARK_A}"})]),
    ("GET", "/v1/metrics"): Case(READ, lambda w: [
        Call("GET", "/v1/metrics"),
        Call("GET", "/v1/metrics", params={"id": w.metric_id}),
        Call("GET", "/v1/metrics", params={"type": "PYTHON"})]),
    # Reads by id.
    ("GET", "/v1/datapoints/{datapoint_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/datapoints/{dp}") for dp in w.datapoint_ids]),
    ("GET", "/v1/metrics/{metric_id}/versions"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/metrics/{w.metric_id}/versions")]),
    # Updates, deletes, and writes that name A's records: 404, A unchanged.
    ("POST", "/v1/datasets"): Case(CHANGE, lambda w: [
        Call("POST", "/v1/datasets", json={"name": MARK_B, "datapoints": w.datapoint_ids})], status=404),
    ("PUT", "/v1/datasets"): Case(CHANGE, lambda w: [
        Call("PUT", "/v1/datasets", json={"dataset_id": w.dataset_id, "name": MARK_B, "datapoints": []})], status=404),
    ("PUT", "/v1/datasets/{dataset_id}"): Case(CHANGE, lambda w: [
        Call("PUT", f"/v1/datasets/{w.dataset_id}", json={"description": MARK_B, "datapoints": []})], status=404),
    ("DELETE", "/v1/datasets"): Case(CHANGE, lambda w: [
        Call("DELETE", "/v1/datasets", params={"dataset_id": w.dataset_id})], status=404),
    ("DELETE", "/v1/datasets/{dataset_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/datasets/{w.dataset_id}")], status=404),
    ("POST", "/v1/datasets/{dataset_id}/datapoints"): Case(CHANGE, lambda w: [
        Call("POST", f"/v1/datasets/{w.dataset_id}/datapoints", json=_rows({"q": MARK_B}))], status=404),
    ("DELETE", "/v1/datasets/{dataset_id}/{datapoint_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/datasets/{w.dataset_id}/{dp}") for dp in w.datapoint_ids], status=404),
    ("DELETE", "/v1/datasets/{dataset_id}/datapoints/{datapoint_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/datasets/{w.dataset_id}/datapoints/{dp}") for dp in w.datapoint_ids], status=404),
    ("POST", "/v1/datapoints"): Case(CHANGE, lambda w: [
        Call("POST", "/v1/datapoints", json={"inputs": {"q": MARK_B}, "linked_datasets": [w.dataset_id]})],
        status=404),
    ("PUT", "/v1/datapoints/{datapoint_id}"): Case(CHANGE, lambda w: [
        Call("PUT", f"/v1/datapoints/{dp}", json={"inputs": {"q": MARK_B}, "linked_datasets": []})
        for dp in w.datapoint_ids], status=404),
    ("DELETE", "/v1/datapoints/{datapoint_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/datapoints/{dp}") for dp in w.datapoint_ids], status=404),
    ("PUT", "/v1/configurations/{configId}"): Case(CHANGE, lambda w: [
        Call("PUT", f"/v1/configurations/{w.config_id}", json={"name": MARK_B, "env": ["prod"]})], status=404),
    ("DELETE", "/v1/configurations/{configId}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/configurations/{w.config_id}")], status=404),
    ("PUT", "/v1/metrics"): Case(CHANGE, lambda w: [
        Call("PUT", "/v1/metrics", json={"id": w.metric_id, "criteria": MARK_B})], status=404),
    ("PUT", "/v1/metrics/{metric_id}"): Case(CHANGE, lambda w: [
        Call("PUT", f"/v1/metrics/{w.metric_id}", json={"criteria": MARK_B})], status=404),
    ("DELETE", "/v1/metrics"): Case(CHANGE, lambda w: [
        Call("DELETE", "/v1/metrics", params={"metric_id": w.metric_id})], status=404),
    ("DELETE", "/v1/metrics/{metric_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/metrics/{w.metric_id}")], status=404),
    ("POST", "/v1/metrics/{metric_id}/versions"): Case(CHANGE, lambda w: [
        Call("POST", f"/v1/metrics/{w.metric_id}/versions", json={
            "message": MARK_B, "content": {"name": MARK_B, "type": "LLM", "criteria": MARK_B},
            "deploy_immediately": True})], status=404),
    ("POST", "/v1/metrics/{metric_id}/versions/{version_name}/deploy"): Case(CHANGE, lambda w: [
        Call("POST", f"/v1/metrics/{w.metric_id}/versions/v1/deploy")], status=404),
    # Writes naming nothing of A's: B gets its own records.
    ("POST", "/v1/configurations"): Case(CREATE, lambda w: [
        Call("POST", "/v1/configurations", json={"name": f"cfg {MARK_B}", "provider": "p",
                                                 "parameters": {"call_type": "chat", "model": MARK_B}})]),
    ("POST", "/v1/metrics"): Case(CREATE, lambda w: [
        Call("POST", "/v1/metrics", json={"name": f"m {MARK_B}", "type": "PYTHON", "criteria": MARK_B})]),
})

# ------------------------------------------------------------------------------------------------
# Experiment runs (issue #13)
# ------------------------------------------------------------------------------------------------


def build_runs(world: World) -> None:
    """A has a run over its explicit session, whose chain event carries the run id and a metric;
    B has a run of its own."""
    world.run_id = str(uuid.uuid4())
    ok(world.a.post("/v1/runs", json={"run_id": world.run_id, "name": f"run {MARK_A}", "event_ids": [world.sid],
                                      "metadata": {"owner": MARK_A}, "datapoint_ids": world.datapoint_ids}))
    ok(world.a.put(f"/v1/events/{world.chain_id}", json={"metadata": {"run_id": world.run_id, "datapoint_id": MARK_A},
                                                         "metrics": {"accuracy": 0.5}}))
    ok(world.b.post("/v1/runs", json={"name": f"run {MARK_B}", "metadata": {"owner": MARK_B}}))


def snapshot_runs(world: World) -> dict[str, Any]:
    a, run = world.a, world.run_id
    shot = {"runs": ok(a.get("/v1/runs")), "run": ok(a.get(f"/v1/runs/{run}")),
            "result": ok(a.get(f"/v1/runs/{run}/result"))}
    assert [r["run_id"] for r in shot["runs"]["evaluations"]] == [run]
    assert shot["result"]["passed"] == [MARK_A]
    return shot


CASES.update({
    ("GET", "/v1/runs"): Case(READ, lambda w: [
        Call("GET", "/v1/runs"), Call("GET", "/v1/runs", params={"run_ids[]": [w.run_id]}),
        Call("GET", "/v1/runs", params={"name": MARK_A})]),
    ("GET", "/v1/runs/{run_id}"): Case(READ_BY_ID, lambda w: [Call("GET", f"/v1/runs/{w.run_id}")]),
    ("GET", "/v1/runs/{run_id}/result"): Case(READ_BY_ID, lambda w: [Call("GET", f"/v1/runs/{w.run_id}/result")]),
    ("GET", "/v1/runs/{run_id}/summary"): Case(READ_BY_ID, lambda w: [Call("GET", f"/v1/runs/{w.run_id}/summary")]),
    ("GET", "/v1/runs/{run_id}/metrics"): Case(READ_BY_ID, lambda w: [Call("GET", f"/v1/runs/{w.run_id}/metrics")]),
    ("GET", "/v1/runs/{new_run_id}/compare-with/{old_run_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/runs/{w.run_id}/compare-with/{w.run_id}")]),
    ("GET", "/v1/runs/{new_run_id}/compare/{old_run_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/runs/{w.run_id}/compare/{w.run_id}")]),
    ("GET", "/v1/runs/compare/events"): Case(READ_BY_ID, lambda w: [
        Call("GET", "/v1/runs/compare/events", params={"run_id_1": w.run_id, "run_id_2": w.run_id})]),
    ("PUT", "/v1/runs/{run_id}"): Case(CHANGE, lambda w: [
        Call("PUT", f"/v1/runs/{w.run_id}", json={"name": MARK_B, "status": "failed", "metadata": {"by": MARK_B}})],
        status=404),
    ("DELETE", "/v1/runs/{run_id}"): Case(CHANGE, lambda w: [Call("DELETE", f"/v1/runs/{w.run_id}")], status=404),
    # B may create a run with A's run id: its own, in its project.
    ("POST", "/v1/runs"): Case(CREATE, lambda w: [
        Call("POST", "/v1/runs", json={"run_id": w.run_id, "name": MARK_B, "event_ids": [w.sid]})]),
})

# Routes the document hides on purpose (aliases of documented ones), with their API checks.
HIDDEN_CASES: dict[tuple[str, str], Case] = {
    ("GET", "/v1/session/{session_id}"): Case(READ_BY_ID, lambda w: [
        Call("GET", f"/v1/session/{sid}") for sid in w.session_ids]),
    ("DELETE", "/v1/session/{session_id}"): Case(CHANGE, lambda w: [
        Call("DELETE", f"/v1/session/{sid}") for sid in w.session_ids], status=404),
}

PHASES = (PUBLIC, METRICS, ADMIN, READ, READ_BY_ID, CHANGE, CREATE)  # reads before B reuses A's ids


def _api_routes(routes: Any) -> list[APIRoute]:
    found: list[APIRoute] = []
    for route in routes:
        if isinstance(route, APIRoute):
            found.append(route)
        elif hasattr(route, "original_router"):  # FastAPI >= 0.16x keeps included routers nested
            found.extend(_api_routes(route.original_router.routes))
    return found


def documented_operations(client: TestClient) -> set[tuple[str, str]]:
    doc = ok(client.get("/openapi.json"))
    return {(method.upper(), path) for path, operations in doc["paths"].items() for method in operations}


def hidden_routes(client: TestClient) -> set[tuple[str, str]]:
    return {(method, route.path) for route in _api_routes(client.app.routes)  # type: ignore[attr-defined]
            if not route.include_in_schema for method in (route.methods or set()) - {"HEAD"}}


def assert_no_a(world: World, reply: Any, what: str, strings: list[str] | None = None) -> None:
    text = reply.text.lower()
    for s in world.a_strings() if strings is None else strings:
        assert s.lower() not in text, f"{what}: B's answer shows A's {s!r}: {reply.text[:500]}"


def shows_a(world: World, reply: Any) -> bool:
    text = reply.text.lower()
    return any(s.lower() in text for s in world.a_strings())


# ------------------------------------------------------------------------------------------------
# (a) + (b): the walk
# ------------------------------------------------------------------------------------------------


def test_every_documented_operation_has_a_case(client: TestClient) -> None:
    documented = documented_operations(client)
    missing = sorted(documented - set(CASES))
    stale = sorted(set(CASES) - documented)
    assert not missing, f"operations in /openapi.json without a security case: {missing}"
    assert not stale, f"security cases for operations no longer in /openapi.json: {stale}"
    hidden_api = {r for r in hidden_routes(client) if r[1].startswith(("/v1/", "/session", "/events"))}
    assert hidden_api == set(HIDDEN_CASES), f"hidden API routes {sorted(hidden_api)} vs cases {sorted(HIDDEN_CASES)}"


def test_without_a_key_every_operation_but_healthz_is_401(client: TestClient, keys: dict[str, str]) -> None:
    world = build_world(client, keys)
    before = snapshot_a(world)
    walked = set()
    for route, case in {**CASES, **HIDDEN_CASES}.items():
        walked.add(route)
        for call in case.calls(world):
            reply = call.send(world.anon)
            if case.kind == PUBLIC:
                assert reply.status_code == 200, (route, reply.text)
                assert_no_a(world, reply, f"{route} without a key")
                continue
            body = assert_error(reply, 401)
            assert body["errorCode"] == "UNAUTHORIZED", (route, body)
            assert_no_a(world, reply, f"{route} without a key")
    assert walked >= documented_operations(client)
    assert snapshot_a(world) == before


def test_project_b_cannot_read_change_or_delete_project_a_through_any_operation(
    client: TestClient, keys: dict[str, str]
) -> None:
    world = build_world(client, keys)
    before = snapshot_a(world)
    cases = {**CASES, **HIDDEN_CASES}
    walked: set[tuple[str, str]] = set()
    for phase in PHASES:
        for route, case in cases.items():
            if case.kind != phase:
                continue
            walked.add(route)
            for call in case.calls(world):
                check_b(world, route, case, call)
            # After each operation A is exactly as it was (nothing changed, nothing added).
            assert snapshot_a(world) == before, route
    assert walked == set(cases)
    assert walked >= documented_operations(client)

    # B now holds copies under A's ids; its reads still show nothing that A wrote.
    for route, case in cases.items():
        if case.kind in (READ, READ_BY_ID):
            for call in case.calls(world):
                reply = call.send(world.b)
                assert reply.status_code in (200, 404), (route, reply.text)
                assert_no_a(world, reply, f"{route} after B's writes", [MARK_A, world.project_id, "project-a"])
    assert snapshot_a(world) == before


def check_b(world: World, route: tuple[str, str], case: Case, call: Call) -> None:
    reply = call.send(world.b)
    what = f"{call.method} {call.path} with B's key"
    if case.kind == PUBLIC:
        assert reply.status_code == 200, (what, reply.text)
        assert_no_a(world, reply, what)
    elif case.kind == METRICS:
        body = assert_error(reply, 403, "metrics token")
        assert body["errorCode"] == "FORBIDDEN"
        # The token opens it, and even then nothing of any project is in it.
        scraped = call.send(Api(world.client, METRICS_TOKEN))
        assert scraped.status_code == 200 and "tracehive_http_requests_total" in scraped.text
        assert_no_a(world, scraped, "/metrics")
        assert MARK_B.lower() not in scraped.text.lower() and world.b_sid not in scraped.text
    elif case.kind == ADMIN:
        body = assert_error(reply, 403, "admin token")
        assert body["errorCode"] == "FORBIDDEN"
        assert_no_a(world, reply, what, [MARK_A, world.project_id, "project-a"])
        assert_error(call.send(world.a), 403, "admin token")  # nor may A's own key
    elif case.kind == READ:
        assert reply.status_code == 200, (what, reply.text)
        assert_no_a(world, reply, what)
        control = call.send(world.a)
        assert control.status_code == 200, control.text
        assert shows_a(world, control), f"{call.method} {call.path}: A's own key reads nothing of A's; the case proves nothing"
    elif case.kind == READ_BY_ID:
        assert_error(reply, 404)
        assert_no_a(world, reply, what, [MARK_A, world.project_id, "project-a"])
        control = call.send(world.a)
        assert control.status_code == 200 and shows_a(world, control), control.text
    elif case.kind == CHANGE:
        assert reply.status_code == case.status, (what, reply.text)
        assert_no_a(world, reply, what, [MARK_A, world.project_id, "project-a"])
    elif case.kind == CREATE:
        assert reply.status_code == 200, (what, reply.text)
        assert_no_a(world, reply, what, [MARK_A, world.project_id, "project-a"])
    else:  # pragma: no cover - a new kind without a check
        raise AssertionError(f"no check for {case.kind}")


def test_hidden_and_non_api_routes_show_nothing_of_a(client: TestClient, keys: dict[str, str]) -> None:
    """Whatever else the app serves (UI pages, docs, aliases): neither anonymously nor with B's key
    does it show A's data, and A is unchanged afterwards."""
    world = build_world(client, keys)
    before = snapshot_a(world)
    targets: list[tuple[str, str]] = sorted(hidden_routes(client))
    for route in client.app.routes:  # type: ignore[attr-defined]
        plain = not isinstance(route, (APIRoute, Mount)) and not hasattr(route, "original_router")
        if plain and getattr(route, "path", None):  # /openapi.json, /docs
            targets.append(("GET", route.path))
    assert ("GET", "/openapi.json") in targets
    for method, template in targets:
        path = template
        for name, value in (("{session_id}", world.sid), ("{event_id}", world.tool_id)):
            path = path.replace(name, value)
        if "{" in path:  # any other parameter (e.g. a UI asset path): ask for A's session id
            path = path[: path.index("{")] + world.sid
        for api in (world.anon, world.b):
            reply = api.request(method, path)
            assert reply.status_code < 500, (method, path, reply.text[:300])
            # (an error may echo the id that was asked for; nothing else of A's)
            assert_no_a(world, reply, f"{method} {path}", [s for s in world.a_strings() if s not in path])
    assert snapshot_a(world) == before


# ------------------------------------------------------------------------------------------------
# (c): keys stored hashed
# ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["sqlite"])  # reads SQLite's files byte for byte (PostgreSQL: test_auth_isolation)
def test_keys_and_the_metrics_token_are_stored_hashed(client: TestClient, keys: dict[str, str], data_dir: Path) -> None:
    world = build_world(client, keys)
    for key in keys.values():  # every key resolved and used while the app runs
        assert Api(client, key).post("/v1/events", json=ev(inputs={"k": 1})).status_code == 200
    assert Api(client, METRICS_TOKEN).get("/metrics").status_code == 200
    files = sorted(p for p in data_dir.iterdir() if p.is_file())
    names = {p.name for p in files}
    assert {"tracehive.db", "tracehive.db-wal"} <= names, names  # the WAL of the running app is read too
    blob = b"".join(p.read_bytes() for p in files)
    for key in keys.values():
        secret = key[len("hh_ingst_" if key.startswith("hh_ingst_") else "hh_") + 25:]  # after the 24-char key id
        assert len(secret) == 64
        assert key.encode() not in blob and secret.encode() not in blob
        assert hashlib.sha256(key.encode()).hexdigest().encode() in blob  # the right files were read
    assert METRICS_TOKEN.encode() not in blob
    assert MARK_A.encode() in blob  # payloads are there, as they should be
    assert world.sid


# ------------------------------------------------------------------------------------------------
# (d): logs of a real server
# ------------------------------------------------------------------------------------------------


def test_server_logs_are_json_with_request_ids_and_no_keys_or_payloads(data_dir: Path, store_url: str) -> None:
    key = make_key(Settings(data_dir=data_dir, store=store_url), "logs")  # minted beforehand: the server prints no key of its own
    wrong_key = "hh_" + "W" * 24 + "_" + MARK_B[:64].ljust(64, "x")
    server = TracehiveServer(data_dir, env={"TRACEHIVE_METRICS_TOKEN": METRICS_TOKEN, "TRACEHIVE_LOG_LEVEL": "info",
                                            "TRACEHIVE_STORE": store_url})
    answered: list[tuple[str, str, str, int]] = []  # (request id, method, path, status)
    with server:
        assert server.bootstrap_key is None
        with server.client(key) as http:
            def send(method: str, path: str, **kw: Any) -> httpx.Response:
                reply = http.request(method, path, **kw)
                answered.append((reply.headers["x-request-id"], method, path.split("?")[0], reply.status_code))
                return reply

            sid = send("POST", "/v1/sessions", json={"session_name": MARK_A, "metadata": {"m": MARK_A}}).json()["session_id"]
            assert send("POST", f"/v1/sessions/{sid}/events/batch",
                        json={"events": [ev(inputs={"q": MARK_A}, outputs={"a": MARK_A})]}).status_code == 200
            assert send("POST", "/v1/events/search", json={"filters": [
                {"field": "inputs.q", "operator": "is", "value": MARK_A, "type": "string"}]}).status_code == 200
            assert send("GET", f"/v1/events?filters={MARK_A}&{MARK_A}=1").status_code == 400  # query strings are not logged
            assert send("POST", "/v1/events", content=b'{"inputs": "' + MARK_A.encode() + b'"').status_code == 400
            assert send("POST", "/v1/events", json=ev(inputs={"q": MARK_A}),
                        headers={"Authorization": f"Bearer {wrong_key}"}).status_code == 401
            assert send("GET", "/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"}).status_code == 200
            mine = send("GET", "/healthz", headers={"X-Request-Id": "trace-me.42"})
            assert mine.headers["x-request-id"] == "trace-me.42"
            unsafe = send("GET", "/healthz", headers={"X-Request-Id": f"{MARK_A} bad\"id"})
            assert MARK_A not in unsafe.headers["x-request-id"]
    output = server.stdout + "\n" + server.stderr
    for secret in (key, key[len("hh_") + 25:], wrong_key, MARK_A, MARK_B, METRICS_TOKEN):
        assert secret not in output, f"{secret[:12]}... is in the server's output"

    lines = [json.loads(line) for line in server.stderr_lines if line.strip()]
    assert lines and all(isinstance(line, dict) for line in lines)
    for line in lines:
        assert {"ts", "level", "logger", "msg", "request_id"} <= set(line), line
    access = {line["request_id"]: line for line in lines if line["logger"] == "tracehive.access"}
    assert len(answered) == 9
    for request_id, method, path, status in answered:
        line = access.get(request_id)
        assert line is not None, f"no log line for request {request_id} ({method} {path})"
        assert (line["method"], line["path"], line["status"]) == (method, path, status), line
        assert isinstance(line["duration_ms"], (int, float)) and line["duration_ms"] >= 0
    assert access["trace-me.42"]["route"] == "/healthz"
    assert any(line["logger"].startswith("uvicorn") for line in lines)  # uvicorn's own lines are JSON too
