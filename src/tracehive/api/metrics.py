"""``GET /metrics``: the server's metrics in the Prometheus text format.

Who may read them: the bearer of ``metrics_token`` (``TRACEHIVE_METRICS_TOKEN``), and nobody
else. Not a project key, because the numbers cover every project (how much each route is used,
events accepted), so a project's key would learn about the others' traffic. No token configured
means /metrics is closed; Prometheus sends the token with ``authorization: {credentials: ...}``
(or ``bearer_token_file``) in its scrape config. The metrics hold no project data: no ids, no
names, no payloads; route labels are path templates, never raw paths.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import APIRouter
from starlette.requests import Request
from starlette.responses import Response

from tracehive.api.auth import require_operator_token
from tracehive.api.context import settings_of
from tracehive.api.documented import errors
from tracehive.observability.instruments import ServerMetrics
from tracehive.observability.metrics import CONTENT_TYPE
from tracehive.storage.base import Store

router = APIRouter(tags=["operations"])

# The routes whose latency is query latency (tracehive_query_duration_seconds{kind}).
QUERY_KINDS: dict[tuple[str, str], str] = {
    ("POST", "/v1/events/search"): "search",
    ("POST", "/v1/sessions/search"): "sessions",
    ("POST", "/v1/events/export"): "export",
    ("POST", "/events/export"): "export",
    ("GET", "/v1/events"): "list",
    ("GET", "/events"): "list",
    ("GET", "/v1/events/{event_id}"): "event",
    ("GET", "/v1/sessions/{session_id}"): "tree",
    ("GET", "/v1/session/{session_id}"): "tree",
    ("GET", "/session/{session_id}"): "tree",
    ("GET", "/v1/events/chart"): "chart",
    ("GET", "/v1/events/schema"): "schema",
}


def metrics_of(request: Request) -> ServerMetrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


def writer_queue_depth(store: Store) -> Callable[[], float | None]:
    """Reads the writes waiting in the store (its neutral ``stats()``) when scraped; None while
    the store is closed."""

    def sample() -> float | None:
        pending = store.stats().pending_writes
        return None if pending is None else float(pending)

    return sample


@router.get(
    "/metrics",
    summary="Server metrics (Prometheus text format)",
    responses={
        200: {"content": {CONTENT_TYPE.split(";")[0]: {"schema": {"type": "string"}}},
              "description": "Prometheus text exposition format 0.0.4"},
        **errors(401, 403),
    },
)
async def metrics(request: Request) -> Response:
    """Requests by route and status, latencies, events accepted, rejections by reason, the writer's
    queue depth and commit times. Send ``Authorization: Bearer <TRACEHIVE_METRICS_TOKEN>``."""
    await require_operator_token(
        request, settings_of(request).metrics_token,
        closed="/metrics is closed: start the server with TRACEHIVE_METRICS_TOKEN set and send that token; "
               "project keys cannot read it (it covers every project)",
        not_a_key="/metrics takes the metrics token (TRACEHIVE_METRICS_TOKEN), not a project key: it covers every project")
    return Response(metrics_of(request).render(), media_type=CONTENT_TYPE)
