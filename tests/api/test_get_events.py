"""``GET /v1/events`` and ``GET /events`` (contract 1.2, 4.8): the same reads as export, with the
request in query parameters in bracket form, as repeated keys, or as JSON strings (and the Python
``str()`` forms the HoneyHive SDK's httpx sends); hostile query strings are a 400, never a 500."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from starlette.testclient import TestClient

from tests.api.test_export import ALL, T, Seeded, f, iso, seed
from tests.helpers import Api, assert_error
from tracehive.model.errors import ValidationFailed
from tracehive.query.params import MAX_DEPTH, MAX_INDEX, MAX_PARAMS, parse_query_string

PATHS = ("/v1/events", "/events")


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed(api)


def get(api: Api, params: Any = None, path: str = "/v1/events") -> dict[str, Any]:
    reply = api.get(path, params=params)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert data["count"] == data["totalEvents"]
    return data


def names(api: Api, params: Any = None) -> list[str]:
    return [e["event_name"] for e in get(api, params)["events"]]


def bracket_filters(*filters: dict[str, Any]) -> list[tuple[str, str]]:
    out = []
    for i, flt in enumerate(filters):
        for key, value in flt.items():
            out.append((f"filters[{i}][{key}]", "" if value is None else str(value)))
    return out


# The qs-style parser -----------------------------------------------------------------------------


def test_parse_query_string_shapes() -> None:
    pairs = [("filters[0][field]", "a"), ("filters[0][operator]", "is"), ("filters[1][field]", "b"),
             ("dateRange[$gte]", "x"), ("projections[]", "p"), ("projections[]", "q"), ("limit", "5"),
             ("tags", "1"), ("tags", "2"), ("odd[", "v"), ("", "ignored")]
    assert parse_query_string(pairs) == {
        "filters": [{"field": "a", "operator": "is"}, {"field": "b"}],
        "dateRange": {"$gte": "x"},
        "projections": ["p", "q"],
        "limit": "5",
        "tags": ["1", "2"],
        "odd[": "v",
    }
    # Indexes sort numerically and gaps close up (as in qs).
    assert parse_query_string([("a[10]", "x"), ("a[2]", "y")]) == {"a": ["y", "x"]}


@pytest.mark.parametrize(
    ("pairs", "fragment"),
    [
        ([("a" + "[b]" * (MAX_DEPTH + 1), "x")], "nests deeper than"),
        ([(f"filters[{MAX_INDEX + 1}][field]", "x")], "is larger than"),
        ([("filters[99999999999999999999]", "x")], "is larger than"),
        ([("a", "1"), ("a[b]", "2")], "nests under a parameter that already has a value"),
        ([("a[b]", "2"), ("a", "1")], "also has nested keys"),
        ([("a[]", "1"), ("a[b]", "2")], "mixes [] with named keys"),
        ([("k" * 2000, "x")], "longer than"),
        ([(f"p{i}", "x") for i in range(MAX_PARAMS + 1)], f"more than {MAX_PARAMS} parameters"),
    ],
)
def test_parse_query_string_bounds(pairs: list[tuple[str, str]], fragment: str) -> None:
    with pytest.raises(ValidationFailed, match=fragment.replace("[", r"\[").replace("]", r"\]")):
        parse_query_string(pairs)


# The three styles ------------------------------------------------------------------------------


def test_bracket_form(api: Api, seeded: Seeded) -> None:
    params = bracket_filters(f("session_id", "is", seeded.sid, "string"),
                             f("metadata.cost", "greater than", "0.4", "number"))
    assert names(api, params) == ["retrieve", "generate"]
    params += [("dateRange[$gte]", iso(T + 1500)), ("dateRange[$lte]", str(T + 2000))]
    assert names(api, params) == ["retrieve"]
    exists = bracket_filters(f("session_id", "is", seeded.sid), f("error", "exists", None))
    assert names(api, exists) == ["retrieve"]
    projected = get(api, [*exists, ("projections[]", "event_name"), ("projections[]", "metadata.cost")])
    assert projected["events"] == [{"event_id": seeded.ids["retrieve"], "event_name": "retrieve",
                                    "metadata": {"cost": 2}}]


def test_repeated_keys(api: Api, seeded: Seeded) -> None:
    params = [("filters", json.dumps(f("session_id", "is", seeded.sid))),
              ("filters", json.dumps(f("event_type", "is", "tool"))),
              ("projections", "event_name"), ("projections", "error")]
    assert get(api, params)["events"] == [{"event_id": seeded.ids["retrieve"], "event_name": "retrieve",
                                           "error": "timeout"}]
    one = get(api, [("filters", json.dumps(f("session_id", "is", seeded.sid))), ("projections", "event_name")])
    assert [set(e) for e in one["events"]] == [{"event_id", "event_name"}] * 4


def test_json_strings(api: Api, seeded: Seeded) -> None:
    by_session = f("session_id", "is", seeded.sid)
    params = {"filters": json.dumps([by_session, f("metadata.ok", "is", True, "boolean")]),
              "projections": json.dumps(["event_name"])}
    assert get(api, params)["events"] == [{"event_id": seeded.ids["generate"], "event_name": "generate"}]
    date = {"filters": json.dumps([by_session]), "dateRange": json.dumps({"$gte": T + 1000, "$lte": iso(T + 2000)})}
    assert names(api, date) == ["retrieve", "generate"]
    since = {"filters": json.dumps([by_session]), "dateRange": iso(T + 2000)}
    assert names(api, since) == ["answer", "retrieve"]
    # Mixed: a JSON filter list and bracket date bounds.
    mixed = [("filters", json.dumps([by_session])), ("dateRange[$lte]", iso(T))]
    assert names(api, mixed) == ["export-session"]


def test_relative_date_range_in_all_styles(api: Api) -> None:
    now = time.time() * 1000
    sid = str(uuid.uuid4())
    events = [{"event_type": "tool", "inputs": {}, "event_name": name, "start_time": now - age}
              for name, age in (("recent", 60_000), ("old", 3 * 86_400_000))]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    tools = bracket_filters(f("event_type", "is", "tool"))
    assert names(api, [*tools, ("dateRange[relative]", "1h")]) == ["recent"]
    assert names(api, [*tools, ("dateRange", json.dumps({"relative": "7d"}))]) == ["recent", "old"]


def test_python_sdk_str_forms(api: Api, seeded: Seeded) -> None:
    """httpx writes ``str()`` of dicts and pydantic models (what honeyhive 1.7.0 sends)."""
    by_session = str({"field": "session_id", "operator": "is", "value": seeded.sid, "type": "string"})
    flag = str({"field": "metadata.ok", "operator": "is", "value": True, "type": "boolean"})
    assert names(api, [("filters[]", by_session), ("filters[]", flag)]) == ["generate"]
    window = f"gte='{iso(T + 1000)}' lte={float(T + 2000)}"
    assert names(api, [("filters[]", by_session), ("dateRange", window)]) == ["retrieve", "generate"]
    assert names(api, [("filters[]", by_session), ("dateRange", f"gte=None lte='{iso(T)}'")]) == ["export-session"]


def test_paging_defaults_and_flags(api: Api, seeded: Seeded) -> None:
    by_session = bracket_filters(f("session_id", "is", seeded.sid))
    pages = [names(api, [*by_session, ("limit", "3"), ("page", str(p))]) for p in (1, 2, 3)]
    assert pages == [ALL[:3], ALL[3:], []]
    data = get(api, [*by_session, ("limit", "2"), ("page", "99")])
    assert data["events"] == [] and data["totalEvents"] == 4
    assert names(api, [*by_session, ("limit", "100000")]) == ALL  # clamped, not refused
    assert names(api, [*by_session, ("limit", ""), ("page", "")]) == ALL  # empty = default
    unordered = names(api, [*by_session, ("ignore_order", "true")])
    assert sorted(unordered) == sorted(ALL)
    assert get(api)["totalEvents"] == 4


def test_evaluation_id(api: Api) -> None:
    sid = str(uuid.uuid4())
    events = [{"event_type": "tool", "inputs": {}, "event_name": f"run-{r}", "metadata": {"run_id": r}}
              for r in ("r1", "r2")]
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": events}).status_code == 200
    assert names(api, {"evaluation_id": "r1"}) == ["run-r1"]


# Errors ------------------------------------------------------------------------------------------

BAD: list[tuple[Any, str]] = [
    (bracket_filters(f("event_name", "is", "x"), f("event_name", "bigger", "x")),
     "filters[1].operator: 'bigger' is not an operator"),
    (bracket_filters(f("nope", "is", "x")), "filters[0].field: unknown field 'nope'"),
    (bracket_filters(f("metadata.cost", "is", "cheap", "number")), "filters[0].value: 'cheap' is not a number"),
    ([("filters[0][field]", "a"), ("filters[0][field]", "b"), ("filters[0][operator]", "is")],
     "filters[0].field: must be a string"),
    ([("filters", "[{")], "filters: '[{' is not valid JSON"),
    ([("filters", '{"field": "x", "operator": "is", "value": 1}')], "filters[0].field: unknown field 'x'"),
    ([("filters", "event_name")], "filters: must be an array"),
    ([("filters[]", "{'field': __import__('os')}")], "filters[0]"),
    ([("dateRange", "yesterday")], "dateRange: 'yesterday' is not a datetime"),
    ([("dateRange[$gte]", "soon")], "dateRange.$gte: 'soon' is not a datetime"),
    ([("dateRange[relative]", "7x")], "dateRange.relative: '7x' is not a relative range"),
    ([("dateRange", "{nope")], "dateRange: '{nope' is not valid JSON"),
    ([("dateRange", "a"), ("dateRange", "b")], "dateRange: must be an object"),
    ([("projections[]", "nope")], "projections[0]: unknown field 'nope'"),
    ([("limit", "0")], "limit: must be at least 1"),
    ([("limit", "many")], "limit: must be a positive integer"),
    ([("limit", "1"), ("limit", "2")], "limit: must be a positive integer"),
    ([("page", "-1")], "page: must be a positive integer"),
    ([("ignore_order", "sometimes")], "ignore_order: must be a boolean"),
    ([("evaluation_id", "a"), ("evaluation_id", "b")], "evaluation_id: must be a string"),
]


@pytest.mark.parametrize(("params", "fragment"), BAD, ids=[c[1][:50] for c in BAD])
def test_bad_params_are_400(api: Api, params: Any, fragment: str) -> None:
    for path in PATHS:
        body = assert_error(api.get(path, params=params), 400, fragment)
        assert body["message"].startswith(fragment.split(":")[0])


HOSTILE = [
    "&".join(f"a{i}=1" for i in range(5000)),
    "filters" + "[a]" * 500 + "=1",
    "filters[" + "9" * 500 + "][field]=x",
    "filters=" + quote("[" * 5000 + "]" * 5000),
    "filters=" + quote("[" * 20_000),
    "filters[]=" + quote("(" * 5000),
    "filters[]=" + quote("{'a': " + "[" * 300 + "]" * 300 + "}"),
    "filters[]=" + quote("9" * 10_000),
    "dateRange=" + quote("{" * 3000),
    "dateRange=" + quote("gte=" + "1" * 5000),
    "projections=" + quote(json.dumps(["event_name"] * 1000)),
    "filters[0][field]=%ff%fe&filters[0][operator]=is&filters[0][value]=%00",
    "%5B%5D=1&%5B=2&]=3&[a]=4&filters[=5&filters]=6",
    "limit=" + "9" * 5000,
    "page=1e400",
]


@pytest.mark.parametrize("query", HOSTILE, ids=[f"hostile-{i}" for i in range(len(HOSTILE))])
def test_hostile_query_strings_are_4xx_never_500(api: Api, seeded: Seeded, query: str) -> None:
    reply = api.get("/v1/events?" + query)
    assert reply.status_code < 500, reply.text
    if reply.status_code != 200:
        assert_error(reply, reply.status_code)
    assert get(api)["totalEvents"] == 4


def test_unknown_params_are_ignored(api: Api, seeded: Seeded) -> None:
    assert get(api, {"project": "other", "whatever[x]": "1"})["totalEvents"] == 4


# Auth, isolation, both paths -----------------------------------------------------------------------


def test_projects_are_isolated(api: Api, api_b: Api) -> None:
    a = seed(api, tag="a")
    seed(api_b, tag="b")
    for path in PATHS:
        assert {e["metadata"]["tag"] for e in get(api, path=path)["events"]} == {"a"}
        assert {e["metadata"]["tag"] for e in get(api_b, path=path)["events"]} == {"b"}
        assert get(api_b, bracket_filters(f("session_id", "is", a.sid)), path=path)["totalEvents"] == 0


def test_read_needs_a_project_key(client: TestClient, ingest: Api) -> None:
    for path in PATHS:
        assert_error(ingest.get(path), 403, "ingestion key")
        assert_error(client.get(path), 401, "Authorization")
        assert_error(client.get(path, headers={"Authorization": "Bearer nope"}), 401, "API key")


def test_both_paths_answer_the_same(api: Api, seeded: Seeded) -> None:
    params = [*bracket_filters(f("session_id", "is", seeded.sid)), ("limit", "2"), ("projections[]", "event_name")]
    first, second = (get(api, params, path) for path in PATHS)
    assert first == second and [e["event_name"] for e in first["events"]] == ALL[:2]
    assert urlencode(params)  # the same request the SDKs send


def test_openapi_documents_the_parameters(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    for path in PATHS:
        operation = doc["paths"][path]["get"]
        assert {p["name"] for p in operation["parameters"]} >= {"filters", "dateRange", "projections", "limit",
                                                                  "page", "ignore_order", "evaluation_id"}
        assert operation["security"] == [{"BearerAuth": []}]
