"""The events search page and the charts page."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

from playwright.sync_api import Page, expect

from tests.ui.conftest import Screens, UiServer, sign_in


def test_events_search_with_the_filter_bar(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui, "#/events")
    expect(page.get_by_role("heading", name="Events")).to_be_visible()
    with ui.server.client(ui.key) as client:
        # Session rows are hidden by default ("Show session rows" brings them back).
        not_sessions = [{"field": "event_type", "operator": "is not", "value": "session"}]
        total = client.post("/v1/events/search", json={"limit": 1, "filters": not_sessions}).json()["count"]
        models = client.post(
            "/v1/events/search",
            json={"limit": 1, "filters": [{"field": "event_type", "operator": "is", "value": "model"}]},
        ).json()["count"]
    expect(page.locator(".page-head [role=status]")).to_have_text(f"{total:,} events")
    expect(page.locator("tbody tr")).to_have_count(50)  # one page
    screens.take(page, "events")

    page.get_by_label("Filter field").fill("event_type")
    page.get_by_label("Filter operator").select_option("is")
    page.get_by_label("Filter value").fill("model")
    page.get_by_role("button", name="Add filter").click()
    expect(page.locator(".page-head [role=status]")).to_have_text(f"{models:,} events")
    badges = page.locator("tbody .type-badge")
    expect(badges.first).to_have_text("model")
    assert set(badges.all_inner_texts()) == {"model"}
    page.get_by_label("Filter field").fill("event_name")
    page.get_by_label("Filter operator").select_option("contains")
    page.get_by_label("Filter value").fill("generate")
    page.get_by_role("button", name="Add filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    screens.take(page, "events-filtered")

    page.get_by_role("link", name="generate_answer").click()
    expect(page.locator(".event-detail .detail-title")).to_have_text("generate_answer")
    assert page.url.endswith(f"#/sessions/{ui.seeded.support_session}/events/{ui.seeded.model_event}")


def test_charts_page(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    page.get_by_role("link", name="Charts").click()
    expect(page.get_by_role("heading", name="Charts")).to_be_visible()
    cards = page.locator("article.chart-card")
    expect(cards.locator("h2")).to_have_text(["Events", "Latency p50", "Latency p95", "Cost", "Tokens"])
    # Grouped by event type: a line per type, named in each legend (session events left out).
    for chart in ("events", "latency-p50", "cost"):
        card = page.locator(f"article[data-chart='{chart}']")
        expect(card.locator(".legend-item")).to_have_text(["chain", "model", "tool"])
        expect(card.locator("path.chart-line[data-group='model']")).to_have_count(1)
    expect(page.locator("article[data-chart='latency-p95'] circle.chart-point").first).to_be_visible()

    # The totals are what the API says for the same 24 hours.
    now = time.time()
    window = {
        "start_time": datetime.fromtimestamp(now - 86_400 + 5, timezone.utc).isoformat(),
        "end_time": datetime.fromtimestamp(now, timezone.utc).isoformat(),
    }
    with ui.server.client(ui.key) as client:
        not_sessions = [{"field": "event_type", "operator": "is not", "value": "session"}]
        count = client.post(
            "/v1/events/search", json={"limit": 1, "filters": not_sessions, "dateRange": window}
        ).json()["count"]
    expect(page.locator("article[data-chart='events'] .chart-total")).to_have_text(f"{count:,} events")
    expect(page.locator("article[data-chart='tokens'] .chart-total")).to_have_text(
        re.compile(r"^[\d,]+ tokens$")
    )
    screens.take(page, "charts")

    # Session events can be included: a fourth group appears.
    page.get_by_label("Include session events").check()
    expect(page.locator("article[data-chart='events'] .legend-item")).to_have_text(
        ["chain", "model", "session", "tool"]
    )
    assert "sessions=1" in page.url
    page.get_by_label("Chart range").select_option("1h")
    expect(page.locator("article[data-chart='events'] .legend-item")).to_have_text(
        ["chain", "model", "session", "tool"]
    )
    screens.take(page, "charts-last-hour")
