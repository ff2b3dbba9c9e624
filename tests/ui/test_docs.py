"""``/docs`` in Chromium: the bundled Swagger UI renders every route of the API (from the
OpenAPI 3.0 rendition; 3.1 made it say "Unable to render this definition"), under the UI's
strict headers, and the bundle's demo page is not served."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.ui.conftest import UiServer


def test_docs_render_every_route_under_a_strict_policy(page: Page, ui: UiServer) -> None:
    violations: list[str] = []
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    response = page.goto(f"{ui.url}/docs")
    assert response is not None and response.status == 200
    headers = response.headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert "unsafe-inline" not in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    expect(page.locator(".opblock").first).to_be_visible()
    assert page.locator(".opblock").count() >= 20
    assert page.get_by_text("Unable to render this definition").count() == 0
    expect(page.locator(".opblock-summary-path", has_text="/v1/sessions/{session_id}").first).to_be_visible()
    assert not violations, violations


def test_only_what_the_docs_page_needs_is_served(page: Page, ui: UiServer) -> None:
    for path in ("/docs/static/index.html", "/docs/static/swagger-initializer.js", "/docs/static/../../README.md",
                 "/docs/static/swagger-ui.js.map"):
        response = page.request.get(f"{ui.url}{path}")
        assert response.status == 404, path
    assert page.request.get(f"{ui.url}/docs/static/swagger-ui-bundle.js").status == 200
    doc = page.request.get(f"{ui.url}/docs/openapi.json").json()
    assert doc["openapi"] == "3.0.3"
    assert page.request.get(f"{ui.url}/openapi.json").json()["openapi"].startswith("3.1")
