"""Experiment data for the web UI's experiments pages (browser tests and the compare-view
screenshot), written through the real REST API of a running server (``httpx.Client`` with a
project key), the way honeyhive's ``evaluate()`` writes it:

* a dataset of four capital-city questions (``POST /v1/datasets`` and
  ``POST /v1/datasets/{id}/datapoints`` with a column mapping); one question is hostile markup;
* two completed runs over it, ``baseline`` (created first) and ``candidate`` (created last, its
  name hostile markup), and a ``smoke`` run still ``running`` with no datapoints, created between
  them (so that sorting by name, by time and by status each give a different order);
* per datapoint of each run: a session (``POST /v1/sessions``: the datapoint's inputs and
  ``metadata.run_id``/``datapoint_id``), the function's chain event carrying the evaluators'
  ``metrics`` (``POST /v1/events/batch``), and the session's outputs and
  ``feedback.ground_truth`` (``PUT /v1/events/{session_id}``), then the run marked completed.

``accuracy`` passes from 0.5 (the runs' passing range); ``exact_match`` is a boolean.

Run as a script, it takes the README's compare-view picture on a fresh temporary server:

    python -m tests.ui.seed_experiments --screenshot docs/screenshots/compare-view.png
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

XSS_RUN_NAME = 'candidate <img src=x onerror="window.__xss = 11">'
XSS_QUESTION = '<img src=x onerror="window.__xss = 12"> capital of Peru?'
DATASET_NAME = "capitals-qa"
ROWS = [
    {"question": "What is the capital of France?", "answer": "Paris", "difficulty": "easy"},
    {"question": "What is the capital of Australia?", "answer": "Canberra", "difficulty": "hard"},
    {"question": "What is the capital of Canada?", "answer": "Ottawa", "difficulty": "medium"},
    {"question": XSS_QUESTION, "answer": "Lima", "difficulty": "medium"},
]
# Per datapoint (in ROWS order): (answer given, accuracy, exact_match).
BASELINE = [("Paris", 0.9, True), ("Sydney", 0.4, False), ("Ottawa", 0.7, True), ("Lima, Peru", 0.6, False)]
CANDIDATE = [("Paris", 0.95, True), ("Canberra", 0.4, True), ("Toronto", 0.5, False), ("Lima.", 0.8, False)]
PASSING = {"accuracy": {"min": 0.5}}


@dataclass
class SeededRun:
    run_id: str
    name: str
    sessions: list[str] = field(default_factory=list)


@dataclass
class SeededExperiments:
    dataset_id: str
    datapoint_ids: list[str]
    baseline: SeededRun
    smoke: SeededRun
    candidate: SeededRun


def _ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    return response.json()  # type: ignore[no-any-return]


def seed_dataset(client: httpx.Client) -> tuple[str, list[str]]:
    created = _ok(
        client.post(
            "/v1/datasets", json={"name": DATASET_NAME, "description": "Capital cities, one hostile question"}
        )
    )
    dataset_id = created["result"]["insertedId"]
    added = _ok(
        client.post(
            f"/v1/datasets/{dataset_id}/datapoints",
            json={"data": ROWS, "mapping": {"inputs": ["question"], "ground_truth": ["answer"]}},
        )
    )
    return dataset_id, list(added["datapoint_ids"])


def seed_run(
    client: httpx.Client,
    name: str,
    dataset_id: str,
    datapoint_ids: list[str],
    outcomes: list[tuple[str, float, bool]],
    start_ms: float,
) -> SeededRun:
    """One run as evaluate() makes it: create, a session and chain event per datapoint, complete."""
    run = SeededRun(str(uuid.uuid4()), name, [str(uuid.uuid4()) for _ in outcomes])
    _ok(
        client.post(
            "/v1/runs",
            json={
                "run_id": run.run_id,
                "name": name,
                "status": "running",
                "dataset_id": dataset_id,
                "event_ids": run.sessions,
                "datapoint_ids": datapoint_ids,
                "passing_ranges": PASSING,
                "metadata": {"git": {"branch": "main"}},
            },
        )
    )
    events = []
    for i, (session_id, dp, row, (answer, accuracy, exact)) in enumerate(
        zip(run.sessions, datapoint_ids, ROWS, outcomes, strict=True)
    ):
        start = start_ms + i * 1000
        metadata = {"run_id": run.run_id, "datapoint_id": dp, "dataset_id": dataset_id}
        _ok(
            client.post(
                "/v1/sessions",
                json={
                    "session_id": session_id,
                    "session_name": name,
                    "source": "evaluation",
                    "start_time": start,
                    "inputs": {"question": row["question"]},
                    "metadata": metadata,
                },
            )
        )
        events.append(
            {
                "event_type": "chain",
                "event_name": "answer_question",
                "session_id": session_id,
                "parent_id": session_id,
                "source": "evaluation",
                "start_time": start + 5,
                "end_time": start + 405,
                "duration": 400,
                "inputs": {"question": row["question"]},
                "outputs": {"answer": answer},
                "metrics": {
                    "accuracy": accuracy,
                    "exact_match": exact,
                    "accuracy_explanation": f"judged {answer!r}",
                },
                "metadata": metadata,
            }
        )
    _ok(client.post("/v1/events/batch", json={"events": events}))
    for session_id, row, (answer, _, _) in zip(run.sessions, ROWS, outcomes, strict=True):
        _ok(
            client.put(
                f"/v1/events/{session_id}",
                json={"outputs": {"answer": answer}, "feedback": {"ground_truth": {"answer": row["answer"]}}},
            )
        )
    _ok(client.put(f"/v1/runs/{run.run_id}", json={"status": "completed"}))
    return run


def seed_experiments(client: httpx.Client, now_ms: float | None = None) -> SeededExperiments:
    now = now_ms if now_ms is not None else time.time() * 1000
    dataset_id, datapoint_ids = seed_dataset(client)
    baseline = seed_run(client, "baseline", dataset_id, datapoint_ids, BASELINE, now - 30 * 60_000)
    time.sleep(0.01)  # distinct creation times: the list sorts by them
    smoke = SeededRun(str(uuid.uuid4()), "adhoc-smoke")
    _ok(client.post("/v1/runs", json={"run_id": smoke.run_id, "name": smoke.name, "status": "running"}))
    time.sleep(0.01)
    candidate = seed_run(client, XSS_RUN_NAME, dataset_id, datapoint_ids, CANDIDATE, now - 10 * 60_000)
    return SeededExperiments(dataset_id, datapoint_ids, baseline, smoke, candidate)


def screenshot(path: Path) -> None:
    """Start a server on a temporary data dir, seed it, and save the compare view (1440x900)."""
    from playwright.sync_api import sync_playwright

    from tests.process.server import TracehiveServer

    with tempfile.TemporaryDirectory(prefix="tracehive-compare-shot-") as tmp:
        server = TracehiveServer(Path(tmp) / "data")
        server.start()
        try:
            key = server.bootstrap_key
            assert key, server.stdout
            with server.client(key) as client:
                seeded = seed_experiments(client)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True)
                context = browser.new_context(viewport={"width": 1440, "height": 900})
                page = context.new_page()
                page.goto(server.url + "/")
                page.evaluate("(key) => localStorage.setItem('tracehive.apiKey', key)", key)
                page.close()
                page = context.new_page()  # a new load, signed in with the stored key
                page.goto(
                    f"{server.url}/#/experiments/{seeded.candidate.run_id}/compare/{seeded.baseline.run_id}"
                )
                page.locator(".compare-table tbody tr").nth(len(ROWS) - 1).wait_for()
                page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
                path.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(path))
                browser.close()
        finally:
            server.stop()
    print(f"screenshot: {path} ({path.stat().st_size // 1024} KiB)")


def main() -> int:
    parser = argparse.ArgumentParser(description="Seed experiment data and screenshot the compare view.")
    parser.add_argument(
        "--screenshot",
        type=Path,
        required=True,
        help="where to save the compare view, e.g. docs/screenshots/compare-view.png",
    )
    screenshot(parser.parse_args().screenshot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
