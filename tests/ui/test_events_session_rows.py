"""The Events page hides session rows (event_type session) unless "Show session rows" is ticked,
so an OTLP trace's root span does not show twice; the choice is kept in the URL. And cost cells
with no cost say "—", not "$0", on the sessions list and the events page."""

from __future__ import annotations

import json
import secrets
import time
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.ui.conftest import Screens, UiServer
from tests.ui.shell_helpers import new_project, send_session, sign_in_as


def otlp_trace(name: str) -> dict[str, object]:
    """An OTLP/JSON export of one root span with one child, as any OpenTelemetry SDK sends it."""
    now = time.time_ns()
    trace_id, root = secrets.token_hex(16), secrets.token_hex(8)

    def span(span_id: str, span_name: str, parent: str = "", offset: int = 0) -> dict[str, object]:
        return {
            "traceId": trace_id, "spanId": span_id, "parentSpanId": parent, "name": span_name, "kind": 1,
            "startTimeUnixNano": str(now + offset), "endTimeUnixNano": str(now + offset + 50_000_000),
            "attributes": [],
        }

    return {"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "shell-test"}}]},
        "scopeSpans": [{"scope": {"name": "shell-test"},
                        "spans": [span(root, name), span(secrets.token_hex(8), f"{name}-child", root, 1_000_000)]}],
    }]}


def test_session_rows_are_hidden_until_asked_for(page: Page, ui: UiServer, screens: Screens) -> None:
    # A project of its own: the default project's lists are other tests' (newest first...).
    project, key = new_project(ui, "otlp-rows")
    name = f"otlp-root-{secrets.token_hex(4)}"
    with ui.server.client(key) as client:
        reply = client.post("/v1/traces", json=otlp_trace(name))
        assert reply.status_code == 200, reply.text
        found = client.post("/v1/events/search", json={
            "limit": 5, "filters": [{"field": "event_name", "operator": "is", "value": name}]}).json()["events"]
        session_id = found[0]["session_id"]
        in_session = client.post("/v1/events/search", json={
            "limit": 10, "filters": [{"field": "session_id", "operator": "is", "value": session_id}]}).json()
    # The trace is stored as a session row, the root span and its child.
    assert sorted(e["event_type"] for e in in_session["events"]).count("session") == 1
    assert in_session["count"] == 3

    sign_in_as(page, ui, key, project)
    filters = quote(json.dumps([{"field": "session_id", "operator": "is", "value": session_id}]))
    page.goto(f"{ui.url}/#/events?filters={filters}")
    toggle = page.get_by_label("Show session rows")
    expect(toggle).to_be_visible()
    expect(toggle).not_to_be_checked()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("tbody .type-badge.type-session")).to_have_count(0)
    expect(page.locator("tbody .col-name").filter(has_text=name)).to_have_count(2)  # the root and its -child
    expect(page.locator(".page-head [role=status]")).to_have_text("2 events")
    screens.take(page, "session-rows-hidden")

    toggle.check()
    expect(rows).to_have_count(3)
    expect(page.locator("tbody .type-badge.type-session")).to_have_count(1)
    expect(page.locator(".page-head [role=status]")).to_have_text("3 events")
    assert "sessions=1" in page.url and "filters=" in page.url

    # The URL carries the choice: a reload (or a shared link) shows the session rows.
    page.reload()
    expect(page.get_by_label("Show session rows")).to_be_checked()
    expect(rows).to_have_count(3)
    page.get_by_label("Show session rows").uncheck()
    expect(rows).to_have_count(2)
    assert "sessions=1" not in page.url


def test_no_cost_is_a_dash_not_zero_dollars(page: Page, ui: UiServer, screens: Screens) -> None:
    project, key = new_project(ui, "costs")
    send_session(ui, key, "no-cost-session", [
        {"event_type": "tool", "event_name": "free_tool"},
        {"event_type": "model", "event_name": "zero_cost_model", "metadata": {"cost": 0, "total_tokens": 12}},
    ])
    send_session(ui, key, "priced-session", [
        {"event_type": "model", "event_name": "priced_model", "metadata": {"cost": 0.0012, "total_tokens": 30}},
    ])
    sign_in_as(page, ui, key, project)

    def session_cost(name: str):  # type: ignore[no-untyped-def]
        row = page.locator("tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))
        return row.locator("td.col-cost")

    expect(session_cost("no-cost-session")).to_have_text("—")
    expect(session_cost("priced-session")).to_have_text("$0.0012")
    screens.take(page, "sessions-costs")

    page.get_by_role("link", name="Events", exact=True).click()

    def event_cost(name: str):  # type: ignore[no-untyped-def]
        row = page.locator("tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))
        return row.locator("td.col-cost")

    expect(event_cost("free_tool")).to_have_text("—")
    expect(event_cost("zero_cost_model")).to_have_text("—")
    expect(event_cost("priced_model")).to_have_text("$0.0012")
    assert "$0" not in page.locator("tbody td.col-cost").all_inner_texts()
