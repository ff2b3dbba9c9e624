"""Dark mode: the UI follows the system's colour scheme, the header's switch overrides it and is
remembered across reloads, and text stays readable in both themes (contrast measured on the
rendered pages, charts included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.ui.conftest import VIEWPORT, Screens, UiServer, sign_in

BACKGROUND = "() => getComputedStyle(document.body).backgroundColor"

# The WCAG contrast of an element's text against the first opaque background behind it, both as
# the browser computed them. Colours come back as rgb()/rgba(); a translucent background is
# skipped (none of the theme's surfaces is translucent).
CONTRAST = """(selector) => {
  const rgb = (text) => {
    const m = text.match(/rgba?\\(([^)]+)\\)/);
    if (!m) throw new Error(`unexpected colour ${text}`);
    const [r, g, b, a = 1] = m[1].split(/[ ,/]+/).filter(Boolean).map(Number);
    return { r, g, b, a };
  };
  const lum = ({ r, g, b }) => {
    const ch = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * ch(r) + 0.7152 * ch(g) + 0.0722 * ch(b);
  };
  const backdrop = (node) => {
    for (let n = node; n; n = n.parentElement) {
      const c = rgb(getComputedStyle(n).backgroundColor);
      if (c.a > 0.5) return c;
    }
    return rgb(getComputedStyle(document.documentElement).backgroundColor);
  };
  return [...document.querySelectorAll(selector)].slice(0, 3).map((node) => {
    const style = getComputedStyle(node);
    const isSvg = node instanceof SVGElement;
    const fg = rgb(isSvg ? (style.stroke !== "none" ? style.stroke : style.fill) : style.color);
    const l1 = lum(fg), l2 = lum(backdrop(isSvg ? node.closest(".card") : node));
    return Math.round(((Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05)) * 100) / 100;
  });
}"""

# selector → the least contrast it must have (WCAG AA: 4.5 for text, 3 for graphics and the
# 11 px uppercase badges' bold text is held to 4.5 all the same).
TEXT = {
    ".page h1": 4.5,
    ".page-head .live": 4.5,
    "thead th": 4.5,
    "tbody .col-name a": 4.5,
    "tbody .col-time": 4.5,
    "tbody .col-cost": 4.5,
    ".badge-error": 4.5,
    ".badge-feedback": 4.5,
    ".pager-text": 4.5,
    ".nav-link": 4.5,
    ".project-name": 4.5,
}
EVENTS = {
    ".type-badge.type-model": 4.5,
    ".type-badge.type-tool": 4.5,
    ".type-badge.type-chain": 4.5,
    ".check": 4.5,
}
SESSION = {
    ".session-title": 4.5,
    ".stat-label": 4.5,
    ".stat-value": 4.5,
    ".event-name": 4.5,
    ".row-duration": 4.5,
    ".has-error .event-name": 4.5,
    ".detail-title": 4.5,
}
CHARTS = {
    ".chart-label": 4.5,
    ".legend-item": 4.5,
    "path.chart-line[data-group='model']": 3.0,
    "path.chart-line[data-group='tool']": 3.0,
    "path.chart-line[data-group='chain']": 3.0,
}


@pytest.fixture(params=["light", "dark"])
def scheme_context(request: pytest.FixtureRequest, browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT, color_scheme=request.param)
    yield context
    context.close()


def luminance(css: str) -> float:
    r, g, b = (int(part) for part in css.removeprefix("rgb(").removesuffix(")").split(",")[:3])
    return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255


def check_contrast(page: Page, wanted: dict[str, float], theme: str) -> None:
    low = []
    for selector, least in wanted.items():
        ratios = page.evaluate(CONTRAST, selector)
        assert ratios, f"{selector}: nothing on the page to measure"
        low += [f"{selector}: {ratio}" for ratio in ratios if ratio < least]
    assert not low, f"too little contrast in the {theme} theme: {low}"


def test_the_system_scheme_is_followed(browser: Browser, ui: UiServer) -> None:
    seen = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme)
        try:
            page = context.new_page()
            sign_in(page, ui)
            expect(page.locator("tbody tr").first).to_be_visible()
            expect(page.get_by_label("Theme")).to_have_value("system")
            assert page.evaluate("() => document.documentElement.dataset.theme") is None
            seen[scheme] = page.evaluate(BACKGROUND)
        finally:
            context.close()
    assert luminance(seen["light"]) > 0.8 and luminance(seen["dark"]) < 0.2, seen


def test_the_switch_overrides_the_system_and_is_remembered(page: Page, ui: UiServer, screens: Screens) -> None:
    # The test browser's system scheme is light.
    sign_in(page, ui)
    expect(page.locator("tbody tr").first).to_be_visible()
    light = page.evaluate(BACKGROUND)
    light_text = page.evaluate("() => getComputedStyle(document.querySelector('.page h1')).color")
    switch = page.get_by_label("Theme")
    expect(switch).to_have_value("system")

    switch.select_option("dark")
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    dark = page.evaluate(BACKGROUND)
    assert dark != light and luminance(dark) < 0.2, (light, dark)
    assert page.evaluate("() => getComputedStyle(document.querySelector('.page h1')).color") != light_text
    screens.take(page, "dark")

    # Remembered: a reload comes back dark (set before the first paint by theme_boot.js).
    page.reload()
    expect(page.locator("tbody tr").first).to_be_visible()
    expect(page.get_by_label("Theme")).to_have_value("dark")
    assert page.evaluate(BACKGROUND) == dark
    assert page.evaluate("() => localStorage.getItem('tracehive.theme')") == "dark"

    # Light is pinned even where the system is dark; "system" follows the system again.
    page.emulate_media(color_scheme="dark")
    page.get_by_label("Theme").select_option("light")
    assert page.evaluate(BACKGROUND) == light
    page.get_by_label("Theme").select_option("system")
    expect(page.locator("html")).not_to_have_attribute("data-theme", "light")
    assert page.evaluate(BACKGROUND) == dark
    assert page.evaluate("() => localStorage.getItem('tracehive.theme')") is None


def test_text_and_charts_are_readable_in_both_themes(scheme_context: BrowserContext, ui: UiServer) -> None:
    page = scheme_context.new_page()
    # Colours set from script (chart lines) must go through the CSSOM: the policy refuses style attributes.
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    theme = page.evaluate("() => matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light'")
    sign_in(page, ui)
    expect(page.locator("tbody .badge-feedback").first).to_be_visible()
    check_contrast(page, TEXT, theme)

    page.goto(f"{ui.url}/#/events?sessions=1")
    expect(page.locator("tbody .type-badge.type-tool").first).to_be_visible()
    check_contrast(page, EVENTS, theme)

    page.goto(f"{ui.url}/#/sessions/{ui.seeded.support_session}/events/{ui.seeded.error_event}")
    expect(page.locator(".detail-title")).to_have_text("lookup_account")
    check_contrast(page, SESSION, theme)

    page.goto(f"{ui.url}/#/charts")
    expect(page.locator("article[data-chart='events'] path.chart-line[data-group='model']")).to_have_count(1)
    check_contrast(page, CHARTS, theme)
    assert not violations, violations
