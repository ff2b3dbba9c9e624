"""HoneyHive's real ``evaluate()`` (honeyhive 1.7.0, unmodified) against a real ``tracehive
serve``: both dataset flows, evaluators of every kind, a function that raises, several workers,
compare_runs / get_run_result / get_run_metrics, journal mode and the ingestion key. Checked on
both sides: what the SDK hands to user code and what tracehive stored.

The SDK runs in a subprocess (``apps/evaluate_app.py``): it installs process-wide OpenTelemetry
state. Expected verdicts are derived here from the app's dataset and the README's pass/fail rule,
and the datapoint ids from the SDK's documented rule for inline datasets.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conformance.clients import client_env
from tests.process.server import TracehiveServer, serving

APP = Path(__file__).resolve().parent / "apps" / "evaluate_app.py"
# The app's inline dataset and what its function answers (apps/evaluate_app.py).
DATASET = [
    {"inputs": {"question": "capital of France"}, "ground_truth": {"answer": "Paris"}},
    {"inputs": {"question": "capital of Japan"}, "ground_truth": {"answer": "Tokyo"}},
    {"inputs": {"question": "capital of Peru"}, "ground_truth": {"answer": "Lima"}},
    {"inputs": {"question": "explode"}, "ground_truth": {"answer": "-"}},
]
ANSWERS = {"capital of France": "Paris", "capital of Japan": "Kyoto", "capital of Peru": "Lima"}


def ext_id(datapoint: dict[str, Any], index: int) -> str:
    """The SDK's id for an inline datapoint (experiments-wire §4.2)."""
    return "EXT-" + hashlib.sha256((json.dumps(datapoint, sort_keys=True) + str(index)).encode()).hexdigest()[:16]


IDS = [ext_id(dp, i) for i, dp in enumerate(DATASET)]
FRANCE, JAPAN, PERU, EXPLODE = IDS


def run_app(server: TracehiveServer, key: str, scenario: str, *extra: str, ingestion: str = "-",
            cwd: Path | None = None) -> dict[str, Any]:
    result = subprocess.run([sys.executable, str(APP), scenario, server.url, key, ingestion, *extra],
                            capture_output=True, text=True, env=client_env(server.url), timeout=180,
                            cwd=cwd or APP.parent)
    lines = [line for line in result.stdout.splitlines() if line.startswith("{") and not line.startswith('{"timestamp"')]
    assert result.returncode == 0 and lines, f"exit {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    out: dict[str, Any] = json.loads(lines[-1])
    return out


def details_by_name(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["metric_name"]: d for d in result["metrics"]["details"]}


def assert_inline_result(result: dict[str, Any], function: str = "answer") -> None:
    """The rule: a bool passes when true, a number without a range has no verdict, and a
    datapoint whose function raised fails."""
    assert result["status"] == "completed"
    assert sorted(result["passed"]) == sorted([FRANCE, PERU])
    assert sorted(result["failed"]) == sorted([JAPAN, EXPLODE])  # Kyoto; raised
    assert result["success"] is False
    details = details_by_name(result)
    assert set(details) == {"exact_match", "answer_length", "judged"}  # no *_explanation, no strays
    assert details["exact_match"]["aggregate"] == pytest.approx(2 / 3)
    assert sorted(details["exact_match"]["values"]) == [0.0, 1.0, 1.0]
    assert sorted(details["exact_match"]["datapoints"]["failed"]) == [JAPAN]
    lengths = [float(len(a)) for a in ANSWERS.values()]
    assert details["answer_length"]["aggregate"] == pytest.approx(sum(lengths) / 3)
    judged = [1.0 if a.endswith("o") else 0.5 for a in ANSWERS.values()]
    assert details["judged"]["aggregate"] == pytest.approx(sum(judged) / 3)
    assert all(d["event_name"] == function and d["event_type"] == "chain" for d in details.values())
    points = {p["datapoint_id"]: p for p in result["datapoints"]}
    assert set(points) == set(IDS)
    assert points[EXPLODE]["metrics"] == [] and points[EXPLODE]["passed"] is False
    assert {m["name"] for m in points[FRANCE]["metrics"]} == {"exact_match", "answer_length", "judged"}


def test_inline_dataset(server: TracehiveServer, key: str, api: httpx.Client, tmp_path: Path) -> None:
    out = run_app(server, key, "inline", cwd=tmp_path)["result"]
    assert_inline_result(out)
    run_id = out["run_id"]
    # What tracehive stored: the run, completed, its metadata kept across the SDK's final PUT
    # (which resends only offline_dataset_id), its sessions, each tagged with the run.
    run = api.get(f"/v1/runs/{run_id}").json()["evaluation"]
    assert run["name"] == "capitals" and run["status"] == "completed"
    assert run["metadata"]["offline_dataset_id"].startswith("EXT-")
    assert run["configuration"]["evaluators"] == ["exact_match", "answer_length", "judged"]
    assert sorted(run["datapoint_ids"]) == sorted(IDS)
    assert len(run["event_ids"]) == 4
    for sid in run["event_ids"]:
        session = api.get(f"/v1/sessions/{sid}").json()
        assert session["metadata"]["run_id"] == run_id
    # The same result through the API, and the stray "Evaluation" spans the SDK leaks (no
    # run_id) are stored as traces but not counted.
    again = api.get(f"/v1/runs/{run_id}/result", params={"aggregate_function": "average"}).json()
    assert_inline_result(again)
    strays = api.post("/v1/events/export", json={"filters": [
        {"field": "event_name", "operator": "is", "value": "Evaluation", "type": "string"}], "limit": 100}).json()
    assert strays["events"] and all("run_id" not in e["metadata"] for e in strays["events"])


def test_compare_runs_and_the_result_wrappers(server: TracehiveServer, key: str, tmp_path: Path) -> None:
    out = run_app(server, key, "compare", cwd=tmp_path)
    assert_inline_result(out["old"])
    new = out["new"]
    assert sorted(new["passed"]) == sorted([FRANCE, JAPAN, PERU]) and new["failed"] == [EXPLODE]
    comparison = out["comparison"]
    assert comparison["common_datapoints"] == 4
    exact = comparison["metric_deltas"]["exact_match"]
    assert exact["old_aggregate"] == pytest.approx(2 / 3) and exact["new_aggregate"] == pytest.approx(1.0)
    assert (exact["found_count"], exact["improved_count"], exact["degraded_count"], exact["same_count"]) == (3, 1, 0, 2)
    assert exact["improved"] == [JAPAN] and sorted(exact["same"]) == sorted([FRANCE, PERU])
    assert len(exact["old_values"]) == len(exact["new_values"]) == 3
    assert comparison["improved"] == ["exact_match"] and comparison["degraded"] == []
    # get_run_result with another aggregate: medians of the new run's values.
    median = details_by_name(out["median"])
    assert median["exact_match"]["aggregate"] == 1.0
    assert median["answer_length"]["aggregate"] == 5.0  # Paris, Tokyo, Lima
    raw = out["raw"]  # get_run_metrics: the raw /result of the new run
    assert raw["run_object"]["name"] == "capitals v2"


def test_server_dataset(server: TracehiveServer, key: str, api: httpx.Client, tmp_path: Path) -> None:
    created = api.post("/v1/datasets", json={"name": "capitals-golden", "description": "three capitals and a bomb"})
    assert created.status_code == 200, created.text
    dataset_id = created.json()["result"]["insertedId"]
    rows = [{"question": dp["inputs"]["question"], "answer": dp["ground_truth"]["answer"]} for dp in DATASET]
    added = api.post(f"/v1/datasets/{dataset_id}/datapoints",
                     json={"data": rows, "mapping": {"inputs": ["question"], "ground_truth": ["answer"]}})
    assert added.status_code == 200, added.text
    server_ids = added.json()["datapoint_ids"]
    assert len(server_ids) == 4
    out = run_app(server, key, "dsid", dataset_id, cwd=tmp_path)["result"]
    assert sorted(out["passed"]) == sorted([server_ids[0], server_ids[2]])
    assert sorted(out["failed"]) == sorted([server_ids[1], server_ids[3]])
    run = api.get(f"/v1/runs/{out['run_id']}").json()["evaluation"]
    assert run["dataset_id"] == dataset_id and run["dataset_name"] == "capitals-golden"
    assert sorted(run["datapoint_ids"]) == sorted(server_ids)
    listed = api.get("/v1/runs", params={"dataset_id": dataset_id}).json()
    assert [r["run_id"] for r in listed["evaluations"]] == [out["run_id"]]


def test_with_an_ingestion_key_for_the_traces(server: TracehiveServer, key: str, ingestion_key: str,
                                              tmp_path: Path) -> None:
    """The per-datapoint tracers (session start, spans, PUT /events) use the ingestion key; runs
    and results the project key, as in HoneyHive."""
    out = run_app(server, key, "inline", ingestion=ingestion_key, cwd=tmp_path)["result"]
    assert_inline_result(out)


@pytest.fixture(scope="module")
def journal_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TracehiveServer]:
    """OTLP journal mode: an export is acknowledged before it is indexed."""
    yield from serving(tmp_path_factory.mktemp("journal") / "data", env={"TRACEHIVE_OTLP_JOURNAL": "1"})


def test_result_counts_every_acknowledged_span_in_journal_mode(journal_server: TracehiveServer,
                                                               tmp_path: Path) -> None:
    """``/result`` comes ~0.1 s after the last export: it waits until every span acknowledged
    before it was asked is indexed."""
    assert journal_server.bootstrap_key is not None
    out = run_app(journal_server, journal_server.bootstrap_key, "inline", cwd=tmp_path)["result"]
    assert_inline_result(out)
