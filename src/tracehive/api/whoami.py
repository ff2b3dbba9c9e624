"""``GET /v1/whoami``: the project a key belongs to, so that a UI given only a key can name it.

A read (ingestion keys get the usual 403): it reveals nothing a project key cannot already see.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import authenticate
from tracehive.api.documented import errors
from tracehive.api.responses import JSONResponse
from tracehive.model.scope import KeyKind
from tracehive.model.wire import ResponseBody

router = APIRouter(tags=["keys"])


class WhoAmIResponse(ResponseBody):
    project_id: str
    project_name: str
    key_kind: str = Field(description=f"One of: {', '.join(kind.value for kind in KeyKind)}.")


@router.get("/v1/whoami", response_model=WhoAmIResponse, responses=errors(401, 403), summary="The key's project")
async def whoami(request: Request) -> Response:
    """The id and name of the project the API key belongs to, and the key's kind."""
    scope = await authenticate(request, write=False)
    return JSONResponse(
        {"project_id": scope.project_id, "project_name": scope.project_name, "key_kind": scope.key_kind.value}
    )
