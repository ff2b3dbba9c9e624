"""Running a backend-neutral ``ChartQuery`` (``tracehive.query.chart``) on PostgreSQL, with the
answers of the SQLite backend (``storage/sqlite/chart.py``).

The same rules as ``compile.py`` keep user input out of the SQL text: filters come from
``where_clause``, JSON paths and every number are bound parameters, the only identifiers come
from ``COLUMNS``. The aggregation runs in PostgreSQL; Python reads at most ``max_rows + 1``
aggregated rows (refused past the limits) and, for min, max and percentiles, one or two
values per row.

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
  +-Infinity where PostgreSQL's sum(float8) raises) in the order SQLite's chart index feeds the
  rows, divided by the count for avg; a sum of INTEGERs only is exact (numeric).
* min, max and percentiles come from a second statement, one window pass over each row's
  values in order (row_number, which PostgreSQL sorts with spilling to disk), that returns the one
  or two values picked: min/max the first extreme in SQLite's feed order (between an INTEGER 0
  and a REAL -0.0, SQLite keeps the one it met first), percentiles the two values around the rank
  (n - 1) * p / 100 in integer arithmetic, interpolated as the SQLite backend interpolates
  (linear between closest ranks). ``percentile_cont`` computes the rank and the fraction in
  floating point and would differ from SQLite's answer in the last bits.
* Buckets: minute/hour/day/week by integer arithmetic on floor(start_time) with the bucket's
  origin (``mod`` keeps pre-1970 times right); months from the UTC calendar date, for start
  times within the calendar years 0001-9999 (outside them an event has no month: it is left
  out, where the SQLite backend fails on it; charts parsed from a request never reach them).

Run it inside one REPEATABLE READ transaction (the store does): the second statement must see
the rows the first one counted. On an idle connection it opens one itself.
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
from tracehive.query.fields import FieldRef
from tracehive.storage.postgres.compile import C, COLUMNS, INT64_MAX, INT64_MIN, Sql, Operand, where_clause
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


# SQLite's INTEGER: a JSON number written as an integer within int64 (as in ``th_text``), from the
# number's JSON text ``x`` of a row whose JSON type is ``k``. Nested CASEs: a cast runs only once
# the test before it has passed.
_INT_OF = (
    "CASE WHEN {k} = 'number' THEN CASE WHEN {x} ~ '^-?[0-9]{{1,19}}$' THEN CASE WHEN {x}::numeric "
    "BETWEEN -9223372036854775808 AND 9223372036854775807 THEN {x}::numeric END END END"
)

# A value in stages, each a fenced select over the one before: PostgreSQL would otherwise inline
# every derived column into each of its uses, and compute json_typeof and the casts many times.
Stages = tuple[list[str], list[str], list[str]]


def _group(ref: FieldRef | None) -> tuple[str, list[Any], Stages]:
    """(SQL of the group's JSON or column value ``g``, its parameters, the stages that end in
    ``gt, gn, gx, gs, gi``)."""
    if ref is None:
        return "NULL::text", [], ([], [], ["NULL::text AS gt", "NULL::float8 AS gn", "NULL::numeric AS gx",
                                           "NULL::text AS gs", "NULL::boolean AS gi"])
    op = Operand.of(ref)
    if op.kind == "text":
        return op.column, [], ([], [], ["NULL::text AS gt", "NULL::float8 AS gn", "NULL::numeric AS gx",
                                        "g AS gs", "NULL::boolean AS gi"])
    if op.kind == "number":
        return op.column, [], ([], [f"{_integral('g')} AS gint"], [
            "NULL::text AS gt", "g AS gn", "gint AS gx", "NULL::text AS gs", "gint IS NOT NULL AS gi"])
    value, params = op.json()
    first = ["json_typeof(g) AS gk", "g::text AS gtxt"]
    second = [
        f"{_INT_OF.format(k='gk', x='gtxt')} AS gint",
        "CASE gk WHEN 'number' THEN gtxt::float8 WHEN 'boolean' THEN CASE WHEN gtxt = 'true' THEN 1.0::float8 "
        "ELSE 0.0::float8 END END AS gd",
        "CASE gk WHEN 'string' THEN g #>> '{}' WHEN 'object' THEN gtxt WHEN 'array' THEN gtxt END AS gstr",
        "CASE gk WHEN 'object' THEN 'object' WHEN 'array' THEN 'array' WHEN 'string' THEN 'text' "
        "WHEN 'boolean' THEN gtxt WHEN 'number' THEN CASE WHEN gtxt ~ '^-?[0-9]+$' THEN 'integer' ELSE 'real' END "
        "END AS gtype",
    ]
    third = ["gtype AS gt", "gd AS gn", f"coalesce(gint, {_integral('gd')}) AS gx", "gstr AS gs",
             "gint IS NOT NULL AS gi"]
    return value, params, (first, second, third)


def _metric(ref: FieldRef) -> tuple[str, list[Any], Stages]:
    """(SQL of the metric's JSON or column value ``m``, its parameters, the stages that end in
    ``v, vi, vx``: the value as a double, its exact value if an INTEGER, its exact integer value
    if it has one, for ordering)."""
    column, kind = COLUMNS[ref.column]
    if kind == "number" and not ref.path:
        return column, [], ([], [f"{_integral('m')} AS mint"], ["m AS v", "mint AS vi", "mint AS vx"])
    if kind != "json" or not ref.path:
        raise ValueError(f"{ref} is not a numeric field")
    value, params = Operand.of(ref).json()
    first = ["json_typeof(m) AS mk", "m::text AS mtxt"]
    second = [f"{_INT_OF.format(k='mk', x='mtxt')} AS mint", "CASE WHEN mk = 'number' THEN mtxt::float8 END AS md"]
    third = ["md AS v", "mint AS vi", f"coalesce(mint, {_integral('md')}) AS vx"]
    return value, params, (first, second, third)


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
    """SELECT of (b, gt, gn, gx, gs, gi, gc, v, vi, vx, st, et, du, sq) per selected event; st, et,
    du, sq give the order in which SQLite's index feeds its sums. Each stage is fenced (OFFSET 0)
    so that the JSON paths are extracted once per event and each derived value computed once."""
    where, where_params = where_clause(project_id, query.date_range, query.conditions)
    g_sql, g_params, (g1, g2, g3) = _group(query.group_by)
    m_sql, m_params, (m1, m2, m3) = _metric(query.metric)
    bucket, bucket_params = _bucket(query.bucket)
    stage0 = (
        f"SELECT floor(e.start_time) AS t, e.start_time AS st, e.event_type AS et, e.duration AS du, e.seq AS sq, "
        f"{g_sql} AS g, {m_sql} AS m FROM events AS e WHERE {where} OFFSET 0"
    )
    stage1 = f"SELECT {', '.join(['s0.*', *g1, *m1])} FROM ({stage0}) AS s0 OFFSET 0"
    stage2 = f"SELECT {', '.join(['s1.*', *g2, *m2])} FROM ({stage1}) AS s1 OFFSET 0"
    stage3 = (
        f"SELECT {', '.join([f'{bucket} AS b', *g3, *m3, 'st', 'et', 'du', 'sq'])} FROM ({stage2}) AS r OFFSET 0"
    )
    named = (
        "SELECT b, gt, gn, gx, gs, gi, CASE WHEN gn IS NOT NULL THEN 1 WHEN gs IS NOT NULL THEN 2 ELSE 0 END AS gc, "
        f"v, vi, vx, st, et, du, sq FROM ({stage3}) AS k WHERE b IS NOT NULL"
    )
    return named, [*bucket_params, *g_params, *m_params, *where_params]


# A sum of doubles depends on the order of its terms. SQLite adds them in the order its chart
# index (project_id, start_time, event_type, duration) gives, ties in rowid order (when its planner
# picks that index, as for every range over start_time; another index gives another order).
_FEED = f"st, et {C}, du, sq"
_TOTAL = f"th_total(v ORDER BY {_FEED})"
_AGGREGATES = {
    Aggregation.AVG: f"{_TOTAL}, NULL::numeric, NULL::bigint",
    Aggregation.SUM: f"{_TOTAL}, sum(vi), count(vi)",
}
_NONE = "NULL::float8, NULL::numeric, NULL::bigint"


def compile_chart(project_id: str, query: ChartQuery) -> Sql:
    """One SELECT of (keys, gc, events, numeric values, total, integer sum, integers) per row in
    output order, limited to ``max_rows + 1``; the last three are for avg and sum."""
    rows, params = _rows(project_id, query)
    aggregates = _AGGREGATES.get(query.aggregation, _NONE)
    sql = (
        f"SELECT {_KEYS}, gc, count(*), count(v), {aggregates} FROM ({rows}) AS x "
        f"GROUP BY {_KEYS}, gc ORDER BY {_ORDER} LIMIT %s"
    )
    return sql, [*params, query.max_rows + 1]


def compile_ranks(project_id: str, query: ChartQuery) -> Sql:
    """The values a row's aggregation picks, as (keys, rank, vi, v): for min and max the first
    value in order (rank 1), SQLite's minimum or maximum, which on a tie between equal values (an
    INTEGER 0 and a REAL -0.0) is the first its index feeds; for percentiles the two values around
    the rank h = (n - 1) * percent / 100 (integer arithmetic): ranks floor(h) + 1 and, when h has
    a fraction, floor(h) + 2."""
    rows, params = _rows(project_id, query)
    percent = query.aggregation.percentile
    if query.aggregation is Aggregation.MAX:
        order = f"v DESC, vx DESC NULLS FIRST, {_FEED}"  # a NULL vx ties only above 2**63
    else:
        order = f"v, vx NULLS LAST, {_FEED}"
    ranked = (
        f"SELECT {_KEYS}, vi, v, row_number() OVER (PARTITION BY {_KEYS} ORDER BY {order}) AS rn, "
        f"count(*) OVER (PARTITION BY {_KEYS}) AS n FROM ({rows}) AS x WHERE v IS NOT NULL"
    )
    if percent is None:
        return f"SELECT {_KEYS}, rn, vi, v FROM ({ranked}) AS q WHERE rn = 1", params
    sql = (
        f"SELECT {_KEYS}, rn, vi, v FROM ({ranked}) AS q "
        "WHERE rn = (n - 1) * %s::bigint / 100 + 1 "
        "OR (rn = (n - 1) * %s::bigint / 100 + 2 AND mod((n - 1) * %s::bigint, 100) <> 0)"
    )
    return sql, [*params, percent, percent, percent]


def _typed(exact: Decimal | None, double: float | None) -> Any:
    """A value as SQLite gives it: an int for an INTEGER, else the double."""
    return int(exact) if exact is not None else double


def _value(query: ChartQuery, numeric: int, total: Any, integer_sum: Any, integers: Any) -> Any:
    """count, avg and sum from the aggregated row."""
    if query.aggregation is Aggregation.COUNT:
        return numeric
    if numeric == 0:
        return None
    if query.aggregation is Aggregation.AVG:
        return total / numeric
    if integers == numeric:  # INTEGERs only: SQLite's exact int64 sum
        exact = int(integer_sum)
        if INT64_MIN <= exact <= INT64_MAX:
            return exact
        # SQLite raises "integer overflow" here; the double sum is the closest answer.
    return total


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


async def _picked(conn: Conn, project_id: str, query: ChartQuery, rows: list[tuple[Any, ...]]) -> list[Any]:
    """Per row, min, max or the interpolated percentile of its numeric values (None without
    any), the percentile computed from the two ranked values as the SQLite backend computes it."""
    sql, params = compile_ranks(project_id, query)
    ranked: dict[tuple[Any, ...], dict[int, Any]] = {}
    async with conn.cursor() as cur:
        await cur.execute(sql, params)
        for *key, rank, exact, double in await cur.fetchall():
            ranked.setdefault(tuple(key), {})[rank] = _typed(exact, double)
    percent = query.aggregation.percentile
    out: list[Any] = []
    for row in rows:
        numeric = row[8]
        if numeric == 0:
            out.append(None)
            continue
        values = ranked[tuple(row[:6])]
        if percent is None:
            out.append(values[1])
            continue
        lo, remainder = divmod((numeric - 1) * percent, 100)
        first = values[lo + 1]
        if remainder:
            second = values[lo + 2]
            out.append(first + (second - first) * remainder / 100)
        else:
            out.append(first)
    return out


_PICKED = (Aggregation.MIN, Aggregation.MAX)


async def run_chart(conn: Conn, project_id: str, query: ChartQuery) -> list[ChartRow]:
    async with snapshot(conn):
        rows = await _read_rows(conn, project_id, query)
        if query.aggregation.percentile is None and query.aggregation not in _PICKED:
            values = [_value(query, row[8], *row[9:12]) for row in rows]
        else:
            values = await _picked(conn, project_id, query, rows)
    return [
        ChartRow(bucket=int(row[0]), group=_group_value(*row[1:6]), value=value, count=int(row[7]))
        for row, value in zip(rows, values)
    ]
