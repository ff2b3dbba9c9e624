"""Reading rows by event, session or parent id from the time-keyed ``events`` table.

The table is sorted by ``(project_id, start_time, event_id)``, so a condition on ``session_id``
alone would scan the project. Each of the three id columns has a projection sorted by it
(``schema.py``) holding the row keys. A lookup is two reads:
1. the keys ``(start_time, event_id)`` of every row version whose column holds one of the ids,
   from the projection (no ``FINAL``: stale versions and tombstones are candidates too);
2. the caller's statement over ``events FINAL`` restricted to those keys, a primary-key read of
   the few granules that hold them, with the id condition kept: ``FINAL`` resolves each key to
   its newest version first (dropping deleted ones), and the condition then applies to that
   version, so a row that moved to another session or parent since is not returned.
This is exact: the newest version of a live row whose column holds an id is itself a row in the
projection, so its key is among the candidates. ``live_rows`` does the second read without
``FINAL`` and resolves the versions itself (see there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from tracehive.storage.clickhouse.compile import Params
from tracehive.storage.clickhouse.executor import Executor

IdColumn = Literal["event_id", "session_id", "parent_id"]


async def _candidates(ex: Executor, project_id: str, column: IdColumn,
                      ids: Sequence[str]) -> tuple[list[float], list[str]] | None:
    """The first read: the start times and event ids of the row versions whose ``column`` is
    one of ``ids`` (from the column's projection); None when there is none. Two lists rather
    than a list of pairs: the primary index reads both, and a pair of the cross product that is
    not a candidate still has to pass the id condition to be returned."""
    if not ids:
        return None
    keys = await ex.query(
        f"SELECT DISTINCT start_time, event_id FROM events WHERE project_id = {{p:String}} "
        f"AND {column} IN {{ids:Array(String)}}",
        {"p": project_id, "ids": list(ids)},
    )
    if not keys:
        return None
    return sorted({float(k[0]) for k in keys}), sorted({k[1] for k in keys})


async def keys_condition(ex: Executor, project_id: str, column: IdColumn, ids: Sequence[str],
                         params: Params) -> str | None:
    """SQL (with its values added to ``params``) selecting the rows of ``events FINAL`` whose
    ``column`` is one of ``ids``, by primary key; None when no row version has any of them."""
    found = await _candidates(ex, project_id, column, ids)
    if found is None:
        return None
    p = params.add(project_id, "String")
    times = params.add(found[0], "Array(Float64)")
    events = params.add(found[1], "Array(String)")
    wanted = params.add(list(ids), "Array(String)")
    return f"project_id = {p} AND start_time IN {times} AND event_id IN {events} AND {column} IN {wanted}"


async def live_rows(ex: Executor, project_id: str, column: IdColumn, ids: Sequence[str],
                    select: str) -> list[tuple[Any, ...]]:
    """``select`` (ours) of the live rows whose ``column`` is one of ``ids``, oldest first (ties
    in arrival order). The second read takes every version of the candidate keys without
    ``FINAL`` and resolves them here as ``FINAL`` would (the newest version of each key, none if
    it is a tombstone), then applies the id condition: ``FINAL`` on a key list widens the read
    to every granule within the keys' time span, where a tree needs the few that hold them."""
    found = await _candidates(ex, project_id, column, ids)
    if found is None:
        return []
    rows = await ex.query(
        f"SELECT {select}, start_time, seq, event_id, {column}, version, is_deleted FROM events "
        "WHERE project_id = {p:String} AND start_time IN {t:Array(Float64)} AND event_id IN {e:Array(String)}",
        {"p": project_id, "t": found[0], "e": found[1]},
    )
    newest: dict[tuple[Any, str], tuple[Any, ...]] = {}
    for row in rows:
        key = (row[-6], row[-4])
        held = newest.get(key)
        if held is None or row[-2] > held[-2]:
            newest[key] = row
    wanted = set(ids)
    live = [r for r in newest.values() if not r[-1] and r[-3] in wanted]
    live.sort(key=lambda r: (r[-6], r[-5]))
    return [r[:-6] for r in live]
