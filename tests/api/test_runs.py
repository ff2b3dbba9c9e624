"""Experiment runs (``/v1/runs*``) through the real app and store, on every backend: CRUD with
the SDK's shapes, metadata merged on update, the result's aggregates and pass/fail rule, the
comparison, bad input, isolation, and read-your-writes for ``/result`` in OTLP journal mode."""

from __future__ import annotations

import math
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error
from tracehive.app import create_app
from tracehive.settings import Settings

RUN_KEYS = {"id", "run_id", "metadata", "results", "event_ids", "configuration", "is_active", "created_at",
            "scope_type", "scope_id"}


def create(api: Api, **body: Any) -> dict[str, Any]:
    reply = api.post("/v1/runs", json=body)
    assert reply.status_code == 200, reply.text
    out: dict[str, Any] = reply.json()
    return out


def chain_span(run_id: str, datapoint: str, session_id: str, metrics: dict[str, Any], *, error: str | None = None,
               name: str = "answer", start: int = 1_700_000_000_000) -> dict[str, Any]:
    """The event the SDK's chain span becomes (as /v1/events takes it)."""
    return {"event_type": "chain", "event_name": name, "session_id": session_id, "source": "evaluation",
            "inputs": {}, "metrics": metrics, "error": error, "start_time": start, "end_time": start + 5,
            "metadata": {"run_id": run_id, "datapoint_id": datapoint}}


def test_create_get_update_list_delete(api: Api) -> None:
    run_id = str(uuid.uuid4())
    created = create(api, run_id=run_id, name="nightly", status="pending",
                     metadata={"git": {"branch": "main"}, "offline_dataset_id": "EXT-1"},
                     configuration={"function": "f"}, datapoint_ids=["EXT-a", "EXT-b"], event_ids=[])
    assert created["run_id"] == run_id
    run = created["evaluation"]
    assert RUN_KEYS <= run.keys() and run["id"] == run["run_id"] == run_id
    assert run["status"] == "pending" and run["name"] == "nightly" and run["scope_type"] == "project"
    # The SDK's final PUT: metadata with only offline_dataset_id must not lose git.
    sessions = [str(uuid.uuid4()) for _ in range(2)]
    updated = api.put(f"/v1/runs/{run_id}", json={"name": "nightly", "status": "completed",
                                                  "metadata": {"offline_dataset_id": "EXT-1", "extra": {"k": 1}},
                                                  "event_ids": sessions})
    assert updated.status_code == 200, updated.text
    run = updated.json()["evaluation"]
    assert run["metadata"] == {"git": {"branch": "main"}, "offline_dataset_id": "EXT-1", "extra": {"k": 1}}
    assert run["status"] == "completed" and run["event_ids"] == sessions
    assert run["configuration"] == {"function": "f"}
    assert api.get(f"/v1/runs/{run_id}").json()["evaluation"] == run
    other = create(api, name="adhoc")["run_id"]
    uuid.UUID(other)  # a fresh UUID when the client sends none
    listed = api.get("/v1/runs", params=[("run_ids[]", run_id), ("run_ids[]", other)]).json()
    assert {r["run_id"] for r in listed["evaluations"]} == {run_id, other}
    assert listed["pagination"]["total"] == 2 and listed["pagination"]["has_next"] is False
    assert [r["run_id"] for r in api.get("/v1/runs", params={"status": "completed"}).json()["evaluations"]] == [run_id]
    assert [r["run_id"] for r in api.get("/v1/runs", params={"name": "NIGHT"}).json()["evaluations"]] == [run_id]
    assert [r["run_id"] for r in api.get("/v1/runs", params={"dataset_id": "EXT-1"}).json()["evaluations"]] == [run_id]
    page = api.get("/v1/runs", params={"limit": 1, "page": 2, "sort_by": "created_at", "sort_order": "asc"}).json()
    assert [r["run_id"] for r in page["evaluations"]] == [other]
    assert page["pagination"] == {"page": 2, "limit": 1, "total": 2, "total_unfiltered": 2, "total_pages": 2,
                                  "has_next": False, "has_prev": True}
    assert api.delete(f"/v1/runs/{run_id}").json() == {"id": run_id, "deleted": True}
    assert_error(api.get(f"/v1/runs/{run_id}"), 404, run_id)
    assert_error(api.delete(f"/v1/runs/{run_id}"), 404)


def test_a_run_id_twice_is_a_conflict(api: Api) -> None:
    run_id = str(uuid.uuid4())
    create(api, run_id=run_id)
    body = assert_error(api.post("/v1/runs", json={"run_id": run_id}), 409, run_id)
    assert body["errorCode"] == "CONFLICT"


def test_result_aggregates_and_judges(api: Api) -> None:
    run_id = str(uuid.uuid4())
    sessions = [str(uuid.uuid4()) for _ in range(4)]
    create(api, run_id=run_id, event_ids=sessions, passing_ranges={"score": {"min": 0.5}})
    events = [
        chain_span(run_id, "dp-0", sessions[0], {"exact": True, "score": 0.9, "score_explanation": "good"}),
        chain_span(run_id, "dp-1", sessions[1], {"exact": False, "score": 0.7}),
        chain_span(run_id, "dp-2", sessions[2], {"exact": True, "score": 0.2, "length": 12}),
        chain_span(run_id, "dp-3", sessions[3], {}, error="RuntimeError: down"),
        # An SDK stray: an Evaluation span with metrics but no run id, in the run's first session.
        {**chain_span(run_id, "dp-0", sessions[0], {"exact": False}, name="Evaluation"), "metadata": {}},
    ]
    assert api.post("/v1/events/batch", json={"events": events}).status_code == 200
    result = api.get(f"/v1/runs/{run_id}/result").json()
    assert result["status"] == "pending" and result["success"] is False
    # exact: bool, passes when true. score: range min 0.5. length: number without range, no verdict.
    assert result["passed"] == ["dp-0"]
    assert result["failed"] == ["dp-1", "dp-2", "dp-3"]
    details = {d["metric_name"]: d for d in result["metrics"]["details"]}
    assert set(details) == {"exact", "score", "length"}
    assert details["exact"]["aggregate"] == pytest.approx(2 / 3) and details["exact"]["values"] == [1.0, 0.0, 1.0]
    assert details["exact"]["datapoints"] == {"passed": ["dp-0", "dp-2"], "failed": ["dp-1"]}
    assert details["score"]["passing_range"] == {"min": 0.5, "max": None}
    assert details["score"]["datapoints"] == {"passed": ["dp-0", "dp-1"], "failed": ["dp-2"]}
    assert details["length"]["datapoints"] == {"passed": [], "failed": []} and details["length"]["aggregate"] == 12
    assert result["event_details"] == [{"event_name": "answer", "event_type": "chain"}]
    by_dp = {p["datapoint_id"]: p for p in result["datapoints"]}
    assert [p["session_id"] for p in result["datapoints"]] == sessions
    assert by_dp["dp-3"] == {"datapoint_id": "dp-3", "session_id": sessions[3], "passed": False, "metrics": []}
    assert all(not isinstance(m["value"], str) for p in result["datapoints"] for m in p["metrics"])
    assert result["run_object"]["run_id"] == run_id
    scores = [0.9, 0.7, 0.2]
    expected = {"sum": sum(scores), "min": 0.2, "max": 0.9, "median": 0.7, "count": 3.0,
                "p90": 0.7 + (0.9 - 0.7) * 0.8, "p95": 0.7 + (0.9 - 0.7) * 0.9, "p99": 0.7 + (0.9 - 0.7) * 0.98,
                "average": sum(scores) / 3}
    for function, value in expected.items():
        got = api.get(f"/v1/runs/{run_id}/result", params={"aggregate_function": function}).json()
        score = next(d for d in got["metrics"]["details"] if d["metric_name"] == "score")
        assert math.isclose(score["aggregate"], value, rel_tol=1e-9), (function, score["aggregate"], value)
    summary = api.get(f"/v1/runs/{run_id}/summary").json()
    assert summary["passed"] == result["passed"]
    metrics = api.get(f"/v1/runs/{run_id}/metrics").json()
    assert metrics["totalEvents"] == 3
    assert sorted(e["metadata"]["datapoint_id"] for e in metrics["events"]) == ["dp-0", "dp-1", "dp-2"]


def test_a_metric_definition_threshold_decides_when_the_run_gives_no_range(api: Api) -> None:
    definition = api.post("/v1/metrics", json={"name": "latency_ok", "type": "PYTHON", "criteria": "x",
                                                "threshold": {"max": 100}})
    assert definition.status_code == 200, definition.text
    run_id = str(uuid.uuid4())
    sid = [str(uuid.uuid4()), str(uuid.uuid4())]
    create(api, run_id=run_id, event_ids=sid)
    api.post("/v1/events/batch", json={"events": [chain_span(run_id, "fast", sid[0], {"latency_ok": 80}),
                                                  chain_span(run_id, "slow", sid[1], {"latency_ok": 150})]})
    result = api.get(f"/v1/runs/{run_id}/result").json()
    assert (result["passed"], result["failed"]) == (["fast"], ["slow"])
    detail = result["metrics"]["details"][0]
    assert detail["metric_type"] == "PYTHON" and detail["passing_range"] == {"min": None, "max": 100.0}


def test_compare_runs(api: Api) -> None:
    old, new = str(uuid.uuid4()), str(uuid.uuid4())
    old_s, new_s = [str(uuid.uuid4()) for _ in range(3)], [str(uuid.uuid4()) for _ in range(3)]
    create(api, run_id=old, event_ids=old_s)
    create(api, run_id=new, event_ids=new_s)
    api.post("/v1/events/batch", json={"events": [
        chain_span(old, "a", old_s[0], {"acc": 0.5}), chain_span(old, "b", old_s[1], {"acc": 0.9}),
        chain_span(old, "c", old_s[2], {"acc": 0.4}),
        chain_span(new, "a", new_s[0], {"acc": 0.8}), chain_span(new, "b", new_s[1], {"acc": 0.6}),
        chain_span(new, "d", new_s[2], {"acc": 1.0}),
    ]})
    body = api.get(f"/v1/runs/{new}/compare-with/{old}").json()
    assert body["commonDatapoints"] == ["a", "b"]
    acc = body["metrics"][0]
    assert acc["metric_name"] == "acc"
    assert acc["old_aggregate"] == pytest.approx(0.6) and acc["new_aggregate"] == pytest.approx(0.8)
    assert acc["difference"] == pytest.approx(0.2) and acc["percentage_change"] == pytest.approx(0.2 / 0.6 * 100)
    assert (acc["found_count"], acc["improved_count"], acc["degraded_count"], acc["same_count"]) == (2, 1, 1, 0)
    assert (acc["improved"], acc["degraded"], acc["same"]) == (["a"], ["b"], [])
    assert (acc["old_values"], acc["new_values"]) == ([0.5, 0.9], [0.8, 0.6])
    assert body["event_details"] == [{"event_name": "answer", "event_type": "chain", "presence": "both"}]
    assert body["old_run"]["run_id"] == old and body["new_run"]["run_id"] == new
    assert api.get(f"/v1/runs/{new}/compare/{old}").json()["metrics"] == body["metrics"]
    events = api.get("/v1/runs/compare/events", params={"run_id_1": new, "run_id_2": old}).json()
    assert events["totalEvents"] == 2
    assert [(e["datapoint_id"], e["event_1"]["metrics"]["acc"], e["event_2"]["metrics"]["acc"])
            for e in events["events"]] == [("a", 0.8, 0.5), ("b", 0.6, 0.9)]


def test_bad_input_is_a_clear_4xx(api: Api) -> None:
    missing = str(uuid.uuid4())
    for method, path in [("GET", f"/v1/runs/{missing}"), ("PUT", f"/v1/runs/{missing}"),
                         ("GET", f"/v1/runs/{missing}/result"), ("GET", f"/v1/runs/{missing}/compare-with/{missing}")]:
        assert_error(api.request(method, path, json={}), 404, missing)
    assert_error(api.get("/v1/runs/not a run id"), 400, "run_id")
    assert_error(api.post("/v1/runs", json={"status": "exploded"}), 400, "status")
    assert_error(api.post("/v1/runs", json={"metadata": []}), 400, "metadata")
    assert_error(api.post("/v1/runs", json={"event_ids": ["not-a-uuid"]}), 400, "event_ids[0]")
    assert_error(api.post("/v1/runs", json={"name": 5}), 400, "name")
    assert_error(api.post("/v1/runs", content=b"{nope", headers={"Content-Type": "application/json"}), 400)
    assert_error(api.post("/v1/runs", json=[]), 400)
    json_type = {"Content-Type": "application/json"}
    assert_error(api.post("/v1/runs", content=b'{"results": {"x": NaN}}', headers=json_type), 400, "not valid JSON")
    assert_error(api.post("/v1/runs", content=b'{"name": "caf\xe9"}', headers=json_type), 400, "UTF-8")
    assert_error(api.post("/v1/runs", content=b'{"name": "x"}', headers={"Content-Type": "application/xml"}), 415)
    assert_error(api.post("/v1/runs", content=b'{"name": "' + b"x" * (21 * 1024 * 1024) + b'"}', headers=json_type), 413)
    run_id = create(api)["run_id"]
    assert_error(api.get(f"/v1/runs/{run_id}/result", params={"aggregate_function": "mode"}), 400, "aggregate_function")
    assert_error(api.get("/v1/runs", params={"sort_by": "color"}), 400, "sort_by")
    assert_error(api.get("/v1/runs", params={"limit": "-1"}), 400, "limit")
    assert_error(api.get("/v1/runs/compare/events", params={"run_id_1": run_id}), 400, "run_id_2")


def test_runs_are_confined_to_their_project_and_need_a_reading_key(api: Api, api_b: Api, ingest: Api) -> None:
    run_id = create(api, name="secret-run")["run_id"]
    assert_error(api_b.get(f"/v1/runs/{run_id}"), 404)
    assert_error(api_b.put(f"/v1/runs/{run_id}", json={"name": "taken"}), 404)
    assert_error(api_b.delete(f"/v1/runs/{run_id}"), 404)
    assert_error(api_b.get(f"/v1/runs/{run_id}/result"), 404)
    assert api_b.get("/v1/runs").json()["evaluations"] == []
    assert api.get(f"/v1/runs/{run_id}").json()["evaluation"]["name"] == "secret-run"
    for call in (ingest.get("/v1/runs"), ingest.post("/v1/runs", json={}), ingest.get(f"/v1/runs/{run_id}/result")):
        assert_error(call, 403)


def test_result_waits_for_acknowledged_spans_in_journal_mode(data_dir: Path, store_url: str,
                                                             keys: dict[str, str]) -> None:
    """In journal mode an export is acked before it is indexed; a /result asked right after must
    still count it (the SDK asks ~0.1 s after its last export)."""
    settings = Settings(data_dir=data_dir, store=store_url, otlp_journal=True)
    with TestClient(create_app(settings)) as client:
        api = Api(client, keys["a"])
        for i in range(15):
            run_id = str(uuid.uuid4())
            create(api, run_id=run_id)
            sid = uuid.uuid4().hex
            span = {"traceId": uuid.uuid4().hex, "spanId": uuid.uuid4().hex[:16], "name": "answer",
                    "startTimeUnixNano": str(1_700_000_000_000_000_000 + i), "endTimeUnixNano": str(1_700_000_000_500_000_000),
                    "attributes": [
                        {"key": "honeyhive_event_type", "value": {"stringValue": "chain"}},
                        {"key": "honeyhive.session_id", "value": {"stringValue": str(uuid.UUID(sid))}},
                        {"key": "honeyhive_metadata.run_id", "value": {"stringValue": run_id}},
                        {"key": "honeyhive_metadata.datapoint_id", "value": {"stringValue": f"dp-{i}"}},
                        {"key": "honeyhive_metrics.ok", "value": {"boolValue": True}},
                    ]}
            body = {"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"spans": [span]}]}]}
            ack = client.post("/opentelemetry/v1/traces", content=orjson.dumps(body),
                              headers={"Authorization": f"Bearer {keys['a']}", "Content-Type": "application/json"})
            assert ack.status_code == 200, ack.text
            result = api.get(f"/v1/runs/{run_id}/result").json()
            assert result["passed"] == [f"dp-{i}"], (i, result)
