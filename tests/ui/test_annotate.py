"""Annotating from the detail panel: feedback (rating, thumbs, comment) and custom metrics on an
event and on the session, saved through PUT /v1/events/{id}, stored by the server (read back here
through the API) and shown at once from the server's read-back; a refusal is shown as the server
worded it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.ui.conftest import Screens, UiServer
from tests.ui.seed_detail import DetailSeed, detail_seed, sign_in_detail, stored_event, tree_row


@pytest.fixture(scope="module")
def detail(ui: UiServer) -> DetailSeed:
    return detail_seed(ui)


def open_annotate(page: Page) -> Locator:
    section = page.locator(".event-detail details.section-annotate")
    if section.get_attribute("open") is None:
        section.locator("summary").click()
    expect(section.get_by_label("Rating")).to_be_visible()
    return section


def test_feedback_and_metrics_on_an_event(
    page: Page, ui: UiServer, detail: DetailSeed, screens: Screens
) -> None:
    event_id = detail.ids["annotate_target"]
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{event_id}")
    panel = page.locator(".event-detail")
    expect(panel.locator(".detail-title")).to_have_text("annotate_target")
    expect(panel.locator("details.section-annotate .section-note")).to_have_text("none yet")
    form = open_annotate(page)
    form.get_by_label("Rating").fill("4")
    thumbs_up = form.get_by_role("button", name="Thumbs up")
    expect(thumbs_up).to_have_attribute("aria-pressed", "false")
    thumbs_up.click()
    expect(thumbs_up).to_have_attribute("aria-pressed", "true")
    form.get_by_label("Comment").fill("Right tool, right answer")
    form.get_by_role("button", name="Save feedback").click()
    expect(panel.get_by_role("status").filter(has_text="Feedback saved.")).to_be_visible()

    # The server stored it...
    assert stored_event(ui, detail, event_id)["feedback"] == {
        "rating": 4,
        "liked": True,
        "comment": "Right tool, right answer",
    }
    # ...and the panel shows what it read back: the Feedback section, the summary, the form.
    feedback = panel.locator("details.section-feedback")
    expect(feedback.get_by_text('"Right tool, right answer"')).to_be_visible()
    expect(feedback.locator(".json-row", has_text="liked")).to_have_text("liked: true")
    expect(feedback.locator(".json-row", has_text="rating")).to_have_text("rating: 4")
    expect(panel.locator("details.section-annotate .section-note")).to_have_text(
        "rating 4 · thumbs up · comment"
    )
    form = open_annotate(page)
    expect(form.get_by_label("Rating")).to_have_value("4")
    expect(form.get_by_label("Comment")).to_have_value("Right tool, right answer")
    expect(form.get_by_role("button", name="Thumbs up")).to_have_attribute("aria-pressed", "true")
    screens.take(page, "feedback-saved")

    # Custom metrics: a number and a boolean.
    form.get_by_label("Metric name").fill("helpfulness")
    form.get_by_label("Metric value").fill("0.75")
    form.get_by_role("button", name="Save metric").click()
    expect(panel.get_by_role("status").filter(has_text="Metric helpfulness saved.")).to_be_visible()
    form = open_annotate(page)
    form.get_by_label("Metric name").fill("on_topic")
    form.get_by_label("Metric value").fill("true")
    form.get_by_role("button", name="Save metric").click()
    expect(panel.get_by_role("status").filter(has_text="Metric on_topic saved.")).to_be_visible()
    assert stored_event(ui, detail, event_id)["metrics"] == {"helpfulness": 0.75, "on_topic": True}
    metrics = panel.locator("details.section-metrics")
    expect(metrics.locator(".json-row")).to_have_text(["helpfulness: 0.75", "on_topic: true"])
    # A value that is neither a number nor a boolean is refused before anything is sent.
    form = open_annotate(page)
    form.get_by_label("Metric name").fill("bad")
    form.get_by_label("Metric value").fill("very good")
    form.get_by_role("button", name="Save metric").click()
    expect(form.get_by_role("alert")).to_have_text("A metric value is a number, true or false.")
    assert "bad" not in stored_event(ui, detail, event_id)["metrics"]

    # Edit: a new rating and thumbs down; the other feedback keys are kept.
    form.get_by_label("Rating").fill("2")
    form.get_by_role("button", name="Thumbs down").click()
    form.get_by_role("button", name="Save feedback").click()
    expect(panel.get_by_role("status").filter(has_text="Feedback saved.")).to_be_visible()
    assert stored_event(ui, detail, event_id)["feedback"] == {
        "rating": 2,
        "liked": False,
        "comment": "Right tool, right answer",
    }
    expect(panel.locator("details.section-annotate .section-note")).to_have_text(
        "rating 2 · thumbs down · comment · 2 metrics"
    )

    # The tree holds the read-back too: away and back, it is still there.
    tree_row(page, "json_sections").click()
    expect(panel.locator(".detail-title")).to_have_text("json_sections")
    tree_row(page, "annotate_target").click()
    expect(panel.locator("details.section-feedback .json-row", has_text="rating")).to_have_text("rating: 2")
    screens.take(page, "feedback-edited")


def test_feedback_on_the_session(page: Page, ui: UiServer, detail: DetailSeed, screens: Screens) -> None:
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}")
    panel = page.locator(".event-detail")
    expect(panel.locator(".detail-title")).to_have_text("event-detail-demo")  # the session is selected
    form = open_annotate(page)
    expect(form.get_by_role("form", name="Feedback on this session")).to_be_visible()
    form.get_by_label("Rating").fill("5")
    form.get_by_label("Comment").fill("Whole run was good")
    form.get_by_role("button", name="Save feedback").click()
    expect(panel.get_by_role("status").filter(has_text="Feedback saved.")).to_be_visible()
    form = open_annotate(page)
    form.get_by_label("Metric name").fill("resolved")
    form.get_by_label("Metric value").fill("false")
    form.get_by_role("button", name="Save metric").click()
    expect(panel.get_by_role("status").filter(has_text="Metric resolved saved.")).to_be_visible()

    session = stored_event(ui, detail, detail.session)
    assert session["feedback"] == {"rating": 5, "comment": "Whole run was good"}
    assert session["metrics"] == {"resolved": False}
    expect(panel.locator("details.section-feedback").get_by_text('"Whole run was good"')).to_be_visible()
    expect(panel.locator("details.section-metrics .json-row")).to_have_text(["resolved: false"])
    # The session's totals from the tree are still in its metadata after the read-back.
    expect(panel.locator("details.section-metadata .json-row", has_text="num_events")).to_have_text(
        re.compile(r"^num_events: \d+$")
    )
    screens.take(page, "session-feedback")


def test_a_refusal_is_shown(page: Page, ui: UiServer, detail: DetailSeed, screens: Screens) -> None:
    event_id = detail.ids["doomed_step"]
    sign_in_detail(page, ui, detail, f"#/sessions/{detail.session}/events/{event_id}")
    panel = page.locator(".event-detail")
    expect(panel.locator(".detail-title")).to_have_text("doomed_step")
    form = open_annotate(page)
    # Deleted behind the UI's back: the server answers 404, and the UI says so in its words.
    with ui.server.client(detail.key) as client:
        assert client.delete(f"/v1/events/{event_id}").status_code == 200
    form.get_by_label("Rating").fill("1")
    form.get_by_role("button", name="Save feedback").click()
    alert = form.get_by_role("alert")
    expect(alert).to_contain_text("HTTP 404")
    expect(alert).to_contain_text(f"event {event_id} not found")
    expect(form.get_by_role("button", name="Save feedback")).to_be_enabled()  # free to try again
    expect(form.get_by_label("Rating")).to_have_value("1")  # nothing typed was lost
    screens.take(page, "refused")
