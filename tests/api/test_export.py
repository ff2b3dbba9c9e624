"""``POST /v1/events/export`` and ``POST /events/export`` (contract 4.7, section 6) through the
real app and the real SQLite store: every operator for every type, value coercion, dot paths,
date ranges, projections, paging, limits, errors naming the filter, injection attempts, isolation,
and the export requests the real ``honeyhive==1.7.0`` SDK sent (fixture replay)."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error, shared_fixture

FIXTURE = shared_fixture()
FIXTURE_SESSION = "59f47753-f370-4c79-a782-fc20dc3b642e"
PATHS = ("/v1/events/export", "/events/export")

T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
WHEN_ISO = "2024-05-01T00:00:00Z"
WHEN_MS = 1_714_521_600_000


def iso(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


def export(api: Api, path: str = "/v1/events/export", **body: Any) -> dict[str, Any]:
    reply = api.post(path, json=body)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["count"] == data["totalEvents"]
    return data


def names(api: Api, *filters: dict[str, Any], **body: Any) -> list[str]:
    data = export(api, filters=list(filters), **body)
    return [e["event_name"] for e in data["events"]]


def f(field: str, operator: str, value: Any = None, type: str | None = None) -> dict[str, Any]:
    out = {"field": field, "operator": operator, "value": value}
    if type is not None:
        out["type"] = type
    return out


@dataclass
class Seeded:
    sid: str
    ids: dict[str, str]  # event_name -> event_id


def seed(api: Api, *, tag: str = "a") -> Seeded:
    """One session (start T) with three events; newest first they are answer, retrieve, generate,
    export-session."""
    sid = str(uuid.uuid4())
    session = api.post("/v1/sessions", json={"session_id": sid, "session_name": "export-session", "start_time": T,
                                             "metadata": {"tag": tag}})
    assert session.status_code == 200, session.text
    ids = {"generate": str(uuid.uuid4()), "retrieve": str(uuid.uuid4()), "answer": str(uuid.uuid4())}
    events = [
        {"event_id": ids["generate"], "event_name": "generate", "event_type": "model", "start_time": T + 1000,
         "duration": 250, "config": {"model": "gpt-x"}, "outputs": {"content": "4"}, "feedback": {"rating": 5},
         "inputs": {"chat_history": [{"role": "system", "content": "be brief"},
                                     {"role": "user", "content": "what is 2+2?"}]},
         "metadata": {"cost": 0.5, "tokens": 12, "ok": True, "when": WHEN_ISO, "tags": ["alpha", "beta"],
                      "user": 42, "label": "Hello World", "tag": tag}},
        {"event_id": ids["retrieve"], "event_name": "retrieve", "event_type": "tool", "start_time": T + 2000,
         "duration": 1000.5, "error": "timeout", "inputs": {"q": "docs"},
         "metadata": {"cost": 2, "tokens": 0, "ok": False, "when": WHEN_MS + 1, "tags": ["gamma"],
                      "label": "hello", "tag": tag}},
        {"event_id": ids["answer"], "event_name": "answer", "event_type": "chain", "start_time": T + 3000,
         "duration": 10, "inputs": {"chat_history": [{"role": "user", "content": "hi"}]},
         "metadata": {"cost": "3", "note": "x", "tag": tag}, "user_properties": {"user_id": "u-1"}},
    ]
    reply = api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events})
    assert reply.status_code == 200, reply.text
    return Seeded(sid, {"export-session": sid, **ids})


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed(api)


ALL = ["answer", "retrieve", "generate", "export-session"]


def without(*excluded: str) -> list[str]:
    return [n for n in ALL if n not in excluded]


# Every operator for every type -----------------------------------------------------------------

OPERATOR_CASES: list[tuple[str, dict[str, Any], list[str]]] = [
    # string (also the default type, and the legacy "id")
    ("string is", f("event_name", "is", "generate", "string"), ["generate"]),
    ("string is (type omitted)", f("event_name", "is", "retrieve"), ["retrieve"]),
    ("id is", f("event_type", "is", "chain", "id"), ["answer"]),
    ("string is not", f("event_name", "is not", "generate", "string"), without("generate")),
    ("string contains", f("metadata.label", "contains", "World", "string"), ["generate"]),
    ("string contains is case-sensitive", f("metadata.label", "contains", "ello"), ["retrieve", "generate"]),
    ("string not contains (missing field matches)", f("metadata.label", "not contains", "World", "string"),
     without("generate")),
    ("string exists", f("error", "exists", None, "string"), ["retrieve"]),
    ("string not exists", f("error", "not exists", "", "string"), without("retrieve")),
    ("string is on a JSON number (text form)", f("metadata.user", "is", "42"), ["generate"]),
    ("string is on a JSON number (numeric value)", f("metadata.cost", "is", "0.50"), ["generate"]),
    ("string is not on a JSON number (numeric value)", f("metadata.cost", "is not", "2.0"), without("retrieve")),
    ("string is on a JSON boolean (text form)", f("metadata.ok", "is", "false"), ["retrieve"]),
    ("string contains: array element", f("metadata.tags", "contains", "alp"), ["generate"]),
    ("string contains: whole JSON column", f("inputs", "contains", "2+2"), ["generate"]),
    ("string contains on a number column (text form)", f("duration", "contains", ".5"), ["retrieve"]),
    ("string is not on a missing path", f("user_properties.user_id", "is not", "u-1"), without("answer")),
    # number (values sent as strings are coerced)
    ("number is", f("metadata.cost", "is", "2", "number"), ["retrieve"]),
    ("number is (float)", f("metadata.cost", "is", 0.5, "number"), ["generate"]),
    ("number is not (strings and missing match)", f("metadata.cost", "is not", "2", "number"), without("retrieve")),
    ("number greater than", f("metadata.cost", "greater than", "0.4", "number"), ["retrieve", "generate"]),
    ("number less than", f("metadata.cost", "less than", "1", "number"), ["generate"]),
    ("number greater than skips the string '3'", f("metadata.cost", "greater than", 2.5, "number"), []),
    ("number exists (zero counts)", f("metadata.tokens", "exists", None, "number"), ["retrieve", "generate"]),
    ("number not exists", f("metadata.tokens", "not exists", None, "number"), ["answer", "export-session"]),
    ("number on a column", f("duration", "greater than", "500", "number"), ["retrieve", "export-session"]),
    ("number is on a column", f("duration", "is", "1000.5", "number"), ["retrieve"]),
    ("number exponent", f("metadata.tokens", "greater than", "1e1", "number"), ["generate"]),
    # boolean
    ("boolean is true", f("metadata.ok", "is", "true", "boolean"), ["generate"]),
    ("boolean is false", f("metadata.ok", "is", False, "boolean"), ["retrieve"]),
    ("boolean is 1", f("metadata.ok", "is", "1", "boolean"), ["generate"]),
    ("boolean is not true", f("metadata.ok", "is not", "TRUE", "boolean"), without("generate")),
    ("boolean exists", f("metadata.ok", "exists", None, "boolean"), ["retrieve", "generate"]),
    ("boolean not exists", f("metadata.ok", "not exists", None, "boolean"), ["answer", "export-session"]),
    ("boolean is on a number is no match", f("metadata.tokens", "is", "true", "boolean"), []),
    # datetime: ISO strings and epoch ms, on a JSON field holding either, and on start_time
    ("datetime after", f("metadata.when", "after", WHEN_ISO, "datetime"), ["retrieve"]),
    ("datetime before", f("metadata.when", "before", WHEN_MS + 1, "datetime"), ["generate"]),
    ("datetime is", f("metadata.when", "is", "2024-05-01T00:00:00.000+00:00", "datetime"), ["generate"]),
    ("datetime is (ms string)", f("metadata.when", "is", str(WHEN_MS + 1), "datetime"), ["retrieve"]),
    ("datetime is not", f("metadata.when", "is not", WHEN_ISO, "datetime"), without("generate")),
    ("datetime greater than", f("start_time", "greater than", iso(T + 1500), "datetime"), ["answer", "retrieve"]),
    ("datetime less than", f("start_time", "less than", T + 1500, "datetime"), ["generate", "export-session"]),
    ("datetime after (type omitted)", f("start_time", "after", iso(T + 2500)), ["answer"]),
    ("datetime before, zone offset", f("start_time", "before", "2023-11-14T23:13:21.001+01:00"),
     ["generate", "export-session"]),
    ("datetime exists", f("metadata.when", "exists", None, "datetime"), ["retrieve", "generate"]),
    ("datetime not exists", f("metadata.when", "not exists", None, "datetime"), ["answer", "export-session"]),
    # string filters the SDK sends by default that can only mean numbers or datetimes
    ("greater than, type string, numeric value", f("metadata.cost", "greater than", "1", "string"), ["retrieve"]),
    ("less than, type string, ISO value", f("start_time", "less than", iso(T + 1)), ["export-session"]),
    ("is on a number column, type string", f("start_time", "is", str(T + 2000), "string"), ["retrieve"]),
    # spellings
    ("underscored operator", f("metadata.cost", "greater_than", "1", "number"), ["retrieve"]),
    ("upper-case operator and type", f("event_name", "IS", "answer", "STRING"), ["answer"]),
]


@pytest.mark.parametrize(("label", "flt", "expected"), OPERATOR_CASES, ids=[c[0] for c in OPERATOR_CASES])
def test_operator_and_type(api: Api, seeded: Seeded, label: str, flt: dict[str, Any], expected: list[str]) -> None:
    assert names(api, flt, f("session_id", "is", seeded.sid)) == expected


def test_every_operator_and_type_is_covered() -> None:
    pairs = {(c[1]["operator"].lower().replace("_", " "), (c[1].get("type") or "string").lower())
             for c in OPERATOR_CASES}
    table = {
        "string": ["exists", "not exists", "is", "is not", "contains", "not contains"],
        "number": ["exists", "not exists", "is", "is not", "greater than", "less than"],
        "boolean": ["exists", "not exists", "is", "is not"],
        "datetime": ["exists", "not exists", "is", "is not", "after", "before", "greater than", "less than"],
    }
    for vtype, operators in table.items():
        for operator in operators:
            assert (operator, vtype) in pairs, (operator, vtype)


def test_filters_are_anded(api: Api, seeded: Seeded) -> None:
    assert names(api, f("session_id", "is", seeded.sid), f("metadata.cost", "greater than", "0.1", "number"),
                 f("event_type", "is", "tool")) == ["retrieve"]


# Dot paths -------------------------------------------------------------------------------------


def test_dot_paths_with_array_indexes(api: Api, seeded: Seeded) -> None:
    by_session = f("session_id", "is", seeded.sid)
    assert names(api, by_session, f("inputs.chat_history.1.content", "is", "what is 2+2?")) == ["generate"]
    assert names(api, by_session, f("inputs.chat_history.0.role", "is", "user")) == ["answer"]
    assert names(api, by_session, f("inputs.chat_history.0.content", "contains", "brief")) == ["generate"]
    assert names(api, by_session, f("inputs.chat_history.1", "exists")) == ["generate"]
    assert names(api, by_session, f("metadata.tags.1", "is", "beta")) == ["generate"]
    assert names(api, by_session, f("feedback.rating", "is", "5", "number")) == ["generate"]
    assert names(api, by_session, f("config.model", "is", "gpt-x")) == ["generate"]
    assert names(api, by_session, f("outputs.content", "is", "4")) == ["generate"]
    # A numeric segment indexes arrays only: on an object it finds nothing.
    assert names(api, by_session, f("metadata.0", "exists")) == []


def test_scope_ids_can_be_projected_not_filtered(api: Api, seeded: Seeded) -> None:
    assert_error(api.post("/v1/events/export", json={"filters": [f("project_id", "is", "x")]}), 400,
                 "filters[0].field: unknown field 'project_id'")
    assert set(export(api, projections=["project_id"])["events"][0]) == {"event_id", "project_id"}


def test_outputs_exists(api: Api, seeded: Seeded) -> None:
    got = names(api, f("session_id", "is", seeded.sid), f("outputs", "exists"))
    assert "generate" in got and "retrieve" not in got


def test_session_children_ids_are_searchable(api: Api, seeded: Seeded) -> None:
    api.put(f"/v1/events/{seeded.sid}", json={"children_ids": [seeded.ids["answer"]]})
    assert names(api, f("children_ids", "contains", seeded.ids["answer"].upper())) == ["export-session"]


def test_ids_in_filters_are_case_insensitive(api: Api, seeded: Seeded) -> None:
    got = names(api, f("session_id", "is", seeded.sid.upper()), f("event_id", "is", seeded.ids["answer"].upper()))
    assert got == ["answer"]


# Date ranges -----------------------------------------------------------------------------------


def test_absolute_date_ranges(api: Api, seeded: Seeded) -> None:
    by_session = f("session_id", "is", seeded.sid)
    assert names(api, by_session, dateRange={"$gte": iso(T + 1000), "$lte": iso(T + 2000)}) == ["retrieve", "generate"]
    assert names(api, by_session, dateRange={"$gte": T + 1000, "$lte": T + 2000}) == ["retrieve", "generate"]
    assert names(api, by_session, dateRange={"$gte": str(T + 1001)}) == ["answer", "retrieve"]
    assert names(api, by_session, dateRange={"$lte": iso(T)}) == ["export-session"]
    assert names(api, by_session, dateRange={"start_time": iso(T + 3000), "end_time": iso(T + 9000)}) == ["answer"]
    assert names(api, by_session, dateRange={"$gte": "2023-11-14", "$lte": "2023-11-15"}) == ALL
    assert names(api, by_session, dateRange={}) == ALL
    assert names(api, by_session, dateRange=None) == ALL


def test_relative_date_ranges(api: Api) -> None:
    now = time.time() * 1000
    sid = str(uuid.uuid4())
    events = [{"event_type": "tool", "inputs": {}, "event_name": name, "start_time": now - age}
              for name, age in (("minutes-ago", 5 * 60_000), ("hours-ago", 3 * 3_600_000),
                                ("days-ago", 3 * 86_400_000), ("weeks-ago", 3 * 7 * 86_400_000))]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    tools = f("event_type", "is", "tool")
    by_session = f("session_id", "is", sid)
    assert names(api, tools, by_session, dateRange={"relative": "10m"}) == ["minutes-ago"]
    assert names(api, tools, by_session, dateRange={"relative": "4h"}) == ["minutes-ago", "hours-ago"]
    assert names(api, tools, by_session, dateRange={"relative": "7d"}) == ["minutes-ago", "hours-ago", "days-ago"]
    assert len(names(api, tools, by_session, dateRange={"relative": "4w"})) == 4


@pytest.mark.parametrize(
    ("date_range", "fragment"),
    [
        ({"$gte": iso(T + 10), "$lte": iso(T)}, "dateRange: $gte is after $lte"),
        ({"$gte": "yesterday"}, "dateRange.$gte: 'yesterday' is not a datetime"),
        ({"$gte": "2024-13-01T00:00:00Z"}, "dateRange.$gte"),
        ({"relative": "7x"}, "dateRange.relative: '7x' is not a relative range"),
        ({"relative": "-7d"}, "dateRange.relative"),
        ({"relative": 7}, "dateRange.relative"),
        ({"relative": "7d", "$gte": iso(T)}, "relative cannot be combined"),
        ({"$gt": iso(T)}, "dateRange: unexpected key '$gt'"),
        ({"$gte": iso(T), "end_time": iso(T)}, "dateRange: mixes the bounds of two shapes"),
        ([iso(T)], "dateRange: must be an object"),
    ],
)
def test_bad_date_ranges_are_400(api: Api, date_range: Any, fragment: str) -> None:
    assert_error(api.post("/v1/events/export", json={"filters": [], "dateRange": date_range}), 400, fragment)


# Projections -----------------------------------------------------------------------------------


def test_projections(api: Api, seeded: Seeded) -> None:
    by_session = [f("session_id", "is", seeded.sid), f("event_name", "is", "generate")]
    plain = export(api, filters=by_session, projections=["event_name"])["events"]
    assert plain == [{"event_id": seeded.ids["generate"], "event_name": "generate"}]

    nested = export(api, filters=by_session, projections=[
        "metadata.cost", "metadata.tags.1", "inputs.chat_history.1.content", "metadata.absent",
        "outputs.content.deeper", "feedback", "project_id",
    ])["events"][0]
    assert nested["event_id"] == seeded.ids["generate"]
    assert nested["metadata"] == {"cost": 0.5, "tags": [None, "beta"]}
    assert nested["inputs"] == {"chat_history": [None, {"content": "what is 2+2?"}]}
    assert nested["feedback"] == {"rating": 5}
    assert isinstance(nested["project_id"], str)
    assert set(nested) == {"event_id", "metadata", "inputs", "feedback", "project_id"}

    # A field and a path under it: the whole field.
    covered = export(api, filters=by_session, projections=["metadata.cost", "metadata"])["events"][0]
    assert covered["metadata"]["label"] == "Hello World"
    # Empty projections = every field.
    full = export(api, filters=by_session, projections=[])["events"][0]
    assert full["inputs"]["chat_history"][0]["role"] == "system" and "org_id" in full


@pytest.mark.parametrize(
    ("projections", "fragment"),
    [
        (["event_name", "nope"], "projections[1]: unknown field 'nope'"),
        (["event_name.x"], "projections[0]: event_name is not a JSON field"),
        (["metadata.a;b"], "projections[0]: path segment 'a;b'"),
        ([1], "projections[0]: must be a string"),
        ("event_name", "projections: must be an array"),
    ],
)
def test_bad_projections_are_400(api: Api, projections: Any, fragment: str) -> None:
    assert_error(api.post("/v1/events/export", json={"projections": projections}), 400, fragment)


# Paging, order, limits -------------------------------------------------------------------------


def test_pagination_and_order(api: Api, seeded: Seeded) -> None:
    by_session = [f("session_id", "is", seeded.sid)]
    pages = [export(api, filters=by_session, limit=3, page=p) for p in (1, 2, 3)]
    assert [[e["event_name"] for e in p["events"]] for p in pages] == [ALL[:3], ALL[3:], []]
    assert {p["count"] for p in pages} == {4}
    assert [e["start_time"] for e in pages[0]["events"]] == [T + 3000, T + 2000, T + 1000]
    beyond = export(api, filters=by_session, limit=2, page=1000)
    assert beyond["events"] == [] and beyond["count"] == 4
    unordered = export(api, filters=by_session, ignore_order=True)
    assert sorted(e["event_name"] for e in unordered["events"]) == sorted(ALL)
    # Numbers sent as strings / floats are accepted for limit and page.
    assert len(export(api, filters=by_session, limit="2", page=2.0)["events"]) == 2


def test_defaults_without_filters(api: Api, seeded: Seeded) -> None:
    data = export(api)
    assert data["count"] == 4 and len(data["events"]) == 4
    assert export(api, filters=None)["count"] == 4


def test_limit_is_clamped_to_7500(api: Api) -> None:
    events = [{"event_type": "tool", "inputs": {}, "event_name": f"bulk-{i}", "start_time": T + i}
              for i in range(7_600)]
    reply = api.post("/v1/events/batch", json={"events": events, "single_session": True,
                                               "session_properties": {"session_name": "bulk"}})
    assert reply.status_code == 200, reply.text
    data = export(api, limit=100_000, projections=["event_name"])
    assert data["count"] == 7_601
    assert len(data["events"]) == 7_500
    assert data["events"][0]["event_name"] == "bulk-7599"
    assert len(export(api, limit=100_000, page=2, projections=["event_name"])["events"]) == 101
    assert len(export(api, projections=["event_name"])["events"]) == 1_000  # the default


# Bad requests name the filter ------------------------------------------------------------------

BAD_FILTERS: list[tuple[Any, str]] = [
    ([f("event_name", "is", "x"), f("event_name", "bigger", 1)], "filters[1].operator: 'bigger' is not an operator"),
    ([f("nope", "is", "x")], "filters[0].field: unknown field 'nope'"),
    ([f("event_name", "is", "x"), f("metadata..cost", "is", "x")], "filters[1].field: empty path segment"),
    ([f("metadata.cost", "is", "x", "float")], "filters[0].type: 'float' is not a type"),
    ([f("metadata.cost", "is", "cheap", "number")], "filters[0].value: 'cheap' is not a number"),
    ([f("metadata.cost", "is", "NaN", "number")], "filters[0].value: 'NaN' is not a number"),
    ([f("metadata.ok", "is", "maybe", "boolean")], "filters[0].value: 'maybe' is not a boolean"),
    ([f("metadata.when", "after", "soon", "datetime")], "filters[0].value: 'soon' is not a datetime"),
    ([f("metadata.cost", "contains", "1", "number")], "filters[0].operator: 'contains' does not apply to type 'number'"),
    ([f("metadata.ok", "greater than", "1", "boolean")], "filters[0].operator: 'greater than' does not apply"),
    ([f("metadata.ok", "after", "1", "boolean")], "filters[0].operator: 'after' does not apply to type 'boolean'"),
    ([f("event_name", "greater than", "abc")], "filters[0].value: 'greater than' compares numbers or datetimes"),
    ([f("event_name", "is", "1", "number")], "filters[0].type: event_name is a string field"),
    ([f("duration", "is", "long")], "filters[0].value: duration is a number field"),
    ([f("start_time", "is", True, "boolean")], "filters[0].type: start_time is a number field"),
    ([f("event_name", "is")], "filters[0].value: required for operator 'is'"),
    ([f("event_name", "is", {"a": 1})], "filters[0].value: must be a string, number or boolean"),
    ([{"operator": "is", "value": "x"}], "filters[0].field: field required"),
    ([{"field": "event_name", "value": "x"}], "filters[0].operator: field required"),
    ([f("event_name", "is", "x"), "event_name is x"], "filters[1]: must be a JSON object"),
    ([f(["event_name"], "is", "x")], "filters[0].field: must be a string"),  # type: ignore[arg-type]
    ([f("event_name", 5, "x")], "filters[0].operator: must be a string"),  # type: ignore[arg-type]
    ([f("metadata." + "a." * 40 + "b", "exists")], "filters[0].field: path has more than 32 segments"),
    ([f("metadata.1234567890", "exists")], "filters[0].field: array index 1234567890 is too large"),
    ([f('metadata."service.name', "exists")], "filters[0].field: unclosed quote"),
    ([f('"metadata".x', "exists")], "filters[0].field: the column 'metadata' is not quoted"),
    ([f('metadata."a"b', "exists")], "filters[0].field: a quoted key must be followed by '.'"),
    ([f('metadata."a\\\\b"', "exists")], "filters[0].field: quoted key"),
    ([f("metadata.service name", "exists")], "filters[0].field: path segment 'service name' may only contain"),
    ([f("event_name", "is", "x")] * 101, "filters: at most 100 filters"),
    ({"field": "event_name"}, "filters: must be an array"),
]


@pytest.mark.parametrize(("filters", "fragment"), BAD_FILTERS, ids=[c[1][:50] for c in BAD_FILTERS])
def test_bad_filters_are_400_and_name_the_filter(api: Api, filters: Any, fragment: str) -> None:
    body = assert_error(api.post("/v1/events/export", json={"filters": filters}), 400, fragment)
    assert body["errorCode"] == "VALIDATION_ERROR"
    assert body["message"].startswith(fragment.split(":")[0])


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"limit": 0}, "limit: must be at least 1"),
        ({"limit": -5}, "limit: must be at least 1"),
        ({"limit": "many"}, "limit: must be a positive integer"),
        ({"limit": True}, "limit: must be a positive integer"),
        ({"limit": 1.5}, "limit: must be a positive integer"),
        ({"page": 0}, "page: must be at least 1"),
        ({"page": 10**30}, "page: must be at most"),
        ({"page": "2x"}, "page: must be a positive integer"),
        ({"page": 10**12}, "page: must be at most"),
        ({"ignore_order": "sometimes"}, "ignore_order: must be a boolean"),
        ({"evaluation_id": 5}, "evaluation_id: must be a string"),
        ([], "request body must be a JSON object"),
    ],
)
def test_bad_bodies_are_400(api: Api, body: Any, fragment: str) -> None:
    assert_error(api.post("/v1/events/export", json=body), 400, fragment)


def test_malformed_json_is_400(api: Api) -> None:
    assert_error(api.post("/v1/events/export", content=b'{"filters": [', headers={"Content-Type": "application/json"}),
                 400, "not valid JSON")
    assert_error(api.post("/v1/events/export", content=b""), 400, "empty")


def test_lenient_body_ignores_unknown_keys_and_project(api: Api, seeded: Seeded) -> None:
    data = export(api, project="some-other-project", unknown={"x": 1},
                  filters=[{**f("session_id", "is", seeded.sid), "extra": True}])
    assert data["count"] == 4


def test_evaluation_id_selects_a_run(api: Api) -> None:
    sid = str(uuid.uuid4())
    events = [{"event_type": "tool", "inputs": {}, "event_name": f"run-{r}", "metadata": {"run_id": r}}
              for r in ("r1", "r2")]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    assert [e["event_name"] for e in export(api, evaluation_id="r2")["events"]] == ["run-r2"]
    assert export(api, evaluation_id="")["count"] == 3


# Injection: SQL-looking input is a 400 or a literal ---------------------------------------------

SQL_FIELDS = [
    "event_name; DROP TABLE events",
    "event_name OR 1=1",
    "metadata.cost') OR 1=1 --",
    'metadata."cost" OR 1=1',  # a quoted key ends at its quote: then only '.' or the end
    'metadata."cost\\"',  # no backslash inside a quoted key
    'metadata."cost',
    "metadata.cost[0]",
    "metadata.$.cost",
    "metadata.a b",
    "metadata.*",
    "e.event_name",
    "events.event_name",
    "(event_name)",
    "metadata.cost\x00",
]


@pytest.mark.parametrize("field", SQL_FIELDS)
def test_sql_looking_fields_are_400(api: Api, seeded: Seeded, field: str) -> None:
    assert_error(api.post("/v1/events/export", json={"filters": [f(field, "is", "x")]}), 400, "filters[0].field")
    assert_error(api.post("/v1/events/export", json={"projections": [field]}), 400, "projections[0]")
    assert export(api)["count"] == 4


def test_a_quoted_key_is_data_never_sql(api: Api, seeded: Seeded) -> None:
    """Whatever a quoted key holds, it is a key to look up (a bound parameter), not SQL."""
    for key in ("cost') OR 1=1 --", "x'; DROP TABLE events; --", "$.cost", "a b.c", "*"):
        body = export(api, filters=[f(f'metadata."{key}"', "exists")])
        assert body["count"] == 0, key
    assert export(api, filters=[f('metadata."cost"', "exists")])["count"] == export(
        api, filters=[f("metadata.cost", "exists")])["count"] > 0  # the same key, quoted or bare
    assert export(api)["count"] == 4


SQL_VALUES = [
    "x' OR '1'='1",
    "'; DROP TABLE events; --",
    "\" OR \"\"=\"",
    "%",
    "_",
    "$.cost",
    "') OR 1=1 --",
    "1 OR 1=1",
]


@pytest.mark.parametrize("value", SQL_VALUES)
def test_sql_looking_values_are_literals(api: Api, seeded: Seeded, value: str) -> None:
    for flt in (f("event_name", "is", value), f("event_name", "contains", value), f("metadata.label", "is", value),
                f("metadata.label", "contains", value)):
        assert names(api, flt) == []
    assert export(api)["count"] == 4
    # Stored as data, they are found exactly, by is and by contains.
    eid = api.post("/v1/events", json={"event_type": "tool", "inputs": {"v": value}, "event_name": value,
                                       "metadata": {"label": value}}).json()["event_id"]
    for flt in (f("event_name", "is", value), f("metadata.label", "is", value), f("inputs.v", "contains", value)):
        assert [e["event_id"] for e in export(api, filters=[flt])["events"]] == [eid]


def test_contains_treats_like_wildcards_literally(api: Api, seeded: Seeded) -> None:
    assert names(api, f("event_name", "contains", "%")) == []
    assert names(api, f("event_name", "contains", "gen_rate")) == []
    assert names(api, f("event_name", "contains", "gen")) == ["generate"]


# Isolation, auth, both paths ---------------------------------------------------------------------


def test_projects_are_isolated(api: Api, api_b: Api) -> None:
    a = seed(api, tag="a")
    b = seed(api_b, tag="b")
    assert {e["metadata"]["tag"] for e in export(api)["events"]} == {"a"}
    assert {e["metadata"]["tag"] for e in export(api_b)["events"]} == {"b"}
    assert export(api)["count"] == export(api_b)["count"] == 4
    assert export(api_b, filters=[f("session_id", "is", a.sid)])["count"] == 0
    assert export(api_b, filters=[f("event_id", "is", a.ids["generate"])])["count"] == 0
    assert export(api, filters=[f("metadata.tag", "is", "b")])["count"] == 0
    assert export(api, filters=[f("session_id", "is not", b.sid)])["count"] == 4


def test_read_needs_a_project_key(client: TestClient, ingest: Api, seeded: Seeded) -> None:
    for path in PATHS:
        assert_error(ingest.post(path, json={"filters": []}), 403, "ingestion key")
        assert_error(client.post(path, json={"filters": []}), 401, "Authorization")
        assert_error(client.post(path, content=b"{not json"), 401)  # auth before the body
        assert_error(client.post(path, json={}, headers={"Authorization": "Bearer nope"}), 401, "API key")


def test_both_paths_answer_the_same(api: Api, seeded: Seeded) -> None:
    body = {"filters": [f("session_id", "is", seeded.sid)], "limit": 2, "projections": ["event_name"]}
    replies = [export(api, path, **body) for path in PATHS]
    assert replies[0] == replies[1]
    assert [e["event_name"] for e in replies[0]["events"]] == ALL[:2] and replies[0]["count"] == 4


def test_other_event_routes_are_not_shadowed(api: Api, seeded: Seeded) -> None:
    assert api.get(f"/v1/events/{seeded.ids['answer']}").status_code == 200
    assert_error(api.get("/v1/events/export"), 400, "event_id")  # GET still means "an event by id"
    assert_error(api.put("/v1/events/export", json={}), 400, "event_id")


def test_full_events_have_the_read_shape(api: Api, seeded: Seeded) -> None:
    event = export(api, filters=[f("event_id", "is", seeded.ids["retrieve"])])["events"][0]
    single = api.get(f"/v1/events/{seeded.ids['retrieve']}").json()["event"]
    assert set(event) == set(single)
    assert {k: v for k, v in event.items() if k != "children_ids"} == {
        k: v for k, v in single.items() if k != "children_ids"
    }


def test_openapi_documents_both_paths(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in PATHS:
        operation = doc["paths"][path]["post"]
        ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert ref == "#/components/schemas/ExportEventsRequest"
        assert operation["security"] == [{"BearerAuth": []}]
        assert "400" in operation["responses"] and "403" in operation["responses"]
    response = doc["components"]["schemas"]["ExportEventsResponse"]
    assert {"events", "count", "totalEvents"} <= set(response["properties"])


# The real SDK's requests -------------------------------------------------------------------------


def fixture_exports() -> list[dict[str, Any]]:
    rows = [json.loads(line) for line in FIXTURE.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["method"] == "POST" and r["path"] == "/v1/events/export"]


def test_fixture_export_requests_replayed(api: Api, api_b: Api) -> None:
    requests = fixture_exports()
    assert len(requests) == 3
    now = time.time() * 1000
    session = api.post("/v1/sessions", json={"session_id": FIXTURE_SESSION, "session_name": "api-session",
                                             "start_time": now})
    assert session.status_code == 200, session.text
    events = [{"event_type": t, "inputs": {}, "event_name": n, "start_time": now + i}
              for i, (n, t) in enumerate((("retrieve", "tool"), ("single", "chain"), ("llm", "model")), 1)]
    assert api.post(f"/v1/sessions/{FIXTURE_SESSION}/events/batch", json={"events": events}).status_code == 200
    api.post("/v1/events", json={"event_type": "model", "inputs": {}, "event_name": "elsewhere"})
    api_b.post("/v1/events", json={"event_type": "model", "inputs": {}, "event_name": "other-project"})

    replies = []
    for recorded in requests:
        headers = {k: v for k, v in recorded["headers"].items()
                   if k.lower() not in ("host", "content-length", "authorization", "accept-encoding", "connection")}
        reply = api.post(recorded["path"], json=recorded["body"], headers=headers)
        assert reply.status_code == 200, reply.text
        body = reply.json()
        assert body["totalEvents"] == body["count"]
        replies.append(body)

    by_session, models, whole_session = replies
    # 1: session filter, date range, projections ["event_id", "event_name"].
    assert [e["event_name"] for e in by_session["events"]] == ["llm", "single", "retrieve", "api-session"]
    assert all(set(e) == {"event_id", "event_name"} for e in by_session["events"])
    # 2: event_type is model, limit 10: both model events of this project, none of B's.
    assert sorted(e["event_name"] for e in models["events"]) == ["elsewhere", "llm"]
    assert models["totalEvents"] == 2
    # 3: the whole session, full events (get_by_session_id sorts them itself).
    assert whole_session["totalEvents"] == 4
    assert {e["session_id"] for e in whole_session["events"]} == {FIXTURE_SESSION}
    assert {"inputs", "metadata", "start_time", "org_id"} <= set(whole_session["events"][0])
