"""How the UI's files are served (through the real app, no browser): the shell at ``/``, modules
under ``/ui/`` with the right content types and no key needed, and nothing outside the static
folder reachable."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from tests.helpers import assert_error
from tracehive.api.ui import STATIC_DIR, static_file
from tracehive.app import create_app
from tracehive.model.errors import NotFound
from tracehive.settings import Settings


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    """The real app, with no key at all: the UI's files need none. (Not the shared ``client``
    fixture: minting its keys calls asyncio.run, which cannot run beside the browser tests'
    Playwright event loop.)"""
    with TestClient(create_app(Settings(data_dir=tmp_path / "data")), raise_server_exceptions=False) as c:
        yield c


def test_the_shell_is_served_at_the_root_without_a_key(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert '<div id="app">' in response.text
    assert '<script type="module" src="/ui/app.js"></script>' in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    assert client.head("/").status_code == 200


@pytest.mark.parametrize(
    ("path", "content_type"),
    [
        ("/ui/app.js", "text/javascript; charset=utf-8"),
        ("/ui/session_view.js", "text/javascript; charset=utf-8"),
        ("/ui/style.css", "text/css; charset=utf-8"),
        ("/ui/favicon.svg", "image/svg+xml"),
        ("/ui/index.html", "text/html; charset=utf-8"),
    ],
)
def test_static_files_have_their_content_types(client: TestClient, path: str, content_type: str) -> None:
    response = client.get(path)
    assert response.status_code == 200
    assert response.headers["content-type"] == content_type
    assert response.content == (STATIC_DIR / path.removeprefix("/ui/")).read_bytes()


@pytest.mark.parametrize(
    "path",
    [
        "/ui/%2e%2e/__init__.py",  # the ui package, one level up
        "/ui/%2e%2e/%2e%2e/app.py",
        "/ui/..%2f..%2fapp.py",
        "/ui/%2e%2e%2f%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/ui//etc/passwd",
        "/ui/nope.js",
        "/ui/",
        "/ui/app.js%00.png",
        "/ui/" + "a" * 5000 + ".js",  # longer than a file name may be: still a 404, not a 500
        "/ui/" + "x/" * 3000 + "app.js",
    ],
)
def test_nothing_outside_the_static_files_is_served(client: TestClient, path: str) -> None:
    assert_error(client.get(path), 404)


@pytest.mark.parametrize(
    "relative", ["../__init__.py", "../../app.py", "/etc/passwd", "", ".", "a\\b.js", "./app.js"]
)
def test_static_file_refuses_paths_that_leave_the_folder(relative: str) -> None:
    with pytest.raises(NotFound):
        static_file(relative)


def test_ui_routes_stay_out_of_the_api_description(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(path.startswith("/ui") for path in paths)


def test_every_module_the_app_imports_is_shipped(client: TestClient) -> None:
    """A typo in an import would only show in a browser: follow the imports from app.js."""
    seen: set[str] = set()
    pending = ["app.js"]
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        response = client.get(f"/ui/{name}")
        assert response.status_code == 200, f"{name} is imported but not served"
        pending += re.findall(r'from "\./([\w.]+\.js)"', response.text)
    shipped = {p.name for p in STATIC_DIR.glob("*.js")}
    index = client.get("/").text
    # Classic scripts (theme_boot.js, which must run before the first paint) are loaded by
    # index.html itself, not imported.
    classic = set(re.findall(r'<script src="/ui/([\w.]+\.js)"></script>', index))
    assert classic and not classic & seen, classic
    assert seen | classic == shipped, f"modules never imported: {shipped - seen - classic}"
    preloaded = set(re.findall(r'<link rel="modulepreload" href="/ui/([\w.]+\.js)">', index))
    assert preloaded == seen - {"app.js"}, "index.html should preload every module app.js imports"
