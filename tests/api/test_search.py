"""``POST /v1/events/search`` (contract 4.6): the strict body, every operator for every type with
and without ``type`` (inferred), the inclusive ``{start_time, end_time}`` range, limit/page edges,
always newest first, the 400s naming the filter, auth and isolation."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.test_export import ALL, OPERATOR_CASES, WHEN_ISO, WHEN_MS, Seeded, T, f, iso, seed, without
from tests.helpers import Api, assert_error

PATH = "/v1/events/search"


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed(api)


def search(api: Api, **body: Any) -> dict[str, Any]:
    reply = api.post(PATH, json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["count"] == data["totalEvents"]
    return data


def names(api: Api, *filters: dict[str, Any], **body: Any) -> list[str]:
    return [e["event_name"] for e in search(api, filters=list(filters), **body)["events"]]


# Every operator for every type, with type given (the export table, unchanged) -----------------


@pytest.mark.parametrize(("label", "flt", "expected"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operator_with_type(api: Api, seeded: Seeded, label: str, flt: dict[str, Any], expected: list[str]) -> None:
    assert names(api, flt, f("session_id", "is", seeded.sid)) == expected


# ... and with type omitted: inferred from the operator, the column and the value's JSON type ----

INFERRED_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # string: string values, string columns, contains
    ("string is", f("event_name", "is", "generate"), ["generate"]),
    ("string is not", f("event_name", "is not", "generate"), without("generate")),
    ("string contains", f("metadata.label", "contains", "World"), ["generate"]),
    ("string not contains", f("metadata.label", "not contains", "World"), without("generate")),
    ("string exists", f("error", "exists"), ["retrieve"]),
    ("string not exists", f("error", "not exists"), without("retrieve")),
    ("a number on a string column is its text", f("event_name", "is", 5), []),
    ("contains with a number value compares text", f("duration", "contains", 0.5), ["retrieve"]),
    ("a numeric string with is matches numbers too", f("metadata.cost", "is", "2"), ["retrieve"]),
    # number: JSON numbers
    ("number is", f("metadata.cost", "is", 2), ["retrieve"]),
    ("number is (float)", f("metadata.cost", "is", 0.5), ["generate"]),
    ("number is not", f("metadata.cost", "is not", 2), without("retrieve")),
    ("number greater than", f("metadata.cost", "greater than", 0.4), ["retrieve", "generate"]),
    ("number less than", f("metadata.cost", "less than", 1), ["generate"]),
    ("number greater than skips the string '3'", f("metadata.cost", "greater than", 2.5), []),
    ("number on a column", f("duration", "greater than", 500), ["retrieve", "export-session"]),
    ("number exists", f("metadata.tokens", "exists", None), ["retrieve", "generate"]),
    ("number not exists", f("metadata.tokens", "not exists", None), ["answer", "export-session"]),
    ("numeric string greater than is promoted", f("metadata.cost", "greater than", "1"), ["retrieve"]),
    # boolean: JSON booleans
    ("boolean is true", f("metadata.ok", "is", True), ["generate"]),
    ("boolean is false", f("metadata.ok", "is", False), ["retrieve"]),
    ("boolean is not true", f("metadata.ok", "is not", True), without("generate")),
    ("boolean is on a number is no match", f("metadata.tokens", "is", True), []),
    ("boolean exists", f("metadata.ok", "exists"), ["retrieve", "generate"]),
    ("boolean not exists", f("metadata.ok", "not exists"), ["answer", "export-session"]),
    # datetime: after/before, or an ISO value with an ordering operator
    ("datetime after (ISO)", f("metadata.when", "after", WHEN_ISO), ["retrieve"]),
    ("datetime before (ms)", f("metadata.when", "before", WHEN_MS + 1), ["generate"]),
    ("datetime after on start_time", f("start_time", "after", iso(T + 2500)), ["answer"]),
    ("datetime before on start_time", f("start_time", "before", iso(T + 1)), ["export-session"]),
    ("ISO value with greater than is a datetime", f("start_time", "greater than", iso(T + 1500)),
     ["answer", "retrieve"]),
    ("ISO value with less than on JSON", f("metadata.when", "less than", "2024-05-01T00:00:00.001Z"), ["generate"]),
]


@pytest.mark.parametrize(("label", "flt", "expected"), INFERRED_CASES, ids=[c[0] for c in INFERRED_CASES])
def test_operator_with_type_inferred(
    api: Api, seeded: Seeded, label: str, flt: dict[str, Any], expected: list[str]
) -> None:
    assert "type" not in flt
    assert names(api, flt, f("session_id", "is", seeded.sid)) == expected


def test_every_operator_is_covered_without_type() -> None:
    operators = {c[1]["operator"] for c in INFERRED_CASES}
    assert operators == {"exists", "not exists", "is", "is not", "contains", "not contains", "greater than",
                         "less than", "after", "before"}


def test_filters_are_anded(api: Api, seeded: Seeded) -> None:
    assert names(api, f("session_id", "is", seeded.sid), f("metadata.cost", "greater than", 0.1),
                 f("event_type", "is", "tool")) == ["retrieve"]


# Date range: {start_time, end_time} both required, or export's forms; inclusive -------------------


def test_date_range_is_inclusive(api: Api, seeded: Seeded) -> None:
    by_session = f("session_id", "is", seeded.sid)
    window = {"start_time": iso(T + 1000), "end_time": iso(T + 2000)}
    assert names(api, by_session, dateRange=window) == ["retrieve", "generate"]
    edge = {"start_time": iso(T + 3000), "end_time": iso(T + 3000)}
    assert names(api, by_session, dateRange=edge) == ["answer"]
    just_inside = {"start_time": "2023-11-14T22:13:20.999Z", "end_time": "2023-11-14T22:13:22.001Z"}
    assert names(api, by_session, dateRange=just_inside) == ["retrieve", "generate"]
    just_outside = {"start_time": "2023-11-14T22:13:21.001Z", "end_time": "2023-11-14T22:13:21.999Z"}
    assert names(api, by_session, dateRange=just_outside) == []
    offset = {"start_time": "2023-11-14T23:13:20+01:00", "end_time": "2023-11-14T23:13:20+01:00"}
    assert names(api, by_session, dateRange=offset) == ["export-session"]


def test_every_date_range_form_of_export_works_here_too(api: Api, seeded: Seeded) -> None:
    """Issue 16, point 7: search takes export's {$gte, $lte} (ms or ISO, either bound optional)
    and {relative} as well as the SDK's {start_time, end_time}."""
    by_session = f("session_id", "is", seeded.sid)
    expected = ["retrieve", "generate"]
    assert names(api, by_session, dateRange={"start_time": iso(T + 1000), "end_time": iso(T + 2000)}) == expected
    assert names(api, by_session, dateRange={"$gte": T + 1000, "$lte": T + 2000}) == expected
    assert names(api, by_session, dateRange={"$gte": iso(T + 1000), "$lte": iso(T + 2000)}) == expected
    assert names(api, by_session, dateRange={"$gte": T + 3000}) == ["answer"]
    assert names(api, by_session, dateRange={"relative": "1h"}) == []  # seeded in 2023
    export = api.post("/v1/events/export", json={"filters": [by_session], "dateRange": {"$lte": T + 1000}}).json()
    assert names(api, by_session, dateRange={"$lte": T + 1000}) == [e["event_name"] for e in export["events"]]


@pytest.mark.parametrize(
    ("date_range", "fragment"),
    [
        ({"start_time": iso(T)}, "dateRange.end_time: field required"),
        ({"end_time": iso(T)}, "dateRange.start_time: field required"),
        ({"$gte": "yesterday", "$lte": iso(T)}, "dateRange.$gte: 'yesterday' is not a datetime"),
        ({"$gte": iso(T), "start_time": iso(T)}, "dateRange"),
        ({"start_time": iso(T), "end_time": iso(T), "x": 1}, "dateRange.x: unknown field"),
        ({"relative": "7d", "$gte": iso(T)}, "dateRange: relative cannot be combined"),
        ({"relative": "a week"}, "dateRange.relative"),
        ({"start_time": T, "end_time": iso(T)}, "dateRange.start_time: must be an ISO 8601"),
        ({"start_time": str(T), "end_time": iso(T)}, "dateRange.start_time: must be an ISO 8601"),
        ({"start_time": "yesterday", "end_time": iso(T)}, "dateRange.start_time: 'yesterday' is not"),
        ({"start_time": iso(T + 1), "end_time": iso(T)}, "dateRange: start_time is after end_time"),
        (iso(T), "dateRange: must be an object"),
    ],
)
def test_bad_date_ranges_are_400(api: Api, date_range: Any, fragment: str) -> None:
    assert_error(api.post(PATH, json={"dateRange": date_range}), 400, fragment)


# Limit, page, order ----------------------------------------------------------------------------


def test_pages_and_newest_first(api: Api, seeded: Seeded) -> None:
    by_session = [f("session_id", "is", seeded.sid)]
    pages = [search(api, filters=by_session, limit=3, page=p) for p in (1, 2, 3)]
    assert [[e["event_name"] for e in p["events"]] for p in pages] == [ALL[:3], ALL[3:], []]  # last, past the end
    assert {p["count"] for p in pages} == {4}
    assert [e["start_time"] for e in pages[0]["events"]] == [T + 3000, T + 2000, T + 1000]
    assert search(api, filters=by_session, limit=4, page=1)["events"][-1]["event_name"] == "export-session"
    assert search(api, filters=by_session, limit=1, page=4)["events"][0]["event_name"] == "export-session"
    assert search(api, filters=by_session, limit=1000, page=1_000_000)["events"] == []
    # ignore_order is accepted and ignored: still newest first.
    ordered = search(api, filters=by_session, ignore_order=True)
    assert [e["event_name"] for e in ordered["events"]] == ALL
    assert search(api, filters=by_session, limit=2.0)["events"][1]["event_name"] == "retrieve"


def test_limit_edges(api: Api) -> None:
    sid = str(uuid.uuid4())
    events = [{"event_type": "tool", "inputs": {}, "event_name": f"e{i}", "start_time": T + i} for i in range(1_001)]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    data = search(api, filters=[f("event_type", "is", "tool")])
    assert data["count"] == 1_001 and len(data["events"]) == 1_000  # the default limit
    assert data["events"][0]["event_name"] == "e1000"
    assert len(search(api, limit=1000)["events"]) == 1000
    last = search(api, filters=[f("event_type", "is", "tool")], limit=1000, page=2)
    assert [e["event_name"] for e in last["events"]] == ["e0"]
    assert len(search(api, limit=1)["events"]) == 1
    assert_error(api.post(PATH, json={"limit": 1001}), 400, "limit: must be at most 1000")


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"limit": 1001}, "limit: must be at most 1000"),
        ({"limit": 0}, "limit: must be at least 1"),
        ({"limit": "10"}, "limit: must be an integer"),
        ({"limit": 1.5}, "limit: must be an integer"),
        ({"limit": True}, "limit: must be an integer"),
        ({"page": 0}, "page: must be at least 1"),
        ({"page": -1}, "page: must be at least 1"),
        ({"page": 10**12}, "page: must be at most"),
        ({"ignore_order": "true"}, "ignore_order: must be a boolean"),
        ({"evaluation_id": 5}, "evaluation_id: must be a string"),
        ({"projections": ["x"]}, "projections: unknown field"),
        ({"project": "p"}, "project: unknown field"),
        ({"filters": [], "sort": "asc"}, "sort: unknown field"),
        ([], "request body must be a JSON object"),
    ],
)
def test_bad_bodies_are_400(api: Api, body: Any, fragment: str) -> None:
    assert_error(api.post(PATH, json=body), 400, fragment)


BAD_FILTERS: list[tuple[Any, str]] = [
    ([f("event_name", "is", "x"), {**f("event_name", "is", "x"), "extra": 1}], "filters[1].extra: unknown field"),
    ([f("event_name", "is", "x"), f("event_name", "bigger", 1)], "filters[1].operator: 'bigger' is not an operator"),
    ([f("nope", "is", "x")], "filters[0].field: unknown field 'nope'"),
    ([f("metadata.cost", "contains", "1", "number")], "filters[0].operator: 'contains' does not apply"),
    ([f("metadata.ok", "greater than", True)], "filters[0].operator: 'greater than' does not apply to type 'boolean'"),
    ([f("metadata.ok", "after", True)], "filters[0].value: True is not a datetime"),
    ([f("start_time", "is", True)], "filters[0].type: start_time is a number field"),
    ([f("metadata.cost", "greater than", "cheap")], "filters[0].value: 'greater than' compares numbers"),
    ([f("event_name", "is", None)], "filters[0].value: required for operator 'is'"),
    ([f("event_name", "is", [1])], "filters[0].value: must be a string, number or boolean"),
    ([f("metadata.cost", "is", "x", "float")], "filters[0].type: 'float' is not a type"),
    ([{"operator": "is", "value": "x"}], "filters[0].field: field required"),
    (["event_name is x"], "filters[0]: must be a JSON object"),
    ({"field": "event_name"}, "filters: must be an array"),
]


@pytest.mark.parametrize(("filters", "fragment"), BAD_FILTERS, ids=[c[1][:50] for c in BAD_FILTERS])
def test_bad_filters_are_400_and_name_the_filter(api: Api, filters: Any, fragment: str) -> None:
    body = assert_error(api.post(PATH, json={"filters": filters}), 400, fragment)
    assert body["errorCode"] == "VALIDATION_ERROR"


def test_malformed_json_is_400(api: Api) -> None:
    assert_error(api.post(PATH, content=b'{"filters": [', headers={"Content-Type": "application/json"}), 400,
                 "not valid JSON")
    assert_error(api.post(PATH, content=b""), 400, "empty")


def test_evaluation_id_selects_a_run(api: Api) -> None:
    sid = str(uuid.uuid4())
    events = [{"event_type": "tool", "inputs": {}, "event_name": f"run-{r}", "metadata": {"run_id": r}}
              for r in ("r1", "r2")]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    assert [e["event_name"] for e in search(api, evaluation_id="r2")["events"]] == ["run-r2"]


def test_sql_looking_input_is_400_or_literal(api: Api, seeded: Seeded) -> None:
    assert_error(api.post(PATH, json={"filters": [f("event_name; DROP TABLE events", "is", "x")]}), 400,
                 "filters[0].field")
    assert names(api, f("event_name", "is", "x' OR '1'='1")) == []
    assert search(api)["count"] == 4


# Auth, isolation, shape ------------------------------------------------------------------------


def test_projects_are_isolated(api: Api, api_b: Api) -> None:
    a = seed(api, tag="a")
    seed(api_b, tag="b")
    assert {e["metadata"]["tag"] for e in search(api)["events"]} == {"a"}
    assert {e["metadata"]["tag"] for e in search(api_b)["events"]} == {"b"}
    assert search(api_b, filters=[f("session_id", "is", a.sid)])["count"] == 0
    assert search(api_b, filters=[f("event_name", "is not", "zzz")])["count"] == 4


def test_read_needs_a_project_key(client: TestClient, ingest: Api, seeded: Seeded) -> None:
    assert_error(ingest.post(PATH, json={}), 403, "ingestion key")
    assert_error(client.post(PATH, json={}), 401, "Authorization")
    assert_error(client.post(PATH, json={}, headers={"Authorization": "Bearer nope"}), 401, "API key")


def test_search_returns_what_export_returns(api: Api, seeded: Seeded) -> None:
    body = {"filters": [f("session_id", "is", seeded.sid)], "limit": 3, "page": 1}
    exported = api.post("/v1/events/export", json=body).json()
    assert search(api, **body) == exported


def test_other_event_routes_are_not_shadowed(api: Api, seeded: Seeded) -> None:
    assert api.get(f"/v1/events/{seeded.ids['answer']}").status_code == 200
    assert_error(api.get("/v1/events/search"), 400, "event_id")  # GET still means "an event by id"


def test_openapi_documents_search(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    operation = doc["paths"][PATH]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/SearchEventsRequest"
    assert doc["components"]["schemas"]["SearchEventsRequest"]["additionalProperties"] is False
    assert operation["security"] == [{"BearerAuth": []}]
