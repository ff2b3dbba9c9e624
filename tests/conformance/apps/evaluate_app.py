"""Runs HoneyHive's real ``evaluate()`` (honeyhive 1.7.0) against a tracehive server, as a
subprocess of ``test_sdk_evaluate.py`` (the SDK installs process-wide OpenTelemetry state).

Usage: python evaluate_app.py SCENARIO SERVER_URL API_KEY [INGESTION_KEY|-] [DATASET_ID]
Prints one JSON object on its last stdout line: what the SDK returned to user code.

Scenarios:
  inline   an inline dataset of four datapoints, one of which makes the function raise; three
           evaluators (a plain bool, a plain number, an @evaluator returning a dict with an
           explanation); four workers.
  dsid     the same function and evaluators over the server dataset DATASET_ID.
  compare  two runs of the same inline dataset (the second function answers better), then
           compare_runs, get_run_result (median) and get_run_metrics on them.
"""

from __future__ import annotations

import json
import sys
import warnings

warnings.simplefilter("ignore", DeprecationWarning)

from honeyhive import HoneyHive, evaluate, evaluator  # noqa: E402
from honeyhive.experiments import compare_runs, get_run_metrics, get_run_result  # noqa: E402

DATASET = [
    {"inputs": {"question": "capital of France"}, "ground_truth": {"answer": "Paris"}},
    {"inputs": {"question": "capital of Japan"}, "ground_truth": {"answer": "Tokyo"}},
    {"inputs": {"question": "capital of Peru"}, "ground_truth": {"answer": "Lima"}},
    {"inputs": {"question": "explode"}, "ground_truth": {"answer": "-"}},
]
KNOWN = {"capital of France": "Paris", "capital of Japan": "Kyoto", "capital of Peru": "Lima"}
BETTER = {"capital of France": "Paris", "capital of Japan": "Tokyo", "capital of Peru": "Lima"}


def answer(datapoint: dict) -> dict:
    question = datapoint["inputs"]["question"]
    if question == "explode":
        raise RuntimeError("the model is down")
    return {"answer": KNOWN[question]}


def better_answer(datapoint: dict) -> dict:
    question = datapoint["inputs"]["question"]
    if question == "explode":
        raise RuntimeError("the model is down")
    return {"answer": BETTER[question]}


def exact_match(outputs, inputs, ground_truth=None):  # noqa: ANN001, ANN201 - the SDK's calling convention
    return bool(ground_truth) and outputs.get("answer") == ground_truth.get("answer")


def answer_length(outputs, inputs, ground_truth=None):  # noqa: ANN001, ANN201
    return float(len(outputs.get("answer", "")))


@evaluator
def judged(outputs, inputs, ground_truth=None):  # noqa: ANN001, ANN201
    score = 1.0 if outputs.get("answer", "").endswith("o") else 0.5
    return {"score": score, "explanation": f"ends with {outputs.get('answer', '')[-1:]!r}"}


def summary(result) -> dict:  # noqa: ANN001
    dumped = result.model_dump()
    return {key: dumped.get(key) for key in ("run_id", "status", "success", "passed", "failed", "metrics", "datapoints")}


def main() -> None:
    scenario, url, key = sys.argv[1], sys.argv[2], sys.argv[3]
    ingestion = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] != "-" else None
    common = {"api_key": key, "ingestion_api_key": ingestion, "server_url": url, "print_results": False,
              "evaluators": [exact_match, answer_length, judged], "max_workers": 4}
    out: dict = {}
    if scenario == "inline":
        out["result"] = summary(evaluate(answer, dataset=DATASET, name="capitals", **common))
    elif scenario == "dsid":
        out["result"] = summary(evaluate(answer, dataset_id=sys.argv[5], name="capitals-server", **common))
    elif scenario == "compare":
        old = evaluate(answer, dataset=DATASET, name="capitals v1", **common)
        new = evaluate(better_answer, dataset=DATASET, name="capitals v2", **common)
        client = HoneyHive(api_key=key, server_url=url)
        comparison = compare_runs(client, new_run_id=new.run_id, old_run_id=old.run_id)
        out = {
            "old": summary(old),
            "new": summary(new),
            "comparison": {
                "common_datapoints": comparison.common_datapoints,
                "metric_deltas": comparison.metric_deltas,
                "improved": comparison.list_improved_metrics(),
                "degraded": comparison.list_degraded_metrics(),
            },
            "median": summary(get_run_result(client, new.run_id, aggregate_function="median")),
            "raw": get_run_metrics(client, new.run_id),
        }
    else:
        raise SystemExit(f"unknown scenario {scenario}")
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
