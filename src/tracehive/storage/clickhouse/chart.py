"""``chart_events`` on ClickHouse (semantics in ``tracehive.query.chart``; SQLite's
``storage/sqlite/chart.py`` is the reference for every edge).

One statement over ``events FINAL`` (settled days without it: ``settled.py``) (the WHERE of ``compile.where_clause``): per event its bucket
``b``, its group (kind ``gt`` as SQLite's json_type names it, a sort number ``gn``, the group's
text ``gs``) and its numeric metric ``v``; then one GROUP BY (b, gt, gs), ordered as SQLite orders
its mixed-type group values (NULL, then numbers, then text, byte order), limited to
``max_rows + 1`` rows: Python reads only aggregated rows and refuses past the limits.

* Buckets: fixed widths by integer arithmetic on ``floor(start_time)`` as on SQLite (ClickHouse's
  ``%`` truncates as C's does, so the double modulo is the same); months from the day of the
  month computed by civil-calendar arithmetic on days since the epoch, because ClickHouse's date
  types stop at 1900 and 2299 where a chart shows the years 1 to 9999.
* Percentiles: the row's numeric values gathered and partly sorted (``groupArray(v)``, held by
  the engine, within its per-query memory limit, never by Python; ``_percentile``), then linear
  interpolation between closest ranks with SQLite's integer rank arithmetic: lo = ((n - 1) * p) div 100, remainder r,
  x[lo] + (x[lo + 1] - x[lo]) * r / 100. (``quantileExactInclusive`` is the same method but
  computes the rank in floating point.)
"""

from __future__ import annotations

from typing import Any

import orjson

from tracehive.query.chart import Aggregation, Bucket, ChartQuery, ChartRow, too_many_buckets, too_many_rows
from tracehive.query.fields import FieldRef
from tracehive.storage.clickhouse.compile import COLUMNS, Operand, Params, let, where_clause
from tracehive.storage.clickhouse.executor import Executor
from tracehive.storage.clickhouse.rows import number
from tracehive.storage.clickhouse.schema import NULLABLE_COLUMNS
from tracehive.storage.clickhouse.settled import SettledDays, Source, bounds, read

_QUOTE_INF = "output_format_json_quote_denormals = 1"
_SIMPLE = {
    Aggregation.AVG: "avg(v)",
    Aggregation.COUNT: "count(v)",
    Aggregation.SUM: "sum(v)",
    Aggregation.MIN: "min(v)",
    Aggregation.MAX: "max(v)",
}


def _json_kind(r: str) -> str:
    """SQLite's json_type of the value with raw text ``r`` (NULL: none or null)."""
    return (
        f"multiIf({r} IN ('', 'null'), NULL, startsWith({r}, '\"'), 'text', {r} = 'true', 'true', "
        f"{r} = 'false', 'false', startsWith({r}, '{{'), 'object', startsWith({r}, '['), 'array', "
        f"match({r}, '^-?[0-9]+$') AND isNotNull(toInt64OrNull({r})), 'integer', 'real')"
    )


def _metric(ref: FieldRef, params: Params) -> str:
    column, kind = COLUMNS[ref.column]
    if kind == "number" and not ref.path:
        return column  # never NULL (schema.py)
    if kind != "json" or not ref.path:
        raise ValueError(f"{ref} is not a numeric field")
    operand = Operand.of(ref)
    typed = operand.typed()
    if typed is not None:  # the number stored at insert (the same value)
        return typed[1]
    r = operand.raw(params)
    return let(f"coalesce({r}, '')", "if(match(r, '^-?[0-9]'), toFloat64OrNull(r), NULL)", "r")


def _group(ref: FieldRef | None, params: Params) -> tuple[str, str, str]:
    """SQL of (kind, sort number, text) of an event's group value. A column that is never NULL is
    grouped by as its plain type: the engine then keeps no null maps (a 7-day hourly p95 chart by
    type at 10^7 events: 0.93x the time, BENCHMARKS.md)."""
    if ref is None:
        return "CAST(NULL AS Nullable(String))", "CAST(NULL AS Nullable(Float64))", "CAST(NULL AS Nullable(String))"
    column, kind = COLUMNS[ref.column]
    if kind == "text" and column in NULLABLE_COLUMNS:
        return f"if(isNull({column}), NULL, 'text')", "CAST(NULL AS Nullable(Float64))", f"toNullable({column})"
    if kind == "text":
        return "'text'", "CAST(NULL AS Nullable(Float64))", column
    if kind == "number":
        return "'real'", column, f"toString({column})"
    r = f"coalesce({Operand.of(ref).raw(params)}, '')"
    gt = _json_kind("r")
    gn = ("multiIf(r = 'true', 1., r = 'false', 0., match(r, '^-?[0-9]'), toFloat64OrNull(r), "
          "CAST(NULL AS Nullable(Float64)))")
    gs = "multiIf(r IN ('', 'null'), NULL, startsWith(r, '\"'), JSONExtractString(r), r)"
    return let(r, gt, "r"), let(r, gn, "r"), let(r, gs, "r")


def _bucket(bucket: Bucket, params: Params) -> str:
    """SQL of the bucket start from ``t`` (floor of start_time, an Int64)."""
    width = bucket.fixed_ms
    if width is None:
        # Day of the month from days since the epoch (civil-from-days), then back to its 1st.
        days = "intDiv(t - if(t < 0, 86399999, 0), 86400000)"
        z = f"({days} + 719468)"
        era = f"intDiv({z} - if({z} < 0, 146096, 0), 146097)"
        doe = f"({z} - {era} * 146097)"
        yoe = f"intDiv({doe} - intDiv({doe}, 1460) + intDiv({doe}, 36524) - intDiv({doe}, 146096), 365)"
        doy = f"({doe} - (365 * {yoe} + intDiv({yoe}, 4) - intDiv({yoe}, 100)))"
        mp = f"intDiv(5 * {doy} + 2, 153)"
        mday = f"({doy} - intDiv(153 * {mp} + 2, 5) + 1)"
        return f"({days} - {mday} + 1) * 86400000"
    o, w = params.add(bucket.origin_ms, "Int64"), params.add(width, "Int64")
    return f"(t - (((t - {o}) % {w}) + {w}) % {w})"


def _percentile(percent: int, params: Params) -> str:
    """SQL of the ``percent``-th percentile (50 to 100, the pNN aggregations) of a group's values
    ``v`` (SQLite's rule, module text). Only the values at ranks lo and lo + 1 are needed, so only
    the top n - lo values are sorted, descending (p95: a twentieth of them; measured at 10^7 events
    the chart's engine time went from 356 to 256 ms). The same two values come out, so the result
    is the same. d[k] is the k-th largest: x[lo] = d[n - lo], x[lo + 1] = d[n - lo - 1]."""
    assert 50 <= percent <= 100, percent
    p = params.add(percent, "Int64")
    lo = "intDiv(h, 100)"
    part = f"arrayPartialReverseSort(toUInt64(length(a) - {lo}), a)"
    low, high = f"d[length(a) - {lo}]", f"d[length(a) - {lo} - 1]"
    # (When h % 100 = 0 the second value is not used; an index past the array reads a default.)
    interpolate = f"if(h % 100 = 0, {low}, {low} + ({high} - {low}) * (h % 100) / 100)"
    body = f"arrayMap(h -> arrayMap(d -> {interpolate}, [{part}])[1], [(length(a) - 1) * {p}])[1]"
    return let("groupArray(v)", f"if(empty(a), NULL, {body})", "a")


def compile_chart(project_id: str, query: ChartQuery, settings: str = "",
                  source: Source | None = None) -> tuple[str, dict[str, Any]]:
    source = source or Source.final()
    params = Params()
    metric = _metric(query.metric, params)
    gt, gn, gs = _group(query.group_by, params)
    where = where_clause(project_id, query.date_range, query.conditions, params)
    percent = query.aggregation.percentile
    if percent is None:
        value = _SIMPLE[query.aggregation]
    else:
        value = _percentile(percent, params)
    rows = (
        f"SELECT toInt64(floor(start_time)) AS t, {gt} AS gt, {gn} AS gn, {gs} AS gs, {metric} AS v "
        f"FROM {source.table} WHERE {where}{source.live}"
    )
    bucket = _bucket(query.bucket, params)
    limit = params.add(query.max_rows + 1, "UInt64")
    # A sum past the double range is inf (as SQLite's sum of REALs): JSON output writes it as
    # null unless non-finite values are quoted.
    settings = f"{settings}, {_QUOTE_INF}" if settings else f" SETTINGS {_QUOTE_INF}"
    # SQLite's order of mixed values: NULL, numbers (booleans are 1/0), text and JSON text.
    sql = (
        f"SELECT b, gt, any(gs), count(), count(v), {value} FROM "
        f"(SELECT {bucket} AS b, gt, gn, gs, v FROM ({rows})) "
        "GROUP BY b, gt, gs "
        "ORDER BY b, multiIf(gt IS NULL, 0, isNotNull(any(gn)), 1, 2), any(gn), any(gs), gt "
        f"LIMIT {limit}{settings}"
    )
    return sql, params.values


def _group_value(kind: str | None, text: Any, ref: FieldRef | None) -> Any:
    if kind is None or text is None:
        return None
    if ref is not None and COLUMNS[ref.column][1] == "number":
        return number(float(text))
    if kind == "true":
        return True
    if kind == "false":
        return False
    if kind == "integer":
        return int(text)
    if kind == "real":
        return float(text)
    if kind in ("object", "array"):
        return orjson.loads(text)
    return text


async def run_chart(ex: Executor, project_id: str, query: ChartQuery, settings: str = "",
                    days: SettledDays | None = None) -> list[ChartRow]:
    lo, hi = bounds(query.date_range)

    async def chart(source: Source) -> list[tuple[Any, ...]]:
        sql, params = compile_chart(project_id, query, settings, source)
        return await ex.query(sql, params)

    rows = await read(days, ex, lo, hi, chart, mixed=True)
    buckets = 0
    last: Any = None
    out: list[ChartRow] = []
    for b, gt, gs, total, _numeric, value in rows:
        if b != last:
            buckets, last = buckets + 1, b
            if buckets > query.max_buckets:
                raise too_many_buckets(f"more than {query.max_buckets:,}", query)
        if len(out) >= query.max_rows:
            raise too_many_rows(query)
        if isinstance(value, str):  # "inf", "-inf", "nan" (quoted)
            value = float(value)
        value = int(value) if query.aggregation is Aggregation.COUNT else (None if value is None else number(value))
        out.append(ChartRow(bucket=int(b), group=_group_value(gt, gs, query.group_by), value=value, count=int(total)))
    return out
