"""Fixtures for the web UI's browser tests: one real ``tracehive serve`` seeded through the REST
API, and headless Chromium (Debian's ``chromium`` package) driven by Playwright.

The server and the browser are shared by the package's tests (starting them is the slow part);
each test gets its own browser context, so local storage (the signed-in key) never leaks between
tests. Screenshots of every page the tests look at go to one temporary folder.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from tests.process.server import TracehiveServer
from tests.ui.seed import Seeded, seed_all, seed_big_session

CHROMIUM = Path("/usr/bin/chromium")
VIEWPORT = {"width": 1440, "height": 900}
BIG_SESSION_EVENTS = 10_000


@dataclass
class UiServer:
    server: TracehiveServer
    key: str
    seeded: Seeded
    big_session: str

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="package")
def ui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[UiServer]:
    server = TracehiveServer(tmp_path_factory.mktemp("ui-data") / "data")
    server.start()
    try:
        key = server.bootstrap_key
        assert key is not None, server.stdout
        with server.client(key) as client:
            big = seed_big_session(client, BIG_SESSION_EVENTS)
            seeded = seed_all(client)
        yield UiServer(server, key, seeded, big)
    finally:
        server.stop()


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    # A shared machine can be slow: give the UI a little longer than Playwright's 5 s default.
    expect.set_options(timeout=10_000)
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        raise RuntimeError(
            f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium); "
            ".ci/run does it on CI"
        )
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=VIEWPORT)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Iterator[Page]:
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    # An uncaught exception in the app is a bug even when the page still looks right.
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="package")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("ui-screenshots")


class Screens:
    """Saves a full-page screenshot per step, and checks that it is a real image."""

    def __init__(self, folder: Path, test_name: str) -> None:
        self.folder = folder
        self.prefix = test_name.removeprefix("test_")

    def take(self, page: Page, step: str) -> Path:
        path = self.folder / f"{self.prefix}--{step}.png"
        page.screenshot(path=str(path), full_page=False)
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 5_000, path
        return path


@pytest.fixture
def screens(shots: Path, request: pytest.FixtureRequest) -> Screens:
    return Screens(shots, request.node.name)


def sign_in(page: Page, ui: UiServer, hash_path: str = "") -> None:
    """Sign in through the sign-in screen, landing on ``hash_path`` (default: the sessions)."""
    page.goto(f"{ui.url}/{hash_path}")
    page.get_by_label("API key").fill(ui.key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".project-name")).to_have_text("default")
