"""``POST /v1/sessions/search`` (the session list of the web UI) and ``GET /v1/whoami``, through the
real app and store: the response shapes the UI codes against, defaults, sorting and paging, the
strict body (400 naming the field), auth, isolation, routing next to the other session routes,
and the OpenAPI description. The aggregate semantics in depth are in tests/storage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.helpers import Api, assert_error

PATH = "/v1/sessions/search"
T = 1_700_000_000_000  # 2023-11-14T22:13:20Z
SUMMARY_KEYS = {"session_id", "event_name", "source", "start_time", "end_time", "duration", "num_events", "cost",
                "total_tokens", "has_error", "has_feedback", "user_properties", "metadata"}


@dataclass
class Seeded:
    ids: dict[str, str]  # session name -> id
    project_id: str


def start_session(api: Api, name: str, start: int, **fields: Any) -> dict[str, Any]:
    reply = api.post("/v1/sessions", json={"session_name": name, "source": "web", "start_time": start, **fields})
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def add_events(api: Api, sid: str, *events: dict[str, Any]) -> None:
    body = {"events": [{"event_type": "tool", "inputs": {}, **e} for e in events]}
    reply = api.post(f"/v1/sessions/{sid}/events/batch", json=body)
    assert reply.status_code == 200, reply.text


def seed(api: Api) -> Seeded:
    """Three sessions: chat (T, 3 events, cost 0.75, 30 tokens, an error), batch (T + 60 s, 1
    event with feedback, cost 2), empty (T + 120 s, no event)."""
    chat = start_session(api, "chat", T, user_properties={"user_id": "ada"}, metadata={"env": "prod"})
    batch = start_session(api, "batch", T + 60_000)
    empty = start_session(api, "empty", T + 120_000)
    add_events(
        api, chat["session_id"],
        {"event_type": "model", "start_time": T + 10, "end_time": T + 5_000,
         "metadata": {"cost": 0.5, "total_tokens": 20}},
        {"start_time": T + 20, "end_time": T + 30, "metadata": {"cost": 0.25, "total_tokens": 10}},
        {"start_time": T + 40, "end_time": T + 50, "error": "tool failed"},
    )  # fmt: skip
    add_events(api, batch["session_id"],
               {"start_time": T + 60_000, "end_time": T + 61_000, "metadata": {"cost": 2}, "feedback": {"ok": True}})
    return Seeded({"chat": chat["session_id"], "batch": batch["session_id"], "empty": empty["session_id"]},
                  chat["project_id"])


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed(api)


def search(api: Api, **body: Any) -> dict[str, Any]:
    reply = api.post(PATH, json=body)
    assert reply.status_code == 200, reply.text
    return reply.json()  # type: ignore[no-any-return]


def names(api: Api, **body: Any) -> list[str]:
    return [s["event_name"] for s in search(api, **body)["sessions"]]


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).isoformat().replace("+00:00", "Z")


# Shapes and defaults ---------------------------------------------------------------------------


def test_empty_body_object_gives_the_default_page(api: Api, seeded: Seeded) -> None:
    data = search(api)
    assert set(data) == {"sessions", "totalSessions", "page", "limit"}
    assert (data["totalSessions"], data["page"], data["limit"]) == (3, 1, 50)
    assert [s["event_name"] for s in data["sessions"]] == ["empty", "batch", "chat"]  # start_time, newest first
    for summary in data["sessions"]:
        assert set(summary) == SUMMARY_KEYS


def test_summary_values(api: Api, seeded: Seeded) -> None:
    by_name = {s["event_name"]: s for s in search(api)["sessions"]}
    assert by_name["chat"] == {
        "session_id": seeded.ids["chat"], "event_name": "chat", "source": "web", "start_time": T,
        "end_time": T + 5_000, "duration": 5_000, "num_events": 3, "cost": 0.75, "total_tokens": 30,
        "has_error": True, "has_feedback": False, "user_properties": {"user_id": "ada"}, "metadata": {"env": "prod"},
    }  # fmt: skip
    assert by_name["batch"] == {
        "session_id": seeded.ids["batch"], "event_name": "batch", "source": "web", "start_time": T + 60_000,
        "end_time": T + 61_000, "duration": 1_000, "num_events": 1, "cost": 2, "total_tokens": 0,
        "has_error": False, "has_feedback": True, "user_properties": {}, "metadata": {},
    }  # fmt: skip
    empty = by_name["empty"]
    assert (empty["num_events"], empty["cost"], empty["total_tokens"], empty["duration"]) == (0, 0, 0, 0)
    assert empty["end_time"] == empty["start_time"] == T + 120_000


def test_no_sessions_is_an_empty_page(api: Api) -> None:
    assert search(api, page=3, limit=10) == {"sessions": [], "totalSessions": 0, "page": 3, "limit": 10}


# Sorting, paging, filters, date range ----------------------------------------------------------


SORTS = [  # (sort_by, descending, ascending): ties (batch and empty: 0 tokens) always go newest first
    ("start_time", ["empty", "batch", "chat"], ["chat", "batch", "empty"]),
    ("event_name", ["empty", "chat", "batch"], ["batch", "chat", "empty"]),
    ("duration", ["chat", "batch", "empty"], ["empty", "batch", "chat"]),
    ("num_events", ["chat", "batch", "empty"], ["empty", "batch", "chat"]),
    ("cost", ["batch", "chat", "empty"], ["empty", "chat", "batch"]),
    ("total_tokens", ["chat", "empty", "batch"], ["empty", "batch", "chat"]),
]


@pytest.mark.parametrize(("sort_by", "desc", "asc"), SORTS, ids=[s[0] for s in SORTS])
def test_sort_by_each_field_both_ways(api: Api, seeded: Seeded, sort_by: str, desc: list[str], asc: list[str]) -> None:
    assert names(api, sort_by=sort_by) == desc
    assert names(api, sort_by=sort_by, sort_order="desc") == desc
    assert names(api, sort_by=sort_by, sort_order="asc") == asc


def test_pages(api: Api, seeded: Seeded) -> None:
    pages = [search(api, limit=2, page=p) for p in (1, 2, 3)]
    assert [[s["event_name"] for s in p["sessions"]] for p in pages] == [["empty", "batch"], ["chat"], []]
    assert [(p["page"], p["limit"], p["totalSessions"]) for p in pages] == [(1, 2, 3), (2, 2, 3), (3, 2, 3)]
    assert names(api, sort_by="cost", sort_order="asc", limit=1, page=2) == ["chat"]
    assert len(search(api, limit=500)["sessions"]) == 3


def test_filters_and_date_range(api: Api, seeded: Seeded) -> None:
    assert names(api, filters=[{"field": "user_properties.user_id", "operator": "is", "value": "ada"}]) == ["chat"]
    assert names(api, filters=[{"field": "event_name", "operator": "is not", "value": "chat"},
                               {"field": "source", "operator": "is", "value": "web", "type": "string"}]) == [
        "empty", "batch"]
    # Filters see the session rows: no session row has an error, though chat has an event with one.
    assert search(api, filters=[{"field": "error", "operator": "exists"}])["totalSessions"] == 0
    window = {"start_time": iso(T), "end_time": iso(T + 60_000)}  # both ends inclusive
    data = search(api, dateRange=window, sort_by="cost")
    assert [s["event_name"] for s in data["sessions"]] == ["batch", "chat"] and data["totalSessions"] == 2
    assert names(api, dateRange={"start_time": iso(T + 1), "end_time": iso(T + 59_999)}) == []


def test_every_date_range_form_of_export_works_here_too(api: Api, seeded: Seeded) -> None:
    """Issue 16, point 7: {$gte, $lte} (ms or ISO, either optional) and {relative}, as on export."""
    window = names(api, dateRange={"start_time": iso(T), "end_time": iso(T + 60_000)})
    assert window == ["batch", "chat"]
    assert names(api, dateRange={"$gte": T, "$lte": T + 60_000}) == window
    assert names(api, dateRange={"$gte": iso(T), "$lte": iso(T + 60_000)}) == window
    assert names(api, dateRange={"$lte": T + 60_000}) == names(api, dateRange={"$lte": iso(T + 60_000)})
    assert names(api, dateRange={"relative": "7d"}) == []  # the seeded sessions are from 2023
    reply = api.post("/v1/sessions", json={"session_name": "recent"})  # starts now
    assert reply.status_code == 200, reply.text
    assert names(api, dateRange={"relative": "7d"}) == ["recent"]


def test_a_session_made_up_from_its_events_is_listed(api: Api) -> None:
    reply = api.post("/v1/events", json={"event_type": "model", "inputs": {}, "event_name": "lonely",
                                         "start_time": T, "end_time": T + 7, "metadata": {"total_tokens": 3}})
    assert reply.status_code == 200, reply.text
    [summary] = search(api)["sessions"]
    assert (summary["num_events"], summary["total_tokens"], summary["duration"]) == (1, 3, 7)
    assert summary["session_id"] == api.get(f"/v1/events/{reply.json()['event_id']}").json()["event"]["session_id"]


# Bad bodies: 400 naming the field --------------------------------------------------------------

BAD_BODIES: list[tuple[str, Any, str]] = [
    ("unknown key", {"foo": 1}, "foo"),
    ("projections are not allowed", {"projections": ["event_name"]}, "projections"),
    ("unknown filter key", {"filters": [{"field": "event_name", "operator": "is", "value": "x", "op": 1}]},
     "filters[0].op"),
    ("filters not a list", {"filters": {"field": "event_name"}}, "filters"),
    ("filter not an object", {"filters": ["event_name"]}, "filters[0]"),
    ("unknown field", {"filters": [{"field": "colour", "operator": "is", "value": "x"}]}, "filters[0].field"),
    ("unknown operator", {"filters": [{"field": "event_name", "operator": "bigger", "value": "x"}]},
     "filters[0].operator"),
    ("missing value", {"filters": [{"field": "event_name", "operator": "is"}]}, "filters[0].value"),
    ("date range not an object", {"dateRange": "7d"}, "dateRange"),
    ("date range bad $gte", {"dateRange": {"$gte": "soon"}}, "dateRange.$gte"),
    ("date range relative and more", {"dateRange": {"relative": "7d", "$lte": T}}, "dateRange"),
    ("date range bad relative", {"dateRange": {"relative": "7 days"}}, "dateRange.relative"),
    ("date range missing end", {"dateRange": {"start_time": iso(T)}}, "dateRange.end_time"),
    ("date range epoch", {"dateRange": {"start_time": T, "end_time": T}}, "dateRange.start_time"),
    ("date range reversed", {"dateRange": {"start_time": iso(T + 1), "end_time": iso(T)}}, "dateRange"),
    ("sort_by unknown", {"sort_by": "cheapest"}, "sort_by"),
    ("sort_by not a string", {"sort_by": 1}, "sort_by"),
    ("sort_by case", {"sort_by": "Cost"}, "sort_by"),
    ("sort_order unknown", {"sort_order": "up"}, "sort_order"),
    ("sort_order upper", {"sort_order": "DESC"}, "sort_order"),
    ("limit zero", {"limit": 0}, "limit"),
    ("limit too big", {"limit": 501}, "limit"),
    ("limit string", {"limit": "5"}, "limit"),
    ("limit bool", {"limit": True}, "limit"),
    ("limit fraction", {"limit": 1.5}, "limit"),
    ("page zero", {"page": 0}, "page"),
    ("page negative", {"page": -1}, "page"),
    ("page huge", {"page": 10**12}, "page"),
]


@pytest.mark.parametrize(("label", "body", "field"), BAD_BODIES, ids=[b[0] for b in BAD_BODIES])
def test_bad_body_is_400_naming_the_field(api: Api, label: str, body: Any, field: str) -> None:
    error = assert_error(api.post(PATH, json=body), 400, field)
    assert error["errorCode"] == "VALIDATION_ERROR"


@pytest.mark.parametrize(("raw", "fragment"), [
    (b"", "empty"), (b"{bad", "not valid JSON"), (b"[]", "body"), (b"null", "body"), (b'"x"', "body"),
    (b'{"limit": NaN}', "not valid JSON"),
])  # fmt: skip
def test_malformed_body_is_400(api: Api, raw: bytes, fragment: str) -> None:
    assert_error(api.post(PATH, content=raw, headers={"Content-Type": "application/json"}), 400, fragment)


def test_wrong_content_type_is_415(api: Api) -> None:
    assert_error(api.post(PATH, content=b"{}", headers={"Content-Type": "application/xml"}), 415, "Content-Type")


def test_valid_edges_are_accepted(api: Api, seeded: Seeded) -> None:
    assert search(api, limit=1.0, page=1.0)["limit"] == 1  # integral floats are integers
    assert search(api, filters=[], dateRange=None, sort_by=None, sort_order=None)["limit"] == 50  # null = default


# Auth and isolation ----------------------------------------------------------------------------


def test_keys(client: TestClient, api: Api, ingest: Api, seeded: Seeded) -> None:
    for path, method in ((PATH, "POST"), ("/v1/whoami", "GET")):
        assert_error(client.request(method, path, json={}), 401, "Authorization")
        assert_error(client.request(method, path, json={}, headers={"Authorization": "Bearer hh_nope"}), 401, "API key")
        assert_error(client.request(method, path, json={}, headers={"Authorization": "Basic abc"}), 401)
        assert_error(ingest.request(method, path, json={}), 403, "ingestion key")


def test_other_projects_sessions_never_appear(api: Api, api_b: Api, seeded: Seeded) -> None:
    assert search(api_b) == {"sessions": [], "totalSessions": 0, "page": 1, "limit": 50}
    # B logs events under A's session id: B gets its own session; A's summary does not change.
    before = search(api)
    add_events(api_b, seeded.ids["chat"], {"start_time": T, "end_time": T + 99_000, "metadata": {"cost": 100}})
    assert search(api) == before
    [theirs] = search(api_b)["sessions"]
    assert (theirs["session_id"], theirs["num_events"], theirs["cost"]) == (seeded.ids["chat"], 1, 100)


# Routing next to the other session routes ------------------------------------------------------


def test_session_routes_around_search_still_work(api: Api, seeded: Seeded) -> None:
    sid = seeded.ids["chat"]
    assert api.get(f"/v1/sessions/{sid}").json()["event_id"] == sid
    assert_error(api.get(PATH), 400, "session_id")  # GET still means "a session by id"
    assert_error(api.delete(PATH), 400, "session_id")
    assert search(api)["totalSessions"] == 3  # nothing was deleted
    new = start_session(api, "later", T + 999_000)
    assert names(api, limit=1) == ["later"] and new["event_name"] == "later"


# whoami ----------------------------------------------------------------------------------------


def test_whoami_names_the_keys_project(api: Api, api_b: Api, seeded: Seeded) -> None:
    reply = api.get("/v1/whoami")
    assert reply.status_code == 200, reply.text
    assert reply.json() == {"project_id": seeded.project_id, "project_name": "project-a", "key_kind": "project"}
    mine_b = api_b.get("/v1/whoami").json()
    assert mine_b["project_name"] == "project-b" and mine_b["key_kind"] == "project"
    assert mine_b["project_id"] != seeded.project_id
    uuid.UUID(mine_b["project_id"])


# OpenAPI ---------------------------------------------------------------------------------------


def test_openapi_documents_both_routes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    search_op = doc["paths"][PATH]["post"]
    ref = search_op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/SessionSearchRequest"
    request = schemas["SessionSearchRequest"]
    assert request["additionalProperties"] is False
    assert set(request["properties"]) == {"filters", "dateRange", "sort_by", "sort_order", "limit", "page"}
    sort_by = [branch for branch in request["properties"]["sort_by"]["anyOf"] if "enum" in branch]
    assert [set(b["enum"]) for b in sort_by] == [{"start_time", "duration", "event_name", "num_events", "cost",
                                                  "total_tokens"}]
    assert request["properties"]["limit"]["anyOf"][0]["maximum"] == 500
    ok = search_op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok == "#/components/schemas/SessionSearchResponse"
    assert set(schemas["SessionSummaryRecord"]["properties"]) == SUMMARY_KEYS
    assert {"400", "401", "403"} <= set(search_op["responses"])
    assert search_op["security"] == [{"BearerAuth": []}] and search_op["summary"]

    whoami = doc["paths"]["/v1/whoami"]["get"]
    assert whoami["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/WhoAmIResponse")
    assert set(schemas["WhoAmIResponse"]["properties"]) == {"project_id", "project_name", "key_kind"}
    assert {"401", "403"} <= set(whoami["responses"]) and whoami["security"] == [{"BearerAuth": []}]
    assert schemas["ErrorResponse"]["required"]
