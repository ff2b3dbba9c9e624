"""JSON responses rendered once with orjson."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


SUCCESS = orjson.dumps({"success": True})


def success() -> Response:
    return Response(SUCCESS, media_type="application/json")
