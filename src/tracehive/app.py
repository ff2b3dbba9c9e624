"""``create_app(settings, store=...)``: the only place where the parts are wired together."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tracehive import __version__, pricing, retention
from tracehive.api import (
    admin,
    chart,
    configurations,
    datapoints,
    datasets,
    errors,
    events,
    export,
    health,
    legacy,
    metric_definitions,
    metrics,
    openapi,
    otlp,
    otlp_grpc,
    otlp_journal,
    runs,
    schema,
    search,
    session_list,
    sessions,
    ui,
    whoami,
)
from tracehive.api.auth import KeyResolver, rate_limiter
from tracehive.api.bodies import BodyBudget, InflightBodyLimit
from tracehive.api.read_gate import ReadGate
from tracehive.ingest.decode_pool import DecodePool
from tracehive.observability import middleware
from tracehive.observability.instruments import ServerMetrics
from tracehive.settings import Settings
from tracehive.storage.base import Store
from tracehive.storage.factory import store_from_settings

def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    # The price table model events without a cost are priced with (a bad prices_file raises
    # PriceFileError here, before anything is opened; ``tracehive serve`` checks it earlier still).
    pricing.use_table(pricing.load_table(settings.prices_file))
    # One registry per app (tests build many apps); the store reports commits and stored events to it.
    server_metrics = ServerMetrics(query_kinds=metrics.QUERY_KINDS)
    owns_store = store is None
    store = store or store_from_settings(settings, observer=server_metrics)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            # The journal opens before the gRPC receiver starts and closes after it stops.
            async with (otlp_journal.journal_serving(app), otlp_grpc.serving(app),
                        retention.pruning(store, settings.retention_interval_seconds)):
                yield
        finally:
            await asyncio.to_thread(app.state.decode_pool.close)
            await store.close()

    app = FastAPI(
        title="tracehive",
        version=__version__,
        description="Self-hosted trace backend speaking the HoneyHive data-plane API.",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = store
    app.state.metrics = server_metrics
    # Large OTLP exports are decoded and mapped in worker processes, started on first use.
    app.state.decode_pool = DecodePool(settings.otlp_decode_processes)
    # The OTLP ingest journal, when settings.otlp_journal is on. Its applier runs in a process of
    # its own, opening the store from the settings, unless the store was handed in.
    # The applier may open the store in a process of its own only where several processes may
    # write it at once (SQLite, PostgreSQL; not an in-process ClickHouse).
    otlp_journal.install_journal(app, separate_process=owns_store and store.capabilities.concurrent_writers)
    server_metrics.watch_queue(metrics.writer_queue_depth(store), store.stats().max_pending_writes)
    app.state.keys = KeyResolver(store, settings.key_cache_seconds, rate_limiter(settings))
    app.state.read_gate = ReadGate(settings.max_heavy_reads_per_key)
    # chart, schema (and search) before events: GET /v1/events/{event_id} would otherwise capture
    # /v1/events/chart and /v1/events/schema. session_list before sessions, so that no
    # /v1/sessions/{session_id} route can ever take /v1/sessions/search.
    # The experiments' routes (runs, datasets, datapoints, configurations, metric definitions)
    # before events too: /v1/runs/compare/events must not be taken by /v1/runs/{run_id}.
    for module in (health, whoami, session_list, sessions, export, chart, schema, search, runs, datasets,
                   datapoints, configurations, metric_definitions, events, legacy, otlp, ui):
        app.include_router(module.router)
    app.include_router(metrics.router)
    app.include_router(admin.router)
    errors.install(app)
    openapi.install(app)
    # Bounds the memory held by request bodies being handled (503 + Retry-After past it).
    body_budget = BodyBudget()
    server_metrics.registry.gauge("tracehive_http_request_body_bytes_in_flight",
                                  "Request-body bytes reserved by the requests being handled now "
                                  "(bounded by max_inflight_bytes).",
                                  sample=lambda: float(body_budget.in_flight))
    app.add_middleware(InflightBodyLimit, limit=settings.max_inflight_bytes, budget=body_budget,
                       min_rate=settings.body_min_bytes_per_second, grace=settings.header_timeout_seconds)
    middleware.install(app, server_metrics)
    return app
