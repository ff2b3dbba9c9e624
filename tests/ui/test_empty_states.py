"""Empty states of the Sessions and Events pages: a project with no data shows the exact lines
that send a first trace to this server (its real address, the key command for this project, the
HoneyHive SDK and OpenTelemetry settings) and gives way to the data when it arrives; a list
emptied by filters or a date range says so and offers to clear them."""

from __future__ import annotations

import json
from urllib.parse import quote

from playwright.sync_api import Page, expect

from tests.ui.conftest import Screens, UiServer, sign_in
from tests.ui.shell_helpers import new_project, send_session, sign_in_as


def test_an_empty_project_shows_how_to_send_a_first_trace(page: Page, ui: UiServer, screens: Screens) -> None:
    project, key = new_project(ui, "empty")
    sign_in_as(page, ui, key, project)
    origin = page.evaluate("() => location.origin")
    assert origin == ui.url

    panel = page.get_by_role("region", name="Send a first trace")
    expect(panel).to_be_visible()
    expect(panel.get_by_role("heading", level=2)).to_have_text(f"No sessions in project {project} yet")
    expect(panel.locator(".empty-origin")).to_have_text(origin)
    expect(page.get_by_label("Mint a key")).to_have_text(f"tracehive keys create --project {project}")
    sdk = page.get_by_label("HoneyHive SDK environment")
    expect(sdk).to_contain_text(f"export HH_API_URL={origin}\n")
    expect(sdk).to_contain_text("export HH_API_KEY=hh_...")
    expect(page.get_by_label("HoneyHive tracer")).to_contain_text(f'server_url="{origin}"')
    otel = page.get_by_label("OpenTelemetry environment")
    expect(otel).to_contain_text(f"export OTEL_EXPORTER_OTLP_TRACES_ENDPOINT={origin}/v1/traces")
    expect(otel).to_contain_text('OTEL_EXPORTER_OTLP_TRACES_HEADERS="Authorization=Bearer%20hh_..."')
    # Not an empty table, and no "match these filters": nothing was filtered.
    expect(page.locator(".table-wrap")).to_be_hidden()
    expect(page.get_by_text("match these filters")).to_have_count(0)
    screens.take(page, "first-trace-sessions")

    # The Events page says the same for events.
    page.get_by_role("link", name="Events", exact=True).click()
    expect(panel.get_by_role("heading", level=2)).to_have_text(f"No events in project {project} yet")
    expect(page.get_by_label("Mint a key")).to_have_text(f"tracehive keys create --project {project}")
    expect(page.get_by_label("OpenTelemetry environment")).to_contain_text(f"{origin}/v1/traces")

    # The first trace replaces the panel on the sessions list by itself (it polls).
    page.get_by_role("link", name="Sessions", exact=True).click()
    expect(panel).to_be_visible()
    send_session(ui, key, "first-ever", [{"event_type": "tool", "event_name": "hello"}])
    expect(page.get_by_role("link", name="first-ever", exact=True)).to_be_visible()
    expect(panel).to_have_count(0)
    expect(page.locator(".table-wrap")).to_be_visible()


def test_a_project_name_that_needs_quoting_is_quoted(page: Page, ui: UiServer) -> None:
    project, key = new_project(ui, "my app")
    sign_in_as(page, ui, key, project)
    expect(page.get_by_label("Mint a key")).to_have_text(f"tracehive keys create --project '{project}'")


def test_no_match_for_the_filters_says_so_and_clears_them(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    filters = quote(json.dumps([{"field": "event_name", "operator": "is", "value": "no-such-session"}]))
    page.goto(f"{ui.url}/#/sessions?filters={filters}&range=24h")
    message = page.get_by_text("No sessions match these filters and this time range.")
    expect(message).to_be_visible()
    expect(page.get_by_role("region", name="Send a first trace")).to_have_count(0)
    screens.take(page, "no-match")

    page.get_by_role("button", name="Clear filters").click()
    expect(page.get_by_role("link", name="customer-support-agent", exact=True)).to_be_visible()
    expect(message).to_have_count(0)
    expect(page.locator(".chip")).to_have_count(0)
    expect(page.get_by_label("Date range")).to_have_value("all")
    assert "filters=" not in page.url and "range=" not in page.url

    # The same on the Events page, with a filter added through the bar.
    page.get_by_role("link", name="Events", exact=True).click()
    page.get_by_label("Filter field").fill("event_name")
    page.get_by_label("Filter operator").select_option("is")
    page.get_by_label("Filter value").fill("no-such-event")
    page.get_by_role("button", name="Add filter").click()
    expect(page.get_by_text("No events match these filters and this time range.")).to_be_visible()
    page.get_by_role("button", name="Clear filters").click()
    expect(page.locator("tbody tr").first).to_be_visible()
    expect(page.locator(".chip")).to_have_count(0)


def test_a_filter_on_an_empty_project_still_shows_the_first_trace_lines(page: Page, ui: UiServer) -> None:
    project, key = new_project(ui, "empty-filtered")
    sign_in_as(page, ui, key, project)
    expect(page.get_by_role("region", name="Send a first trace")).to_be_visible()
    page.get_by_label("Date range").select_option("1h")
    assert "range=1h" in page.url
    expect(page.get_by_role("region", name="Send a first trace")).to_be_visible()
    expect(page.get_by_text("match these filters")).to_have_count(0)


def test_only_session_rows_so_far(page: Page, ui: UiServer) -> None:
    """Sessions started but no events yet: the Events page says the session rows are hidden."""
    project, key = new_project(ui, "sessions-only")
    send_session(ui, key, "started-only")
    sign_in_as(page, ui, key, project, "#/events")
    expect(page.get_by_text("There are only session rows so far, and they are hidden.")).to_be_visible()
    page.get_by_role("button", name="Show session rows").click()
    expect(page.get_by_label("Show session rows")).to_be_checked()
    expect(page.get_by_role("link", name="started-only", exact=True)).to_be_visible()
