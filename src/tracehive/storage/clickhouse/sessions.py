"""``list_sessions`` on ClickHouse (semantics in ``tracehive.query.session_list``; SQLite's
``storage/sqlite/session_list.py`` is the reference).

Three statements over ``events FINAL`` (settled days without it: ``settled.py``):
1. the count of matching session rows (``compile.where_clause`` plus ``event_type = 'session'``);
2. the page's session ids. Sorted by a column of the session row, from the session rows alone;
   sorted by an aggregate, the matching sessions joined to the aggregates of their events (one
   GROUP BY session_id over the project's events);
3. the aggregates and the session rows of the page only, read by key (``lookup.py``).
They are separate reads (ClickHouse has no read transaction), each resolving versions with FINAL.
"""

from __future__ import annotations

from typing import Any

from tracehive.query.session_list import COLUMN_SORTS, SessionListQuery, SessionSummary, summary_from_rows
from tracehive.storage.clickhouse.compile import Params, where_clause
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.lookup import keys_condition
from tracehive.storage.clickhouse.rows import number
from tracehive.storage.clickhouse.settled import SettledDays, Source, bounds, read


def _number_at(key: str) -> str:
    """``metadata``'s member ``key`` (our constant) when it is a JSON number (as a double), else NULL."""
    return (f"if(JSONType(metadata, '{key}') IN ('Int64', 'UInt64', 'Double'), "
            f"JSONExtractFloat(metadata, '{key}'), NULL)")


# Aggregates over the events of one session (the session event included). Sums are of doubles, as
# SQLite's total(): they never overflow (inf at worst, shown_total says what is shown) and NULL
# only when there is no value at all (shown as 0).
_AGGREGATES = (
    "max(end_time) AS end_time_, countIf(event_id != session_id) AS num_events_, "
    f"sum({_number_at('cost')}) AS cost_, sum({_number_at('total_tokens')}) AS tokens_, "
    "max(coalesce(error, '') != '') AS has_error_, max(feedback NOT IN ('{}', 'null')) AS has_feedback_"
)
_AGGREGATE_SORT = {
    "duration": "a.end_time_ - s.start_time",
    "num_events": "a.num_events_",
    "cost": "coalesce(a.cost_, 0)",
    "total_tokens": "coalesce(a.tokens_, 0)",
}
_QUOTE_INF = "output_format_json_quote_denormals = 1"
_COLUMN_SORT = {"start_time": "start_time", "event_name": "event_name"}


async def list_sessions(ex: Executor, project_id: str, query: SessionListQuery, settings: str = "",
                        days: SettledDays | None = None) -> tuple[list[SessionSummary], int]:
    params = Params()
    where = where_clause(project_id, query.date_range, query.conditions, params) + " AND event_type = 'session'"
    lo, hi = bounds(query.date_range)

    async def count(source: Source) -> list[tuple[Any, ...]]:
        return await ex.query(f"SELECT count() FROM {source.table} WHERE {where}{source.live}{settings}",
                              params.values)

    [(total,)] = await read(days, ex, lo, hi, count, mixed=True)
    total = int(total)
    if total <= query.offset:
        return [], total
    direction = "DESC" if query.descending else "ASC"
    limit, offset = params.add(query.limit, "UInt64"), params.add(query.offset, "UInt64")
    by_column = query.sort_by in COLUMN_SORTS
    p = "" if by_column else params.add(project_id, "String")

    def page_sql(source: Source) -> str:
        t, live = source.table, source.live
        if by_column:
            return (f"SELECT event_id FROM {t} WHERE {where}{live} "
                    f"ORDER BY {_COLUMN_SORT[query.sort_by]} {direction}, start_time DESC, event_id ASC "
                    f"LIMIT {limit} OFFSET {offset}{settings}")
        return f"""
SELECT s.event_id FROM (SELECT event_id, start_time FROM {t} WHERE {where}{live}) AS s
INNER JOIN (
    SELECT session_id, {_AGGREGATES} FROM {t}
    WHERE project_id = {p}{live} AND session_id IN (SELECT event_id FROM {t} WHERE {where}{live})
    GROUP BY session_id
) AS a ON a.session_id = s.event_id
ORDER BY {_AGGREGATE_SORT[query.sort_by]} {direction}, s.start_time DESC, s.event_id ASC
LIMIT {limit} OFFSET {offset}{settings}"""

    async def page_ids(source: Source) -> list[tuple[Any, ...]]:
        return await ex.query(page_sql(source), params.values)

    if by_column:
        rows = await read(days, ex, lo, hi, page_ids)
    else:  # a session's events may start outside the range: this read covers every day
        rows = await read(days, ex, None, None, page_ids, mixed=True)
    page = [r[0] for r in rows]
    if not page:
        return [], total
    # Sums past the double range are inf, which JSON output writes as null unless quoted.
    quoted = f"{settings}, {_QUOTE_INF}" if settings else f" SETTINGS {_QUOTE_INF}"
    by_session, by_id = Params(), Params()
    of_sessions = await keys_condition(ex, project_id, "session_id", page, by_session)
    session_rows = await keys_condition(ex, project_id, "event_id", page, by_id)
    if of_sessions is None or session_rows is None:
        return [], total
    aggregates = {r[0]: r[1:] for r in await ex.query(
        f"SELECT session_id, {_AGGREGATES} FROM events FINAL WHERE {of_sessions} GROUP BY session_id{quoted}",
        by_session.values)}
    sessions = {r[0]: r[1:] for r in await ex.query(
        "SELECT event_id, event_name, source, start_time, user_properties, metadata FROM events FINAL "
        f"WHERE {session_rows} AND event_type = 'session'{settings}", by_id.values)}
    # A session deleted between the statements drops out of the page rather than failing it.
    return [summary_from_rows(sid, sessions[sid], _doubles(aggregates[sid]), number)
            for sid in page if sid in sessions and sid in aggregates], total


def _doubles(agg: tuple[Any, ...]) -> tuple[Any, ...]:
    """The aggregates with cost and tokens as floats (see ``_double``)."""
    end_time, num_events, cost, tokens, has_error, has_feedback = agg
    return end_time, num_events, _double(cost), _double(tokens), has_error, has_feedback


def _double(value: Any) -> Any:
    """A Float64 read with quoted non-finite values ("inf", "-inf", "nan") as a float."""
    return float(value) if isinstance(value, str) else value
