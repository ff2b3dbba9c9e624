"""``Store.list_sessions`` on PostgreSQL (semantics in ``tracehive.query.session_list``), with the
answers of the SQLite backend (``storage/sqlite/session_list.py``, the same three statements).

1. the count of matching session rows (the WHERE of ``compile.where_clause`` plus
   ``event_type = 'session'``, which ``events_by_type`` serves with the date range);
2. the page's session ids. Sorted by a column of the session row (start_time, event_name), from
   the session rows alone; sorted by an aggregate (duration, num_events, cost, total_tokens),
   every matching session is aggregated over its events (``events_by_session``) to be ordered;
3. the aggregates of the page's sessions only, and the page's session rows.

All three run in one snapshot: inside the caller's REPEATABLE READ transaction (the store opens
one), or in one this module opens on an idle connection (``export.snapshot``).

Aggregates as SQLite computes them: cost and total_tokens are ``total()`` (``th_total``: a
running double sum of the JSON numbers, 0.0 for none, never raising on overflow); num_events
counts the events that are not the session itself; text orders are byte orders (COLLATE "C").
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

from tracehive.query.session_list import COLUMN_SORTS, SessionListQuery, SessionSummary, summary_from_rows
from tracehive.storage.postgres.compile import C, where_clause
from tracehive.storage.postgres.export import snapshot
from tracehive.storage.postgres.rows import number

Conn = AsyncConnection[Any]


def _number_at(key: str) -> str:
    """``x.metadata``'s member ``key`` (our constant) as a double when it is a JSON number."""
    value = f"(x.metadata -> '{key}')"
    return f"CASE WHEN json_typeof({value}) = 'number' THEN {value}::text::float8 END"


# Aggregates over ``x``, the events of one session (the session event included).
_END = "max(x.end_time)"
_NUM_EVENTS = "count(*) FILTER (WHERE x.event_id <> x.session_id)"
# Sums of doubles depend on the order of the terms: SQLite adds a session's in the order of its
# index (project_id, session_id, start_time), ties in rowid order.
_COST = f"th_total({_number_at('cost')} ORDER BY x.start_time, x.seq)"
_TOKENS = f"th_total({_number_at('total_tokens')} ORDER BY x.start_time, x.seq)"
_HAS_ERROR = "bool_or(coalesce(x.error, '') <> '')"
# JSON columns are written by orjson, so an empty object is exactly '{}'.
_HAS_FEEDBACK = "bool_or(x.feedback::text NOT IN ('{}', 'null'))"

# Sort keys of the aggregate path, over ``s`` (matching sessions) joined to ``x``.
_AGGREGATE_SORT = {
    "duration": f"{_END} - max(s.start_time)",
    "num_events": _NUM_EVENTS,
    "cost": _COST,
    "total_tokens": _TOKENS,
}
_COLUMN_SORT = {"start_time": "e.start_time", "event_name": f"e.event_name {C}"}

_PAGE_AGGREGATES = f"""
SELECT x.session_id, {_END}, {_NUM_EVENTS}, {_COST}, {_TOKENS}, {_HAS_ERROR}, {_HAS_FEEDBACK}
FROM events AS x
WHERE x.project_id = %s AND x.session_id = ANY(%s::text[])
GROUP BY x.session_id
"""

_PAGE_ROWS = """
SELECT event_id, event_name, source, start_time, user_properties::text, metadata::text
FROM events
WHERE project_id = %s AND event_id = ANY(%s::text[]) AND event_type = 'session'
"""


def _direction(descending: bool) -> str:
    return "DESC" if descending else "ASC"


def compile_page(project_id: str, query: SessionListQuery) -> tuple[str, str, list[Any], list[Any]]:
    """The COUNT of matching sessions and the SELECT of the page's session ids, with parameters."""
    where, params = where_clause(project_id, query.date_range, query.conditions)
    where += " AND e.event_type = 'session'"
    count_sql = f"SELECT count(*) FROM events AS e WHERE {where}"
    direction = _direction(query.descending)
    if query.sort_by in COLUMN_SORTS:
        order = f"{_COLUMN_SORT[query.sort_by]} {direction}, e.start_time DESC, e.event_id {C} ASC"
        page_sql = f"SELECT e.event_id FROM events AS e WHERE {where} ORDER BY {order} LIMIT %s OFFSET %s"
        return count_sql, page_sql, params, [*params, query.limit, query.offset]
    key = _AGGREGATE_SORT[query.sort_by]
    # MATERIALIZED: from the matching sessions to their events, whatever the planner estimates.
    page_sql = f"""
WITH s AS MATERIALIZED (SELECT e.event_id, e.start_time FROM events AS e WHERE {where})
SELECT s.event_id FROM s JOIN events AS x ON x.project_id = %s AND x.session_id = s.event_id
GROUP BY s.event_id
ORDER BY {key} {direction}, max(s.start_time) DESC, s.event_id {C} ASC
LIMIT %s OFFSET %s
"""
    return count_sql, page_sql, params, [*params, project_id, query.limit, query.offset]


async def list_sessions(conn: Conn, project_id: str, query: SessionListQuery) -> tuple[list[SessionSummary], int]:
    count_sql, page_sql, count_params, page_params = compile_page(project_id, query)
    async with snapshot(conn):
        row = await (await conn.execute(count_sql, count_params)).fetchone()
        total = int(row[0]) if row else 0
        if total <= query.offset:
            return [], total
        page = [r[0] for r in await (await conn.execute(page_sql, page_params)).fetchall()]
        if not page:
            return [], total
        cur = await conn.execute(_PAGE_AGGREGATES, (project_id, page))
        aggregates = {r[0]: r[1:] for r in await cur.fetchall()}
        cur = await conn.execute(_PAGE_ROWS, (project_id, page))
        sessions = {r[0]: r[1:] for r in await cur.fetchall()}
    return [summary_from_rows(sid, sessions[sid], aggregates[sid], number) for sid in page], total
