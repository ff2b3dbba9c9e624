"""``/openapi.json`` describes every route with request and response schemas; ``/docs`` renders."""

from __future__ import annotations

from starlette.testclient import TestClient

ROUTES = {
    ("post", "/v1/sessions"): "StartSessionRequest",
    ("post", "/v1/sessions/{session_id}/events/batch"): "SessionEventBatchRequest",
    ("get", "/v1/sessions/{session_id}"): None,
    ("get", "/session/{session_id}"): None,
    ("delete", "/v1/sessions/{session_id}"): None,
    ("post", "/v1/events"): "PostEventRequest",
    ("post", "/v1/events/batch"): "PostEventBatchRequest",
    ("get", "/v1/events/{event_id}"): None,
    ("put", "/v1/events/{event_id}"): "UpdateEventRequest",
    ("delete", "/v1/events/{event_id}"): None,
    ("get", "/healthz"): None,
}


def test_openapi_describes_every_route(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    for (method, path), body_model in ROUTES.items():
        operation = doc["paths"][path][method]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok, (method, path)
        if body_model:
            ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert ref == f"#/components/schemas/{body_model}"
            assert body_model in schemas
        if path != "/healthz":
            assert operation["security"] == [{"BearerAuth": []}]
            assert "400" in operation["responses"] or "404" in operation["responses"]
    strict = schemas["PostEventRequest"]
    assert strict["additionalProperties"] is False
    assert set(strict["required"]) == {"event_type", "inputs"}
    assert schemas["UpdateEventRequest"].get("additionalProperties") is not False


def test_docs_page_renders_with_bundled_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/docs/static/docs-init.js" in page.text and "<script>" not in page.text
    js = client.get("/docs/static/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 100_000


def test_the_session_id_rules_are_documented_where_clients_look(client: TestClient) -> None:
    """Issue 16, point 2: POST /v1/sessions replaces a non-UUID session_id; the path routes refuse
    one. Both are in /openapi.json (the behaviour itself: test_bad_input.py)."""
    doc = client.get("/openapi.json").json()
    start = doc["paths"]["/v1/sessions"]["post"]["description"]
    assert "not a UUID is replaced by a new UUIDv4" in start and "makes two sessions" in start
    assert "answer 400" in start
    assert "400" in doc["paths"]["/v1/sessions/{session_id}/events/batch"]["post"]["responses"]
    assert doc["components"]["schemas"]["PostEventRequest"]["properties"]["duration"]["minimum"] == 0
