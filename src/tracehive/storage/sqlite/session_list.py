"""``Store.list_sessions`` on SQLite (semantics in ``tracehive.query.session_list``).

Three short statements in one read transaction (one snapshot):

1. the count of matching session rows (the WHERE of ``compile.where_clause`` plus
   ``event_type = 'session'``: the partial index ``events_sessions`` (project_key, start_time),
   of the session rows only, serves it and the date range);
2. the page's session ids. Sorted by a column of the session row (start_time, event_name), the
   page is read from the session rows alone, so the cost does not grow with the sessions' events.
   Sorted by an aggregate (duration, num_events, cost, total_tokens), every matching session must
   be aggregated to be ordered: one GROUP BY over the matching sessions joined to their events
   through ``events_by_session`` (project_key, session_id, start_time);
3. the aggregates of the page's sessions only (one GROUP BY session_id over ``events_by_session``)
   and the page's session rows by primary key.

Only constants of this module and of ``compile.py`` are written into the SQL; every value and
every user-supplied path is a bound parameter.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from tracehive.query.session_list import COLUMN_SORTS, SessionListQuery, SessionSummary, summary_from_rows
from tracehive.storage.sqlite.compile import HOT_PATHS, where_clause
from tracehive.storage.sqlite.rows import dump


def _number_at(path: str) -> str:
    """``x.metadata``'s member at ``path`` (our constant) when it is a JSON number, else NULL."""
    return (
        f"CASE WHEN json_type(x.metadata, '{path}') IN ('integer', 'real') "
        f"THEN json_extract(x.metadata, '{path}') END"
    )


# Aggregates over ``x``, the events of one session (the session event included). total() rather
# than sum(): it never overflows (huge integers in metadata would make sum() raise) and gives 0.0
# for no value at all.
_END = "max(x.end_time)"
_NUM_EVENTS = "sum(x.event_id <> x.session_id)"
_COST = f"total({_number_at(HOT_PATHS[('metadata', ('cost',))])})"
_TOKENS = f"total({_number_at(HOT_PATHS[('metadata', ('total_tokens',))])})"
_HAS_ERROR = "max(coalesce(x.error, '') <> '')"
# JSON columns are written by orjson, so an empty object is exactly '{}'.
_HAS_FEEDBACK = "max(x.feedback NOT IN ('{}', 'null'))"

# Sort keys of the aggregate path, over ``s`` (matching sessions) joined to ``x``.
_AGGREGATE_SORT = {
    "duration": f"{_END} - max(s.start_time)",
    "num_events": _NUM_EVENTS,
    "cost": _COST,
    "total_tokens": _TOKENS,
}
# The session rows (migration 6): partial, ``WHERE event_type = 'session'``, on (project_key,
# start_time). Sessions are a small share of the rows, so counting or sorting them from it never
# reads the events. ``+e.event_name`` is no plain column, so no index is walked for its order:
# the page's session rows are read from the partial index and sorted.
_SESSIONS_INDEX = "events_sessions"
_COLUMN_SORT = {"start_time": "e.start_time", "event_name": "+e.event_name"}

_PAGE_AGGREGATES = f"""
SELECT x.session_id, {_END}, {_NUM_EVENTS}, {_COST}, {_TOKENS}, {_HAS_ERROR}, {_HAS_FEEDBACK}
FROM events AS x
WHERE x.project_key = ? AND x.session_id IN (SELECT value FROM json_each(?))
GROUP BY x.session_id
"""

_PAGE_ROWS = """
SELECT event_id, event_name, source, start_time, user_properties, metadata
FROM events
WHERE project_key = ? AND event_id IN (SELECT value FROM json_each(?)) AND event_type = 'session'
"""


def _direction(descending: bool) -> str:
    return "DESC" if descending else "ASC"


def compile_page(project_key: int, query: SessionListQuery) -> tuple[str, str, list[Any], list[Any]]:
    """The COUNT of matching sessions and the SELECT of the page's session ids, with parameters."""
    where, params = where_clause(project_key, query.date_range, query.conditions)
    # The literal ``event_type = 'session'`` as a term of its own is what lets SQLite use the
    # partial index; without statistics the planner prefers a covering walk of every event in the
    # range (events_timeline), or of the whole project to sort by name, so the index is named.
    where = f"({where}) AND e.event_type = 'session'"
    sessions = f"events AS e INDEXED BY {_SESSIONS_INDEX}"
    count_sql = f"SELECT count(*) FROM {sessions} WHERE {where}"
    direction = _direction(query.descending)
    if query.sort_by in COLUMN_SORTS:
        order = f"{_COLUMN_SORT[query.sort_by]} {direction}, e.start_time DESC, e.event_id ASC"
        page_sql = f"SELECT e.event_id FROM {sessions} WHERE {where} ORDER BY {order} LIMIT ? OFFSET ?"
        return count_sql, page_sql, params, [*params, query.limit, query.offset]
    key = _AGGREGATE_SORT[query.sort_by]
    # MATERIALIZED + CROSS JOIN fix the join order: from the matching sessions to their events.
    # Left to itself the planner walked every event of the project and probed for its session,
    # which costs the same for 40 matching sessions as for all of them.
    page_sql = f"""
WITH s AS MATERIALIZED (SELECT e.event_id, e.start_time FROM {sessions} WHERE {where})
SELECT s.event_id FROM s CROSS JOIN events AS x ON x.project_key = ? AND x.session_id = s.event_id
GROUP BY s.event_id
ORDER BY {key} {direction}, max(s.start_time) DESC, s.event_id ASC
LIMIT ? OFFSET ?
"""
    return count_sql, page_sql, params, [*params, project_key, query.limit, query.offset]


def list_sessions(
    conn: sqlite3.Connection, project_key: int, query: SessionListQuery
) -> tuple[list[SessionSummary], int]:
    count_sql, page_sql, count_params, page_params = compile_page(project_key, query)
    conn.execute("BEGIN")  # one snapshot for the count, the page and its aggregates
    try:
        total = int(conn.execute(count_sql, count_params).fetchone()[0])
        if total <= query.offset:
            return [], total
        page = [row[0] for row in conn.execute(page_sql, page_params)]
        if not page:
            return [], total
        ids = dump(page)
        aggregates = {row[0]: row[1:] for row in conn.execute(_PAGE_AGGREGATES, (project_key, ids))}
        sessions = {row[0]: row[1:] for row in conn.execute(_PAGE_ROWS, (project_key, ids))}
    finally:
        conn.execute("COMMIT")
    return [summary_from_rows(sid, sessions[sid], aggregates[sid]) for sid in page], total
