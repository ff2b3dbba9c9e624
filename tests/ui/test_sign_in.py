"""Sign-in with an API key: wrong keys get a clear message, the project is named, sign-out is clean."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.process.server import run_cli
from tests.ui.conftest import Screens, UiServer, sign_in

STORED_KEY = "() => localStorage.getItem('tracehive.apiKey')"


def try_key(page: Page, ui: UiServer, key: str) -> None:
    page.goto(f"{ui.url}/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()


def test_a_wrong_key_gets_a_clear_message(page: Page, ui: UiServer, screens: Screens) -> None:
    try_key(page, ui, "hh_" + "x" * 40)
    alert = page.get_by_role("alert").filter(has_text="not accepted")
    expect(alert).to_be_visible()
    expect(alert).to_contain_text("That API key was not accepted (invalid or revoked API key)")
    screens.take(page, "wrong-key")
    # Still on the sign-in screen, nothing stored, no top bar.
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.locator(".topbar")).to_have_count(0)
    assert page.evaluate(STORED_KEY) is None

    page.get_by_label("API key").fill("")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert").filter(has_text="Paste an API key first.")).to_be_visible()


def test_an_ingestion_key_is_told_to_use_a_project_key(page: Page, ui: UiServer, screens: Screens) -> None:
    assert ui.server.data_dir is not None
    created = run_cli(
        "keys", "create", "--project", "default", "--kind", "ingestion", "--data-dir", str(ui.server.data_dir)
    )
    ingestion_key = created.stdout.strip().splitlines()[-1]
    assert ingestion_key.startswith("hh_ingst_")
    try_key(page, ui, ingestion_key)
    expect(page.get_by_role("alert").filter(has_text="This is an ingestion key")).to_be_visible()
    screens.take(page, "ingestion-key")
    assert page.evaluate(STORED_KEY) is None


def test_sign_in_names_the_project_survives_a_reload_and_signs_out(
    page: Page, ui: UiServer, screens: Screens
) -> None:
    sign_in(page, ui)
    expect(page.get_by_role("heading", name="Sessions")).to_be_visible()
    expect(page.locator(".project-label")).to_have_text("Project")
    assert page.evaluate(STORED_KEY) == ui.key
    screens.take(page, "signed-in")

    page.reload()
    expect(page.locator(".project-name")).to_have_text("default")
    expect(page.get_by_role("link", name="customer-support-agent")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.locator(".topbar")).to_have_count(0)
    assert page.evaluate(STORED_KEY) is None
    screens.take(page, "signed-out")
    # Signed out means signed out: the data pages ask for a key again, even after a reload.
    page.goto(f"{ui.url}/#/sessions")
    page.reload()
    expect(page.get_by_label("API key")).to_be_visible()
    expect(page.get_by_role("link", name="customer-support-agent")).to_have_count(0)


def test_a_key_revoked_while_signed_in_sends_back_to_sign_in(page: Page, ui: UiServer) -> None:
    """A stored key that stops working is dropped with a message, not left failing silently."""
    page.goto(f"{ui.url}/")
    page.evaluate("() => localStorage.setItem('tracehive.apiKey', 'hh_revoked_or_never_valid')")
    page.reload()
    expect(page.get_by_role("alert").filter(has_text="no longer accepted")).to_be_visible()
    assert page.evaluate(STORED_KEY) is None
