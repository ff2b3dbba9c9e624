"""The sessions list: columns, markers, sorting, paging, date range, filter bar, live updates."""

from __future__ import annotations

import re
import time
import uuid

from playwright.sync_api import Page, expect

from tests.ui.conftest import Screens, UiServer, sign_in
from tests.ui.seed import BATCH_JOBS


def row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator("tbody tr").filter(has=page.get_by_role("link", name=name, exact=True))


def test_columns_and_markers(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    support = row(page, "customer-support-agent")
    expect(support).to_be_visible()
    headers = page.locator("thead th")
    expect(headers).to_have_text(
        ["Name", "Source", "Started ▼", "Duration", "Events", "Cost", "Tokens", "Error", "Feedback"]
    )
    # name, source, start, duration, events, cost, tokens, error marker, feedback marker
    expect(support.locator("td")).to_have_text(
        [
            "customer-support-agent",
            "production",
            re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
            "2.42 s",
            "6",
            "$0.00046",
            "976",
            "error",
            "feedback",
        ]
    )
    expect(support.locator(".badge-error")).to_be_visible()
    expect(support.locator(".badge-feedback")).to_be_visible()
    evaluation = row(page, "nightly-eval")
    expect(evaluation.locator("td").nth(1)).to_have_text("evaluation")
    expect(evaluation.locator("td").nth(4)).to_have_text("3")
    expect(evaluation.locator(".badge-error")).to_have_count(0)
    expect(evaluation.locator(".badge-feedback")).to_have_count(0)
    expect(row(page, "big-session").locator("td").nth(4)).to_have_text("10,000")
    # Newest first by default: the support session was seeded last.
    expect(page.locator("tbody tr").first).to_contain_text("customer-support-agent")
    screens.take(page, "sessions")


def test_sorting_by_a_column_both_ways(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    events_header = page.get_by_role("button", name="Sort by events")
    events_header.click()
    first = page.locator("tbody tr").first
    expect(first).to_contain_text("big-session")
    expect(page.locator("th.sortable[aria-sort=descending]")).to_contain_text("Events")
    assert "sort=num_events" in page.url
    screens.take(page, "sorted-by-events-desc")
    events_header.click()
    expect(page.locator("th.sortable[aria-sort=ascending]")).to_contain_text("Events")
    expect(first.locator("td").nth(4)).to_have_text(re.compile(r"^[01]$"))  # live tests add empty sessions
    expect(page.locator("tbody tr").last).to_contain_text("big-session")

    page.get_by_role("button", name="Sort by name").click()
    expect(first).to_contain_text("batch-job-01")


def test_pages_and_date_range(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    page.get_by_label("Rows per page").select_option("10")
    pager = page.locator(".pager-text")
    expect(pager).to_have_text(re.compile(r"^Page 1 of 2 · \d+ sessions$"))
    expect(page.locator("tbody tr")).to_have_count(10)
    first_page = set(page.locator("tbody td.col-name").all_inner_texts())
    page.get_by_role("button", name="Next ›").click()
    expect(pager).to_have_text(re.compile(r"^Page 2 of 2 "))
    expect(page.get_by_role("button", name="Next ›")).to_be_disabled()
    second_page = set(page.locator("tbody td.col-name").all_inner_texts())
    assert second_page and not first_page & second_page
    assert len(first_page | second_page) >= BATCH_JOBS + 4
    screens.take(page, "page-2")

    # The last hour holds the demo sessions but not the big session (3 hours old).
    page.get_by_label("Date range").select_option("1h")
    expect(pager).to_have_text(re.compile(r"^Page 1 of"))
    expect(row(page, "customer-support-agent")).to_be_visible()
    expect(row(page, "big-session")).to_have_count(0)
    assert "range=1h" in page.url


def test_filter_bar_suggests_fields_and_filters(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    field = page.get_by_label("Filter field")
    field.click()
    suggestions = page.get_by_role("listbox", name="Field suggestions")
    expect(suggestions).to_be_visible()
    expect(suggestions.get_by_role("option").first).to_be_visible()
    # Suggestions come from GET /v1/events/schema: paths inside the JSON fields of seen events.
    field.fill("metadata.co")
    expect(suggestions.get_by_role("option", name=re.compile(r"^metadata\.cost"))).to_be_visible()
    screens.take(page, "field-suggestions")
    suggestions.get_by_role("option", name=re.compile(r"^metadata\.cost")).click()
    expect(field).to_have_value("metadata.cost")

    field.fill("source")
    page.get_by_label("Filter operator").select_option("is")
    page.get_by_label("Filter value").fill("evaluation")
    page.get_by_label("Filter value").press("Enter")
    expect(page.locator(".chip-text")).to_have_text(["source is evaluation"])
    expect(row(page, "nightly-eval")).to_be_visible()
    expect(row(page, "customer-support-agent")).to_have_count(0)
    expect(page.locator(".pager-text")).to_have_text("Page 1 of 1 · 1 session")
    assert "filters=" in page.url
    screens.take(page, "filtered")

    # The filtered view is a link: opening it again applies the same filter.
    page.goto(page.url)
    page.reload()
    expect(page.locator(".chip-text")).to_have_text(["source is evaluation"])
    expect(page.locator(".pager-text")).to_have_text("Page 1 of 1 · 1 session")

    page.get_by_role("button", name="Remove filter source is evaluation").click()
    expect(page.locator(".chip")).to_have_count(0)
    expect(row(page, "customer-support-agent")).to_be_visible()

    # A numeric comparison in the same language.
    field.fill("duration")
    page.get_by_label("Filter operator").select_option("greater than")
    page.get_by_label("Filter value").fill("2000")
    page.get_by_role("button", name="Add filter").click()
    expect(row(page, "customer-support-agent")).to_be_visible()
    expect(row(page, "batch-job-01")).to_have_count(0)


def test_new_sessions_appear_without_a_reload(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    expect(row(page, "customer-support-agent")).to_be_visible()
    page.evaluate("() => { window.__sameDocument = true; }")
    name = f"late-arrival-{uuid.uuid4().hex[:8]}"
    with ui.server.client(ui.key) as client:
        reply = client.post(
            "/v1/sessions",
            json={"session_name": name, "source": "live-test", "start_time": time.time() * 1000},
        )
        assert reply.status_code == 200, reply.text
    expect(row(page, name)).to_be_visible()
    expect(page.locator("tbody tr").first).to_contain_text(name)
    assert page.evaluate("() => window.__sameDocument") is True  # no reload happened
    screens.take(page, "new-session-arrived")
