"""The asynchronous tracehive client: the surface of ``Client``, with ``async`` methods."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, TypeVar

import httpx

from tracehive.client import _base as b
from tracehive.client import _ops as ops
from tracehive.client._ops import SearchResult
from tracehive.client.errors import NetworkError, error_from_response
from tracehive.model.wire import (
    DeleteResponse,
    EventRecord,
    PostEventBatchResponse,
    PostEventRequest,
    PostEventResponse,
    SessionTreeNode,
    StartSessionRequest,
    SuccessResponse,
    UpdateEventRequest,
)

T = TypeVar("T")


class AsyncClient:
    """A client for a tracehive server (the HoneyHive data-plane API).

    ``api_key`` defaults to ``TRACEHIVE_API_KEY`` or ``HH_API_KEY``; ``base_url`` to ``TRACEHIVE_URL``
    or ``HH_API_URL``, else ``http://127.0.0.1:8520``. Connection errors, 408, 429 and 5xx are
    retried up to ``max_retries`` times with exponential backoff and jitter (honouring Retry-After).
    """

    def __init__(
        self,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = b.DEFAULT_TIMEOUT,
        max_retries: int = b.DEFAULT_MAX_RETRIES,
    ) -> None:
        self.api_key, self.base_url = b.resolve_config(api_key, base_url)
        self.timeout = timeout
        self.max_retries = max_retries
        self._http = httpx.AsyncClient(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        self.sessions = Sessions(self)
        self.events = Events(self)

    async def close(self) -> None:
        """Close the underlying connection pool."""
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def _send(self, op: ops.Op[T]) -> T:
        attempt = 0
        while True:
            try:
                response = await self._http.request(op.method, op.path, json=op.body)
            except httpx.TransportError as exc:
                delay = b.retry_delay(attempt, self.max_retries, None, {})
                if delay is None:
                    raise NetworkError(f"{op.method} {op.path}: {exc!r}") from exc
            else:
                delay = b.retry_delay(attempt, self.max_retries, response.status_code, response.headers)
                if delay is None:
                    return op.parse(b.answer(response.status_code, response.content))
            await asyncio.sleep(delay)
            attempt += 1


class Sessions:
    """``client.sessions``: start, add events to, read and delete sessions."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, request: StartSessionRequest | Mapping[str, Any] | None = None, **fields: Any) -> EventRecord:
        """Start a session (a ``session_id`` is generated when absent) and return the session event."""
        return await self._c._send(ops.session_create(request, fields))

    async def create_event_batch(
        self, session_id: str, events: Sequence[PostEventRequest | Mapping[str, Any]]
    ) -> PostEventBatchResponse:
        """Store ``events`` in session ``session_id`` atomically; returns their ids."""
        return await self._c._send(ops.session_event_batch(session_id, events))

    async def get(self, session_id: str) -> SessionTreeNode:
        """The session as the root of its event tree."""
        return await self._c._send(ops.session_get(session_id))

    async def delete(self, session_id: str) -> DeleteResponse:
        """Delete the session and all its events."""
        return await self._c._send(ops.session_delete(session_id))


class Events:
    """``client.events``: create, read, update, delete and search events."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, request: PostEventRequest | Mapping[str, Any] | None = None, **fields: Any) -> PostEventResponse:
        """Create one event (``event_type`` and ``inputs`` required); ids are generated when absent."""
        return await self._c._send(ops.event_create(request, fields))

    async def create_batch(
        self,
        events: Sequence[PostEventRequest | Mapping[str, Any]],
        single_session: bool = False,
        session_properties: Mapping[str, Any] | None = None,
    ) -> PostEventBatchResponse:
        """Create many events in one atomic write; with ``single_session`` they share a new session."""
        return await self._c._send(ops.event_batch(events, single_session, session_properties))

    async def get(self, event_id: str) -> EventRecord:
        """One event by id."""
        return await self._c._send(ops.event_get(event_id))

    async def update(
        self, event_id: str, request: UpdateEventRequest | Mapping[str, Any] | None = None, **fields: Any
    ) -> SuccessResponse:
        """Merge metadata/feedback/metrics/config/user_properties, replace outputs, set times."""
        return await self._c._send(ops.event_update(event_id, request, fields))

    async def delete(self, event_id: str) -> DeleteResponse:
        """Delete one event."""
        return await self._c._send(ops.event_delete(event_id))

    async def search(
        self,
        request: Mapping[str, Any] | None = None,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        date_range: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page: int | None = None,
        evaluation_id: str | None = None,
    ) -> SearchResult:
        """One page of matching events, newest first, with ``count`` = total matches.

        ``filters`` are ``{"field", "operator", "value"}`` objects; ``date_range`` is
        ``{"start_time": iso, "end_time": iso}`` (inclusive); ``limit`` is 1..1000."""
        return await self._c._send(ops.event_search(request, filters, date_range, limit, page, evaluation_id))

    async def iter(
        self,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        date_range: Mapping[str, Any] | None = None,
        page_size: int = 100,
        evaluation_id: str | None = None,
    ) -> AsyncIterator[EventRecord]:
        """Every matching event, newest first, fetching ``page_size`` at a time."""
        page, seen = 1, 0
        while True:
            result = await self.search(filters=filters, date_range=date_range, limit=page_size, page=page,
                                 evaluation_id=evaluation_id)
            for event in result.events:
                yield event
            seen += len(result.events)
            if not ops.pages_left(result, seen):
                return
            page += 1
