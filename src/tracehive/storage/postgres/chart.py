"""Running a backend-neutral ``ChartQuery`` (``tracehive.query.chart``) on PostgreSQL, with the
answers of the SQLite backend (``storage/sqlite/chart.py``).

The same rules as ``compile.py`` keep user input out of the SQL text: filters come from
``where_clause``, JSON paths and every number are bound parameters, the only identifiers come
from ``COLUMNS``. The aggregation runs in PostgreSQL; Python reads at most ``max_rows + 1``
aggregated rows (refused past the limits) and, for percentiles, two values per row.

Values are seen through SQLite's types, as in the filters: a JSON number is an INTEGER (written
as an integer within int64) or a REAL; a number column holds an INTEGER when integral. So:

* The group of an event is keyed by (gt, gn, gx, gs, gi): gt the SQLite json_type
  ('true', 'integer', 'text'...; NULL for columns, null and missing), gn the value as a double
  (numbers, and booleans as 1/0), gx its exact integer value where it has one (an INTEGER, or a
  REAL that is an integer within int64: gn alone would merge 2**53 and 2**53 + 1), gs the text
  (strings, JSON text of objects/arrays, text columns), gi whether it is an INTEGER (to give it
  back as an int). Rows are ordered as SQLite orders ``b, g, gt``: NULL, then numbers
  (booleans being 1/0) by value, then text by bytes, then by gt.
* The metric is v (the value as a double, NULL when not a number) with vi (its exact value when
  an INTEGER) and vx (exact integer tie-break for ordering, as gx).
* avg and sum of REALs are SQLite's running double sum (``th_total``, which saturates at
  +-Infinity where PostgreSQL's sum(float8) raises), divided by the count for avg; a sum of
  INTEGERs only is exact (numeric); min/max compare INTEGERs and REALs exactly and return the
  value with its type.
* Percentiles: linear interpolation between closest ranks at rank (n - 1) * p / 100, computed as
  the SQLite backend computes it, from the two values around the rank. The ranks are integer
  arithmetic and the two values come from one window pass (row_number over the row's values,
  which PostgreSQL sorts with spilling to disk); ``percentile_cont`` computes the rank and the
  fraction in floating point and would differ from SQLite's answer in the last bits.
* Buckets: minute/hour/day/week by integer arithmetic on floor(start_time) with the bucket's
  origin (``mod`` keeps pre-1970 times right); months from the UTC calendar date, for start
  times within the calendar years 0001-9999 (outside them an event has no month: it is left
  out, where the SQLite backend fails on it; charts parsed from a request never reach them).

Run it inside one REPEATABLE READ transaction (the store does): the percentile pass must see
the rows the first statement counted. On an idle connection it opens one itself.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from psycopg import AsyncConnection

from tracehive.query.chart import (
    CALENDAR_END_MS,
    CALENDAR_START_MS,
    Aggregation,
    Bucket,
    ChartQuery,
    ChartRow,
    too_many_buckets,
    too_many_rows,
)
from tracehive.query.filters import FieldRef
from tracehive.storage.postgres.compile import C, COLUMNS, INT64_MAX, INT64_MIN, Sql, _Operand, where_clause
from tracehive.storage.postgres.export import snapshot

Conn = AsyncConnection[Any]

_KEYS = "b, gt, gn, gx, gs, gi"
# SQLite's order of ``b, g, gt``: g's NULLs first, numbers by exact value, text by bytes.
_ORDER = f"b, gc, gn, gx, gs {C}, gt {C} NULLS FIRST"
_EXACT_INT = (
    "CASE WHEN {x} = trunc({x}) AND {x} >= -9223372036854775808::float8 "
    "AND {x} < 9223372036854775808::float8 THEN {x}::bigint::numeric END"
)


def _integral(double_sql: str) -> str:
    """The exact integer value of a double that is an integer within int64, else NULL."""
    return _EXACT_INT.format(x=double_sql)


def _group(ref: FieldRef | None) -> tuple[str, list[Any], str]:
    """(SQL of the group's JSON or column value as ``g`` in the inner select, its parameters,
    SQL of ``gt, gn, gx, gs, gi`` over ``r.g``)."""
    if ref is None:
        return "NULL::text", [], "NULL::text, NULL::float8, NULL::numeric, NULL::text, NULL::boolean"
    op = _Operand.of(ref)
    if op.kind == "text":
        return op.column, [], "NULL::text, NULL::float8, NULL::numeric, r.g, NULL::boolean"
    if op.kind == "number":
        return op.column, [], f"NULL::text, r.g, {_integral('r.g')}, NULL::text, {_integral('r.g')} IS NOT NULL"
    value, params = op.json()
    gt = (
        "CASE json_typeof(r.g) WHEN 'object' THEN 'object' WHEN 'array' THEN 'array' WHEN 'string' THEN 'text' "
        "WHEN 'boolean' THEN r.g::text "
        "WHEN 'number' THEN CASE WHEN r.g::text ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END END"
    )
    gn = (
        "CASE json_typeof(r.g) WHEN 'number' THEN r.g::text::float8 "
        "WHEN 'boolean' THEN CASE WHEN r.g::text = 'true' THEN 1.0::float8 ELSE 0.0::float8 END END"
    )
    gx = (
        f"CASE json_typeof(r.g) WHEN 'number' THEN coalesce(th_int(r.g), {_integral('th_real(r.g)')}) "
        "WHEN 'boolean' THEN CASE WHEN r.g::text = 'true' THEN 1::numeric ELSE 0::numeric END END"
    )
    gs = "CASE json_typeof(r.g) WHEN 'string' THEN r.g #>> '{}' WHEN 'object' THEN r.g::text WHEN 'array' THEN r.g::text END"
    return value, params, f"{gt}, {gn}, {gx}, {gs}, th_int(r.g) IS NOT NULL"


def _metric(ref: FieldRef) -> tuple[str, list[Any], str]:
    """(SQL of the metric's JSON or column value as ``m``, its parameters, SQL of ``v, vi, vx``
    over ``r.m``)."""
    column, kind = COLUMNS[ref.column]
    if kind == "number" and not ref.path:
        return column, [], f"r.m, {_integral('r.m')}, {_integral('r.m')}"
    if kind != "json" or not ref.path:
        raise ValueError(f"{ref} is not a numeric field")
    value, params = _Operand.of(ref).json()
    v = "r.m::text::float8"
    return (
        value,
        params,
        f"CASE WHEN json_typeof(r.m) = 'number' THEN {v} END, th_int(r.m), "
        f"CASE WHEN json_typeof(r.m) = 'number' THEN coalesce(th_int(r.m), {_integral(v)}) END",
    )


def _bucket(bucket: Bucket) -> Sql:
    """SQL of the bucket start from ``r.t`` (floor of start_time, a double)."""
    width = bucket.fixed_ms
    if width is None:
        day = "(date '1970-01-01' + floor(r.t / 86400000.0::float8)::int)"
        first = f"({day} - (extract(day FROM {day})::int - 1))"
        return (
            f"CASE WHEN r.t BETWEEN %s::float8 AND %s::float8 "
            f"THEN ({first} - date '1970-01-01')::bigint * 86400000 END",
            [CALENDAR_START_MS, CALENDAR_END_MS],
        )
    return (
        "CASE WHEN r.t BETWEEN -4.0e18::float8 AND 4.0e18::float8 "
        "THEN r.t::bigint - mod(mod(r.t::bigint - %s::bigint, %s::bigint) + %s::bigint, %s::bigint) END",
        [bucket.origin_ms, width, width, width],
    )


def _rows(project_id: str, query: ChartQuery) -> Sql:
    """SELECT of (b, gt, gn, gx, gs, gi, gc, v, vi, vx, st, et, du, sq) per selected event (st, et, du, sq:
    the order in which SQLite's index feeds its sums). The inner select is
    fenced (OFFSET 0) so that each event's JSON paths are extracted once, not once per use."""
    where, where_params = where_clause(project_id, query.date_range, query.conditions)
    g_sql, g_params, group = _group(query.group_by)
    m_sql, m_params, metric = _metric(query.metric)
    bucket, bucket_params = _bucket(query.bucket)
    inner = (
        f"SELECT floor(e.start_time) AS t, e.start_time AS st, e.event_type AS et, e.duration AS du, e.seq AS sq, "
        f"{g_sql} AS g, {m_sql} AS m "
        f"FROM events AS e WHERE {where} OFFSET 0"
    )
    keyed = f"SELECT {bucket} AS b, {group}, {metric}, r.st, r.et, r.du, r.sq FROM ({inner}) AS r"
    named = (
        f"SELECT b, gt, gn, gx, gs, gi, "
        f"CASE WHEN gn IS NOT NULL THEN 1 WHEN gs IS NOT NULL THEN 2 ELSE 0 END AS gc, v, vi, vx, st, et, du, sq "
        f"FROM ({keyed}) AS k (b, gt, gn, gx, gs, gi, v, vi, vx, st, et, du, sq) WHERE b IS NOT NULL"
    )
    return named, [*bucket_params, *g_params, *m_params, *where_params]


# A sum of doubles depends on the order of its terms. SQLite adds them in the order its chart
# index (project_id, start_time, event_type, duration) gives, ties in rowid order (when its planner
# picks that index, as for every range over start_time; another index gives another order).
_TOTAL = f"th_total(v ORDER BY st, et {C}, du, sq)"
_AGGREGATES = {
    Aggregation.AVG: f"{_TOTAL}, NULL::numeric, NULL::float8, NULL::numeric",
    Aggregation.SUM: f"{_TOTAL}, sum(vi), NULL::float8, count(vi)",
    Aggregation.MIN: "NULL::float8, min(vi), min(v) FILTER (WHERE vi IS NULL), NULL::bigint",
    Aggregation.MAX: "NULL::float8, max(vi), max(v) FILTER (WHERE vi IS NULL), NULL::bigint",
}
_NONE = "NULL::float8, NULL::numeric, NULL::float8, NULL::bigint"


def compile_chart(project_id: str, query: ChartQuery) -> Sql:
    """One SELECT of (keys, gc, events, numeric values, a, b, c, d) per row in output order,
    limited to ``max_rows + 1``; a-d are what ``_value`` needs for the aggregation."""
    rows, params = _rows(project_id, query)
    aggregates = _AGGREGATES.get(query.aggregation, _NONE)
    sql = (
        f"SELECT {_KEYS}, gc, count(*), count(v), {aggregates} FROM ({rows}) AS x "
        f"GROUP BY {_KEYS}, gc ORDER BY {_ORDER} LIMIT %s"
    )
    return sql, [*params, query.max_rows + 1]


def compile_ranks(project_id: str, query: ChartQuery, percent: int) -> Sql:
    """The two values around each row's rank h = (n - 1) * percent / 100 (integer arithmetic):
    (keys, rank, vi, v) for ranks floor(h) + 1 and, when h has a fraction, floor(h) + 2."""
    rows, params = _rows(project_id, query)
    ranked = (
        f"SELECT {_KEYS}, vi, v, row_number() OVER (PARTITION BY {_KEYS} ORDER BY v, vx) AS rn, "
        f"count(*) OVER (PARTITION BY {_KEYS}) AS n FROM ({rows}) AS x WHERE v IS NOT NULL"
    )
    sql = (
        f"SELECT {_KEYS}, rn, vi, v FROM ({ranked}) AS q "
        "WHERE rn = (n - 1) * %s::bigint / 100 + 1 "
        "OR (rn = (n - 1) * %s::bigint / 100 + 2 AND mod((n - 1) * %s::bigint, 100) <> 0)"
    )
    return sql, [*params, percent, percent, percent]


def _typed(exact: Decimal | None, double: float | None) -> Any:
    """A value as SQLite gives it: an int for an INTEGER, else the double."""
    return int(exact) if exact is not None else double


def _value(query: ChartQuery, numeric: int, a: Any, b: Any, c: Any, d: Any) -> Any:
    if query.aggregation is Aggregation.COUNT:
        return numeric
    if numeric == 0:
        return None
    if query.aggregation is Aggregation.AVG:
        return a / numeric
    if query.aggregation is Aggregation.SUM:
        if d == numeric:  # INTEGERs only: SQLite's exact int64 sum
            total = int(b)
            if INT64_MIN <= total <= INT64_MAX:
                return total
            # SQLite raises "integer overflow" here; the double sum is the closest answer.
        return a
    # min / max: the INTEGER extreme b (exact) against the REAL one c, compared exactly (Python
    # compares int and float exactly). On a tie SQLite keeps whichever it met first; here the int.
    integer = None if b is None else int(b)
    if integer is None or c is None:
        return c if integer is None else integer
    if query.aggregation is Aggregation.MIN:
        return c if c < integer else integer
    return c if c > integer else integer


def _group_value(gt: str | None, gn: float | None, gx: Decimal | None, gs: str | None, gi: bool | None) -> Any:
    if gt == "true":
        return True
    if gt == "false":
        return False
    if gt in ("object", "array"):
        return orjson.loads(gs) if gs is not None else None
    if gs is not None:
        return gs
    if gn is not None:
        return int(gx) if gi and gx is not None else gn
    return None


async def _read_rows(conn: Conn, project_id: str, query: ChartQuery) -> list[tuple[Any, ...]]:
    """The aggregated rows in order, refused past max_buckets / max_rows (read in chunks)."""
    sql, params = compile_chart(project_id, query)
    rows: list[tuple[Any, ...]] = []
    buckets = 0
    last_bucket: Any = None
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        while True:
            chunk = await cur.fetchmany(1000)
            if not chunk:
                break
            for row in chunk:
                if row[0] != last_bucket:
                    buckets += 1
                    last_bucket = row[0]
                    if buckets > query.max_buckets:
                        raise too_many_buckets(f"more than {query.max_buckets:,}", query)
                if len(rows) >= query.max_rows:
                    raise too_many_rows(query)
                rows.append(row)
    return rows


async def _percentiles(conn: Conn, project_id: str, query: ChartQuery, percent: int,
                       rows: list[tuple[Any, ...]]) -> list[Any]:
    """Per row, the interpolated percentile of its numeric values (None without any), computed
    from the two ranked values exactly as the SQLite backend computes it."""
    sql, params = compile_ranks(project_id, query, percent)
    ranked: dict[tuple[Any, ...], dict[int, Any]] = {}
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        for *key, rank, exact, double in await cur.fetchall():
            ranked.setdefault(tuple(key), {})[rank] = _typed(exact, double)
    out: list[Any] = []
    for row in rows:
        numeric = row[8]
        if numeric == 0:
            out.append(None)
            continue
        values = ranked[tuple(row[:6])]
        lo, remainder = divmod((numeric - 1) * percent, 100)
        first = values[lo + 1]
        if remainder:
            second = values[lo + 2]
            out.append(first + (second - first) * remainder / 100)
        else:
            out.append(first)
    return out


async def run_chart(conn: Conn, project_id: str, query: ChartQuery) -> list[ChartRow]:
    percent = query.aggregation.percentile
    async with snapshot(conn):
        rows = await _read_rows(conn, project_id, query)
        if percent is None:
            values = [_value(query, row[8], *row[9:13]) for row in rows]
        else:
            values = await _percentiles(conn, project_id, query, percent, rows)
    return [
        ChartRow(bucket=int(row[0]), group=_group_value(*row[1:6]), value=value, count=int(row[7]))
        for row, value in zip(rows, values)
    ]
