"""The asynchronous tracehive client (the same surface as ``Client``, with async methods)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

import httpx

from tracehive.client import _base as b
from tracehive.client.errors import NetworkError, error_from_response
from tracehive.model.wire import (
    DeleteResponse,
    EventRecord,
    GetEventResponse,
    PostEventBatchResponse,
    PostEventRequest,
    PostEventResponse,
    SessionTreeNode,
    StartSessionRequest,
    SuccessResponse,
    UpdateEventRequest,
)


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

    async def _request(self, method: str, path: str, json: Any = None) -> Any:
        attempt = 0
        while True:
            try:
                response = await self._http.request(method, path, json=json)
            except httpx.TransportError as exc:
                if attempt >= self.max_retries:
                    raise NetworkError(f"{method} {path}: {exc!r}") from exc
                await asyncio.sleep(b.backoff(attempt, None))
                attempt += 1
                continue
            if response.status_code in b.RETRY_STATUSES and attempt < self.max_retries:
                await asyncio.sleep(b.backoff(attempt, b.retry_after_seconds(response.headers)))
                attempt += 1
                continue
            try:
                data = response.json()
            except ValueError:
                data = None
            if response.status_code >= 400:
                raise error_from_response(response.status_code, data, response.text)
            return data


class Sessions:
    """``client.sessions``: start, add events to, read and delete sessions."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, request: StartSessionRequest | Mapping[str, Any] | None = None, **fields: Any) -> EventRecord:
        """Start a session (a ``session_id`` is generated when absent) and return the session event."""
        body = b.session_create_body(request, fields)
        return EventRecord.model_validate(await self._c._request("POST", "/v1/sessions", body))

    async def create_event_batch(
        self, session_id: str, events: Sequence[PostEventRequest | Mapping[str, Any]]
    ) -> PostEventBatchResponse:
        """Store ``events`` in session ``session_id`` atomically; returns their ids."""
        body = b.session_batch_body(session_id, events)
        return PostEventBatchResponse.model_validate(
            await self._c._request("POST", f"/v1/sessions/{session_id}/events/batch", body)
        )

    async def get(self, session_id: str) -> SessionTreeNode:
        """The session as the root of its event tree."""
        return SessionTreeNode.model_validate(await self._c._request("GET", f"/v1/sessions/{session_id}"))

    async def delete(self, session_id: str) -> DeleteResponse:
        """Delete the session and all its events."""
        return DeleteResponse.model_validate(await self._c._request("DELETE", f"/v1/sessions/{session_id}"))


class Events:
    """``client.events``: create, read, update, delete and search events."""

    def __init__(self, client: AsyncClient) -> None:
        self._c = client

    async def create(self, request: PostEventRequest | Mapping[str, Any] | None = None, **fields: Any) -> PostEventResponse:
        """Create one event (``event_type`` and ``inputs`` required); ids are generated when absent."""
        body = b.event_create_body(request, fields)
        return PostEventResponse.model_validate(await self._c._request("POST", "/v1/events", body))

    async def create_batch(
        self,
        events: Sequence[PostEventRequest | Mapping[str, Any]],
        single_session: bool = False,
        session_properties: Mapping[str, Any] | None = None,
    ) -> PostEventBatchResponse:
        """Create many events in one atomic write; with ``single_session`` they share a new session."""
        body = b.event_batch_body(events, single_session, session_properties)
        return PostEventBatchResponse.model_validate(await self._c._request("POST", "/v1/events/batch", body))

    async def get(self, event_id: str) -> EventRecord:
        """One event by id."""
        return GetEventResponse.model_validate(await self._c._request("GET", f"/v1/events/{event_id}")).event

    async def update(self, event_id: str, request: UpdateEventRequest | Mapping[str, Any] | None = None, **fields: Any) -> SuccessResponse:
        """Merge metadata/feedback/metrics/config/user_properties, replace outputs, set times."""
        body = b.update_body(request, fields)
        return SuccessResponse.model_validate(await self._c._request("PUT", f"/v1/events/{event_id}", body))

    async def delete(self, event_id: str) -> DeleteResponse:
        """Delete one event."""
        return DeleteResponse.model_validate(await self._c._request("DELETE", f"/v1/events/{event_id}"))

    async def search(
        self,
        request: Mapping[str, Any] | None = None,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        date_range: Mapping[str, Any] | None = None,
        limit: int | None = None,
        page: int | None = None,
        evaluation_id: str | None = None,
    ) -> dict[str, Any]:
        """One page of matching events, newest first: ``{"events": [...], "count": n, "totalEvents": n}``."""
        body = b.search_body(request, filters, date_range, limit, page, evaluation_id)
        return await self._c._request("POST", "/v1/events/search", body)

    async def iter(
        self,
        *,
        filters: Sequence[Mapping[str, Any]] | None = None,
        date_range: Mapping[str, Any] | None = None,
        page_size: int = 100,
        evaluation_id: str | None = None,
    ) -> AsyncIterator[EventRecord]:
        """Every matching event, paging through the search results."""
        page = 1
        seen = 0
        while True:
            result = await self.search(filters=filters, date_range=date_range, limit=page_size, page=page,
                                 evaluation_id=evaluation_id)
            rows = result.get("events") or []
            for row in rows:
                yield EventRecord.model_validate(row)
            seen += len(rows)
            if not rows or seen >= int(result.get("count", 0)):
                return
            page += 1
