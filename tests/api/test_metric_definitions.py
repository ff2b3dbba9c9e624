"""Metric definition routes (``/v1/metrics*``, experiments-wire section 8; ``/metrics`` is
Prometheus') through the real app, on each backend."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from tests.helpers import Api, assert_error

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CONCISENESS = {"name": "conciseness", "type": "PYTHON", "criteria": "def f(e): return 1", "return_type": "float",
               "needs_ground_truth": False}
FILTERS = {"filterArray": [{"field": "event_type", "operator": "is", "value": "model", "type": "string"},
                           {"field": "metadata.cost", "operator": "exists", "value": None, "type": "number"}]}


def ok(reply: Any) -> Any:
    assert reply.status_code == 200, reply.text
    return reply.json()


def create(api: Api, **body: Any) -> str:
    reply = ok(api.post("/v1/metrics", json={**CONCISENESS, **body}))
    assert reply["inserted"] is True
    return str(reply["metric_id"])


def metrics(api: Api, **params: Any) -> list[dict[str, Any]]:
    return ok(api.get("/v1/metrics", params=params or None))["metrics"]  # type: ignore[no-any-return]


def one(api: Api, metric_id: str) -> dict[str, Any]:
    [found] = metrics(api, id=metric_id)
    return found


def test_create_fills_in_what_metric_item_requires(api: Api) -> None:
    metric_id = create(api)
    assert uuid.UUID(metric_id).version == 4
    item = one(api, metric_id)
    assert item == {
        "id": metric_id, "name": "conciseness", "type": "PYTHON", "criteria": "def f(e): return 1",
        "description": None, "return_type": "float", "enabled_in_prod": False, "sampling_percentage": 100,
        "model_provider": None, "model_name": None, "scale": None, "threshold": None, "categories": None,
        "needs_ground_truth": False, "child_metrics": None, "filters": {"filterArray": []},
        "created_at": item["created_at"], "updated_at": item["updated_at"],
    }
    assert ISO.match(item["created_at"]) and ISO.match(item["updated_at"])


def test_create_with_every_field(api: Api) -> None:
    full = {"name": "judge", "type": "LLM", "criteria": "Rate {{outputs}}", "description": "an LLM judge",
            "return_type": "categorical", "enabled_in_prod": True, "sampling_percentage": 12.5,
            "model_provider": "openai", "model_name": "gpt-4o", "scale": 5, "threshold": {"min": 3, "max": 5},
            "categories": [{"category": "good", "score": 1}, {"category": "bad", "score": None}],
            "needs_ground_truth": True, "child_metrics": [{"name": "x", "weight": 0.5}], "filters": FILTERS}
    item = one(api, create(api, **full))
    assert {k: item[k] for k in full} == full


def test_list_filters_by_type_and_id(api: Api) -> None:
    python = create(api)
    llm = create(api, name="judge", type="LLM", criteria="Rate it")
    assert [m["id"] for m in metrics(api)] == [python, llm]
    assert [m["id"] for m in metrics(api, type="LLM")] == [llm]
    assert metrics(api, type="HUMAN") == []
    assert [m["id"] for m in metrics(api, id=llm.upper())] == [llm]
    assert metrics(api, id=str(uuid.uuid4())) == [] and metrics(api, id="nope") == []
    assert metrics(api, id=python, type="LLM") == []


@pytest.mark.parametrize("form", ["legacy", "path"])
def test_update_replaces_the_fields_sent(api: Api, form: str) -> None:
    metric_id = create(api)
    change = {"description": "short answers", "filters": FILTERS, "sampling_percentage": 50}
    if form == "legacy":
        reply = ok(api.put("/v1/metrics", json={**change, "id": metric_id}))
    else:
        reply = ok(api.put(f"/v1/metrics/{metric_id}", json=change))
    assert reply == {"updated": True}
    item = one(api, metric_id)
    assert {k: item[k] for k in change} == change
    assert item["criteria"] == CONCISENESS["criteria"] and item["name"] == "conciseness"
    ok(api.put(f"/v1/metrics/{metric_id}", json={"name": "brevity"}))
    assert one(api, metric_id)["name"] == "brevity"


@pytest.mark.parametrize("form", ["legacy", "path"])
def test_delete(api: Api, form: str) -> None:
    metric_id = create(api)
    kept = create(api, name="kept")
    reply = ok(api.delete("/v1/metrics", params={"metric_id": metric_id}) if form == "legacy"
               else api.delete(f"/v1/metrics/{metric_id}"))
    assert reply == {"deleted": True}
    assert [m["id"] for m in metrics(api)] == [kept]
    assert_error(api.delete(f"/v1/metrics/{metric_id}"), 404, metric_id)


def test_the_prometheus_endpoint_is_untouched(api: Api) -> None:
    assert_error(api.get("/metrics"), 403, "TRACEHIVE_METRICS_TOKEN")


# Versions --------------------------------------------------------------------------------------


def test_versions_are_numbered_snapshots_and_deploying_one_makes_it_live(api: Api) -> None:
    metric_id = create(api)
    assert ok(api.get(f"/v1/metrics/{metric_id}/versions")) == {"success": True, "data": []}
    content = {"name": "conciseness", "type": "PYTHON", "criteria": "def f(e): return 2"}
    first = ok(api.post(f"/v1/metrics/{metric_id}/versions", json={"message": "score 2", "content": content}))
    assert first["success"] is True
    v1 = first["data"]
    assert (v1["name"], v1["message"], v1["deployed"]) == ("v1", "score 2", False)
    assert re.fullmatch(r"[0-9a-f]{64}", v1["full_sha"]) and ISO.match(v1["date"])
    assert v1["content"]["criteria"] == "def f(e): return 2" and v1["content"]["return_type"] == "float"
    assert one(api, metric_id)["criteria"] == CONCISENESS["criteria"]  # not live yet
    v2 = ok(api.post(f"/v1/metrics/{metric_id}/versions", json={
        "message": "judge", "content": {**content, "name": "judged", "type": "LLM", "criteria": "Rate"},
        "deploy_immediately": True}))["data"]
    assert (v2["name"], v2["deployed"]) == ("v2", True) and v2["full_sha"] != v1["full_sha"]
    live = one(api, metric_id)
    assert (live["name"], live["type"], live["criteria"]) == ("judged", "LLM", "Rate")
    deployed = ok(api.post(f"/v1/metrics/{metric_id}/versions/v1/deploy"))
    assert deployed["data"]["name"] == "v1" and deployed["data"]["deployed"] is True
    assert one(api, metric_id)["criteria"] == "def f(e): return 2"
    history = ok(api.get(f"/v1/metrics/{metric_id}/versions"))["data"]
    assert [(v["name"], v["deployed"]) for v in history] == [("v1", True), ("v2", False)]
    assert_error(api.post(f"/v1/metrics/{metric_id}/versions/v9/deploy"), 404, "v9")


# Bad input -------------------------------------------------------------------------------------


def test_unknown_and_foreign_ids_are_404(api: Api, api_b: Api) -> None:
    metric_id = create(api, description="A's")
    before = metrics(api)
    unknown = str(uuid.uuid4())
    calls = [("PUT", "/v1/metrics", {"id": unknown, "description": "x"}, None),
             ("PUT", f"/v1/metrics/{unknown}", {"description": "x"}, None),
             ("DELETE", "/v1/metrics", None, {"metric_id": unknown}),
             ("DELETE", f"/v1/metrics/{unknown}", None, None),
             ("GET", f"/v1/metrics/{unknown}/versions", None, None),
             ("POST", f"/v1/metrics/{unknown}/versions", {"message": "m", "content": CONCISENESS}, None),
             ("POST", f"/v1/metrics/{unknown}/versions/v1/deploy", None, None)]
    for method, path, body, params in calls:
        assert_error(api.request(method, path, json=body, params=params), 404, f"metric {unknown}")
        b_path = path.replace(unknown, metric_id)
        b_body = {**body, "id": metric_id} if body and "id" in body else body
        b_params = {"metric_id": metric_id} if params else None
        assert_error(api_b.request(method, b_path, json=b_body, params=b_params), 404, metric_id)
    assert metrics(api_b) == [] and metrics(api_b, id=metric_id) == []
    assert metrics(api) == before


@pytest.mark.parametrize(("method", "body", "field"), [
    ("POST", {"type": "PYTHON", "criteria": "c"}, "name"),
    ("POST", {"name": "m", "criteria": "c"}, "type"),
    ("POST", {"name": "m", "type": "PYTHON"}, "criteria"),
    ("POST", {**CONCISENESS, "criteria": 1}, "criteria"),
    ("POST", {**CONCISENESS, "enabled_in_prod": "yes"}, "enabled_in_prod"),
    ("POST", {**CONCISENESS, "sampling_percentage": "100"}, "sampling_percentage"),
    ("POST", {**CONCISENESS, "sampling_percentage": 101}, "sampling_percentage"),
    ("POST", {**CONCISENESS, "scale": 2.5}, "scale"),
    ("POST", {**CONCISENESS, "threshold": [1]}, "threshold"),
    ("POST", {**CONCISENESS, "filters": {}}, "filters.filterArray"),
    ("POST", {**CONCISENESS, "filters": {"filterArray": [{"field": "a"}]}}, "filters.filterArray[0]"),
    ("PUT", {"description": "no id"}, "id"),
    ("PUT", {"id": 1}, "id"),
    ("PUT", {"id": "{m}", "needs_ground_truth": 1}, "needs_ground_truth"),
])
def test_wrong_types_and_missing_fields_are_400_naming_the_field(api: Api, method: str, body: Any, field: str) -> None:
    metric_id = create(api)
    before = metrics(api)
    if isinstance(body.get("id"), str):
        body = {**body, "id": metric_id}
    reply = assert_error(api.request(method, "/v1/metrics", json=body), 400, field)
    assert reply["errors"][0]["field"].startswith(field), reply
    assert metrics(api) == before


def test_bad_version_bodies_missing_query_ids_and_non_json_are_400(api: Api) -> None:
    metric_id = create(api)
    path = f"/v1/metrics/{metric_id}/versions"
    assert_error(api.post(path, json={"content": CONCISENESS}), 400, "message")
    assert_error(api.post(path, json={"message": "m", "content": {"name": "x"}}), 400, "content.type")
    assert_error(api.post(path, json={"message": "m", "content": CONCISENESS, "deploy_immediately": "no"}), 400,
                 "deploy_immediately")
    assert_error(api.delete("/v1/metrics"), 400, "metric_id")
    assert assert_error(api.post("/v1/metrics", content=b"nope"), 400)["errorCode"] == "MALFORMED_JSON"
    assert_error(api.put("/v1/metrics", content=b"{"), 400)
    assert ok(api.get(path))["data"] == []


def test_ingestion_keys_get_403_on_every_metric_route(api: Api, ingest: Api) -> None:
    metric_id = create(api)
    before = metrics(api)
    calls = [("GET", "/v1/metrics", None, None), ("POST", "/v1/metrics", CONCISENESS, None),
             ("PUT", "/v1/metrics", {"id": metric_id, "description": "i"}, None),
             ("PUT", f"/v1/metrics/{metric_id}", {"description": "i"}, None),
             ("DELETE", "/v1/metrics", None, {"metric_id": metric_id}), ("DELETE", f"/v1/metrics/{metric_id}", None, None),
             ("GET", f"/v1/metrics/{metric_id}/versions", None, None),
             ("POST", f"/v1/metrics/{metric_id}/versions", {"message": "m", "content": CONCISENESS}, None),
             ("POST", f"/v1/metrics/{metric_id}/versions/v1/deploy", None, None)]
    for method, path, body, params in calls:
        reply = assert_error(ingest.request(method, path, json=body, params=params), 403, "ingestion key")
        assert reply["errorCode"] == "FORBIDDEN"
    assert metrics(api) == before
