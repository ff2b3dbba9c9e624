"""Bounded deletes on ClickHouse: retention (``prune_events``) and a project's events
(``delete_project_events``). Deletes are tombstone versions, as for ``delete_session``
(``writes._bury``): hidden from every read once written, the space freed when merges rewrite the
parts. The store runs each call under its write lock, one at a time with the other writes."""

from __future__ import annotations

from tracehive.model.scope import Scope
from tracehive.storage.base import Pruned
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.lookup import live_rows
from tracehive.storage.clickhouse.rows import VersionClock, now_ms
from tracehive.storage.clickhouse.writes import Batch, _bury

_KEY = "session_id, start_time, event_id"


async def _forget_aliases(ex: Executor, project_id: str, event_ids: list[str]) -> None:
    if event_ids:
        await ex.command("DELETE FROM event_aliases WHERE project_id = {p:String} AND event_id IN {ids:Array(String)}",
                         {"p": project_id, "ids": event_ids})


async def prune(ex: Executor, scope: Scope, before: float, limit: int, clock: VersionClock) -> Pruned:
    p = {"p": scope.project_id, "b": float(before), "n": limit}
    old = await ex.query(
        f"SELECT {_KEY} FROM events FINAL WHERE project_id = {{p:String}} AND start_time < {{b:Float64}} "
        "AND event_type != 'session' ORDER BY start_time LIMIT {n:UInt64}", p)
    if old:
        await _bury(ex, scope, old, clock)
        await _forget_aliases(ex, scope.project_id, [str(r[2]) for r in old])
    sessions, shrunk = 0, 0
    batch = Batch(ex, scope)
    for sid in dict.fromkeys(str(r[0]) for r in old):
        members = await live_rows(ex, scope.project_id, "session_id", [sid], f"{_KEY}, event_type")
        starts = [float(m[1]) for m in members if m[3] != "session"]
        session = next((m for m in members if m[3] == "session" and m[2] == sid), None)
        if session is None:
            continue
        if not starts:
            if float(session[1]) < before:
                await _bury(ex, scope, [session[:3]], clock)
                sessions += 1
        elif float(session[1]) < min(starts):
            await batch.load([sid])
            row = batch.get(sid)
            if row is not None:
                row.event.start_time = min(starts)
                row.event.duration = row.event.end_time - row.event.start_time
                row.changed = True
                shrunk += 1
    await batch.flush(clock, now_ms())
    room = max(0, limit - len(old))
    if room:
        # Sessions that never had an event (a start alone) and started before the cut.
        empty = await ex.query(
            f"SELECT {_KEY} FROM events FINAL WHERE project_id = {{p:String}} AND event_type = 'session' "
            "AND start_time < {b:Float64} AND event_id NOT IN (SELECT session_id FROM events FINAL "
            "WHERE project_id = {p:String} AND event_type != 'session') ORDER BY start_time LIMIT {n:UInt64}",
            {**p, "n": room})
        if empty:
            await _bury(ex, scope, empty, clock)
            await _forget_aliases(ex, scope.project_id, [str(r[2]) for r in empty])
            sessions += len(empty)
    return Pruned(len(old), sessions, shrunk)


async def delete_project_events(ex: Executor, scope: Scope, limit: int, clock: VersionClock) -> int:
    rows = await ex.query(f"SELECT {_KEY} FROM events FINAL WHERE project_id = {{p:String}} LIMIT {{n:UInt64}}",
                          {"p": scope.project_id, "n": limit})
    if rows:
        await _bury(ex, scope, rows, clock)
        return len(rows)
    await ex.command("DELETE FROM event_aliases WHERE project_id = {p:String}", {"p": scope.project_id})
    await ex.command("DELETE FROM pending_updates WHERE project_id = {p:String}", {"p": scope.project_id})
    return 0
