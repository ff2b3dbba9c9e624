"""``GET /v1/events/chart`` (contract 4.9, 9.13) through the real app and the real SQLite store:
every aggregation checked against a Python computation on the same events (read back through the
export route), every bucket size including week and month boundaries, groupBy on a column and a
JSON path, filters, the date-range shapes and query-string styles, a JSON-path metric, the 400s,
and isolation between projects."""

from __future__ import annotations

import json
import math
import random
import statistics
import uuid
from collections import defaultdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from tests.helpers import Api, assert_error

# 2024-03-04T00:00:00Z, a Monday.
MONDAY = 1_709_510_400_000
HOUR = 3_600_000
DAY = 24 * HOUR


def iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def chart(api: Api, **params: Any) -> dict[str, Any]:
    reply = api.get("/v1/events/chart", params=params)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["totalEvents"] == len(data["events"])
    for row in data["events"]:
        assert datetime.fromisoformat(row["bucket_iso"].replace("Z", "+00:00")).timestamp() * 1000 == row["bucket"]
    return data


def seed(api: Api, *, n: int = 150, seed_value: int = 7, tag: str = "rand") -> None:
    """Events over three days from MONDAY in one session, with varied durations, costs (numbers,
    a string, missing), types and models."""
    rng = random.Random(seed_value)
    sid = str(uuid.uuid4())
    reply = api.post("/v1/sessions", json={"session_id": sid, "session_name": "chart", "start_time": MONDAY,
                                           "metadata": {"tag": tag}})
    assert reply.status_code == 200, reply.text
    events = []
    for i in range(n):
        metadata: dict[str, Any] = {"tag": tag}
        roll = rng.random()
        if roll < 0.7:
            metadata["cost"] = rng.choice([rng.randint(0, 20), round(rng.uniform(0, 5), 3)])
        elif roll < 0.8:
            metadata["cost"] = "1.5"  # a string: not a number for the chart
        events.append({
            "event_id": str(uuid.uuid4()),
            "event_name": f"e{i}",
            "event_type": rng.choice(["model", "tool", "chain"]),
            "start_time": MONDAY + rng.randint(0, 3 * DAY - 1) + rng.choice([0, 0.5]),
            "duration": rng.choice([rng.randint(1, 5000), round(rng.uniform(1, 100), 2)]),
            "inputs": {},
            "config": {"model": rng.choice(["gpt-a", "gpt-b"])} if rng.random() < 0.8 else {},
            "metadata": metadata,
        })
    reply = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
    assert reply.status_code == 200, reply.text


def all_events(api: Api, *filters: dict[str, Any]) -> list[dict[str, Any]]:
    reply = api.post("/v1/events/export", json={"filters": list(filters), "limit": 7500})
    assert reply.status_code == 200, reply.text
    return reply.json()["events"]


# The Python reference ---------------------------------------------------------------------------


def ref_bucket(ms: float, bucket: str) -> int:
    moment = datetime.fromtimestamp(math.floor(ms) / 1000, tz=timezone.utc)
    if bucket == "minute":
        start = moment.replace(second=0, microsecond=0)
    elif bucket == "hour":
        start = moment.replace(minute=0, second=0, microsecond=0)
    elif bucket == "day":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elif bucket == "week":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=moment.weekday())
    else:
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    return int(start.timestamp() * 1000)


def pick(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    h = (len(ordered) - 1) * p / 100
    lo = math.floor(h)
    if lo + 1 >= len(ordered):
        return ordered[lo]
    return ordered[lo] + (h - lo) * (ordered[lo + 1] - ordered[lo])


def aggregate(values: list[float], aggregation: str) -> Any:
    if aggregation == "count":
        return len(values)
    if not values:
        return None
    if aggregation in ("avg", "average", "mean"):
        return statistics.fmean(values)
    if aggregation == "sum":
        return sum(values)
    if aggregation == "min":
        return min(values)
    if aggregation == "max":
        return max(values)
    if aggregation == "median":
        return statistics.median(values)
    return percentile(values, int(aggregation[1:]))


def reference(events: list[dict[str, Any]], *, bucket: str = "hour", aggregation: str = "avg",
              metric: str = "duration", group_by: str | None = None) -> dict[tuple[int, Any], tuple[Any, int]]:
    rows: dict[tuple[int, Any], list[Any]] = defaultdict(list)
    for event in events:
        group = pick(event, group_by) if group_by else None
        rows[(ref_bucket(event["start_time"], bucket), json.dumps(group))].append(pick(event, metric))
    out = {}
    for key, raw in rows.items():
        numbers = [v for v in raw if isinstance(v, (int, float)) and not isinstance(v, bool)]
        out[key] = (aggregate(numbers, aggregation), len(raw))
    return out


def assert_matches(data: dict[str, Any], expected: dict[tuple[int, Any], tuple[Any, int]]) -> None:
    got = {(row["bucket"], json.dumps(row["group"])): (row["value"], row["count"]) for row in data["events"]}
    assert got.keys() == expected.keys()
    for key, (value, count) in expected.items():
        assert got[key][1] == count, key
        if value is None:
            assert got[key][0] is None, key
        else:
            assert got[key][0] == pytest.approx(value, rel=1e-9, abs=1e-9), key
    order = [(row["bucket"], row["group"] is not None, row["group"]) for row in data["events"]]
    assert [o[0] for o in order] == sorted(o[0] for o in order)


RAND = {"field": "metadata.tag", "operator": "is", "value": "rand", "type": "string"}
RAND_JSON = json.dumps([RAND])


# Aggregations and buckets -----------------------------------------------------------------------

AGGREGATIONS = ["avg", "average", "mean", "p50", "p75", "p90", "p95", "p99", "count", "sum", "min", "max", "median"]


@pytest.mark.parametrize("aggregation", AGGREGATIONS)
def test_each_aggregation_matches_python(api: Api, aggregation: str) -> None:
    seed(api)
    events = all_events(api, RAND)
    data = chart(api, aggregation=aggregation, filters=RAND_JSON)
    assert_matches(data, reference(events, aggregation=aggregation))
    # and per day, where the groups are big enough for the percentiles to interpolate
    data = chart(api, aggregation=aggregation, bucket="day", filters=RAND_JSON)
    assert_matches(data, reference(events, bucket="day", aggregation=aggregation))


def test_defaults_are_hourly_average_duration(api: Api) -> None:
    seed(api)
    data = chart(api)
    assert_matches(data, reference(all_events(api)))
    assert all(row["group"] is None for row in data["events"])


BUCKETS = [("minute", "minute"), ("minutes", "minute"), ("1m", "minute"), ("hour", "hour"), ("hours", "hour"),
           ("1h", "hour"), ("day", "day"), ("days", "day"), ("1d", "day"), ("week", "week"), ("weeks", "week"),
           ("1w", "week"), ("month", "month"), ("months", "month"), ("1M", "month")]


@pytest.mark.parametrize(("alias", "bucket"), BUCKETS)
def test_each_bucket_size(api: Api, alias: str, bucket: str) -> None:
    seed(api, n=60)
    events = all_events(api)
    data = chart(api, bucket=alias, aggregation="p90")
    assert_matches(data, reference(events, bucket=bucket, aggregation="p90"))


def boundary_events(api: Api) -> None:
    sid = str(uuid.uuid4())
    moments = {
        "feb-end": "2024-02-29T23:59:59.999Z",  # leap day, last ms of February; Thursday
        "mar-start": "2024-03-01T00:00:00.000Z",
        "sun-end": "2024-03-03T23:59:59.999Z",  # Sunday: still the week of Monday Feb 26
        "mon-start": "2024-03-04T00:00:00.000Z",  # Monday: a new week
        "dec-end": "2023-12-31T23:59:59.500Z",  # fractional ms, Sunday, year end
        "jan-start": "2024-01-01T00:00:00.000Z",  # Monday
    }
    events = [
        {"event_id": str(uuid.uuid4()), "event_name": name, "event_type": "tool", "inputs": {},
         "start_time": datetime.fromisoformat(when.replace("Z", "+00:00")).timestamp() * 1000 + (0.5 if name == "dec-end" else 0),
         "duration": 10 + i, "metadata": {"tag": "edge"}}
        for i, (name, when) in enumerate(moments.items())
    ]  # fmt: skip
    reply = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
    assert reply.status_code == 200, reply.text


EDGE = json.dumps([{"field": "metadata.tag", "operator": "is", "value": "edge", "type": "string"}])


def ms(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def test_month_boundaries(api: Api) -> None:
    boundary_events(api)
    rows = chart(api, bucket="month", aggregation="count", filters=EDGE)["events"]
    assert [(r["bucket_iso"], r["count"]) for r in rows] == [
        ("2023-12-01T00:00:00.000Z", 1), ("2024-01-01T00:00:00.000Z", 1),
        ("2024-02-01T00:00:00.000Z", 1), ("2024-03-01T00:00:00.000Z", 3),
    ]  # fmt: skip
    assert rows[0]["bucket"] == ms("2023-12-01T00:00:00Z")


def test_week_boundaries_start_on_monday(api: Api) -> None:
    boundary_events(api)
    rows = chart(api, bucket="week", aggregation="count", filters=EDGE)["events"]
    assert [(r["bucket_iso"], r["count"]) for r in rows] == [
        ("2023-12-25T00:00:00.000Z", 1),  # Sunday Dec 31 belongs to the week of Monday Dec 25
        ("2024-01-01T00:00:00.000Z", 1),
        ("2024-02-26T00:00:00.000Z", 3),  # Thu Feb 29, Fri Mar 1, Sun Mar 3
        ("2024-03-04T00:00:00.000Z", 1),
    ]  # fmt: skip
    assert all(datetime.fromtimestamp(r["bucket"] / 1000, tz=timezone.utc).weekday() == 0 for r in rows)


def test_day_hour_and_minute_boundaries(api: Api) -> None:
    boundary_events(api)
    days = chart(api, bucket="day", aggregation="max", filters=EDGE)["events"]
    assert [r["bucket_iso"][:10] for r in days] == ["2023-12-31", "2024-01-01", "2024-02-29", "2024-03-01",
                                                    "2024-03-03", "2024-03-04"]
    minutes = chart(api, bucket="1m", aggregation="max", filters=EDGE)["events"]
    assert minutes[0]["bucket_iso"] == "2023-12-31T23:59:00.000Z"
    assert minutes[-1]["bucket_iso"] == "2024-03-04T00:00:00.000Z"


# Groups, metric, filters, date ranges ----------------------------------------------------------


def test_group_by_a_column(api: Api) -> None:
    seed(api)
    events = all_events(api, RAND)
    data = chart(api, bucket="day", aggregation="p95", groupBy="event_type", filters=RAND_JSON)
    assert_matches(data, reference(events, bucket="day", aggregation="p95", group_by="event_type"))
    groups = {row["group"] for row in data["events"]}
    assert groups == {"model", "tool", "chain", "session"}  # the session event carries the tag too
    for bucket in {row["bucket"] for row in data["events"]}:
        in_bucket = [row["group"] for row in data["events"] if row["bucket"] == bucket]
        assert in_bucket == sorted(in_bucket)


def test_group_by_a_json_path(api: Api) -> None:
    seed(api)
    events = all_events(api, RAND)
    data = chart(api, bucket="day", aggregation="sum", groupBy="config.model", filters=RAND_JSON)
    assert_matches(data, reference(events, bucket="day", aggregation="sum", group_by="config.model"))
    assert {row["group"] for row in data["events"]} == {None, "gpt-a", "gpt-b"}
    first_day = [row["group"] for row in data["events"] if row["bucket"] == MONDAY]
    assert first_day == [None, "gpt-a", "gpt-b"]  # no value first


def test_group_by_typed_json_values(api: Api) -> None:
    sid = str(uuid.uuid4())
    values = [True, False, 1, "1", {"a": 1}, None]
    events = [{"event_id": str(uuid.uuid4()), "event_type": "tool", "inputs": {}, "start_time": MONDAY + i,
               "duration": 5, "metadata": {"tag": "typed", "flag": v}} for i, v in enumerate(values)]
    events.append({"event_id": str(uuid.uuid4()), "event_type": "tool", "inputs": {}, "start_time": MONDAY,
                   "duration": 5, "metadata": {"tag": "typed"}})
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    flt = json.dumps([{"field": "metadata.tag", "operator": "is", "value": "typed", "type": "string"}])
    rows = chart(api, bucket="day", aggregation="count", groupBy="metadata.flag", filters=flt)["events"]
    got = {json.dumps(r["group"]): r["count"] for r in rows}
    assert got == {"null": 2, "true": 1, "false": 1, "1": 1, '"1"': 1, '{"a": 1}': 1}


def test_metric_on_a_json_path(api: Api) -> None:
    seed(api)
    events = all_events(api, RAND)
    for aggregation in ("avg", "sum", "count", "p75", "max"):
        data = chart(api, metric="metadata.cost", aggregation=aggregation, bucket="day", filters=RAND_JSON)
        assert_matches(data, reference(events, bucket="day", aggregation=aggregation, metric="metadata.cost"))
    # The string "1.5" and missing costs are counted as events but not as values.
    rows = chart(api, metric="metadata.cost", aggregation="count", bucket="month", filters=RAND_JSON)["events"]
    numeric = [e for e in events if isinstance(e["metadata"].get("cost"), (int, float))]
    assert rows[0]["value"] == len(numeric) and rows[0]["count"] == len(events)


def test_metric_without_any_number_is_null(api: Api) -> None:
    seed(api, n=10)
    rows = chart(api, metric="metadata.nothing", aggregation="p50", bucket="month")["events"]
    assert rows and all(r["value"] is None for r in rows)
    rows = chart(api, metric="metadata.nothing", aggregation="count", bucket="month")["events"]
    assert rows and all(r["value"] == 0 for r in rows)


def test_filters_in_every_query_style(api: Api) -> None:
    seed(api)
    model = {"field": "event_type", "operator": "is", "value": "model", "type": "string"}
    cheap = {"field": "metadata.cost", "operator": "less than", "value": "3", "type": "number"}
    events = all_events(api, RAND, model, cheap)
    expected = reference(events, bucket="day", aggregation="avg")
    assert expected
    # a JSON array
    assert_matches(chart(api, bucket="day", filters=json.dumps([RAND, model, cheap])), expected)
    # repeated JSON objects
    reply = api.get("/v1/events/chart", params=[("bucket", "day"), ("filters", json.dumps(RAND)),
                                                ("filters", json.dumps(model)), ("filters", json.dumps(cheap))])
    assert reply.status_code == 200, reply.text
    assert_matches(reply.json(), expected)
    # bracket form
    params = [("bucket", "day")]
    for i, flt in enumerate([RAND, model, cheap]):
        params += [(f"filters[{i}][{key}]", str(value)) for key, value in flt.items()]
    reply = api.get("/v1/events/chart", params=params)
    assert reply.status_code == 200, reply.text
    assert_matches(reply.json(), expected)


def test_each_date_range_shape(api: Api) -> None:
    seed(api)
    events = all_events(api, RAND)
    low, high = MONDAY + DAY, MONDAY + 2 * DAY - 1
    inside = [e for e in events if low <= e["start_time"] <= high]
    expected = reference(inside, aggregation="p50")
    assert expected
    for params in (
        {"dateRange": json.dumps({"$gte": iso(low), "$lte": iso(high)})},
        {"dateRange": json.dumps({"$gte": low, "$lte": high})},
        {"dateRange[$gte]": iso(low), "dateRange[$lte]": iso(high)},
        {"dateRange[$gte]": str(low), "dateRange[$lte]": str(high)},
        {"dateRange": json.dumps({"start_time": iso(low), "end_time": iso(high)})},
    ):
        assert_matches(chart(api, aggregation="p50", filters=RAND_JSON, **params), expected)
    # a single datetime = since (until now: daily buckets, as hourly ones since 2024 are too many)
    since = [e for e in events if e["start_time"] >= low]
    assert_matches(chart(api, aggregation="p50", bucket="day", filters=RAND_JSON, dateRange=iso(low)),
                   reference(since, bucket="day", aggregation="p50"))
    assert_error(api.get("/v1/events/chart", params={"dateRange": iso(low)}), 400, "hour buckets", "bigger bucket")
    # relative: the seeded events are in 2024, so 7d from now holds none; recent events are found
    assert chart(api, filters=RAND_JSON, dateRange=json.dumps({"relative": "7d"}))["events"] == []
    assert chart(api, filters=RAND_JSON, **{"dateRange[relative]": "7d"})["events"] == []
    sid = str(uuid.uuid4())
    now = int(datetime.now(tz=timezone.utc).timestamp() * 1000)
    recent = {"event_id": str(uuid.uuid4()), "event_type": "tool", "inputs": {}, "start_time": now - HOUR,
              "duration": 42, "metadata": {"tag": "rand"}}
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [recent]}).status_code == 200
    rows = chart(api, filters=RAND_JSON, aggregation="max", **{"dateRange[relative]": "7d"})["events"]
    assert [(r["value"], r["count"]) for r in rows] == [(42, 1)]


def test_evaluation_id_and_only_experiments(api: Api) -> None:
    sid = str(uuid.uuid4())
    events = [{"event_id": str(uuid.uuid4()), "event_type": "tool", "inputs": {}, "start_time": MONDAY + i,
               "duration": d, "metadata": meta} for i, (d, meta) in
              enumerate([(10, {"run_id": "r1"}), (20, {"run_id": "r1"}), (30, {"run_id": "r2"}), (40, {})])]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    rows = chart(api, aggregation="sum", evaluation_id="r1")["events"]
    assert [(r["value"], r["count"]) for r in rows] == [(30, 2)]
    rows = chart(api, aggregation="sum", only_experiments="true")["events"]
    assert [(r["value"], r["count"]) for r in rows] == [(60, 3)]


def test_empty_result(api: Api) -> None:
    assert chart(api) == {"events": [], "totalEvents": 0}
    seed(api, n=5)
    nothing = json.dumps([{"field": "event_name", "operator": "is", "value": "no-such", "type": "string"}])
    assert chart(api, filters=nothing, aggregation="p99", groupBy="event_type") == {"events": [], "totalEvents": 0}


def test_route_is_not_captured_by_get_event(api: Api) -> None:
    reply = api.get("/v1/events/chart")
    assert reply.status_code == 200 and "events" in reply.json()


# Errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "fragments"),
    [
        ({"bucket": "fortnight"}, ("bucket", "fortnight", "minute")),
        ({"bucket": "1H"}, ("bucket",)),
        ({"aggregation": "p42"}, ("aggregation", "p42", "median")),
        ({"aggregation": "mode"}, ("aggregation",)),
        ({"metric": "metadata.cost;DROP TABLE events"}, ("metric", "path segment")),
        ({"metric": "event_name"}, ("metric", "unknown field")),
        ({"metric": "metadata"}, ("metric", "metadata.cost")),
        ({"metric": "metadata..cost"}, ("metric", "empty path segment")),
        ({"groupBy": "nope"}, ("groupBy", "unknown field")),
        ({"groupBy": "event_type.x"}, ("groupBy", "not a JSON field")),
        ({"filters": json.dumps([{"field": "x", "operator": "is", "value": 1}])}, ("filters[0].field",)),
        ({"filters": "[not json"}, ("filters", "JSON")),
        ({"dateRange": json.dumps({"relative": "7y"})}, ("dateRange.relative",)),
        ({"dateRange[$gte]": "yesterday"}, ("dateRange.$gte",)),
        ({"only_experiments": "maybe"}, ("only_experiments",)),
        ({"bucket": "minute", "dateRange": json.dumps({"$gte": "2024-01-01T00:00:00Z", "$lte": "2024-02-01T00:00:00Z"})},
         ("10,000", "bigger bucket")),
        ({"bucket": "hour", "dateRange": json.dumps({"relative": "500d"})}, ("hour buckets", "bigger bucket")),
    ],
)
def test_bad_parameters_are_400(api: Api, params: dict[str, Any], fragments: tuple[str, ...]) -> None:
    assert_error(api.get("/v1/events/chart", params=params), 400, *fragments)


def test_too_many_buckets_found_without_a_range(api: Api) -> None:
    """No start bound: the store counts the buckets it finds and refuses past the limit."""
    sid = str(uuid.uuid4())
    events = [{"event_id": str(uuid.uuid4()), "event_type": "tool", "inputs": {}, "start_time": MONDAY + i * 60_000,
               "duration": 1} for i in range(10_001)]
    for part in (events[:5000], events[5000:]):
        assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": part}).status_code == 200
    assert_error(api.get("/v1/events/chart", params={"bucket": "minute"}), 400, "more than 10,000", "bigger bucket")
    assert chart(api, bucket="day", aggregation="count")["events"]


# Auth and isolation ----------------------------------------------------------------------------


def test_ingestion_keys_cannot_read(ingest: Api) -> None:
    assert_error(ingest.get("/v1/events/chart"), 403)


def test_missing_key_is_401(api: Api) -> None:
    assert_error(Api(api.client, None).get("/v1/events/chart"), 401)


def test_projects_are_isolated(api: Api, api_b: Api) -> None:
    seed(api, n=30)
    assert chart(api_b) == {"events": [], "totalEvents": 0}
    assert chart(api_b, groupBy="event_type", aggregation="count", bucket="month")["totalEvents"] == 0
    seed(api_b, n=3, tag="b")
    rows = chart(api_b, aggregation="count", bucket="month")["events"]
    assert sum(r["count"] for r in rows) == 4  # its 3 events and its session
    rows = chart(api, aggregation="count", bucket="month")["events"]
    assert sum(r["count"] for r in rows) == 31
