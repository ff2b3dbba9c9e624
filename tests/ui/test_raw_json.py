"""Each JSON section of the event detail switches to raw JSON and copies its JSON; "Copy JSON"
copies the whole event as the API returns it, without the tree's own fields (children, orphan)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.sync_api import BrowserContext, Page, expect

from tests.ui.conftest import Screens, UiServer
from tests.ui.seed_detail import (
    JSON_SECTIONS,
    DetailSeed,
    detail_seed,
    sign_in_detail,
    stored_event,
    tree_row,
)

TITLES = {
    "inputs": "Inputs",
    "outputs": "Outputs",
    "config": "Config",
    "metadata": "Metadata",
    "metrics": "Metrics",
    "feedback": "Feedback",
    "user_properties": "User properties",
}


@pytest.fixture(scope="module")
def detail(ui: UiServer) -> DetailSeed:
    return detail_seed(ui)


def clipboard(page: Page) -> Any:
    return json.loads(page.evaluate("() => navigator.clipboard.readText()"))


def grant_clipboard(context: BrowserContext, ui: UiServer) -> None:
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=ui.url)


def test_sections_show_raw_json_and_copy_it(
    context: BrowserContext, page: Page, ui: UiServer, detail: DetailSeed, screens: Screens
) -> None:
    grant_clipboard(context, ui)
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{detail.ids['json_sections']}")
    panel = page.locator(".event-detail")
    expect(panel.locator(".detail-title")).to_have_text("json_sections")
    for key, title in TITLES.items():
        section = panel.locator(f"details.section-{key}")
        raw = section.get_by_role("button", name=f"{title}: raw JSON")
        expect(raw).to_have_attribute("aria-pressed", "false")
        expect(section.locator(".raw-json")).to_have_count(0)
        raw.click()
        expect(raw).to_have_attribute("aria-pressed", "true")
        text = section.locator("pre.raw-json").text_content()
        assert text is not None and json.loads(text) == JSON_SECTIONS[key], key
        assert text == json.dumps(JSON_SECTIONS[key], indent=2, ensure_ascii=False), "two-space indented JSON"
        copy = section.get_by_role("button", name=f"Copy {title} JSON")
        copy.click()
        expect(copy).to_have_text("Copied")
        assert clipboard(page) == JSON_SECTIONS[key], key
    screens.take(page, "raw-json")

    # Raw is remembered per section while moving between events; a click brings the tree back.
    tree_row(page, "priced_call").click()
    outputs = panel.locator("details.section-outputs")
    expect(outputs.locator("pre.raw-json")).to_contain_text('"content": "hello"')
    outputs.get_by_role("button", name="Outputs: raw JSON").click()
    expect(outputs.locator("pre.raw-json")).to_have_count(0)
    expect(outputs.get_by_text('"hello"')).to_be_visible()
    # Empty sections have nothing to show or copy.
    user_properties = panel.locator("details.section-user_properties")
    expect(user_properties.get_by_text("empty")).to_have_count(2)  # the note and the body
    expect(user_properties.get_by_role("button")).to_have_count(0)


def test_copy_json_copies_the_event_as_read(
    context: BrowserContext, page: Page, ui: UiServer, detail: DetailSeed, screens: Screens
) -> None:
    grant_clipboard(context, ui)
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{detail.ids['json_sections']}")
    panel = page.locator(".event-detail")
    expect(panel.locator(".detail-title")).to_have_text("json_sections")
    # The event has a child in the tree: the copy is the event alone, exactly as the API reads it.
    copy = panel.get_by_role("button", name="Copy event JSON")
    copy.click()
    expect(copy).to_have_text("Copied")
    copied = clipboard(page)
    assert "children" not in copied
    assert copied == stored_event(ui, detail, detail.ids["json_sections"])
    assert copied["children_ids"] == [detail.ids["annotate_target"]]
    screens.take(page, "copy-json")

    # An orphan is flagged in the tree, not in the copy.
    tree_row(page, "orphan_step").click()
    expect(panel.get_by_text("Its parent is not in this session")).to_be_visible()
    panel.get_by_role("button", name="Copy event JSON").click()
    expect(panel.get_by_role("button", name="Copy event JSON")).to_have_text("Copied")
    copied = clipboard(page)
    assert "orphan" not in copied and "children" not in copied
    assert copied == stored_event(ui, detail, detail.ids["orphan_step"])
