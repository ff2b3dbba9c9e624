"""The recorded traffic of HoneyHive 1.7.0's ``evaluate()`` and experiments wrappers
(``tests/fixtures/experiments/*.jsonl``, captured from the real SDK), replayed request by request
through the real app, on every backend. Every answer is validated with the SDK's own generated
response model (what makes the SDK raise makes this test fail), and each run's result is checked
against what the replayed spans carried.

Replay rules: ``/session/start`` gets the session id the capture's server answered (the SDK then
used that id everywhere); where the capture's server failed on purpose (a 500), the SDK fell back
to ids of its own, which the spans carry, and tracehive must still answer 200.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import pytest

from tests.helpers import FIXTURES, Api

SCENARIOS = ["inline", "inline_rich", "compare", "fnerror", "strmetric", "asyncfn", "session500"]
RUN = r"[0-9a-f-]{36}"
# (method, path pattern) -> the SDK's generated response model.
MODELS = [
    ("POST", r"/v1/runs", "PostExperimentRunResponse"),
    ("PUT", rf"/v1/runs/{RUN}", "PutExperimentRunResponse"),
    ("GET", rf"/v1/runs/{RUN}", "GetExperimentRunResponse"),
    ("DELETE", rf"/v1/runs/{RUN}", "DeleteExperimentRunResponse"),
    ("GET", r"/v1/runs", "GetExperimentRunsResponse"),
    ("GET", rf"/v1/runs/{RUN}/result", "GetExperimentRunResultResponse"),
    ("GET", rf"/v1/runs/{RUN}/compare-with/{RUN}", "GetExperimentRunCompareResponse"),
    ("GET", r"/v1/runs/compare/events", "GetExperimentCompareEventsResponse"),
    ("GET", r"/v1/events/schema", "GetEventsSchemaResponse"),
    ("POST", r"/session/start", "PostSessionStartResponse"),
]


def sdk_model(method: str, path: str) -> Any:
    for m, pattern, name in MODELS:
        if m == method and re.fullmatch(pattern, path):
            module = importlib.import_module(f"honeyhive._generated.models.{name}")
            return getattr(module, name)
    return None


def records(scenario: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / "experiments" / f"{scenario}.jsonl").read_text().splitlines() if line]


def spans_of(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [span for rs in body.get("resourceSpans", []) for ss in rs.get("scopeSpans", []) for span in ss.get("spans", [])]


def attribute_value(value: dict[str, Any]) -> Any:
    for kind in ("boolValue", "doubleValue", "stringValue"):
        if kind in value:
            return value[kind]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def expected_runs(recorded: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """From the spans alone: per run id, its datapoint ids and the names of its measurable metrics."""
    runs: dict[str, dict[str, Any]] = {}
    for r in recorded:
        if r["path"] != "/opentelemetry/v1/traces":
            continue
        for span in spans_of(r["body"]):
            attrs = {a["key"]: attribute_value(a["value"]) for a in span.get("attributes", [])}
            run_id = attrs.get("honeyhive_metadata.run_id")
            if not run_id:
                continue  # the SDK's stray Evaluation spans: not counted
            run = runs.setdefault(run_id, {"datapoints": set(), "metrics": set()})
            if attrs.get("honeyhive_metadata.datapoint_id"):
                run["datapoints"].add(attrs["honeyhive_metadata.datapoint_id"])
            for key, value in attrs.items():
                if key.startswith("honeyhive_metrics.") and not isinstance(value, str) and value is not None:
                    run["metrics"].add(key.removeprefix("honeyhive_metrics."))
    return runs


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_replay(api: Api, scenario: str) -> None:
    recorded = records(scenario)
    results: dict[str, dict[str, Any]] = {}
    for i, r in enumerate(recorded):
        method, path, body = r["method"], r["path"], r.get("body")
        params = [(k, v) for k, values in (r.get("query") or {}).items() for v in values]
        if path == "/session/start" and r["response_status"] == 200:
            body = json.loads(json.dumps(body))
            body["session"]["session_id"] = json.loads(r["response"])["session_id"]
        reply = api.request(method, path, json=body, params=params or None)
        expected = r["response_status"] if r["response_status"] in (200, 404) else 200
        assert reply.status_code == expected, (scenario, i, method, path, reply.text[:500])
        if reply.status_code != 200:
            continue
        payload = reply.json()
        model = sdk_model(method, path)
        if model is not None:
            model.model_validate(payload)  # raises as the SDK would
        if path.endswith("/result"):
            assert all(isinstance(x, str) for x in payload["passed"] + payload["failed"])
            assert isinstance(payload["metrics"]["details"], list)
            for point in payload["datapoints"]:
                assert isinstance(point["metrics"], list)
                assert all(not isinstance(m["value"], str) and m["name"] for m in point["metrics"])
            results[path.split("/")[3]] = payload
    expected_by_run = expected_runs(recorded)
    assert results, "the capture asked for no result"
    for run_id, result in results.items():
        expected = expected_by_run.get(run_id, {"datapoints": set(), "metrics": set()})
        got = {p["datapoint_id"] for p in result["datapoints"]}
        assert expected["datapoints"] <= got, (scenario, run_id)
        assert sorted(result["passed"] + result["failed"]) == sorted(p["datapoint_id"] or p["session_id"]
                                                                     for p in result["datapoints"])
        assert {d["metric_name"] for d in result["metrics"]["details"]} == expected["metrics"], (scenario, run_id)
