"""``create_app(settings, store=...)``: the only place where the parts are wired together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from tracehive import __version__
from tracehive.api import (
    chart,
    errors,
    events,
    export,
    health,
    legacy,
    openapi,
    otlp,
    otlp_grpc,
    schema,
    search,
    sessions,
)
from tracehive.api.auth import KeyResolver
from tracehive.settings import Settings
from tracehive.storage.base import Store


def default_store(settings: Settings) -> Store:
    from tracehive.storage.sqlite import SQLiteStore

    return SQLiteStore(
        settings.database_path,
        readers=settings.reader_threads,
        writer_queue=settings.writer_queue,
        synchronous=settings.sqlite_synchronous,
    )


def create_app(settings: Settings | None = None, store: Store | None = None) -> FastAPI:
    settings = settings or Settings()
    store = store or default_store(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await store.open()
        try:
            async with otlp_grpc.serving(app):
                yield
        finally:
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
    app.state.keys = KeyResolver(store, settings.key_cache_seconds)
    # chart, schema (and search) before events: GET /v1/events/{event_id} would otherwise capture
    # /v1/events/chart and /v1/events/schema.
    for module in (health, sessions, export, chart, schema, search, events, legacy, otlp):
        app.include_router(module.router)
    errors.install(app)
    openapi.install(app)
    return app
