"""Compiling and running a backend-neutral ``ChartQuery`` (``tracehive.query.chart``) on SQLite.

The same rules as ``compile.py`` keep user input out of the SQL text: filters come from
``condition_sql``, JSON paths (metric, groupBy) and every number are bound parameters, and the only
identifiers are looked up in ``_COLUMNS`` by the parsed field's column name.

The aggregation runs inside SQLite; Python only reads the aggregated rows (at most
``query.max_rows + 1``, fetched in chunks, refused past the limits).

* Buckets: minute/hour/day/week by integer arithmetic on ``floor(start_time)`` (ms):
  ``t - ((t - origin) % width + width) % width`` (origin = the Monday before the epoch for weeks,
  0 otherwise; the double modulo keeps pre-1970 times right). Months by
  ``strftime('%s', t / 1000.0, 'unixepoch', 'start of month')``.
* Percentiles (SQLite has none): a window ranks each row's values (``row_number()`` in value
  order, ``count()`` of the numeric ones) and the group keeps the two ranks around
  h = (n - 1) * p, computed with integers (p in percent), interpolated in Python: linear
  interpolation between closest ranks (NumPy's default). SQLite's window sorter spills to disk,
  so no step holds the events in memory.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from tracehive.query.chart import Aggregation, Bucket, ChartQuery, ChartRow, too_many_buckets, too_many_rows
from tracehive.query.filters import FieldRef
from tracehive.storage.sqlite.compile import condition_sql, json_path

_COLUMNS: dict[str, tuple[str, str]] = {
    "event_id": ("e.event_id", "text"),
    "session_id": ("e.session_id", "text"),
    "parent_id": ("e.parent_id", "text"),
    "event_type": ("e.event_type", "text"),
    "event_name": ("e.event_name", "text"),
    "source": ("e.source", "text"),
    "error": ("e.error", "text"),
    "start_time": ("e.start_time", "number"),
    "end_time": ("e.end_time", "number"),
    "duration": ("e.duration", "number"),
    "config": ("e.config", "json"),
    "inputs": ("e.inputs", "json"),
    "outputs": ("e.outputs", "json"),
    "metadata": ("e.metadata", "json"),
    "feedback": ("e.feedback", "json"),
    "metrics": ("e.metrics", "json"),
    "user_properties": ("e.user_properties", "json"),
    "children_ids": ("e.children_ids", "json"),
}

_SIMPLE = {
    Aggregation.AVG: "avg(v)",
    Aggregation.COUNT: "count(v)",
    Aggregation.SUM: "sum(v)",
    Aggregation.MIN: "min(v)",
    Aggregation.MAX: "max(v)",
}

# floor(start_time) as an integer (start_time may carry fractional ms).
_FLOOR_START = "(CAST(e.start_time AS INTEGER) - (e.start_time < CAST(e.start_time AS INTEGER)))"
_FETCH = 1000

Sql = tuple[str, list[Any]]


def _metric(ref: FieldRef) -> Sql:
    column, kind = _COLUMNS[ref.column]
    if kind == "number" and not ref.path:
        return column, []
    if kind != "json" or not ref.path:
        raise ValueError(f"{ref} is not a numeric field")
    path = json_path(ref.path)
    return f"CASE WHEN json_type({column}, ?) IN ('integer', 'real') THEN json_extract({column}, ?) END", [path, path]


def _group(ref: FieldRef | None) -> tuple[str, str, list[Any]]:
    """SQL of (group type, group value): the type is the JSON type for paths (NULL = no value)."""
    if ref is None:
        return "NULL", "NULL", []
    column, kind = _COLUMNS[ref.column]
    if kind != "json":
        if ref.path:
            raise ValueError(f"{ref.column} has no JSON path")
        return "NULL", column, []
    path = json_path(ref.path)
    return f"nullif(json_type({column}, ?), 'null')", f"json_extract({column}, ?)", [path, path]


def _bucket(bucket: Bucket) -> Sql:
    """SQL of the bucket start from ``t`` (floor of start_time, selected by the inner query)."""
    width = bucket.fixed_ms
    if width is None:
        return "CAST(strftime('%s', t / 1000.0, 'unixepoch', 'start of month') AS INTEGER) * 1000", []
    return "(t - (((t - ?) % ?) + ?) % ?)", [bucket.origin_ms, width, width, width]


def compile_chart(project_id: str, query: ChartQuery) -> Sql:
    """One SELECT of (bucket, group type, group value, events, numeric values, value or the two
    ranks and the interpolation remainder), ordered by bucket then group, limited to
    ``max_rows + 1`` rows."""
    where = ["e.project_id = ?"]
    where_params: list[Any] = [project_id]
    if query.date_range is not None:
        if query.date_range.start is not None:
            where.append("e.start_time >= ?")
            where_params.append(query.date_range.start)
        if query.date_range.end is not None:
            where.append("e.start_time <= ?")
            where_params.append(query.date_range.end)
    for cond in query.conditions:
        sql, cond_params = condition_sql(cond)
        where.append(f"({sql})")
        where_params.extend(cond_params)

    metric_sql, metric_params = _metric(query.metric)
    gt_sql, g_sql, group_params = _group(query.group_by)
    g_params = group_params[1:] if group_params else []
    gt_params = group_params[:1]
    rows = (
        f"SELECT {_FLOOR_START} AS t, {gt_sql} AS gt, {g_sql} AS g, {metric_sql} AS v "
        f"FROM events AS e WHERE {' AND '.join(where)}"
    )
    rows_params = [*gt_params, *g_params, *metric_params, *where_params]
    bucket_sql, bucket_params = _bucket(query.bucket)
    bucketed = f"SELECT {bucket_sql} AS b, gt, g, v FROM ({rows})"
    bucketed_params = [*bucket_params, *rows_params]
    order = " GROUP BY b, gt, g ORDER BY b, g, gt LIMIT ?"

    percent = query.aggregation.percentile
    if percent is None:
        aggregate = _SIMPLE[query.aggregation]
        sql = f"SELECT b, gt, g, count(*), count(v), {aggregate}, NULL, NULL FROM ({bucketed}){order}"
        return sql, [*bucketed_params, query.max_rows + 1]

    ranked = (
        "SELECT b, gt, g, v, "
        "row_number() OVER (PARTITION BY b, gt, g ORDER BY v NULLS LAST) AS rn, "
        "count(*) OVER (PARTITION BY b, gt, g) AS total, "
        "count(v) OVER (PARTITION BY b, gt, g) AS nv "
        f"FROM ({bucketed})"
    )
    # lo: the 0-based rank floor((nv - 1) * p / 100); rem: the remainder in hundredths.
    sql = (
        "SELECT b, gt, g, max(total), max(nv), "
        "max(CASE WHEN rn = ((nv - 1) * ?) / 100 + 1 THEN v END), "
        "max(CASE WHEN rn = ((nv - 1) * ?) / 100 + 2 THEN v END), "
        "max(((nv - 1) * ?) % 100) "
        f"FROM ({ranked}){order}"
    )
    return sql, [percent, percent, percent, *bucketed_params, query.max_rows + 1]


def _group_value(kind: str | None, value: Any) -> Any:
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind in ("object", "array") and isinstance(value, str):
        return orjson.loads(value)
    return value


def _value(query: ChartQuery, numeric: int, first: Any, second: Any, remainder: Any) -> Any:
    if query.aggregation.percentile is None:
        return first
    if numeric == 0 or first is None:
        return None
    if not remainder or second is None:
        return first
    return first + (second - first) * remainder / 100


def run_chart(conn: sqlite3.Connection, project_id: str, query: ChartQuery) -> list[ChartRow]:
    sql, params = compile_chart(project_id, query)
    cursor = conn.execute(sql, params)
    out: list[ChartRow] = []
    buckets = 0
    last_bucket: Any = None
    try:
        while True:
            chunk = cursor.fetchmany(_FETCH)
            if not chunk:
                break
            for b, gt, g, total, numeric, first, second, remainder in chunk:
                if b != last_bucket:
                    buckets += 1
                    last_bucket = b
                    if buckets > query.max_buckets:
                        raise too_many_buckets(f"more than {query.max_buckets:,}", query)
                if len(out) >= query.max_rows:
                    raise too_many_rows(query)
                out.append(
                    ChartRow(
                        bucket=int(b),
                        group=_group_value(gt, g),
                        value=_value(query, numeric, first, second, remainder),
                        count=int(total),
                    )
                )
    finally:
        cursor.close()
    return out
