"""The narrow layout (a phone at 390x844, a tablet at 768x1024 and 1024x768): every page uses the full width
without scrolling the page sideways (wide tables scroll inside their own frame), the top bar's
links and buttons are all on screen, and the session view stacks its tree above the details."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.ui.conftest import UiServer, sign_in
from tests.ui.shell_helpers import PAGE_WIDTH, new_project, sign_in_as

SIZES = {
    "phone": {"width": 390, "height": 844},
    "tablet": {"width": 768, "height": 1024},
    "tablet-landscape": {"width": 1024, "height": 768},  # the top bar alone once overflowed here
}


@pytest.fixture(params=list(SIZES))
def narrow(request: pytest.FixtureRequest, browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=SIZES[request.param])
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def fits(page: Page, what: str) -> None:
    width = page.evaluate(PAGE_WIDTH)
    assert width["scroll"] <= width["width"] and not width["out"], f"{what}: {width}"


def on_screen(page: Page, selector: str) -> None:
    """Every element matching ``selector`` is visible and inside the window's width."""
    width = page.viewport_size["width"]  # type: ignore[index]
    for box in [loc.bounding_box() for loc in page.locator(selector).all()]:
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 0.5, (selector, box)


def test_the_list_pages_fit(narrow: Page, ui: UiServer) -> None:
    page = narrow
    sign_in(page, ui)
    expect(page.get_by_role("link", name="customer-support-agent", exact=True)).to_be_visible()
    on_screen(page, ".nav-link")
    on_screen(page, ".theme-switch, .topbar .btn-ghost, .project-name")
    on_screen(page, ".filter-field, .filter-operator, .filter-value")
    on_screen(page, "tbody tr:first-child .col-name a")
    fits(page, "sessions")
    # Up to a tablet in portrait, the page's frame is the window's width less small margins.
    width = page.viewport_size["width"]  # type: ignore[index]
    frame = page.locator(".table-wrap").bounding_box()
    assert frame and (width > 800 or frame["width"] >= width - 32), frame

    page.get_by_role("link", name="Events", exact=True).click()
    expect(page.locator("tbody tr").first).to_be_visible()
    expect(page.get_by_label("Show session rows")).to_be_visible()
    on_screen(page, "tbody tr:first-child .col-name a")
    fits(page, "events")

    for name, ready in [("Charts", "article.chart-card"), ("Experiments", "h1"), ("Datasets", "h1")]:
        page.get_by_role("link", name=name, exact=True).click()
        expect(page.locator(ready).first).to_be_visible()
        page.wait_for_timeout(300)  # the list or charts arrive
        fits(page, name)
    on_screen(page, "h1")


def test_the_session_view_stacks(narrow: Page, ui: UiServer) -> None:
    page = narrow
    sign_in(page, ui, f"#/sessions/{ui.seeded.support_session}/events/{ui.seeded.model_event}")
    expect(page.locator(".event-detail .detail-title")).to_have_text("generate_answer")
    tree = page.locator(".trace-pane").bounding_box()
    detail = page.locator(".detail-pane").bounding_box()
    assert tree and detail
    width = page.viewport_size["width"]  # type: ignore[index]
    if width <= 1000:  # stacked: the details below the tree, both the page's width
        assert detail["y"] >= tree["y"] + tree["height"] - 1, (tree, detail)
        assert tree["width"] >= width - 32 and detail["width"] >= width - 32, (tree, detail, width)
    else:  # side by side, as on a desktop
        assert detail["x"] >= tree["x"] + tree["width"] - 1, (tree, detail)
    expect(page.locator(".trace-row").filter(has_text="retrieve_docs")).to_be_visible()
    on_screen(page, ".session-title, .trace-pane, .detail-pane")
    fits(page, "session view")


def test_the_first_trace_lines_fit(narrow: Page, ui: UiServer) -> None:
    page = narrow
    # A long project name is cut short in the top bar, but shown whole in the key command.
    project, key = new_project(ui, "a-long-project-name-that-a-team-might-really-use")
    sign_in_as(page, ui, key, project)
    expect(page.get_by_role("region", name="Send a first trace")).to_be_visible()
    on_screen(page, ".theme-switch, .topbar .btn-ghost, .project-name, .nav-link")
    on_screen(page, ".code-block, .code-block .btn")
    fits(page, "first trace panel")
