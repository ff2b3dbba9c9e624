"""``POST /v1/events/export`` and ``POST /events/export`` with ``Accept: application/x-ndjson``:
JSONL, one event per line; every match streamed without ``limit``/``page``, that page with them;
filters, date ranges and projections as for the JSON response."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from tests.api.test_export import ALL, PATHS, T, Seeded, f, seed
from tracehive.model.event import for_readers
from tests.helpers import Api, assert_error

NDJSON = {"Accept": "application/x-ndjson"}


def ndjson(api: Api, path: str = "/v1/events/export", **body: Any) -> tuple[list[dict[str, Any]], Any]:
    reply = api.post(path, json=body, headers=NDJSON)
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("application/x-ndjson")
    assert reply.content == b"" or reply.content.endswith(b"\n")
    return [json.loads(line) for line in reply.content.splitlines()], reply


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed(api)


@pytest.mark.parametrize("path", PATHS)
def test_streams_every_match_as_lines(api: Api, seeded: Seeded, path: str) -> None:
    rows, reply = ndjson(api, path)
    assert [r["event_name"] for r in rows] == ALL
    assert "x-total-count" not in reply.headers
    as_json = api.post(path, json={}).json()["events"]
    # The same events as the JSON response; the lines keep the stored values as sent (outputs
    # null, a fractional end_time), where the JSON answer is in the SDKs' shape.
    assert [for_readers(dict(r)) for r in rows] == as_json
    assert any(r["outputs"] is None for r in rows)


def test_streams_more_than_a_page_and_a_chunk(api: Api) -> None:
    sid = str(uuid.uuid4())
    for start in range(0, 2_500, 500):
        events = [{"event_type": "tool", "event_name": f"e{i}", "session_id": sid, "start_time": T + i,
                   "inputs": {"i": i}} for i in range(start, start + 500)]  # fmt: skip
        assert api.post("/v1/events/batch", json={"events": events}).status_code == 200
    rows, _ = ndjson(api)
    assert len(rows) == 2_501  # events + the implicit session, beyond the default page of 1000
    assert [r["event_name"] for r in rows[:2]] == ["e2499", "e2498"]
    assert len({r["event_id"] for r in rows}) == len(rows)
    assert [r["start_time"] for r in rows] == sorted((r["start_time"] for r in rows), reverse=True)


def test_filters_date_range_projections_and_evaluation(api: Api, seeded: Seeded) -> None:
    rows, _ = ndjson(api, filters=[f("metadata.cost", "greater than", "0.1", "number")])
    assert [r["event_name"] for r in rows] == ["retrieve", "generate"]
    rows, _ = ndjson(api, dateRange={"$gte": T + 1000, "$lte": T + 2000})
    assert [r["event_name"] for r in rows] == ["retrieve", "generate"]
    rows, _ = ndjson(api, filters=[f("event_name", "is", "generate")], projections=["metadata.cost", "event_name"])
    assert rows == [{"event_id": seeded.ids["generate"], "metadata": {"cost": 0.5}, "event_name": "generate"}]
    rows, _ = ndjson(api, evaluation_id="no-such-run")
    assert rows == []


def test_limit_or_page_gives_that_page_with_its_total(api: Api, seeded: Seeded) -> None:
    rows, reply = ndjson(api, limit=3)
    assert [r["event_name"] for r in rows] == ALL[:3] and reply.headers["x-total-count"] == "4"
    rows, reply = ndjson(api, limit=3, page=2)
    assert [r["event_name"] for r in rows] == ALL[3:] and reply.headers["x-total-count"] == "4"
    rows, reply = ndjson(api, page=2)  # default limit 1000: past the end
    assert rows == [] and reply.headers["x-total-count"] == "4"


def test_errors_are_json_and_projects_are_isolated(api: Api, api_b: Api, seeded: Seeded) -> None:
    reply = api.post("/v1/events/export", json={"filters": [f("metadata.cost", "bigger", 1)]}, headers=NDJSON)
    assert_error(reply, 400, "filters[0].operator")
    reply = api.post("/v1/events/export", json={}, headers={**NDJSON, "Authorization": "Bearer nope"})
    assert reply.status_code == 401
    assert ndjson(api_b)[0] == []
    assert ndjson(api_b, filters=[f("session_id", "is", seeded.sid)])[0] == []


def test_without_the_accept_header_the_response_is_json(api: Api, seeded: Seeded) -> None:
    reply = api.post("/v1/events/export", json={}, headers={"Accept": "application/json"})
    assert reply.headers["content-type"].startswith("application/json")
    assert reply.json()["count"] == 4
