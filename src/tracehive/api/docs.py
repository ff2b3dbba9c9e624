"""``/docs``: the API reference in the Swagger UI bundled with the package (no CDN), safely.

The bundled Swagger UI (4.x) cannot read OpenAPI 3.1, which FastAPI writes (``/openapi.json``
stays 3.1: it is the machine-readable contract). ``/docs/openapi.json`` is the same document
rewritten as OpenAPI 3.0 (``openapi_30``), which the UI renders.

Only the files the page needs are served (the bundle's demo ``index.html`` fetched a public
petstore document), every answer carries the web UI's headers (a strict CSP without inline code,
no framing, nosniff), and the page's start-up script is a file of ours, not inline.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from swagger_ui_bundle import swagger_ui_path

from tracehive.api.ui import HEADERS
from tracehive.model.errors import NotFound

# The Swagger UI files the page loads, and their types; nothing else of the bundle is served.
_BUNDLE_FILES = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
_OWN_FILES = {"docs-init.js": "text/javascript; charset=utf-8"}
_OWN_DIR = Path(__file__).resolve().parent.parent / "ui" / "docs"

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>tracehive API</title>
<link rel="stylesheet" href="/docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/static/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/static/swagger-ui-bundle.js"></script>
<script src="/docs/static/docs-init.js"></script>
</body>
</html>
"""


@lru_cache(maxsize=8)
def _read(path: Path) -> bytes:
    return path.read_bytes()


def _static(name: str) -> Response:
    if name in _BUNDLE_FILES:
        return Response(_read(Path(swagger_ui_path) / name), media_type=_BUNDLE_FILES[name], headers=HEADERS)
    if name in _OWN_FILES:
        return Response(_read(_OWN_DIR / name), media_type=_OWN_FILES[name], headers=HEADERS)
    raise NotFound(f"no docs file {name[:100]!r}")


def openapi_30(document: dict[str, Any]) -> dict[str, Any]:
    """An OpenAPI 3.1 document (as FastAPI and pydantic write it) rewritten as 3.0.3: a
    ``{"type": "null"}`` branch of anyOf/oneOf becomes ``nullable``, ``const`` an enum of one,
    ``examples`` lists the first ``example``, numeric exclusive bounds the boolean form, and
    type lists their non-null type."""
    out = _schema_30(copy.deepcopy(document))
    out["openapi"] = "3.0.3"
    return out


def _schema_30(node: Any) -> Any:
    if isinstance(node, list):
        return [_schema_30(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: _schema_30(value) for key, value in node.items()}
    for combinator in ("anyOf", "oneOf"):
        options = node.get(combinator)
        if isinstance(options, list) and any(_is_null(o) for o in options):
            rest = [o for o in options if not _is_null(o)]
            node["nullable"] = True
            if len(rest) == 1 and isinstance(rest[0], dict) and "$ref" not in rest[0]:
                del node[combinator]
                node.update(rest[0])
                node["nullable"] = True
            elif rest:
                node[combinator] = rest
            else:
                del node[combinator]
    kind = node.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        if len(non_null) < len(kind):
            node["nullable"] = True
        if non_null:
            node["type"] = non_null[0]
        else:
            del node["type"]
    if "const" in node and isinstance(node.get("const"), (str, int, float, bool)):
        node["enum"] = [node.pop("const")]
    examples = node.get("examples")
    if isinstance(examples, list) and "schema" not in node and "content" not in node:
        # A schema's examples (3.1) -> one example (3.0); a parameter's or media type's
        # ``examples`` (a map of named examples) is valid 3.0 and left alone.
        del node["examples"]
        if examples:
            node.setdefault("example", examples[0])
    for bound, plain in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        value = node.get(bound)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            node[plain] = value
            node[bound] = True
    return node


def _is_null(option: Any) -> bool:
    return isinstance(option, dict) and option.get("type") == "null" and len(option) == 1


def install(app: FastAPI) -> None:
    async def page(request: Request) -> HTMLResponse:
        return HTMLResponse(_PAGE, headers=HEADERS)

    async def document(request: Request) -> JSONResponse:
        return JSONResponse(_cached_30(app), headers=HEADERS)

    async def static(request: Request) -> Response:
        return _static(str(request.path_params["name"]))

    app.add_route("/docs", page, include_in_schema=False)
    app.add_route("/docs/openapi.json", document, include_in_schema=False)
    app.add_route("/docs/static/{name}", static, include_in_schema=False)


def _cached_30(app: FastAPI) -> dict[str, Any]:
    cached: dict[str, Any] | None = getattr(app.state, "openapi_30", None)
    if cached is None:
        cached = openapi_30(app.openapi())
        app.state.openapi_30 = cached
    return cached
