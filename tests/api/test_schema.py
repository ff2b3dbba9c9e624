"""``GET /v1/events/schema`` (contract 4.10): the field names seen per event type in the matching
events, as filterable names; date range and evaluation_id; isolation; auth; not shadowed."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.api.test_export import T, Seeded, iso, seed
from tests.helpers import Api, assert_error
from tracehive.query.filters import parse_field

PATH = "/v1/events/schema"


@pytest.fixture
def seeded(api: Api) -> Seeded:
    return seed(api)


def schema(api: Api, params: Any = None) -> dict[str, Any]:
    reply = api.get(PATH, params=params)
    assert reply.status_code == 200, reply.text
    data = reply.json()
    assert set(data) == {"fields", "datasets", "mappings"} and isinstance(data["datasets"], list)
    return data


def by_type(data: dict[str, Any]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for field in data["fields"]:
        out.setdefault(field["event_type"], set()).add(field["name"])
    return out


def test_fields_per_event_type(api: Api, seeded: Seeded) -> None:
    data = schema(api)
    fields = by_type(data)
    assert set(fields) == {"model", "tool", "chain", "session"}
    model = fields["model"]
    assert {"event_id", "event_name", "start_time", "duration", "config", "config.model", "metadata",
            "metadata.cost", "metadata.tags", "feedback.rating", "inputs.chat_history", "outputs.content"} <= model
    assert "error" not in model and "error" in fields["tool"]  # columns only where they hold a value
    assert "user_properties.user_id" in fields["chain"] and "user_properties.user_id" not in model
    assert not any(name.startswith("inputs.chat_history.") for name in model)  # arrays are not followed
    # Sorted by type then name; mappings group the same pairs by type.
    pairs = [(f["event_type"], f["name"]) for f in data["fields"]]
    assert pairs == sorted(pairs) and len(pairs) == len(set(pairs))
    assert {m["field_name"] for m in data["mappings"]["tool"]} == fields["tool"]
    assert all(m["event_type"] == "tool" for m in data["mappings"]["tool"])
    # Every name is a field the filter language accepts.
    for name in {f["name"] for f in data["fields"]}:
        parse_field(name, "name")


def test_every_key_is_reported_as_a_field_that_filters(api: Api) -> None:
    """Keys a bare segment cannot hold are quoted (issue 16, point 9); each reported name, used as
    a filter, finds the event; keys no segment can hold are left out."""
    sid = str(uuid.uuid4())
    event = {"event_type": "tool", "inputs": {}, "event_name": "odd",
             "metadata": {"a.b": {"c": 1}, "with space": 1, "0": 1, "ok-key_1": {"deep": {"er": True}},
                          "null": None, "empty": {}, "list": [{"x": 1}], 'q"uote': 1, "back\\slash": 1}}
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [event]}).status_code == 200
    names = by_type(schema(api))["tool"]
    metadata = {n for n in names if n.startswith("metadata.")}
    assert metadata == {"metadata.ok-key_1", "metadata.ok-key_1.deep", "metadata.ok-key_1.deep.er",
                        "metadata.empty", "metadata.list", 'metadata."a.b"', 'metadata."a.b".c',
                        'metadata."with space"', 'metadata."0"'}
    assert "inputs" not in names  # empty
    for name in metadata:
        found = api.post("/v1/events/search", json={"filters": [{"field": name, "operator": "exists"}]})
        assert found.status_code == 200, found.text
        assert [e["event_name"] for e in found.json()["events"]] == ["odd"], name
    equal = api.post("/v1/events/search", json={"filters": [
        {"field": 'metadata."a.b".c', "operator": "is", "value": 1, "type": "number"}]}).json()
    assert [e["event_name"] for e in equal["events"]] == ["odd"]
    # A bare "a.b" is the path a -> b, which this event does not have.
    assert api.post("/v1/events/search", json={"filters": [
        {"field": "metadata.a.b.c", "operator": "exists"}]}).json()["events"] == []


def test_date_range_and_evaluation_id(api: Api, seeded: Seeded) -> None:
    sid = str(uuid.uuid4())
    run = {"event_type": "model", "inputs": {}, "event_name": "run", "start_time": T + 10_000,
           "metadata": {"run_id": "r1", "only_in_run": 1}}
    assert api.post(f"/v1/sessions/{sid}/events/batch", json={"events": [run]}).status_code == 200
    assert "metadata.only_in_run" in by_type(schema(api))["model"]
    assert set(by_type(schema(api, {"evaluation_id": "r1"}))) == {"model"}
    assert "metadata.only_in_run" in by_type(schema(api, {"evaluation_id": "r1"}))["model"]
    assert by_type(schema(api, {"evaluation_id": "none"})) == {}
    early = by_type(schema(api, [("dateRange[$gte]", iso(T)), ("dateRange[$lte]", iso(T + 1000))]))
    assert set(early) == {"session", "model"} and "metadata.only_in_run" not in early["model"]
    assert set(by_type(schema(api, {"dateRange": iso(T + 5000)}))) == {"model", "session"}  # the run's session
    assert set(by_type(schema(api, {"dateRange": '{"$gte": %d, "$lte": %d}' % (T + 2000, T + 2000)}))) == {"tool"}


def test_empty_project(api: Api) -> None:
    assert schema(api) == {"fields": [], "datasets": [], "mappings": {}}


@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"dateRange": "yesterday"}, "dateRange: 'yesterday' is not a datetime"),
        ([("dateRange[$gte]", "x")], "dateRange.$gte"),
        ([("evaluation_id", "a"), ("evaluation_id", "b")], "evaluation_id: must be a string"),
        ([("filters[0][field]", "nope"), ("filters[0][operator]", "exists")], "filters[0].field: unknown field"),
        ("a" + "[b]" * 10 + "=1", "nests deeper"),
    ],
)
def test_bad_params_are_400(api: Api, params: Any, fragment: str) -> None:
    reply = api.get(PATH + "?" + params) if isinstance(params, str) else api.get(PATH, params=params)
    assert_error(reply, 400, fragment)


def test_projects_are_isolated(api: Api, api_b: Api) -> None:
    seed(api)
    sid = str(uuid.uuid4())
    event = {"event_type": "tool", "inputs": {}, "metadata": {"only_b": 1}}
    assert api_b.post(f"/v1/sessions/{sid}/events/batch", json={"events": [event]}).status_code == 200
    assert "metadata.only_b" not in by_type(schema(api)).get("tool", set())
    assert "metadata.only_b" in by_type(schema(api_b))["tool"]
    assert "metadata.cost" not in by_type(schema(api_b))["tool"]


def test_read_needs_a_project_key(client: TestClient, ingest: Api) -> None:
    assert_error(ingest.get(PATH), 403, "ingestion key")
    assert_error(client.get(PATH), 401, "Authorization")


def test_not_shadowed_by_get_event(api: Api, seeded: Seeded) -> None:
    assert schema(api)["fields"]
    assert api.get(f"/v1/events/{seeded.ids['answer']}").status_code == 200


def test_openapi_documents_schema(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    operation = doc["paths"][PATH]["get"]
    assert {"dateRange", "evaluation_id"} <= {p["name"] for p in operation["parameters"]}
    assert operation["security"] == [{"BearerAuth": []}]


def test_datasets_lists_the_project_dataset_names(api: Api, api_b: Api) -> None:
    for name in ("golden", "regressions"):
        reply = api.post("/v1/datasets", json={"name": name})
        assert reply.status_code == 200, reply.text
    assert schema(api)["datasets"] == ["golden", "regressions"]
    assert schema(api_b)["datasets"] == []
