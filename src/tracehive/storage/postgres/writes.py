"""The event write rules on PostgreSQL, as functions of a connection inside a transaction.

Each function here runs in the transaction ``PostgresStore`` opens (READ COMMITTED) and may run
more than once (the store retries a transaction that hit a deadlock or a serialization failure),
so none has an effect outside the database. How each rule stays exact while other nodes write the
same rows is said in ``storage/base.py``; in short: one atomic upsert per row, row locks
(``FOR UPDATE``) for read-modify-write, ids sorted so locks are taken in one order, and a
``reconcile`` step after the commit for the two-sided races (kept updates, aliases).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from psycopg import AsyncConnection

from tracehive.model.event import Event, EventUpdate
from tracehive.model.scope import Scope
from tracehive.storage.rules import (
    implicit_session,
    inherit_sources,
    merge_session_start,
    role_clash,
    session_spans,
    sources_to_look_up,
)
from tracehive.storage.postgres.rows import (
    EVENT_COLUMNS,
    INSERT_COLUMNS,
    PLACEHOLDERS,
    dump,
    dump_optional,
    event_params,
    row_to_event,
    text,
)
from tracehive.storage.children import complete_children

Conn = AsyncConnection[Any]

# Re-sent events overwrite what they carry and merge the dicts that updates merge (``th_merge``,
# migration 1), so an update applied in between is not lost; PostgreSQL applies the merge to the
# row's latest committed version under its row lock. A session row never changes type.
_UPSERT_EVENT = f"""
INSERT INTO events AS ev ({INSERT_COLUMNS}, seq) VALUES ({PLACEHOLDERS}, %s)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id, event_type = excluded.event_type,
    event_name = excluded.event_name, source = excluded.source, start_time = excluded.start_time,
    end_time = excluded.end_time, duration = excluded.duration, error = excluded.error,
    inputs = excluded.inputs, outputs = coalesce(excluded.outputs, ev.outputs),
    config = th_merge(ev.config, excluded.config),
    metadata = th_merge(ev.metadata, excluded.metadata),
    feedback = th_merge(ev.feedback, excluded.feedback),
    metrics = th_merge(ev.metrics, excluded.metrics),
    user_properties = th_merge(ev.user_properties, excluded.user_properties),
    children_ids = CASE WHEN excluded.children_ids::text = '[]' THEN ev.children_ids ELSE excluded.children_ids END,
    updated_at = excluded.updated_at
WHERE ev.event_type <> 'session'
"""

# Create the session an event names if it is unknown (marked implicit), else widen its time span.
_COVER_SESSION = f"""
INSERT INTO events AS ev ({INSERT_COLUMNS}, seq, implicit) VALUES ({PLACEHOLDERS}, %s, true)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    event_name = CASE WHEN ev.implicit AND ev.event_name = 'unknown' THEN excluded.event_name ELSE ev.event_name END,
    start_time = least(ev.start_time, excluded.start_time),
    end_time = greatest(ev.end_time, excluded.end_time),
    duration = greatest(ev.end_time, excluded.end_time) - least(ev.start_time, excluded.start_time),
    updated_at = excluded.updated_at
WHERE ev.event_type = 'session'
"""

# An imported row replaces what is stored under its id, field for field, and is explicit.
_IMPORT_EVENT = f"""
INSERT INTO events AS ev ({INSERT_COLUMNS}, seq, implicit) VALUES ({PLACEHOLDERS}, %s, false)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    session_id = excluded.session_id, parent_id = excluded.parent_id, event_type = excluded.event_type,
    event_name = excluded.event_name, source = excluded.source, start_time = excluded.start_time,
    end_time = excluded.end_time, duration = excluded.duration, error = excluded.error,
    config = excluded.config, inputs = excluded.inputs, outputs = excluded.outputs,
    metadata = excluded.metadata, feedback = excluded.feedback, metrics = excluded.metrics,
    user_properties = excluded.user_properties, children_ids = excluded.children_ids,
    org_id = excluded.org_id, workspace_id = excluded.workspace_id, implicit = false,
    updated_at = excluded.updated_at
"""

# A session named by imported events: made up if unknown, widened only while it is made up.
_IMPORT_COVER_SESSION = f"""
INSERT INTO events AS ev ({INSERT_COLUMNS}, seq, implicit) VALUES ({PLACEHOLDERS}, %s, true)
ON CONFLICT (project_id, event_id) DO UPDATE SET
    start_time = least(ev.start_time, excluded.start_time),
    end_time = greatest(ev.end_time, excluded.end_time),
    duration = greatest(ev.end_time, excluded.end_time) - least(ev.start_time, excluded.start_time),
    updated_at = excluded.updated_at
WHERE ev.event_type = 'session' AND ev.implicit
"""

_SELECT_EVENT = f"SELECT {EVENT_COLUMNS}, implicit FROM events WHERE project_id = %s AND event_id = %s"

# Like SQLite's: the children of one parent, oldest first, ties in insertion order.
_CHILDREN = (
    "SELECT event_id FROM events WHERE project_id = %s AND parent_id = %s AND event_id <> %s "
    "ORDER BY start_time, seq"
)

_loads = orjson.loads


@dataclass
class Followup:
    """What a committed write must look at again once committed (``reconcile``): ids that a
    kept update may be waiting for, parents that may be aliases claimed meanwhile, and aliases
    this write claimed whose children another node may have stored meanwhile."""

    event_ids: list[str] = field(default_factory=list)
    parent_ids: list[str] = field(default_factory=list)
    claimed: dict[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.event_ids or self.parent_ids or self.claimed)


# Reads inside a write -------------------------------------------------------------------------


async def load(conn: Conn, scope: Scope, event_id: str, *, lock: bool = False) -> tuple[Event, bool] | None:
    sql = _SELECT_EVENT + (" FOR UPDATE" if lock else "")
    row = await (await conn.execute(sql, (scope.project_id, event_id))).fetchone()
    if row is None:
        return None
    return row_to_event(row[:-1]), bool(row[-1])


async def load_complete(conn: Conn, scope: Scope, event_id: str) -> Event | None:
    """An event with ``children_ids`` completed from the children that point at it."""
    loaded = await load(conn, scope, event_id)
    if loaded is None:
        return None
    event = loaded[0]
    cur = await conn.execute(_CHILDREN, (scope.project_id, event_id, event_id))
    event.children_ids = complete_children(event.children_ids, [r[0] for r in await cur.fetchall()])
    return event


# Writes ---------------------------------------------------------------------------------------


def _implicit_session_params(session_id: str, start: Any, end: Any, first: Event, scope: Scope,
                             now: int) -> tuple[Any, ...]:
    session = implicit_session(session_id, start, end, first)
    return event_params(session, scope.project_id, scope.org_id, scope.workspace_id, now)


async def _reserve_seq(conn: Conn, count: int) -> list[int]:
    """``count`` increasing values of ``events.seq``'s sequence, in one round trip."""
    if not count:
        return []
    cur = await conn.execute(
        "SELECT nextval(pg_get_serial_sequence('events', 'seq')) FROM generate_series(1, %s) ORDER BY 1",
        (count,),
    )
    return [r[0] for r in await cur.fetchall()]


def _by_id(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Rows sorted by event id (``event_params`` puts it second); stable, so a re-sent id keeps
    its order within the batch."""
    return sorted(rows, key=lambda row: row[1])


async def _session_sources(conn: Conn, project_id: str, session_ids: list[str]) -> dict[str, str]:
    """The stored source of each of these sessions that exists (``rules.inherit_sources``)."""
    cur = await conn.execute(
        "SELECT event_id, source FROM events WHERE project_id = %s AND event_type = 'session' "
        "AND event_id = ANY(%s)", (project_id, session_ids))
    return dict(await cur.fetchall())


async def write_events(conn: Conn, scope: Scope, events: Sequence[Event], now: int) -> Followup:
    project_id, org_id, workspace_id = scope.project_id, scope.org_id, scope.workspace_id
    asked = sources_to_look_up(events)
    if asked:
        inherit_sources(events, await _session_sources(conn, project_id, asked))
    rows = [event_params(e, project_id, org_id, workspace_id, now) for e in events if e.event_type != "session"]
    explicit_sessions = [e for e in events if e.event_type == "session"]
    sessions = session_spans(events)
    aliased = [e for e in events if e.aliases]
    owners = await _link_aliases(conn, project_id, aliased, rows)
    covers = [_implicit_session_params(sid, start, end, first, scope, now)
              for sid, (start, end, first) in sessions.items()]
    # ``seq`` (SQLite's rowid: ties in pages go by arrival) is taken in the batch's order, then
    # the rows are upserted sorted by id, sessions after events: two batches that share rows
    # (re-sent events, the sessions they widen) lock them in one order and never deadlock.
    seqs = await _reserve_seq(conn, len(rows) + len(covers))
    cur = conn.cursor()
    changed = 0
    if rows:
        await cur.executemany(_UPSERT_EVENT, _by_id([(*row, seq) for row, seq in zip(rows, seqs)]))
        changed = cur.rowcount
    covered = 0
    if covers:
        await cur.executemany(_COVER_SESSION, _by_id([(*c, seq) for c, seq in zip(covers, seqs[len(rows):])]))
        covered = cur.rowcount
    if changed != len(rows) or covered != len(covers):
        await _refuse_role_clash(conn, scope, rows, sessions)
    for session in explicit_sessions:
        await upsert_session(conn, scope, session, now)
    if owners:
        await _repoint_children(conn, project_id, owners, now)
    ids = [e.event_id for e in events] + list(sessions)
    await apply_pending(conn, scope, ids)
    return Followup(
        event_ids=ids,
        parent_ids=sorted({row[3] for row in rows if row[3] is not None and row[3] != row[2]}),
        claimed=owners or {},
    )


async def _refuse_role_clash(conn: Conn, scope: Scope, rows: list[tuple[Any, ...]],
                             sessions: dict[str, Any]) -> None:
    """A session's id belongs to its session event alone: name the id that clashed; raising
    undoes the whole transaction."""
    event_ids = {row[1] for row in rows}
    cur = await conn.execute(
        "SELECT event_id, event_type FROM events WHERE project_id = %s AND event_id = ANY(%s)",
        (scope.project_id, [*event_ids, *sessions]),
    )
    raise role_clash(event_ids, sessions, await cur.fetchall())


async def _link_aliases(conn: Conn, project_id: str, aliased: list[Event],
                        rows: list[tuple[Any, ...]]) -> dict[str, str] | None:
    """Claim the batch's aliases (the first to claim one keeps it) and point rows whose parent is
    an alias at its owner; return {alias: owner} for the batch's own claims."""
    claims = [
        (project_id, text(alias), event.event_id)
        for event in aliased
        for alias in dict.fromkeys(event.aliases)
        if isinstance(alias, str) and alias and alias != event.event_id
    ]
    if claims:
        await conn.cursor().executemany(
            "INSERT INTO event_aliases VALUES (%s, %s, %s) ON CONFLICT DO NOTHING", sorted(claims)
        )
    elif await (await conn.execute("SELECT 1 FROM event_aliases WHERE project_id = %s LIMIT 1",
                                   (project_id,))).fetchone() is None:
        return None
    linked = [i for i, row in enumerate(rows) if row[3] is not None and row[3] != row[2]]
    wanted = {rows[i][3] for i in linked}.union(claim[1] for claim in claims)
    if not wanted:
        return None
    found = await _aliases(conn, project_id, list(wanted))
    if not found:
        return None
    for i in linked:
        row = rows[i]
        owner = found.get(row[3])
        if owner is not None and owner != row[1]:  # never an event's own parent
            rows[i] = (*row[:3], owner, *row[4:])
    return {claim[1]: found[claim[1]] for claim in claims if claim[1] in found}


async def _aliases(conn: Conn, project_id: str, alias_ids: list[str]) -> dict[str, str]:
    cur = await conn.execute(
        "SELECT alias_id, event_id FROM event_aliases WHERE project_id = %s AND alias_id = ANY(%s)",
        (project_id, alias_ids),
    )
    return {r[0]: r[1] for r in await cur.fetchall()}


async def _repoint_children(conn: Conn, project_id: str, owners: dict[str, str], now: int) -> None:
    """Stored children that name an alias as their parent now name its owner (never a link to a
    child's own session, never an event made its own parent)."""
    await conn.cursor().executemany(
        "UPDATE events SET parent_id = %s, updated_at = %s "
        "WHERE project_id = %s AND parent_id = %s AND session_id <> %s AND event_id <> %s",
        [(owner, now, project_id, alias, alias, owner) for alias, owner in sorted(owners.items())],
    )


async def upsert_session(conn: Conn, scope: Scope, new: Event, now: int) -> Event:
    """Create a session, adopt an implicit one, or merge into an explicit one (contract 5.7),
    under the session row's lock."""
    params = event_params(new, scope.project_id, scope.org_id, scope.workspace_id, now)
    while True:
        cur = await conn.execute(
            f"INSERT INTO events ({INSERT_COLUMNS}) VALUES ({PLACEHOLDERS}) "
            "ON CONFLICT (project_id, event_id) DO NOTHING RETURNING event_id",
            params,
        )
        if await cur.fetchone() is not None:
            new.org_id, new.workspace_id, new.project_id = scope.org_id, scope.workspace_id, scope.project_id
            return new
        loaded = await load(conn, scope, new.event_id, lock=True)
        if loaded is not None:
            break
        # Deleted between the two statements by another node: insert again.
    existing = merge_session_start(*loaded, new)
    await conn.execute(
        "UPDATE events SET event_name = %s, source = %s, config = %s::json, inputs = %s::json, "
        "outputs = %s::json, error = %s, children_ids = %s::json, start_time = %s, end_time = %s, "
        "duration = %s, metadata = %s::json, user_properties = %s::json, implicit = false, updated_at = %s "
        "WHERE project_id = %s AND event_id = %s",
        (
            text(existing.event_name), text(existing.source), dump(existing.config), dump(existing.inputs),
            dump_optional(existing.outputs), text(existing.error), dump(existing.children_ids),
            existing.start_time, existing.end_time, existing.duration, dump(existing.metadata),
            dump(existing.user_properties), now, scope.project_id, existing.event_id,
        ),
    )  # fmt: skip
    return existing


async def update_row(conn: Conn, scope: Scope, event_id: str, update: EventUpdate, now: int) -> bool:
    """Apply ``update`` to a stored event under its row lock; False when there is none."""
    loaded = await load(conn, scope, event_id, lock=True)
    if loaded is None:
        return False
    event = loaded[0]
    update.apply(event)
    await conn.execute(
        "UPDATE events SET config = %s::json, outputs = %s::json, metadata = %s::json, feedback = %s::json, "
        "metrics = %s::json, user_properties = %s::json, duration = %s, end_time = %s, children_ids = %s::json, "
        "updated_at = %s WHERE project_id = %s AND event_id = %s",
        (
            dump(event.config), dump_optional(event.outputs), dump(event.metadata), dump(event.feedback),
            dump(event.metrics), dump(event.user_properties), event.duration, event.end_time,
            dump(event.children_ids), now, scope.project_id, event_id,
        ),
    )  # fmt: skip
    if event.event_type != "session" and update.end_time is not None:
        await conn.execute(
            "UPDATE events SET end_time = greatest(end_time, %s), duration = greatest(end_time, %s) - start_time "
            "WHERE project_id = %s AND event_id = %s AND event_type = 'session'",
            (event.end_time, event.end_time, scope.project_id, event.session_id),
        )
    return True


async def keep_update(conn: Conn, scope: Scope, event_id: str, update: EventUpdate, now: int) -> None:
    """Keep an update for an event not stored yet, merged after any kept before it. The first
    keeper inserts; later ones merge under the kept row's lock, so none is lost."""
    while True:
        cur = await conn.execute(
            "INSERT INTO pending_updates VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING RETURNING event_id",
            (scope.project_id, event_id, dump(update.to_dict()), now),
        )
        if await cur.fetchone() is not None:
            return
        row = await (await conn.execute(
            "SELECT payload FROM pending_updates WHERE project_id = %s AND event_id = %s FOR UPDATE",
            (scope.project_id, event_id),
        )).fetchone()
        if row is not None:
            break
        # Applied (and deleted) by another node between the two statements: keep it anew.
    merged = EventUpdate.from_dict(_loads(row[0])).then(update)
    await conn.execute(
        "UPDATE pending_updates SET payload = %s WHERE project_id = %s AND event_id = %s",
        (dump(merged.to_dict()), scope.project_id, event_id),
    )


async def apply_pending(conn: Conn, scope: Scope, event_ids: list[str]) -> int:
    """Apply the kept updates of these events that are stored now, then forget them. Each kept
    row is locked first, so two nodes never apply it twice."""
    if not event_ids:
        return 0
    cur = await conn.execute(
        "SELECT event_id, payload FROM pending_updates WHERE project_id = %s AND event_id = ANY(%s) "
        "ORDER BY event_id FOR UPDATE",
        (scope.project_id, event_ids),
    )
    applied = 0
    for event_id, payload in await cur.fetchall():
        if await update_row(conn, scope, event_id, EventUpdate.from_dict(_loads(payload)), _now()):
            await conn.execute(
                "DELETE FROM pending_updates WHERE project_id = %s AND event_id = %s", (scope.project_id, event_id)
            )
            applied += 1
    return applied


async def needs_reconcile(conn: Conn, scope: Scope, followup: Followup) -> bool:
    """After the commit, outside any transaction: is there work another node committed meanwhile
    (a kept update for these ids, an alias claimed for these parents, a claim of ours)? One short
    statement, so the common case (nothing) costs one round trip."""
    if followup.claimed:
        return True
    cur = await conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pending_updates WHERE project_id = %s AND event_id = ANY(%s)) "
        "OR EXISTS (SELECT 1 FROM event_aliases WHERE project_id = %s AND alias_id = ANY(%s))",
        (scope.project_id, followup.event_ids, scope.project_id, followup.parent_ids),
    )
    row = await cur.fetchone()
    return bool(row and row[0])


async def reconcile(conn: Conn, scope: Scope, followup: Followup, now: int) -> None:
    """In a transaction after the write committed: apply kept updates that arrived for its
    events, link its children to aliases claimed meanwhile, and link children stored meanwhile
    to the aliases it claimed. Every step is idempotent."""
    await apply_pending(conn, scope, followup.event_ids)
    owners = dict(followup.claimed)
    if followup.parent_ids:
        owners.update(await _aliases(conn, scope.project_id, followup.parent_ids))
    if owners:
        await _repoint_children(conn, scope.project_id, owners, now)


async def delete_session(conn: Conn, scope: Scope, session_id: str) -> int:
    await conn.execute(
        "DELETE FROM event_aliases WHERE project_id = %s AND event_id IN (SELECT event_id FROM events "
        "WHERE project_id = %s AND (session_id = %s OR event_id = %s))",
        (scope.project_id, scope.project_id, session_id, session_id),
    )
    cur = await conn.execute(
        "DELETE FROM events WHERE project_id = %s AND (session_id = %s OR event_id = %s)",
        (scope.project_id, session_id, session_id),
    )
    await conn.execute(
        "DELETE FROM pending_updates WHERE project_id = %s AND event_id = %s", (scope.project_id, session_id)
    )
    return cur.rowcount


async def delete_event(conn: Conn, scope: Scope, event_id: str) -> bool:
    cur = await conn.execute(
        "DELETE FROM events WHERE project_id = %s AND event_id = %s", (scope.project_id, event_id)
    )
    await conn.execute(
        "DELETE FROM event_aliases WHERE project_id = %s AND event_id = %s", (scope.project_id, event_id)
    )
    return cur.rowcount > 0


async def import_events(conn: Conn, scope: Scope, events: Sequence[Event], now: int) -> None:
    project_id, org_id, workspace_id = scope.project_id, scope.org_id, scope.workspace_id
    rows = [event_params(e, project_id, org_id, workspace_id, now) for e in events]
    covers = [_implicit_session_params(sid, start, end, first, scope, now)
              for sid, (start, end, first) in session_spans(events).items()]
    seqs = await _reserve_seq(conn, len(rows) + len(covers))
    await conn.cursor().executemany(_IMPORT_EVENT, _by_id([(*row, seq) for row, seq in zip(rows, seqs)]))
    if covers:
        await conn.cursor().executemany(
            _IMPORT_COVER_SESSION, _by_id([(*c, seq) for c, seq in zip(covers, seqs[len(rows):])])
        )


def _now() -> int:
    import time

    return int(time.time() * 1000)
