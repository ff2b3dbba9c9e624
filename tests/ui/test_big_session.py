"""A 10,000-event session renders its first rows, the right count, and stays virtualised.
(Timing is measured by bench/ui_tree.py, not asserted here.)"""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.conftest import BIG_SESSION_EVENTS, Screens, UiServer, sign_in
from tracehive.api.ui import STATIC_DIR


def row_height() -> int:
    """The fixed row height the virtualised tree is built on, as the UI itself declares it."""
    found = re.search(r"export const ROW_HEIGHT = (\d+);", (STATIC_DIR / "session_view.js").read_text())
    assert found, "session_view.js no longer declares ROW_HEIGHT"
    return int(found[1])


def test_ten_thousand_events(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui, f"#/sessions/{ui.big_session}")
    expect(page.locator(".session-title")).to_have_text("big-session")
    expect(page.locator(".stat-events .stat-value")).to_have_text(f"{BIG_SESSION_EVENTS:,} events")
    names = page.locator(".trace-row .event-name")
    expect(names.first).to_have_text("big-session")
    expect(names.nth(1)).to_have_text("step_0")
    expect(names.nth(2)).to_have_text("llm_call_0")
    # Only the rows in view exist, but the scroll area is as tall as all of them.
    rendered = page.locator(".trace-row").count()
    assert 20 <= rendered <= 120, rendered
    height = page.locator(".trace-spacer").evaluate("e => e.getBoundingClientRect().height")
    assert height == (BIG_SESSION_EVENTS + 1) * row_height()
    screens.take(page, "top")

    page.locator(".trace-scroll").evaluate("e => { e.scrollTop = e.scrollHeight; }")
    last = page.locator(".trace-row").filter(has_text="last_event")
    expect(last).to_be_visible()
    expect(last.locator(".wf-bar")).to_be_visible()
    assert page.locator(".trace-row").count() <= 120
    last.click()
    expect(page.locator(".event-detail .detail-title")).to_have_text("last_event")
    screens.take(page, "bottom")
