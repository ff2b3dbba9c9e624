"""The event write rules on ClickHouse, done read-modify-write by one writer.

ClickHouse has no row locks and no ``ON CONFLICT``: a write is an ``INSERT`` of new row versions.
So each write loads the current versions of the rows it touches (``lookup.py``), applies the
contract's rules to them in memory (the same pure rules as the other backends:
``storage/rules.py``, ``EventUpdate``), refuses a role clash before anything is written, and
inserts every changed row as a new version in one block (one part: atomic). The store runs these
functions one at a time (``store.py``), which is what makes read-modify-write exact.

Rows are kept in a ``Batch`` while a write runs, so a rule that touches a row another rule
already changed (a session widened, then adopted by its session start, then given a kept
update) sees the change, as the statements of one SQL transaction would.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from tracehive.model.event import Event, EventUpdate, deep_merge
from tracehive.model.scope import Scope
from tracehive.storage.children import complete_children, complete_session
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.lookup import live_rows
from tracehive.storage.clickhouse.rows import (
    READ_COLUMNS,
    VersionClock,
    as_read,
    dump,
    event_row,
    now_ms,
    row_to_event,
    tombstone_row,
)
from tracehive.storage.clickhouse.schema import EVENT_COLUMNS
from tracehive.storage.clickhouse.session_rows import SessionRows
from tracehive.storage.rules import (
    implicit_session,
    inherit_sources,
    merge_session_start,
    role_clash,
    session_spans,
    sources_to_look_up,
)


@dataclass
class Row:
    event: Event
    implicit: bool
    seq: int  # 0 until the row is first stored
    # The row's stored key is (start_time, event_id): the stored start time (None when not stored
    # yet) and session, for the tombstone a move in time leaves under the old key.
    stored_start: float | None
    stored_session: str | None
    changed: bool = False


@dataclass
class Batch:
    """The rows the writes of one project in one insert have loaded or made, and what they
    changed. Several writes may share a batch (the store's group commit): each sees what the
    earlier ones did, as the statements of one SQL transaction would, including what is not in
    the tables yet (alias claims, kept updates already applied)."""

    ex: Executor
    scope: Scope
    rows: dict[str, Row] = field(default_factory=dict)
    missing: set[str] = field(default_factory=set)
    # (event_id, event_type) of rows as stored before this write: what a role clash names.
    stored_types: list[tuple[str, str]] = field(default_factory=list)
    # Aliases claimed by earlier writes of the batch ({alias: owner}), recorded after the insert.
    claimed: dict[str, str] = field(default_factory=dict)
    # Events whose kept updates an earlier write of the batch applied (forgotten after the insert).
    applied: set[str] = field(default_factory=set)
    # Kept updates read so far ({event_id: payloads, oldest first}) and the ids already asked
    # for: the writes of a group ask once for all their ids (``load_pending``), not once each.
    pending: dict[str, list[str]] = field(default_factory=dict)
    pending_asked: set[str] = field(default_factory=set)
    # Whether the project had a kept update, and an alias claim, stored when first asked (None:
    # not asked yet): most projects have neither, and one probe answers both for the group.
    pending_stored: bool | None = None
    aliases_stored: bool | None = None
    # Session rows the writer stored last (read from there, not from the table: session_rows.py),
    # and the batch's session rows as they are stored once its insert succeeds.
    cache: SessionRows | None = None
    session_rows: dict[str, tuple[Any, ...]] = field(default_factory=dict)

    async def load(self, event_ids: Iterable[str]) -> None:
        wanted = [i for i in dict.fromkeys(event_ids) if i not in self.rows and i not in self.missing]
        if self.cache is not None:
            cached = [raw for i in wanted if (raw := self.cache.get(self.scope.project_id, i)) is not None]
            for raw in cached:
                self._add(raw)
            if cached:
                wanted = [i for i in wanted if i not in self.rows]
        if not wanted:
            return
        for raw in await live_rows(self.ex, self.scope.project_id, "event_id", wanted, READ_COLUMNS):
            self._add(raw)
        self.missing.update(i for i in wanted if i not in self.rows)

    async def load_children_of(self, parent_ids: list[str]) -> list[Row]:
        raws = await live_rows(self.ex, self.scope.project_id, "parent_id", parent_ids, READ_COLUMNS)
        for raw in raws:
            if raw[0] not in self.rows:
                self._add(raw)
        wanted = set(parent_ids)
        return [row for row in self.rows.values() if row.event.parent_id in wanted]

    def _add(self, raw: tuple[Any, ...]) -> None:
        event = row_to_event(raw)
        self.rows[event.event_id] = Row(event, bool(raw[21]), int(raw[22]), float(raw[6]), event.session_id)
        self.stored_types.append((event.event_id, event.event_type))
        if event.event_type == "session":
            self.session_rows[event.event_id] = tuple(raw)

    async def load_pending(self, event_ids: Iterable[str]) -> None:
        """Read the kept updates of these events (those not asked for yet). Only the writer
        adds kept updates, and not while a batch is open, so what was read stays true for it."""
        wanted = [i for i in dict.fromkeys(event_ids) if i not in self.pending_asked]
        if not wanted:
            return
        self.pending_asked.update(wanted)
        if self.pending_stored is None:
            await self._probe()
        if not self.pending_stored:
            return
        for event_id, payload in await self.ex.query(
            "SELECT event_id, payload FROM pending_updates WHERE project_id = {p:String} "
            "AND event_id IN {ids:Array(String)} ORDER BY event_id, version",
            {"p": self.scope.project_id, "ids": wanted},
        ):
            self.pending.setdefault(event_id, []).append(payload)

    async def has_stored_aliases(self) -> bool:
        """Whether any alias claim of the project is stored (asked once per batch: claims are
        recorded by the writer after the insert, and ``claimed`` holds the batch's own)."""
        if self.aliases_stored is None:
            await self._probe()
        return bool(self.aliases_stored)

    async def _probe(self) -> None:
        [(pending, aliases)] = await self.ex.query(
            "SELECT (SELECT count() FROM (SELECT 1 FROM pending_updates WHERE project_id = {p:String} LIMIT 1)), "
            "(SELECT count() FROM (SELECT 1 FROM event_aliases WHERE project_id = {p:String} LIMIT 1))",
            {"p": self.scope.project_id})
        self.pending_stored, self.aliases_stored = bool(int(pending)), bool(int(aliases))

    def get(self, event_id: str) -> Row | None:
        return self.rows.get(event_id)

    def put(self, event: Event, *, implicit: bool) -> Row:
        scope = self.scope
        event.org_id, event.workspace_id, event.project_id = scope.org_id, scope.workspace_id, scope.project_id
        row = Row(event, implicit, 0, None, None, changed=True)
        self.rows[event.event_id] = row
        self.missing.discard(event.event_id)
        return row

    async def flush(self, clock: VersionClock, now: int) -> int:
        """Insert every changed row as a new version, in one block; return how many."""
        out = self.versions(clock, now)
        if out:
            await self.ex.insert("events", EVENT_COLUMNS, out)
        return len(out)

    def versions(self, clock: VersionClock, now: int) -> list[list[Any]]:
        """The rows to insert (``schema.EVENT_COLUMNS``) for every changed row: its new version,
        after a tombstone under its old key when its start time moved."""
        scope = self.scope
        out: list[list[Any]] = []
        for row in self.rows.values():
            if not row.changed:
                continue
            version = clock.next()
            if row.seq == 0:
                row.seq = version
            start = float(row.event.start_time)
            if row.stored_start is not None and row.stored_start != start:
                out.append(tombstone_row(scope.project_id, row.stored_session or "", row.stored_start,
                                         row.event.event_id, version, now))
                version = clock.next()
            stored = event_row(row.event, scope.project_id, scope.org_id, scope.workspace_id,
                               implicit=row.implicit, seq=row.seq, version=version, now=now)
            out.append(stored)
            if row.event.event_type == "session":
                self.session_rows[row.event.event_id] = as_read(stored)
            row.stored_start, row.stored_session, row.changed = start, row.event.session_id, False
        return out


# Rules ------------------------------------------------------------------------------------------


def _rewrite(stored: Event, new: Event) -> None:
    """A re-sent event over its stored row: what it carries overwrites, the dicts that updates
    merge are deep-merged (so an update in between is not lost), absent outputs and an empty
    children list keep what is stored (the other backends' upsert, field for field)."""
    for name in ("session_id", "parent_id", "event_type", "event_name", "source", "start_time", "end_time",
                 "duration", "error", "inputs"):
        setattr(stored, name, getattr(new, name))
    if new.outputs is not None:
        stored.outputs = new.outputs
    for name in ("config", "metadata", "feedback", "metrics", "user_properties"):
        setattr(stored, name, deep_merge(getattr(stored, name), getattr(new, name)))
    if new.children_ids:
        stored.children_ids = new.children_ids


def _copy(event: Event) -> Event:
    # The caller's event is never mutated: rules change the copy.
    return dataclasses.replace(event, children_ids=list(event.children_ids))


async def write_events(batch: Batch, events: Sequence[Event], claims_out: list[tuple[str, str]]) -> list[str]:
    """Apply a batch of events to ``batch``; raise (before anything is written) on a role clash.
    Fills ``claims_out`` with the (alias, owner) claims to record; returns the ids whose kept
    updates were applied (to forget once the rows are stored)."""
    rows = [_copy(e) for e in events if e.event_type != "session"]
    explicit = [e for e in events if e.event_type == "session"]
    spans = session_spans(events)
    await batch.load([*(e.event_id for e in events), *spans])
    # The sessions named are loaded already: their sources cost no extra read.
    sources = {sid: row.event.source for sid in sources_to_look_up(events)
               if (row := batch.get(sid)) is not None and row.event.event_type == "session"}
    inherit_sources([*rows, *explicit], sources)
    owners = await _link_aliases(batch, [e for e in events if e.aliases], rows, claims_out)

    clash = False
    for event in rows:
        stored = batch.get(event.event_id)
        if stored is None:
            batch.put(event, implicit=False)
        elif stored.event.event_type == "session":
            clash = True
        else:
            _rewrite(stored.event, event)
            stored.changed = True
    for session_id, (start, end, first) in spans.items():
        stored = batch.get(session_id)
        if stored is None:
            batch.put(implicit_session(session_id, start, end, first), implicit=True)
        elif stored.event.event_type != "session":
            clash = True
        else:
            _widen(stored, start, end, first.session_name_hint or "unknown")
    if clash:
        raise role_clash({e.event_id for e in rows}, spans, batch.stored_types)
    for session in explicit:
        await upsert_session(batch, session)
    if owners:
        await _repoint_children(batch, owners)
    return await apply_pending(batch, [*(e.event_id for e in events), *spans])


def _widen(row: Row, start: Any, end: Any, name: str) -> None:
    session = row.event
    if row.implicit and session.event_name == "unknown" and name != "unknown":
        session.event_name = name  # a made-up session takes the first real name offered
        row.changed = True
    if start < session.start_time or end > session.end_time:
        session.start_time = min(session.start_time, start)
        session.end_time = max(session.end_time, end)
        session.duration = session.end_time - session.start_time
        row.changed = True  # only then a new version: most batches fall inside their session


async def upsert_session(batch: Batch, new: Event) -> Event:
    """Create a session, adopt an implicit one, or merge into an explicit one (contract 5.7)."""
    await batch.load([new.event_id])
    stored = batch.get(new.event_id)
    if stored is None:
        return batch.put(_copy(new), implicit=False).event
    merge_session_start(stored.event, stored.implicit, new)  # raises on a non-session row
    stored.implicit, stored.changed = False, True
    return stored.event


async def update_row(batch: Batch, event_id: str, update: EventUpdate) -> bool:
    """Apply ``update`` to a stored (or batched) event; False when there is none. A later end
    widens the event's session to cover it."""
    await batch.load([event_id])
    row = batch.get(event_id)
    if row is None:
        return False
    update.apply(row.event)
    row.changed = True
    event = row.event
    if event.event_type != "session" and update.end_time is not None:
        await batch.load([event.session_id])
        session = batch.get(event.session_id)
        if session is not None and session.event.event_type == "session" and event.end_time > session.event.end_time:
            session.event.end_time = event.end_time
            session.event.duration = event.end_time - session.event.start_time
            session.changed = True
    return True


# Kept updates -----------------------------------------------------------------------------------


async def keep_update(ex: Executor, scope: Scope, event_id: str, update: EventUpdate, version: int) -> None:
    """Append the update; kept updates of one event are composed in version order when applied,
    so keeping one never reads or rewrites another."""
    await ex.insert("pending_updates", ("project_id", "event_id", "payload", "version"),
                    [[scope.project_id, event_id, dump(update.to_dict()), version]])


async def apply_pending(batch: Batch, event_ids: list[str]) -> list[str]:
    """Apply the kept updates of these events that exist now; return the ids applied."""
    event_ids = [i for i in dict.fromkeys(event_ids) if i not in batch.applied]
    if not event_ids:
        return []
    await batch.load_pending(event_ids)
    composed: dict[str, EventUpdate] = {}
    for event_id in event_ids:
        for payload in batch.pending.get(event_id, ()):
            update = EventUpdate.from_dict(orjson.loads(payload))
            composed[event_id] = composed[event_id].then(update) if event_id in composed else update
    applied = []
    for event_id, update in composed.items():
        if await update_row(batch, event_id, update):
            applied.append(event_id)
    batch.applied.update(applied)
    return applied


async def forget_pending(ex: Executor, scope: Scope, event_ids: list[str]) -> None:
    if event_ids:
        await ex.command(
            "DELETE FROM pending_updates WHERE project_id = {p:String} AND event_id IN {ids:Array(String)}",
            {"p": scope.project_id, "ids": event_ids},
        )


# Aliases ----------------------------------------------------------------------------------------


async def _owners(ex: Executor, project_id: str, alias_ids: list[str]) -> dict[str, str]:
    """The owner of each alias: the first claim (lowest version) still stored."""
    rows = await ex.query(
        "SELECT alias_id, argMin(event_id, version) FROM event_aliases "
        "WHERE project_id = {p:String} AND alias_id IN {ids:Array(String)} GROUP BY alias_id",
        {"p": project_id, "ids": alias_ids},
    )
    return {r[0]: r[1] for r in rows}


async def _link_aliases(batch: Batch, aliased: list[Event], rows: list[Event],
                        claims_out: list[tuple[str, str]]) -> dict[str, str] | None:
    """Claim the batch's aliases (the first claim keeps one) and point rows whose parent is an
    alias at its owner; return {alias: owner} for the aliases the batch claimed."""
    project_id = batch.scope.project_id
    claims = [
        (alias, event.event_id)
        for event in aliased
        for alias in dict.fromkeys(event.aliases)
        if isinstance(alias, str) and alias and alias != event.event_id
    ]
    if not claims and not batch.claimed and not await batch.has_stored_aliases():
        return None
    linked = [e for e in rows if e.parent_id is not None and e.parent_id != e.session_id]
    wanted = list(dict.fromkeys([*(e.parent_id for e in linked if e.parent_id), *(c[0] for c in claims)]))
    if not wanted:
        return None
    # Stored claims are older than the batch's: they win.
    found = {a: batch.claimed[a] for a in wanted if a in batch.claimed}
    found.update(await _owners(batch.ex, project_id, wanted))
    for alias, owner in claims:
        if alias not in found:
            found[alias] = owner
            batch.claimed[alias] = owner
            claims_out.append((alias, owner))
    for event in linked:
        owner = found.get(event.parent_id)  # type: ignore[arg-type]
        if owner is not None and owner != event.event_id:  # never an event's own parent
            event.parent_id = owner
    return {alias: found[alias] for alias, _ in claims}


async def _repoint_children(batch: Batch, owners: dict[str, str]) -> None:
    """Stored children that name an alias as their parent now name its owner (never a link to a
    child's own session, never an event made its own parent)."""
    for row in await batch.load_children_of(list(owners)):
        event = row.event
        owner = owners.get(event.parent_id or "")
        if owner is not None and event.session_id != event.parent_id and event.event_id != owner:
            event.parent_id = owner
            row.changed = True


async def record_claims(ex: Executor, scope: Scope, claims: list[tuple[str, str]], clock: VersionClock) -> None:
    if claims:
        await ex.insert("event_aliases", ("project_id", "alias_id", "event_id", "version"),
                        [[scope.project_id, alias, owner, clock.next()] for alias, owner in claims])


# Reads by id ------------------------------------------------------------------------------------


async def load_complete(ex: Executor, scope: Scope, event_id: str) -> Event | None:
    """An event with ``children_ids`` completed from the stored events that point at it."""
    found = await live_rows(ex, scope.project_id, "event_id", [event_id], READ_COLUMNS)
    if not found:
        return None
    event = row_to_event(found[0])
    children = await live_rows(ex, scope.project_id, "parent_id", [event_id], "event_id")
    event.children_ids = complete_children(event.children_ids, [r[0] for r in children if r[0] != event_id])
    return event


async def session_events(ex: Executor, scope: Scope, session_id: str) -> list[Event]:
    """Every event of a session, oldest first (ties in arrival order), ``children_ids``
    completed from the parent links among them."""
    raws = await live_rows(ex, scope.project_id, "session_id", [session_id], READ_COLUMNS)
    return complete_session([row_to_event(r) for r in raws])


# Deletes ----------------------------------------------------------------------------------------


async def _bury(ex: Executor, scope: Scope, keys: list[tuple[object, ...]], clock: VersionClock) -> None:
    """Tombstones over the live rows with these (session_id, start_time, event_id): one insert."""
    now = now_ms()
    await ex.insert("events", EVENT_COLUMNS, [
        tombstone_row(scope.project_id, str(sid), float(start), str(eid), clock.next(), now)  # type: ignore[arg-type]
        for sid, start, eid in keys
    ])


async def delete_event(ex: Executor, scope: Scope, event_id: str, clock: VersionClock) -> bool:
    keys = await live_rows(ex, scope.project_id, "event_id", [event_id], "session_id, start_time, event_id")
    if not keys:
        return False
    await _bury(ex, scope, keys, clock)
    await ex.command(
        "DELETE FROM event_aliases WHERE project_id = {p:String} AND event_id = {e:String}",
        {"p": scope.project_id, "e": event_id},
    )
    return True


async def delete_session(ex: Executor, scope: Scope, session_id: str, clock: VersionClock) -> int:
    keys = await live_rows(ex, scope.project_id, "session_id", [session_id], "session_id, start_time, event_id")
    if not keys:
        return 0
    await _bury(ex, scope, keys, clock)
    await ex.command(
        "DELETE FROM event_aliases WHERE project_id = {p:String} AND event_id IN {ids:Array(String)}",
        {"p": scope.project_id, "ids": [str(k[2]) for k in keys]},
    )
    await forget_pending(ex, scope, [session_id])
    return len(keys)
