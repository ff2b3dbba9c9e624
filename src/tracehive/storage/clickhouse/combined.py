"""CombinedStore: one ``Store`` made of a control part and a separate event part.

``--events-store`` moves events to ClickHouse while projects, keys and records stay in
``--store`` (SQLite or PostgreSQL). The combination is a plain delegation: control calls go to
the control store, event calls to the event store, and the lifecycle runs both (control first,
so an events store never opens without the keys that scope it). Neither part knows of the other.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.event_query import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.storage.base import (
    ApiKeyRecord,
    Capabilities,
    ControlStore,
    EventStore,
    Project,
    Pruned,
    Store,
    StoreStats,
)
from tracehive.storage.records import Record, RecordKind, RecordUpdate


class CombinedStore(Store):
    def __init__(self, control: ControlStore, events: EventStore) -> None:
        self.control = control
        self.events = events
        c, e = control.capabilities, events.capabilities
        self.capabilities = Capabilities(  # type: ignore[misc]
            backend=f"{c.backend}+{e.backend}",
            concurrent_writers=c.concurrent_writers and e.concurrent_writers,
            preserves_nul=c.preserves_nul and e.preserves_nul,
            read_timeout=e.read_timeout,  # the heavy reads are the event store's
            otlp_journal=c.otlp_journal and e.otlp_journal,
        )

    # Lifecycle ---------------------------------------------------------------------------------

    async def migrate(self) -> int:
        """Both schemas; returns the control store's version (the one ``tracehive migrate``
        has always reported)."""
        version = await self.control.migrate()
        await self.events.migrate()
        return version

    async def open(self) -> None:
        await self.control.open()
        try:
            await self.events.open()
        except BaseException:
            await self.control.close()
            raise

    async def close(self) -> None:
        try:
            await self.events.close()
        finally:
            await self.control.close()

    async def health(self) -> bool:
        return await self.control.health() and await self.events.health()

    def stats(self) -> StoreStats:
        return self.events.stats()  # event writes are what queue

    def describe(self) -> str:
        return f"{self.control.describe()} (events: {self.events.describe()})"

    # Control -----------------------------------------------------------------------------------

    async def ensure_project(self, name: str) -> tuple[Project, bool]:
        return await self.control.ensure_project(name)

    async def list_projects(self) -> list[Project]:
        return await self.control.list_projects()

    async def update_project(self, name: str, *, retention_days: int | None = None,
                             redact: Sequence[str] | None = None) -> Project | None:
        return await self.control.update_project(name, retention_days=retention_days, redact=redact)

    async def remove_project(self, project_id: str) -> tuple[int, int]:
        return await self.control.remove_project(project_id)

    async def create_key(self, project_id: str, kind: KeyKind) -> tuple[ApiKeyRecord, str]:
        return await self.control.create_key(project_id, kind)

    async def list_keys(self) -> list[ApiKeyRecord]:
        return await self.control.list_keys()

    async def revoke_key(self, key_id: str) -> bool:
        return await self.control.revoke_key(key_id)

    async def resolve_key(self, key: str) -> Scope | None:
        return await self.control.resolve_key(key)

    async def create_record(self, scope: Scope, kind: RecordKind, record_id: str, name: str | None,
                            body: dict[str, Any]) -> Record | None:
        return await self.control.create_record(scope, kind, record_id, name, body)

    async def get_record(self, scope: Scope, kind: RecordKind, record_id: str) -> Record | None:
        return await self.control.get_record(scope, kind, record_id)

    async def list_records(self, scope: Scope, kind: RecordKind, *, ids: Sequence[str] | None = None,
                           name: str | None = None, limit: int = 10_000) -> list[Record]:
        return await self.control.list_records(scope, kind, ids=ids, name=name, limit=limit)

    async def update_record(self, scope: Scope, kind: RecordKind, record_id: str,
                            update: RecordUpdate) -> Record | None:
        return await self.control.update_record(scope, kind, record_id, update)

    async def delete_record(self, scope: Scope, kind: RecordKind, record_id: str) -> bool:
        return await self.control.delete_record(scope, kind, record_id)

    async def import_records(self, scope: Scope, records: Sequence[Record]) -> None:
        await self.control.import_records(scope, records)

    # Events ------------------------------------------------------------------------------------

    async def create_session(self, scope: Scope, session: Event) -> Event:
        return await self.events.create_session(scope, session)

    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        await self.events.write_events(scope, events)

    async def update_event(self, scope: Scope, event_id: str, update: EventUpdate, *,
                           keep_if_missing: bool = False) -> bool:
        return await self.events.update_event(scope, event_id, update, keep_if_missing=keep_if_missing)

    async def get_event(self, scope: Scope, event_id: str) -> Event | None:
        return await self.events.get_event(scope, event_id)

    async def session_events(self, scope: Scope, session_id: str) -> list[Event]:
        return await self.events.session_events(scope, session_id)

    async def prune_events(self, scope: Scope, before: float, *, limit: int) -> Pruned:
        return await self.events.prune_events(scope, before, limit=limit)

    async def delete_project_events(self, project_id: str, *, limit: int) -> int:
        return await self.events.delete_project_events(project_id, limit=limit)

    async def delete_session(self, scope: Scope, session_id: str) -> int:
        return await self.events.delete_session(scope, session_id)

    async def delete_event(self, scope: Scope, event_id: str) -> bool:
        return await self.events.delete_event(scope, event_id)

    async def export_events(self, scope: Scope, query: EventQuery) -> tuple[list[Event], int]:
        return await self.events.export_events(scope, query)

    async def list_sessions(self, scope: Scope, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
        return await self.events.list_sessions(scope, query)

    def iter_events(self, scope: Scope, query: EventQuery) -> AsyncIterator[list[Event]]:
        return self.events.iter_events(scope, query)

    def iter_event_lines(self, scope: Scope, query: EventQuery, *,
                         scope_fields: bool) -> AsyncIterator[list[bytes]]:
        return self.events.iter_event_lines(scope, query, scope_fields=scope_fields)

    async def import_events(self, scope: Scope, events: Sequence[Event]) -> None:
        await self.events.import_events(scope, events)

    async def chart_events(self, scope: Scope, query: ChartQuery) -> list[ChartRow]:
        return await self.events.chart_events(scope, query)

    async def schema_fields(self, scope: Scope, query: EventQuery, *, sample: int = 1000) -> list[tuple[str, str]]:
        return await self.events.schema_fields(scope, query, sample=sample)
