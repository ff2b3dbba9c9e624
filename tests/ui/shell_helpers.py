"""Helpers for the tests of the UI's shell (theme, empty states, session rows, narrow layout):
a project of its own on the shared server, signing in with its key, and measuring what is on
screen."""

from __future__ import annotations

import time
import uuid
from typing import Any

from playwright.sync_api import Page, expect

from tests.process.server import run_cli
from tests.ui.conftest import UiServer


def new_project(ui: UiServer, prefix: str) -> tuple[str, str]:
    """A new, empty project on the shared server: (its name, a project key for it)."""
    assert ui.server.data_dir is not None
    name = f"{prefix}-{uuid.uuid4().hex[:8]}"
    created = run_cli("keys", "create", "--project", name, "--data-dir", str(ui.server.data_dir))
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith("hh_"), created.stdout
    return name, key


def sign_in_as(page: Page, ui: UiServer, key: str, project: str, hash_path: str = "") -> None:
    """Sign in through the sign-in screen with ``key``, landing on ``hash_path``."""
    page.goto(f"{ui.url}/{hash_path}")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator(".project-name")).to_have_text(project)


def send_session(ui: UiServer, key: str, name: str, events: list[dict[str, Any]] | None = None) -> str:
    """Start a session named ``name`` through the REST API, with ``events`` under it."""
    now = time.time() * 1000
    with ui.server.client(key) as client:
        reply = client.post("/v1/sessions", json={"session_name": name, "source": "shell-test", "start_time": now})
        assert reply.status_code == 200, reply.text
        session_id = str(reply.json()["session_id"])
        if events:
            body = {"events": [{"start_time": now + 1, "end_time": now + 101, "duration": 100,
                                "source": "shell-test", "inputs": {}, **e} for e in events]}
            reply = client.post(f"/v1/sessions/{session_id}/events/batch", json=body)
            assert reply.status_code == 200, reply.text
    return session_id


# How wide the page is against the window, and the elements sticking out on the right, if any.
PAGE_WIDTH = """() => {
  const width = window.innerWidth;
  const out = [...document.querySelectorAll('body *')]
    .filter((e) => e.getBoundingClientRect().right > width + 0.5 && e.getClientRects().length
      && !e.closest('.table-wrap, .trace-scroll, .trace-header, .code-block pre, .nav, .section-body'))
    .slice(0, 5).map((e) => `${e.tagName.toLowerCase()}.${e.className}`);
  return { scroll: document.documentElement.scrollWidth, width, out };
}"""
