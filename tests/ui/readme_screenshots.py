"""The README's pictures, taken from a real server seeded through the REST API:

    python -m tests.ui.readme_screenshots                 # into docs/screenshots/
    python -m tests.ui.readme_screenshots --out /tmp/shots

session-view.png and session-view-dark.png (the support session with its model call selected,
in the light and the dark theme) and compare-view.png (two experiment runs compared, taken by
tests.ui.seed_experiments). 1440x900, headless Debian Chromium.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from tests.ui.seed import seed_all
from tests.ui.seed_experiments import screenshot as compare_screenshot

CHROMIUM = "/usr/bin/chromium"
VIEWPORT = {"width": 1440, "height": 900}
NEXT_FRAMES = "() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))"


def session_views(out: Path) -> list[Path]:
    """The session view in both themes (the theme follows the emulated system scheme)."""
    from playwright.sync_api import sync_playwright

    from tests.process.server import TracehiveServer

    saved = []
    with tempfile.TemporaryDirectory(prefix="tracehive-readme-shots-") as tmp:
        server = TracehiveServer(Path(tmp) / "data")
        server.start()
        try:
            key = server.bootstrap_key
            assert key, server.stdout
            with server.client(key) as client:
                seeded = seed_all(client)
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
                for scheme, name in (("light", "session-view.png"), ("dark", "session-view-dark.png")):
                    context = browser.new_context(viewport=VIEWPORT, color_scheme=scheme)
                    page = context.new_page()
                    page.goto(server.url + "/")
                    page.evaluate("(key) => localStorage.setItem('tracehive.apiKey', key)", key)
                    page.close()
                    page = context.new_page()  # a new load, signed in with the stored key
                    page.goto(f"{server.url}/#/sessions/{seeded.support_session}/events/{seeded.model_event}")
                    page.locator(".event-detail .detail-title").filter(has_text="generate_answer").wait_for()
                    page.locator(".conversation").wait_for()
                    page.evaluate(NEXT_FRAMES)
                    path = out / name
                    page.screenshot(path=str(path))
                    saved.append(path)
                    context.close()
                browser.close()
        finally:
            server.stop()
    return saved


def main() -> int:
    parser = argparse.ArgumentParser(description="Take the README's screenshots.")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder (default docs/screenshots)")
    out = parser.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    for path in session_views(out):
        print(f"screenshot: {path} ({path.stat().st_size // 1024} KiB)")
    compare_screenshot(out / "compare-view.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
