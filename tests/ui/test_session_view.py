"""One session: tree and waterfall side by side, event details as collapsible JSON, chat messages
as a conversation, deep links, and data shown as text (never as markup)."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.ui.conftest import Screens, UiServer, sign_in
from tests.ui.seed import XSS_NAME


def tree_row(page: Page, name: str):  # type: ignore[no-untyped-def]
    return page.locator(".trace-row").filter(
        has=page.locator(".event-name", has_text=re.compile(f"^{re.escape(name)}$"))
    )


def test_open_a_session_from_the_list(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui)
    page.get_by_role("link", name="customer-support-agent", exact=True).click()
    expect(page.locator(".session-title")).to_have_text("customer-support-agent")
    assert page.url.endswith(f"#/sessions/{ui.seeded.support_session}")
    expect(page.locator(".stat-events .stat-value")).to_have_text("6 events")
    # The tree, depth-first: the session, its chain, the chain's children, the nested chain's child.
    expect(page.locator(".trace-row .event-name")).to_have_text(
        [
            "customer-support-agent",
            "handle_request",
            "retrieve_docs",
            "generate_answer",
            "lookup_account",
            "format_reply",
            "render_markdown",
        ]
    )
    expect(page.locator(".trace-row[aria-level='4'] .event-name")).to_have_text(["render_markdown"])
    # One waterfall bar per row, coloured by type, placed by start time and sized by duration.
    expect(page.locator(".trace-row .wf-bar")).to_have_count(7)
    retrieve = tree_row(page, "retrieve_docs").locator(".wf-bar")
    generate = tree_row(page, "generate_answer").locator(".wf-bar")
    expect(generate).to_have_class(re.compile(r"\btype-model\b"))
    expect(retrieve).to_have_class(re.compile(r"\btype-tool\b"))
    r_box, g_box = retrieve.bounding_box(), generate.bounding_box()
    assert r_box and g_box
    assert r_box["x"] < g_box["x"], "retrieve_docs starts before generate_answer"
    assert g_box["width"] > 4 * r_box["width"], "1740 ms is drawn much longer than 320 ms"
    # Tree cell and bar sit on the same row.
    name_box = tree_row(page, "generate_answer").locator(".event-name").bounding_box()
    assert name_box and abs((name_box["y"] + name_box["height"] / 2) - (g_box["y"] + g_box["height"] / 2)) < 8
    # The failed tool call is marked in the tree and in the waterfall.
    failed = tree_row(page, "lookup_account")
    expect(failed).to_have_class(re.compile(r"\bhas-error\b"))
    expect(failed.locator(".error-mark")).to_be_visible()
    expect(failed.locator(".wf-bar")).to_have_class(re.compile(r"\bwf-error\b"))
    expect(page.locator(".session-title-row .badge-error")).to_have_text("1 error")
    screens.take(page, "session")

    # Collapsing a node hides its subtree; expanding brings it back.
    tree_row(page, "handle_request").get_by_role("button", name="Collapse handle_request").click()
    expect(page.locator(".trace-row")).to_have_count(2)
    tree_row(page, "handle_request").get_by_role("button", name="Expand handle_request").click()
    expect(page.locator(".trace-row")).to_have_count(7)


def test_open_an_event_and_fold_its_json(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui, f"#/sessions/{ui.seeded.support_session}")
    tree_row(page, "retrieve_docs").click()
    detail = page.locator(".event-detail")
    expect(detail.locator(".detail-title")).to_have_text("retrieve_docs")
    assert page.url.endswith(f"#/sessions/{ui.seeded.support_session}/events/{ui.seeded.retrieve_event}")
    expect(tree_row(page, "retrieve_docs")).to_have_attribute("aria-selected", "true")
    outputs = detail.locator("details.section-outputs")
    document_id = outputs.get_by_text('"keys.md#rotate"')
    expect(document_id).to_be_visible()
    expect(detail.locator("details.section-metadata").get_by_text('"bm25"')).to_be_visible()
    expect(
        detail.locator("details.section-inputs").get_by_text('"How do I rotate my API key without downtime?"')
    ).to_be_visible()
    screens.take(page, "event-selected")
    # Sections fold and unfold; so do nested values.
    outputs.locator("summary").first.click()
    expect(document_id).to_be_hidden()
    outputs.locator("summary").first.click()
    expect(document_id).to_be_visible()
    nested = outputs.locator("details.json-branch").filter(has_text="documents").first
    nested.locator("summary").first.click()
    expect(document_id).to_be_hidden()

    # The failing event shows its error.
    tree_row(page, "lookup_account").click()
    expect(detail.locator(".error-box")).to_contain_text(
        "TimeoutError: account service did not answer within 250 ms"
    )
    assert page.url.endswith(f"/events/{ui.seeded.error_event}")
    screens.take(page, "error-event")


def test_model_event_messages_render_as_a_conversation(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui, f"#/sessions/{ui.seeded.support_session}/events/{ui.seeded.model_event}")
    detail = page.locator(".event-detail")
    expect(detail.locator(".detail-title")).to_have_text("generate_answer")
    conversation = detail.get_by_label("Conversation")
    expect(conversation).to_be_visible()
    messages = conversation.locator(".message")
    expect(messages).to_have_count(3)
    expect(messages.locator(".message-role > span:first-child")).to_have_text(["system", "user", "assistant"])
    expect(messages.nth(0)).to_contain_text("You are a concise support assistant for tracehive.")
    expect(messages.nth(1)).to_contain_text("How do I rotate my API key without downtime?")
    # Message text is Markdown: the backticks make a code span.
    expect(messages.nth(2)).to_contain_text("Create a second key with tracehive keys create, deploy it")
    expect(messages.nth(2).locator("code").first).to_have_text("tracehive keys create")
    expect(messages.nth(2).locator(".message-tag")).to_have_text("output")
    # Every other field of the event, as JSON.
    expect(detail.locator("details.section-config").get_by_text('"gpt-4o-mini"')).to_be_visible()
    expect(detail.locator("details.section-metadata").get_by_text("976")).to_be_visible()
    expect(detail.locator("details.section-metrics").get_by_text("0.92")).to_be_visible()
    expect(detail.locator("details.section-feedback").get_by_text('"Clear and correct"')).to_be_visible()
    expect(detail.locator("details.section-user_properties").get_by_text('"u-4821"')).to_be_visible()
    screens.take(page, "conversation")


def test_other_message_shapes_render_as_a_conversation(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui, f"#/sessions/{ui.seeded.eval_session}")
    conversation = page.locator(".event-detail").get_by_label("Conversation")
    # outputs.choices: every completion is an answer.
    tree_row(page, "eval_case_2").click()
    expect(conversation.locator(".message")).to_have_count(3)
    expect(conversation.locator(".message-output")).to_have_text(
        [re.compile("^assistantoutputParis$"), re.compile("Paris, France$")]
    )
    # Multi-part user content (text shown as text, the image part as JSON) and a bare outputs.content.
    tree_row(page, "eval_case_3").click()
    expect(page.locator(".event-detail .detail-title")).to_have_text("eval_case_3")
    user = conversation.locator(".message.role-user")
    expect(user.locator(".message-text")).to_have_text("Largest planet?")
    expect(user.get_by_text('"https://example.com/p.png"')).to_be_visible()
    expect(conversation.locator(".message-output")).to_contain_text("Jupiter")
    expect(conversation.locator(".message-output .message-role > span:first-child")).to_have_text("assistant")
    screens.take(page, "multi-part-conversation")


def test_deep_links_open_the_event_after_sign_in(page: Page, ui: UiServer, screens: Screens) -> None:
    link = f"{ui.url}/#/sessions/{ui.seeded.support_session}/events/{ui.seeded.model_event}"
    page.goto(link)
    expect(page.get_by_label("API key")).to_be_visible()  # signed out: sign in first...
    page.get_by_label("API key").fill(ui.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".event-detail .detail-title")).to_have_text("generate_answer")  # ...then land there
    assert page.url == link
    expect(tree_row(page, "generate_answer")).to_have_attribute("aria-selected", "true")
    screens.take(page, "deep-link")

    # The link survives a reload, and the back button moves between events of the same session.
    page.reload()
    expect(page.locator(".event-detail .detail-title")).to_have_text("generate_answer")

    # An event id alone is enough: it is looked up and shown in its session.
    page.goto(f"{ui.url}/#/events/{ui.seeded.error_event}")
    expect(page.locator(".event-detail .detail-title")).to_have_text("lookup_account")
    assert page.url.endswith(f"#/sessions/{ui.seeded.support_session}/events/{ui.seeded.error_event}")

    # Links to things that do not exist say so.
    page.goto(f"{ui.url}/#/sessions/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_role("alert")).to_contain_text("was not found in this project")
    page.goto(f"{ui.url}/#/no/such/page")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()


def test_markup_in_data_is_shown_as_text(page: Page, ui: UiServer, screens: Screens) -> None:
    sign_in(page, ui, f"#/sessions/{ui.seeded.xss_session}/events/{ui.seeded.xss_event}")
    row = tree_row(page, XSS_NAME)
    expect(row).to_be_visible()
    expect(row.locator(".event-name")).to_have_text(XSS_NAME)
    expect(page.locator(".event-detail .detail-title")).to_have_text(XSS_NAME)
    expect(page.locator(".event-detail").get_by_text('"<script>window.__xss = 2</script>"')).to_be_visible()
    screens.take(page, "markup-as-text")
    page.goto(f"{ui.url}/#/events")
    expect(page.get_by_role("link", name=XSS_NAME)).to_be_visible()
    # No element was made from the data, and nothing in it ran.
    assert page.locator("#app img:not([src='/ui/favicon.svg'])").count() == 0
    assert page.locator("#app script").count() == 0
    assert page.evaluate("() => window.__xss") is None
