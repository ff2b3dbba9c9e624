"""Conversation messages render as Markdown built from DOM nodes: formatting shows, markup in the
data stays text, only http(s)/mailto links are made (inert, opening a new tab without a referrer),
images are links, nothing runs; "Raw" shows the text as stored."""

from __future__ import annotations

import pytest
from playwright.sync_api import Dialog, Page, expect

from tests.ui.conftest import Screens, UiServer
from tests.ui.seed_detail import HOSTILE, MARKDOWN_ANSWER, DetailSeed, detail_seed, sign_in_detail, tree_row


@pytest.fixture(scope="module")
def detail(ui: UiServer) -> DetailSeed:
    return detail_seed(ui)


def test_messages_render_as_markdown(page: Page, ui: UiServer, detail: DetailSeed, screens: Screens) -> None:
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{detail.ids['markdown_reply']}")
    conversation = page.locator(".event-detail").get_by_label("Conversation")
    answer = conversation.locator(".message-output .md")
    expect(answer.get_by_role("heading", name="Rotating keys")).to_be_visible()
    expect(answer.locator("strong")).to_have_text("new")
    expect(answer.locator("em")).to_have_text("revoke")
    expect(answer.locator("p code")).to_have_text("tracehive keys revoke")
    expect(answer.locator("ul > li")).to_have_text(["step one", "step two with a guide"])
    expect(answer.locator("ol > li")).to_have_text(["first", "second"])
    expect(answer.locator("blockquote")).to_have_text("Keys are stored as hashes.")
    code = answer.locator("pre code")
    expect(code).to_have_text('print("<b>not bold</b>")')
    expect(code).to_have_attribute("data-lang", "python")
    expect(answer.locator("b")).to_have_count(0)  # the HTML inside the code block is text
    # Links: only the real ones, opening in a new tab without opener, referrer or endorsement.
    guide = answer.get_by_role("link", name="guide")
    expect(guide).to_have_attribute("href", "https://example.com/keys?x=1")
    expect(guide).to_have_attribute("target", "_blank")
    expect(guide).to_have_attribute("rel", "noopener noreferrer nofollow")
    # An image is a link to it, never loaded.
    image = answer.get_by_role("link", name="image: diagram")
    expect(image).to_have_attribute("href", "https://example.com/diagram.png")
    expect(answer.locator("img")).to_have_count(0)
    # The system message's emphasis too.
    expect(conversation.locator(".role-system em")).to_have_text("Markdown")
    screens.take(page, "markdown")

    # Raw shows the text as stored; a second click brings the Markdown back.
    raw = page.get_by_role("button", name="Raw", exact=True)
    expect(raw).to_have_attribute("aria-pressed", "false")
    raw.click()
    expect(raw).to_have_attribute("aria-pressed", "true")
    output = conversation.locator(".message-output .message-text")
    expect(output).to_have_text(MARKDOWN_ANSWER)
    expect(conversation.locator("strong, em, pre, ul, a")).to_have_count(0)
    screens.take(page, "markdown-raw")
    # The choice holds while moving between events.
    tree_row(page, "priced_call").click()
    expect(page.get_by_role("button", name="Raw", exact=True)).to_have_attribute("aria-pressed", "true")
    tree_row(page, "markdown_reply").click()
    expect(conversation.locator(".message-output .message-text")).to_have_text(MARKDOWN_ANSWER)
    page.get_by_role("button", name="Raw", exact=True).click()
    expect(answer.get_by_role("heading", name="Rotating keys")).to_be_visible()


def test_hostile_markdown_stays_text(page: Page, ui: UiServer, detail: DetailSeed, screens: Screens) -> None:
    dialogs: list[str] = []

    def on_dialog(dialog: Dialog) -> None:
        dialogs.append(dialog.message)
        dialog.dismiss()

    page.on("dialog", on_dialog)
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{detail.ids['hostile_reply']}")
    conversation = page.locator(".event-detail").get_by_label("Conversation")
    user = conversation.locator(".message.role-user .message-text")
    # Every piece of markup is on screen as the text it is...
    expect(user).to_have_text(HOSTILE)
    expect(user).to_contain_text("<img src=x onerror=alert(1)>")
    expect(user).to_contain_text("<script>alert(2)</script>")
    expect(user).to_contain_text("[click me](javascript:alert(3))")
    expect(user).to_contain_text("![pic](javascript:alert(5))")
    # ...and none of it became an element or a link.
    assert page.locator("#app img:not([src='/ui/favicon.svg'])").count() == 0
    assert page.locator("#app script, #app iframe, #app object, #app embed").count() == 0
    expect(conversation.locator("a")).to_have_count(0)
    hrefs = page.eval_on_selector_all("a[href]", "links => links.map((a) => a.getAttribute('href'))")
    assert not [h for h in hrefs if h.strip().lower().startswith(("javascript:", "data:", "vbscript:"))], (
        hrefs
    )
    handlers = page.evaluate(
        "() => [...document.querySelectorAll('#app *')].flatMap((n) => [...n.attributes].map((a) => a.name))"
        ".filter((name) => name.startsWith('on'))"
    )
    assert handlers == []
    # The answer: Markdown bold is bold, an HTML tag is text, even inside a code span.
    answer = conversation.locator(".message-output .md")
    expect(answer.locator("strong")).to_have_text("Bold")
    expect(answer.locator("b, i")).to_have_count(0)
    expect(answer).to_contain_text("<b>not bold</b>")
    expect(answer.locator("code")).to_have_text("<i>code</i>")
    screens.take(page, "hostile-markdown")
    # Raw is text too.
    page.get_by_role("button", name="Raw", exact=True).click()
    expect(user).to_have_text(HOSTILE)
    assert page.locator("#app img:not([src='/ui/favicon.svg'])").count() == 0
    page.wait_for_timeout(300)  # give a stray handler the time to fire
    assert dialogs == []
    assert page.evaluate("() => window.__xss") is None
