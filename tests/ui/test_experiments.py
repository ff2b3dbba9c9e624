"""The experiments pages: the runs list (pass/fail counts, aggregates, sorting, paging, picking two
runs), a run's datapoints, the compare view's marked cells, the datasets page, and hostile
strings shown as text.

These tests run their own server: the runs' sessions would otherwise change the counts the
sessions-list tests expect from the shared one.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from tests.process.server import TracehiveServer
from tests.ui.conftest import Screens, UiServer, sign_in
from tests.ui.seed import Seeded
from tests.ui.seed_experiments import (
    DATASET_NAME,
    XSS_QUESTION,
    XSS_RUN_NAME,
    SeededExperiments,
    seed_experiments,
)


@pytest.fixture(scope="module")
def exp_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[UiServer, SeededExperiments]]:
    server = TracehiveServer(tmp_path_factory.mktemp("ui-experiments") / "data")
    server.start()
    try:
        key = server.bootstrap_key
        assert key is not None, server.stdout
        with server.client(key) as client:
            seeded = seed_experiments(client)
        yield UiServer(server, key, Seeded(), ""), seeded
    finally:
        server.stop()


@pytest.fixture
def ui(exp_server: tuple[UiServer, SeededExperiments]) -> UiServer:
    return exp_server[0]


@pytest.fixture
def exp(exp_server: tuple[UiServer, SeededExperiments]) -> SeededExperiments:
    return exp_server[1]


def run_row(page: Page, run_id: str):  # type: ignore[no-untyped-def]
    return page.locator(f'.runs-table tbody tr[data-run-id="{run_id}"]')


def names_in_order(page: Page) -> list[str]:
    return page.locator(".runs-table tbody td.col-name").all_inner_texts()


def no_markup_ran(page: Page) -> None:
    assert page.evaluate("() => window.__xss") is None
    expect(page.locator('img[src="x"]')).to_have_count(0)


def test_runs_list_shows_counts_and_aggregates(
    page: Page, ui: UiServer, exp: SeededExperiments, screens: Screens
) -> None:
    sign_in(page, ui, "#/experiments")
    expect(page.locator(".nav-link.active")).to_have_text("Experiments")
    table = page.locator(".runs-table")
    expect(table.locator("thead th")).to_have_text(
        [
            "Compare",
            "Name",
            "Dataset",
            "Status",
            "Created ▼",
            "Datapoints",
            "Passed",
            "Failed",
            "accuracy",
            "exact_match",
        ]
    )
    candidate = run_row(page, exp.candidate.run_id)
    # name (the hostile markup, as text), dataset, status, created, datapoints, passed, failed, aggregates
    expect(candidate.locator("td")).to_have_text(
        [
            "",
            XSS_RUN_NAME,
            DATASET_NAME,
            "completed",
            re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d"),
            "4",
            "1",
            "3",
            "0.6625",
            "0.5",
        ]
    )
    baseline = run_row(page, exp.baseline.run_id)
    expect(baseline.locator("td.col-passed")).to_have_text("2")
    expect(baseline.locator("td.col-failed")).to_have_text("2")
    expect(baseline.locator('td[data-metric="accuracy"]')).to_have_text("0.65")
    smoke = run_row(page, exp.smoke.run_id)
    expect(smoke.locator("td.col-status")).to_have_text("running")
    expect(smoke.locator("td.col-datapoints")).to_have_text("0")
    expect(smoke.locator('td[data-metric="accuracy"]')).to_have_text("—")
    # Newest first by default.
    assert names_in_order(page) == [XSS_RUN_NAME, "adhoc-smoke", "baseline"]
    expect(page.locator(".page-head [role=status]")).to_have_text("3 runs")
    no_markup_ran(page)
    screens.take(page, "runs")


def test_runs_sort_and_page(page: Page, ui: UiServer, exp: SeededExperiments) -> None:
    sign_in(page, ui, "#/experiments")
    expect(page.locator(".runs-table tbody tr")).to_have_count(3)
    page.get_by_role("button", name="Sort by name").click()
    expect(page.locator(".runs-table tbody td.col-name").first).to_have_text("adhoc-smoke")
    assert names_in_order(page) == ["adhoc-smoke", "baseline", XSS_RUN_NAME]
    assert "sort=name" in page.url and "order=asc" in page.url
    page.get_by_role("button", name="Sort by name").click()
    expect(page.locator(".runs-table tbody td.col-name").first).to_have_text(XSS_RUN_NAME)
    assert names_in_order(page) == [XSS_RUN_NAME, "baseline", "adhoc-smoke"]
    expect(page.locator("th.sortable[aria-sort=descending]")).to_contain_text("Name")

    page.get_by_role("button", name="Sort by created").click()  # newest first
    expect(page.locator(".runs-table tbody td.col-name").first).to_have_text(XSS_RUN_NAME)
    expect(page.locator(".runs-table tbody td.col-status")).to_have_text(
        ["completed", "running", "completed"]
    )

    page.get_by_role("button", name="Sort by status").click()  # ascending: completed before running
    expect(page.locator(".runs-table tbody td.col-status")).to_have_text(
        ["completed", "completed", "running"]
    )
    assert names_in_order(page) == [XSS_RUN_NAME, "baseline", "adhoc-smoke"]  # ties stay newest first
    assert "sort=status" in page.url
    page.get_by_role("button", name="Sort by status").click()
    expect(page.locator(".runs-table tbody td.col-status")).to_have_text(
        ["running", "completed", "completed"]
    )
    expect(page.locator(".runs-table tbody td.col-name").first).to_have_text("adhoc-smoke")

    # Paging: two per page (a link may ask for any page size).
    page.goto(f"{ui.url}/#/experiments?limit=2&sort=name&order=asc")
    pager = page.locator(".pager-text")
    expect(pager).to_have_text("Page 1 of 2 · 3 runs")
    expect(page.locator(".runs-table tbody tr")).to_have_count(2)
    page.get_by_role("button", name="Next ›").click()
    expect(pager).to_have_text("Page 2 of 2 · 3 runs")
    expect(page.locator(".runs-table tbody td.col-name")).to_have_text([XSS_RUN_NAME])
    assert "page=2" in page.url


def test_run_page_rows_and_session_link(
    page: Page, ui: UiServer, exp: SeededExperiments, screens: Screens
) -> None:
    sign_in(page, ui, "#/experiments")
    run_row(page, exp.baseline.run_id).get_by_role("link", name="baseline").click()
    expect(page.locator(".run-title")).to_have_text("baseline")
    expect(page.locator(".stat-passed .stat-value")).to_have_text("2")
    expect(page.locator(".stat-failed .stat-value")).to_have_text("2")
    expect(page.locator(".stat-dataset a")).to_have_text(DATASET_NAME)
    expect(page.locator('.metrics-table tr[data-metric="accuracy"] .col-aggregate')).to_have_text("0.65")
    rows = page.locator(".datapoints-table tbody tr")
    expect(rows).to_have_count(4)
    expect(page.locator(".datapoints-table thead th")).to_have_text(
        ["Datapoint", "Inputs", "Output", "Ground truth", "accuracy", "exact_match", "Result", "Session"]
    )
    expect(rows.locator("td.col-id.mono")).to_have_text(exp.datapoint_ids)
    australia = page.locator(f'.datapoints-table tr[data-datapoint-id="{exp.datapoint_ids[1]}"]')
    # inputs, output and ground truth come from the datapoint's session
    expect(australia.locator("td.col-inputs")).to_have_text("What is the capital of Australia?")
    expect(australia.locator("td.col-output")).to_have_text("Sydney")
    expect(australia.locator("td.col-truth")).to_have_text("Canberra")
    expect(australia.locator('td[data-metric="accuracy"]')).to_have_text("0.4")
    expect(australia.locator('td[data-metric="accuracy"]')).to_have_class(re.compile(r"\bmetric-fail\b"))
    expect(australia.locator('td[data-metric="exact_match"]')).to_have_text("false")
    expect(australia.locator(".col-verdict")).to_have_text("fail")
    france = page.locator(f'.datapoints-table tr[data-datapoint-id="{exp.datapoint_ids[0]}"]')
    expect(france.locator(".col-verdict")).to_have_text("pass")
    expect(france.locator('td[data-metric="accuracy"]')).to_have_class(re.compile(r"\bmetric-pass\b"))
    # The hostile question is text.
    peru = page.locator(f'.datapoints-table tr[data-datapoint-id="{exp.datapoint_ids[3]}"]')
    expect(peru.locator("td.col-inputs")).to_have_text(XSS_QUESTION)
    # A cell opens into the full JSON.
    australia.locator("td.col-truth summary").click()
    expect(australia.locator("td.col-truth .json")).to_contain_text('"Canberra"')
    no_markup_ran(page)
    screens.take(page, "run")
    # Any other run can be picked to compare with; the newer one goes on the "new" side.
    expect(page.locator("select.compare-with option")).to_have_count(3)

    australia.get_by_role("link", name="Open session").click()
    expect(page).to_have_url(re.compile(f"#/sessions/{exp.baseline.sessions[1]}$"))
    expect(page.locator(".session-title")).to_have_text("baseline")
    expect(page.locator(".trace-row .event-name").nth(1)).to_have_text("answer_question")
    expect(page.locator(".nav-link.active")).to_have_text("Sessions")


def test_compare_view_marks_improved_and_degraded(
    page: Page, ui: UiServer, exp: SeededExperiments, screens: Screens
) -> None:
    sign_in(page, ui, "#/experiments")
    compare = page.get_by_role("button", name="Compare selected")
    expect(compare).to_be_disabled()
    # Picked old first, then new: the view still puts the newer run on the "new" side.
    run_row(page, exp.baseline.run_id).locator("input.pick").check()
    expect(compare).to_be_disabled()
    run_row(page, exp.candidate.run_id).locator("input.pick").check()
    expect(page.locator(".compare-picked")).to_have_text(f"Selected: baseline and {XSS_RUN_NAME}")
    compare.click()
    expect(page).to_have_url(
        re.compile(f"#/experiments/{exp.candidate.run_id}/compare/{exp.baseline.run_id}$")
    )
    expect(page.locator(".compare-old .stat-value")).to_have_text("baseline")
    expect(page.locator(".compare-new .stat-value")).to_have_text(XSS_RUN_NAME)

    accuracy = page.locator('.compare-metrics tr[data-metric="accuracy"]')
    # metric, old, new, difference, change, improved, degraded, same, compared
    expect(accuracy.locator("td")).to_have_text(
        ["accuracy", "0.65", "0.6625", "+0.0125", "+1.92%", "2", "1", "1", "4"]
    )
    expect(accuracy.locator(".col-difference")).to_have_class(re.compile(r"\bimproved\b"))
    exact = page.locator('.compare-metrics tr[data-metric="exact_match"]')
    expect(exact.locator("td")).to_have_text(["exact_match", "0.5", "0.5", "0", "0%", "1", "1", "2", "4"])

    rows = page.locator(".compare-table tbody tr")
    expect(rows).to_have_count(4)
    france, australia, canada, peru = (
        page.locator(f'.compare-table tr[data-datapoint-id="{dp}"]') for dp in exp.datapoint_ids
    )
    new_accuracy = 'td.metric-new[data-metric="accuracy"]'
    old_accuracy = 'td.metric-old[data-metric="accuracy"]'
    expect(france.locator(old_accuracy)).to_have_text("0.9")
    expect(france.locator(new_accuracy)).to_have_text("0.95")
    expect(france.locator(new_accuracy)).to_have_class(re.compile(r"\bimproved\b"))
    expect(canada.locator(old_accuracy)).to_have_text("0.7")
    expect(canada.locator(new_accuracy)).to_have_text("0.5")
    expect(canada.locator(new_accuracy)).to_have_class(re.compile(r"\bdegraded\b"))
    expect(canada.locator(old_accuracy)).to_have_class(re.compile(r"\bchanged\b"))
    expect(australia.locator(new_accuracy)).to_have_class(re.compile(r"\bsame\b"))
    expect(australia.locator(new_accuracy)).not_to_have_class(re.compile(r"\b(improved|degraded)\b"))
    expect(australia.locator('td.metric-new[data-metric="exact_match"]')).to_have_class(
        re.compile(r"\bimproved\b")
    )
    expect(peru.locator("td.col-inputs")).to_have_text(XSS_QUESTION)
    expect(page.locator(".compare-table td.improved")).to_have_count(3)
    expect(page.locator(".compare-table td.degraded")).to_have_count(2)
    expect(canada.locator("td.col-output-old")).to_have_text("Ottawa")
    expect(canada.locator("td.col-output-new")).to_have_text("Toronto")
    no_markup_ran(page)
    screens.take(page, "compare")

    page.get_by_role("link", name="Swap old and new").click()
    expect(page.locator(".compare-new .stat-value")).to_have_text("baseline")
    expect(canada.locator(new_accuracy)).to_have_class(re.compile(r"\bimproved\b"))


def test_datasets_page_lists_datapoints(
    page: Page, ui: UiServer, exp: SeededExperiments, screens: Screens
) -> None:
    sign_in(page, ui, "#/experiments")
    page.locator(".nav-link", has_text="Datasets").click()
    dataset = page.locator(f'.datasets-table tr[data-dataset-id="{exp.dataset_id}"]')
    expect(dataset.locator("td")).to_have_text(
        [DATASET_NAME, "Capital cities, one hostile question", "4", re.compile(r"\d{4}-\d\d-\d\d")]
    )
    expect(page.locator(".pick-hint")).to_be_visible()
    dataset.get_by_role("link", name=DATASET_NAME).click()
    expect(page).to_have_url(re.compile(f"#/datasets/{exp.dataset_id}$"))
    expect(dataset).to_have_class(re.compile(r"\bselected\b"))
    rows = page.locator(".dataset-datapoints tbody tr")
    expect(rows).to_have_count(4)
    expect(rows.locator("td.col-id")).to_have_text(exp.datapoint_ids)
    expect(rows.locator("td.col-inputs")).to_have_text(
        [
            "What is the capital of France?",
            "What is the capital of Australia?",
            "What is the capital of Canada?",
            XSS_QUESTION,
        ]
    )
    expect(rows.locator("td.col-truth")).to_have_text(["Paris", "Canberra", "Ottawa", "Lima"])
    expect(rows.locator("td.col-metadata")).to_have_text(["easy", "hard", "medium", "medium"])
    no_markup_ran(page)
    screens.take(page, "dataset")

    # A run's dataset links here; the run page links there.
    page.goto(f"{ui.url}/#/experiments/{exp.candidate.run_id}")
    page.locator(".stat-dataset a").click()
    expect(page.locator(".dataset-datapoints tbody tr")).to_have_count(4)


def test_unknown_run_and_dataset(page: Page, ui: UiServer) -> None:
    sign_in(page, ui, "#/experiments/no-such-run")
    expect(page.get_by_role("alert")).to_contain_text("Run no-such-run was not found")
    page.goto(f"{ui.url}/#/datasets/00000000-0000-4000-8000-000000000000")
    expect(page.get_by_role("alert")).to_contain_text("was not found")


def test_run_page_compare_with(page: Page, ui: UiServer, exp: SeededExperiments) -> None:
    sign_in(page, ui, f"#/experiments/{exp.baseline.run_id}")
    page.get_by_label("Compare with another run").select_option(label=XSS_RUN_NAME)
    expect(page).to_have_url(
        re.compile(f"#/experiments/{exp.candidate.run_id}/compare/{exp.baseline.run_id}$")
    )
    expect(page.locator(".compare-old .stat-value")).to_have_text("baseline")
