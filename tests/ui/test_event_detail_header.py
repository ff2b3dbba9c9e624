"""A model event's detail starts with what the call used (model, prompt/completion/total tokens,
cost marked "computed" when the server priced it, latency), and the session tree shows tokens and
cost on model rows; a missing cost reads "—", never "$0"."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.ui.conftest import Screens, UiServer, sign_in
from tests.ui.seed_detail import DetailSeed, detail_seed, sign_in_detail, tree_row


@pytest.fixture(scope="module")
def detail(ui: UiServer) -> DetailSeed:
    return detail_seed(ui)


def usage(page: Page, field: str):  # type: ignore[no-untyped-def]
    return page.get_by_label("Model usage").locator(f".usage-item[data-field='{field}'] dd")


def test_model_event_header(page: Page, ui: UiServer, detail: DetailSeed, screens: Screens) -> None:
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{detail.ids['priced_call']}")
    panel = page.locator(".event-detail")
    expect(panel.locator(".detail-title")).to_have_text("priced_call")
    header = panel.get_by_label("Model usage")
    expect(header.locator("dt")).to_have_text(
        ["Model", "Prompt tokens", "Completion tokens", "Total tokens", "Cost", "Latency"]
    )
    expect(usage(page, "model")).to_have_text("gpt-4o-mini")
    expect(usage(page, "prompt-tokens")).to_have_text("1,200")
    expect(usage(page, "completion-tokens")).to_have_text("340")
    expect(usage(page, "total-tokens")).to_have_text("1,540")
    expect(usage(page, "cost").locator(".usage-cost-value")).to_have_text("$0.00039")
    hint = usage(page, "cost").locator(".usage-computed")
    expect(hint).to_have_text("computed")
    expect(hint).to_have_attribute(
        "title", "Computed by tracehive from its price table (the app did not report a cost)"
    )
    expect(usage(page, "latency")).to_have_text("1.23 s")
    # The latency is the duration: the facts below do not repeat it.
    expect(panel.locator(".facts dt", has_text="Duration")).to_have_count(0)
    screens.take(page, "model-header")

    # A model no price table knows and no cost sent: "—"; the total is the sum of its parts.
    tree_row(page, "unpriced_call").click()
    expect(panel.locator(".detail-title")).to_have_text("unpriced_call")
    expect(usage(page, "model")).to_have_text("in-house-llm-test")
    expect(usage(page, "total-tokens")).to_have_text("15")
    expect(usage(page, "cost")).to_have_text("—")
    expect(usage(page, "cost").locator(".usage-computed")).to_have_count(0)
    expect(usage(page, "latency")).to_have_text("400 ms")

    # A cost the app sent is not marked computed; counts it did not send read "—".
    tree_row(page, "markdown_reply").click()
    expect(panel.locator(".detail-title")).to_have_text("markdown_reply")
    expect(usage(page, "cost")).to_have_text("$0.002")
    expect(usage(page, "prompt-tokens")).to_have_text("—")
    expect(usage(page, "total-tokens")).to_have_text("300")

    # Other events have no usage header, and keep their duration in the facts.
    tree_row(page, "annotate_target").click()
    expect(panel.locator(".detail-title")).to_have_text("annotate_target")
    expect(page.get_by_label("Model usage")).to_have_count(0)
    expect(panel.locator(".facts")).to_contain_text("Duration200 ms")


def test_tree_rows_show_tokens_and_cost_of_model_events(
    page: Page, ui: UiServer, detail: DetailSeed, screens: Screens
) -> None:
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}")
    priced = tree_row(page, "priced_call")
    expect(priced.locator(".row-tokens")).to_have_text("1.5k tok")
    expect(priced.locator(".row-cost")).to_have_text("$0.00039")
    expect(priced.locator(".row-usage")).to_have_attribute(
        "title", "1,540 tokens (1,200 prompt, 340 completion) · cost $0.00039 (computed)"
    )
    unpriced = tree_row(page, "unpriced_call")
    expect(unpriced.locator(".row-tokens")).to_have_text("15 tok")
    expect(unpriced.locator(".row-cost")).to_have_text("—")
    hostile = tree_row(page, "hostile_reply")  # a cost but no token counts
    expect(hostile.locator(".row-tokens")).to_have_text("—")
    expect(hostile.locator(".row-cost")).to_have_text("$0.001")
    # Tool, chain and session rows carry no usage.
    for name in ("json_sections", "annotate_target", "event-detail-demo"):
        expect(tree_row(page, name).locator(".row-usage")).to_have_count(0)
    assert "$0" not in page.locator(".trace-rows").inner_text().replace("$0.", "")
    # The usage fits the row: the name is still readable beside it.
    box = priced.locator(".event-name").bounding_box()
    assert box and box["width"] > 60
    screens.take(page, "tree-usage")


def test_a_session_without_costs_says_so(page: Page, ui: UiServer, screens: Screens) -> None:
    # The server's roll-up is 0 when no event carried a cost: the header shows "—", not "$0".
    sign_in(page, ui)
    page.get_by_role("link", name="batch-job-01", exact=True).click()
    expect(page.locator(".session-title")).to_have_text("batch-job-01")
    expect(page.locator(".stat").filter(has_text="Cost").locator(".stat-value")).to_have_text("—")
    expect(page.locator(".trace-row .row-usage")).to_have_count(0)  # a tool call: no usage on its row
