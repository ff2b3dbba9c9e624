"""The store contract. Every backend implements exactly this and passes ``tests/storage``.

Semantics every backend must honour:
- writes are idempotent upserts keyed by (project_id, event_id);
- an event that names an unknown session creates that session (contract 5.6), and a session's
  start/end/duration always cover its events;
- children may arrive before parents; ``children_ids`` returned by reads are complete (the ids the
  client sent plus every stored event whose ``parent_id`` points here);
- an update for an unknown event may be kept and applied when the event arrives;
- an event written with ``aliases`` (other ids it is known by: the span-derived id of a span that
  carried an explicit event id, contract 8.7) answers to them as a parent: children written before
  or after it, in the same call or another, whose ``parent_id`` is one of its aliases are stored
  with ``parent_id`` = its real id. Aliases are per project and only affect parent links (reads by
  id do not follow them); the first event to claim an alias keeps it; a link to a child's own
  session is never redirected, nor an event made its own parent. Aliases are not read back and are
  forgotten when their event (or its session) is deleted;
- a write that returns has been durably committed;
- every call is confined to the scope's project.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import orjson

from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.filters import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.transfer import record


@dataclass(frozen=True, slots=True)
class Project:
    project_id: str
    name: str
    org_id: str
    workspace_id: str
    created_at: int


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    kind: KeyKind
    project_id: str
    project_name: str
    created_at: int
    revoked_at: int | None


class Store(abc.ABC):
    """Async interface so that network databases fit without blocking the event loop."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and apply pending migrations. Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish queued writes and release resources. Idempotent."""

    @abc.abstractmethod
    async def health(self) -> bool:
        """True when the store answers queries."""

    # Projects and keys -------------------------------------------------------------------------

    @abc.abstractmethod
    async def ensure_project(self, name: str) -> tuple[Project, bool]:
        """Return the project called ``name``, creating it if needed; the flag says if it was new."""

    @abc.abstractmethod
    async def list_projects(self) -> list[Project]: ...

    @abc.abstractmethod
    async def create_key(self, project_id: str, kind: KeyKind) -> tuple[ApiKeyRecord, str]:
        """Mint a key; return its record and the plaintext key, which is never stored."""

    @abc.abstractmethod
    async def list_keys(self) -> list[ApiKeyRecord]: ...

    @abc.abstractmethod
    async def revoke_key(self, key_id: str) -> bool:
        """Revoke a key by id; False if there is no such active key."""

    @abc.abstractmethod
    async def resolve_key(self, key: str) -> Scope | None:
        """The scope of an active key, or None."""

    # Events ------------------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_session(self, scope: Scope, session: Event) -> Event:
        """Create a session, or merge metadata/user_properties into the existing one (contract 5.7)
        and return what is stored."""

    @abc.abstractmethod
    async def write_events(self, scope: Scope, events: Sequence[Event]) -> None:
        """Upsert events in order, in one atomic commit, creating/widening their sessions."""

    @abc.abstractmethod
    async def update_event(
        self, scope: Scope, event_id: str, update: EventUpdate, *, keep_if_missing: bool = False
    ) -> bool:
        """Apply a partial update. Returns False when the event does not exist; then, with
        ``keep_if_missing``, the update is kept and applied once the event is written."""

    @abc.abstractmethod
    async def get_event(self, scope: Scope, event_id: str) -> Event | None: ...

    @abc.abstractmethod
    async def session_events(self, scope: Scope, session_id: str) -> list[Event]:
        """Every event of a session, the session event included, oldest first."""

    @abc.abstractmethod
    async def delete_session(self, scope: Scope, session_id: str) -> int:
        """Delete a session and all its events; return how many events were deleted."""

    @abc.abstractmethod
    async def delete_event(self, scope: Scope, event_id: str) -> bool: ...

    # Queries -----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def export_events(self, scope: Scope, query: EventQuery) -> tuple[list[Event], int]:
        """One page of the scope's events matching ``query`` (semantics in
        ``tracehive.query.filters``), newest ``start_time`` first unless ``query.ignore_order``,
        and the total number of matches. ``query.projections`` may be ignored (the caller applies
        them); ``children_ids`` need not be completed from stored children (they are as stored)."""

    @abc.abstractmethod
    async def list_sessions(self, scope: Scope, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
        """One page of the scope's sessions matching ``query``, each summarised over all of its
        events, sorted as asked, and the number of matching sessions (semantics in
        ``tracehive.query.session_list``). The page's aggregates are computed by the backend, not
        by loading the sessions' events into memory."""

    # Bulk export and import ---------------------------------------------------------------------

    @abc.abstractmethod
    def iter_events(self, scope: Scope, query: EventQuery) -> AsyncIterator[list[Event]]:
        """Every event of the scope matching ``query``'s conditions and date range, in chunks
        (at most a few thousand events each), newest ``start_time`` first with a stable order for
        ties. ``limit``, ``page``, ``ignore_order`` and ``projections`` are ignored: this streams
        all matches in constant memory, whatever their number. Events are as stored
        (``children_ids`` not completed), as ``export_events`` returns them. Events written while
        the stream runs may or may not appear; none appears twice."""

    async def iter_event_lines(
        self, scope: Scope, query: EventQuery, *, scope_fields: bool
    ) -> AsyncIterator[list[bytes]]:
        """The events ``iter_events`` streams, as JSONL lines in chunks: each line is
        ``orjson.dumps(event.to_dict())`` (``scope_fields``: the HTTP NDJSON export) or
        ``orjson.dumps(transfer.record(event))`` (without the scope ids: ``tracehive export``),
        ending in a newline, byte for byte. This default builds them from ``iter_events``; a
        backend may override it with a faster path that gives the same bytes."""
        dumps, option = orjson.dumps, orjson.OPT_APPEND_NEWLINE
        async for chunk in self.iter_events(scope, query):
            if scope_fields:
                yield [dumps(e.to_dict(), option=option) for e in chunk]
            else:
                yield [dumps(record(e), option=option) for e in chunk]

    @abc.abstractmethod
    async def import_events(self, scope: Scope, events: Sequence[Event]) -> None:
        """Store exported events exactly as given, in one atomic commit: every field as it is
        (ids, times, ``children_ids``, an explicit session's own times), except the scope ids,
        which become the scope's. An event whose id is stored is replaced. Nothing is merged,
        widened, linked or applied (no aliases, no kept updates), with one exception that keeps
        the store's invariants: a session that an event names and that is not stored is created
        as ``write_events`` would create it (implicit, covering its events) until the session's
        own exported row replaces it. So export, import into an empty project and export again
        gives the same events whatever order the rows come in."""

    @abc.abstractmethod
    async def chart_events(self, scope: Scope, query: ChartQuery) -> list[ChartRow]:
        """The scope's events matching ``query`` aggregated per time bucket (and group), ordered by
        bucket then group (semantics in ``tracehive.query.chart``). Raises ``ValidationFailed``
        when the result would exceed ``query.max_buckets`` buckets or ``query.max_rows`` rows; the
        events are aggregated by the backend, never loaded into memory."""

    @abc.abstractmethod
    async def schema_fields(self, scope: Scope, query: EventQuery, *, sample: int = 1000) -> list[tuple[str, str]]:
        """Distinct ``(field name, event_type)`` pairs seen in the newest ``sample`` events of the
        scope matching ``query``'s conditions and date range (its limit, page, order and
        projections are ignored), sorted by event_type then name. Names are top-level columns
        holding a value, JSON columns that are not null/empty, and the dot path of every object
        member (not null) inside a JSON column, not following arrays; only names
        ``tracehive.query.schema.field_name`` accepts (the filter language can address them)."""
