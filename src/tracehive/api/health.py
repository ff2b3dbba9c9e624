"""``GET /healthz``: no auth; 200 once the store answers."""

from __future__ import annotations

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.context import store_of
from tracehive.api.documented import errors
from tracehive.api.responses import JSONResponse
from tracehive.model.errors import StoreUnavailable
from tracehive.model.wire import HealthResponse

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=HealthResponse, responses=errors(503), summary="Health check")
async def healthz(request: Request) -> Response:
    if not await store_of(request).health():
        raise StoreUnavailable("the store is not answering")
    return JSONResponse({"status": "ok"})
