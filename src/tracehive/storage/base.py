"""The store contract, in two parts. Every backend implements both and passes ``tests/storage``.

Modelled on Jaeger's storage API: a *control* part (``ControlStore``: projects and keys, and next
the datasets and runs of experiments) and an *event* part (``EventStore``: writes, reads, analytics
over events). ``Store`` is both, which is what ``create_app`` takes. The lifecycle is explicit:
``migrate()`` brings the schema up to date (``tracehive migrate``), ``open()`` connects (and, by
default, migrates too, so that ``tracehive serve`` on a new SQLite data dir needs nothing else),
``close()`` finishes queued writes. A backend says what it can do in ``capabilities`` and reports
to one neutral ``StoreObserver`` (``storage/observer.py``), never to a class of the web app.

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

How each write rule stays exact with many writers (several stores, processes or nodes over one
database). SQLite has one writer thread per process and one write lock per database file
(``BEGIN IMMEDIATE``), so every write job of every process runs alone: the rules below hold by
serialisation. PostgreSQL runs writers at once, in READ COMMITTED, and makes each rule safe so:
- *idempotent upserts, re-sent events, merged dicts*: one ``INSERT .. ON CONFLICT DO UPDATE`` per
  row; PostgreSQL locks the conflicting row and applies the merge (``th_merge``, a deep merge in
  SQL) to its latest committed version, so no metadata key written by another node is lost;
- *session creation and widening*: the same, with ``least``/``greatest`` of the stored times;
- *explicit session start* (merge of metadata/user_properties, adoption of an implicit session):
  ``INSERT .. ON CONFLICT DO NOTHING``, else ``SELECT .. FOR UPDATE`` and the merge under that row
  lock;
- *id-role clashes*: the upserts' ``WHERE`` skips a row whose id has the other role; a short row
  count is checked and the whole transaction undone (the unique key serialises the racing inserts);
- *kept updates* and *aliases* are two-sided races (an update kept while its event is being
  inserted elsewhere; a child linked to an alias while the alias is being claimed elsewhere): each
  side writes, commits, then looks again for the other side's committed work and applies it
  (``reconcile``). Of two racing transactions at least one commits before the other looks, so one
  of them always finds the other's work. A kept update is applied exactly once: its row is locked
  (``FOR UPDATE``) and deleted by whoever applies it;
- *records* (datasets, runs, ...): created with ``INSERT .. ON CONFLICT DO NOTHING``; an update
  reads the row ``FOR UPDATE`` and writes the function's result under that lock;
- *lock order*: rows are upserted sorted by id (events, then sessions), so transactions that touch
  the same rows take their locks in one order; a deadlock or serialization failure that still
  happens is retried inside the store (a few times, with jitter) and never reaches a client.

A store without transactions (ClickHouse) shared by several nodes borrows them from the control
store: ``ControlStore.write_leases`` serialises the event writes of each project across every node
and orders them (``WriteLeases``).
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Collection, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any

import orjson

from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import KeyKind, Scope
from tracehive.query.chart import ChartQuery, ChartRow
from tracehive.query.event_query import EventQuery
from tracehive.query.session_list import SessionListQuery, SessionSummary
from tracehive.storage.records import Record, RecordKind, RecordUpdate
from tracehive.transfer import record


@dataclass(frozen=True, slots=True)
class Project:
    project_id: str
    name: str
    org_id: str
    workspace_id: str
    created_at: int
    # Days an event is kept, by its start_time; 0 = forever (tracehive/retention.py prunes).
    retention_days: int = 0
    # Redaction rules applied to the project's events at ingest (ingest/redaction.py), as set.
    redact: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Pruned:
    """What one bounded retention step removed (``EventStore.prune_events``)."""

    events: int = 0  # non-session events deleted
    sessions: int = 0  # sessions deleted: none of their events is left
    shrunk: int = 0  # sessions that keep events, now starting at the first of them

    def __add__(self, other: Pruned) -> Pruned:
        return Pruned(self.events + other.events, self.sessions + other.sessions, self.shrunk + other.shrunk)

    @property
    def removed(self) -> int:
        return self.events + self.sessions


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    kind: KeyKind
    project_id: str
    project_name: str
    created_at: int
    revoked_at: int | None


@dataclass(frozen=True, slots=True)
class Capabilities:
    """What a backend does that the contract leaves open; tests and docs read these."""

    # The store's name in logs and messages ("sqlite", "postgresql"); never branched on above storage/.
    backend: str
    # Several processes or nodes may write the same database at once.
    concurrent_writers: bool
    # Strings keep U+0000; where False, it is stored as U+FFFD (PostgreSQL's text cannot hold it).
    preserves_nul: bool = True
    # Reads are stopped by the database past a time limit (answered 503).
    read_timeout: bool = False
    # An OTLP journal may sit beside the store (journal mode): one process per data dir.
    otlp_journal: bool = True


@dataclass(frozen=True, slots=True)
class StoreStats:
    """A neutral snapshot for ``/metrics``: what waits to be written, and the bound on it."""

    # Write jobs (or transactions) waiting or running now; None when the store is closed.
    pending_writes: int | None
    # The bound past which writes are shed with 503 + Retry-After.
    max_pending_writes: int


class StoreLifecycle(abc.ABC):
    """Async throughout so that network databases fit without blocking the event loop."""

    capabilities: Capabilities

    @abc.abstractmethod
    async def migrate(self) -> int:
        """Bring the schema up to date and return its version; safe to run from several
        processes at once. Works on a store that is not open."""

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect (applying pending migrations first unless the backend says otherwise).
        Idempotent."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish queued writes and release resources. Idempotent."""

    @abc.abstractmethod
    async def health(self) -> bool:
        """True when the store answers queries."""

    @abc.abstractmethod
    def stats(self) -> StoreStats:
        """Cheap and synchronous: sampled by ``/metrics`` on every scrape."""

    def describe(self) -> str:
        """Where the data lives, for people (a path, or a URL without its password)."""
        return self.capabilities.backend


class ControlStore(StoreLifecycle):
    """Projects and API keys, and the records of experiments (``storage/records.py``: datasets,
    datapoints, runs, configurations, metric definitions), each confined to a project."""

    @abc.abstractmethod
    async def ensure_project(self, name: str) -> tuple[Project, bool]:
        """Return the project called ``name``, creating it if needed; the flag says if it was new."""

    @abc.abstractmethod
    async def list_projects(self) -> list[Project]: ...

    @abc.abstractmethod
    async def update_project(self, name: str, *, retention_days: int | None = None,
                             redact: Sequence[str] | None = None) -> Project | None:
        """Set a project's retention and redaction rules (None leaves one as is); the project as
        now stored, or None when there is no such project."""

    @abc.abstractmethod
    async def remove_project(self, project_id: str) -> tuple[int, int]:
        """Delete a project with its keys, records and settings (its events go first, through
        ``EventStore.delete_project_events``); return (keys, records) deleted."""

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

    # Records -----------------------------------------------------------------------------------

    @abc.abstractmethod
    async def create_record(self, scope: Scope, kind: RecordKind, record_id: str, name: str | None,
                            body: dict[str, Any]) -> Record | None:
        """Store a new record; None (and nothing changed) when the project already has one of
        this kind with this id."""

    @abc.abstractmethod
    async def get_record(self, scope: Scope, kind: RecordKind, record_id: str) -> Record | None: ...

    @abc.abstractmethod
    async def list_records(self, scope: Scope, kind: RecordKind, *, ids: Sequence[str] | None = None,
                           name: str | None = None, limit: int = 10_000) -> list[Record]:
        """Records of a kind, oldest first (ties by id), optionally only these ids and/or this
        exact name, at most ``limit``."""

    @abc.abstractmethod
    async def update_record(self, scope: Scope, kind: RecordKind, record_id: str,
                            update: RecordUpdate) -> Record | None:
        """Apply ``update`` to the stored record atomically (no other write to it in between;
        ``update`` must be pure: a backend may call it again after a lost race). Returns the
        record as stored afterwards, or None if there is none."""

    @abc.abstractmethod
    async def delete_record(self, scope: Scope, kind: RecordKind, record_id: str) -> bool: ...

    @abc.abstractmethod
    async def import_records(self, scope: Scope, records: Sequence[Record]) -> None:
        """Store exported records exactly as given (kind, id, name, body, ``created_at``,
        ``updated_at``), replacing any stored record of the same kind and id, in one atomic commit
        (``tracehive import``)."""

    def write_leases(self) -> WriteLeases | None:
        """Leases that let several nodes share an events store without transactions of its own
        (``WriteLeases``), or None where this store cannot hand them across nodes."""
        return None


@dataclass(slots=True)
class WriteLease:
    """What a holder of ``WriteLeases.hold`` learns when it gets the lease."""

    # The highest write order (an integer, the events store's version) any holder published for
    # these projects: this holder's writes must be ordered past it.
    floor: int
    # Whether another holder published for one of these projects since this one last did: what
    # this holder remembers of them (e.g. rows it read or wrote) may be stale.
    others_wrote: bool


class WriteLeases(abc.ABC):
    """Serialise the writes of an events store shared by several nodes, project by project.

    A holder reads, applies the write rules and inserts while it holds the lease of every project
    it writes to, so read-modify-write is exact as under one writer. Before each insert it
    publishes the highest order it may have written (``publish``): a later holder, on any node and
    whatever its clock, orders its writes past it, even if this holder died after inserting.
    A holder that dies (its connection drops) gives its leases up. One ``WriteLeases`` per events
    store instance; it is used by one holder at a time (the events store's writer)."""

    @abc.abstractmethod
    def hold(self, project_ids: Collection[str]) -> AbstractAsyncContextManager[WriteLease]:
        """Wait for the leases of ``project_ids`` (taken in one order: no deadlock); raise
        ``Overloaded`` when they do not come in the write timeout."""

    @abc.abstractmethod
    async def publish(self, version: int) -> None:
        """Under ``hold``: record ``version`` for the held projects, before it is stored."""

    @abc.abstractmethod
    async def close(self) -> None: ...


class EventStore(StoreLifecycle):
    """Events: writes, reads, bulk transfer and analytics, every call confined to a scope."""

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

    @abc.abstractmethod
    async def prune_events(self, scope: Scope, before: float, *, limit: int) -> Pruned:
        """Retention, one bounded step: delete up to ``limit`` non-session events that started
        before ``before`` (Unix ms); then each session left with none of its events, if it
        started before ``before`` too, goes (as do sessions that never had an event and started
        before it), and a session that keeps some starts at the first of them. A caller loops
        until nothing is removed; each step is one short write."""

    @abc.abstractmethod
    async def delete_project_events(self, project_id: str, *, limit: int) -> int:
        """Delete up to ``limit`` events of a project (with their kept updates and aliases);
        return how many, 0 once none is left. A caller loops: each step is one short write."""

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


class Store(ControlStore, EventStore):
    """The whole contract: what ``create_app`` wires and the CLI opens."""
