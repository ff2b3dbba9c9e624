"""The web UI: ``GET /`` is the single-page app's shell, ``GET /ui/{path}`` its static files.

The UI is plain ES modules shipped inside the package (``tracehive/ui/static``), so nothing needs
Node.js to install or run. Static files need no key: they hold no data. Every piece of data the UI
shows comes from the authenticated REST API, with the key the user pasted sent as a bearer token.

Only the files shipped in the static folder (flat, known extensions) are served, looked up by
name; anything else (``..`` segments, absolute or over-long paths, folders) is the contract's 404.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from starlette.responses import Response

from tracehive.model.errors import NotFound

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).resolve().parent.parent / "ui" / "static"

CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}

# The app draws everything from its own origin and never needs inline code, so a strict policy
# costs nothing and stops injected markup from running even if a rendering bug let some through.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
HEADERS = {
    # Revalidate on every load: after an upgrade the browser must not mix old and new modules.
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
}


@lru_cache(maxsize=1)
def shipped_files() -> dict[str, Path]:
    """The files of the (flat) static folder by name, listed once, on first use."""
    return {
        path.name: path for path in STATIC_DIR.iterdir() if path.is_file() and path.suffix in CONTENT_TYPES
    }


@lru_cache(maxsize=64)  # bounded by the number of files shipped
def _read(path: Path) -> bytes:
    return path.read_bytes()


def static_file(relative: str) -> Path:
    """The shipped file named ``relative``; NotFound for anything else.

    A request's path is only ever looked up in the list of shipped files, never joined to a
    folder and opened: ``..``, absolute paths, odd bytes and over-long names cannot reach the
    file system."""
    path = shipped_files().get(relative)
    if path is None:
        raise NotFound(f"no UI file {relative[:100]!r}")
    return path


def _serve(path: Path) -> Response:
    return Response(_read(path), media_type=CONTENT_TYPES[path.suffix], headers=HEADERS)


@router.api_route("/", methods=["GET", "HEAD"])
def index() -> Response:
    return _serve(static_file("index.html"))


@router.api_route("/ui/{relative:path}", methods=["GET", "HEAD"])
def asset(relative: str) -> Response:
    return _serve(static_file(relative))
