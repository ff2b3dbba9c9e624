"""Compiling a backend-neutral ``EventQuery`` (``tracehive.query.filters``) to ClickHouse SQL.

The semantics are SQLite's (``storage/sqlite/compile.py`` is the reference, as for PostgreSQL):
a JSON number is SQLite's INTEGER when written as an integer within int64, else a REAL (a
double); a string filter compares SQLite's text form of the value (``CAST(... AS TEXT)``: reals
as ``%!.15g``, true/false for booleans, objects and arrays as JSON text); datetimes in JSON strings
are read as SQLite's ``julianday()`` reads ISO dates.

How JSON values are seen: ``JSONExtractRaw(column, path...)`` gives the raw text of the value at a
path ('' where there is none); every test below works on that text, so the path is one
expression. ClickHouse's path arguments differ from SQLite's ``$`` paths in one way: an integer
indexes an object's members too (1-based), where ``$[0]`` only indexes arrays; so each integer
segment is guarded by the type of its parent being ``Array``.

Known difference: ``JSONExtractRaw`` re-serialises a nested object or array (``1.0`` becomes
``1``, escapes are normalised), so a string filter on a *nested* object's JSON text may differ from
SQLite's where it holds such numbers; whole JSON columns compare the stored text itself.

Rules that keep user input out of the SQL text:
- every value and every JSON path segment is a bound ``{name:Type}`` parameter (``Params``), its
  text made by the executor's ``render_param``;
- the only identifiers in the SQL come from ``COLUMNS`` below, looked up by the parsed field's
  column name (a ``KeyError`` for anything else), never from the request.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from tracehive.query.event_query import Condition, DateRange, Operator, ValueType
from tracehive.query.fields import FieldRef
from tracehive.query.values import parse_number
from tracehive.storage.clickhouse.schema import HOT_PATHS, NUMERIC_HOT_COLUMNS, is_int_sql, is_number_sql

# Parsed column name -> (SQL column, kind). The SQL text is ours; the keys only select it.
COLUMNS: dict[str, tuple[str, str]] = {
    "event_id": ("event_id", "text"),
    "session_id": ("session_id", "text"),
    "parent_id": ("parent_id", "text"),
    "event_type": ("event_type", "text"),
    "event_name": ("event_name", "text"),
    "source": ("source", "text"),
    "error": ("error", "text"),
    "start_time": ("start_time", "number"),
    "end_time": ("end_time", "number"),
    "duration": ("duration", "number"),
    "config": ("config", "json"),
    "inputs": ("inputs", "json"),
    "outputs": ("outputs", "json"),
    "metadata": ("metadata", "json"),
    "feedback": ("feedback", "json"),
    "metrics": ("metrics", "json"),
    "user_properties": ("user_properties", "json"),
    "children_ids": ("children_ids", "json"),
}

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


@dataclass
class Params:
    """Bound parameters of one statement: ``add`` returns the ``{name:Type}`` placeholder."""

    values: dict[str, Any] = field(default_factory=dict)

    def add(self, value: Any, ch_type: str) -> str:
        name = f"q{len(self.values)}"
        self.values[name] = value
        return f"{{{name}:{ch_type}}}"


# SQL pieces over a raw JSON text expression ------------------------------------------------------
# Each takes SQL text (ours) and returns SQL text; ``let`` binds an expression once per row.


def let(value: str, body: str, name: str = "v") -> str:
    """``body`` with ``name`` bound to ``value`` (evaluated once): a one-element arrayMap."""
    return f"arrayMap({name} -> {body}, [{value}])[1]"


def real_text(x: str) -> str:
    """SQLite's ``CAST(real AS TEXT)`` (``%!.15g``: ``.0`` kept, two-digit exponent) of a Float64."""
    g = f"printf('%.15g', {x})"
    fixed = let(g, "if(position(g, 'e') > 0, if(position(g, '.') > 0, g, replaceOne(g, 'e', '.0e')), "
                   "if(position(g, '.') > 0, g, concat(g, '.0')))", "g")
    return f"multiIf(isNaN({x}), NULL, {x} = 0, '0.0', isInfinite({x}), if({x} > 0, 'Inf', '-Inf'), {fixed})"


def text_of_raw(r: str) -> str:
    """SQLite's text form of the JSON value whose raw text is ``r`` (NULL: none or null)."""
    return (
        f"multiIf({r} IN ('', 'null'), NULL, startsWith({r}, '\"'), JSONExtractString({r}), "
        f"{r} IN ('true', 'false'), {r}, {is_int_sql(r)}, {r}, {is_number_sql(r)}, "
        f"{real_text(f'toFloat64OrZero({r})')}, {r})"
    )


def number_text(c: str) -> str:
    """SQLite's text of a NUMERIC column value held as Float64 (integral in int64: INTEGER)."""
    return (
        f"if({c} = floor({c}) AND {c} >= -9223372036854775808. AND {c} < 9223372036854775808., "
        f"toString(toInt64({c})), {real_text(c)})"
    )


# Exact number comparisons ----------------------------------------------------------------------

Bound = int | float | None


def _neighbours(value: int) -> tuple[float, float]:
    """The doubles just below and above an integer that no double equals."""
    near = float(value)
    if int(near) < value:
        return near, math.nextafter(near, math.inf)
    return math.nextafter(near, -math.inf), near


def int_bounds(sign: str, value: float) -> tuple[Bound, Bound] | None:
    """The integers x with ``x <sign> value`` as inclusive (low, high); None when there are none."""
    if isinstance(value, int) or value.is_integer():
        w = int(value)
        low, high = {"=": (w, w), ">": (w + 1, None), "<": (None, w - 1), ">=": (w, None), "<=": (None, w)}[sign]
    else:
        f, c = math.floor(value), math.ceil(value)
        if sign == "=":
            return None
        low, high = {">": (c, None), ">=": (c, None), "<": (None, f), "<=": (None, f)}[sign]
    return low, high


def real_bounds(sign: str, value: float) -> tuple[Bound, Bound] | None:
    """The doubles x with ``x <sign> value`` (compared exactly) as inclusive (low, high)."""
    if isinstance(value, float) or float(value) == value:
        v = float(value)
        return {"=": (v, v), ">": (math.nextafter(v, math.inf), None), "<": (None, math.nextafter(v, -math.inf)),
                ">=": (v, None), "<=": (None, v)}[sign]  # fmt: skip
    below, above = _neighbours(int(value))
    if sign == "=":
        return None
    return {">": (above, None), ">=": (above, None), "<": (None, below), "<=": (None, below)}[sign]


def _range_sql(expr: str, bounds: tuple[Bound, Bound] | None, ch_type: str, params: Params) -> str:
    if bounds is None:
        return "0"
    low, high = bounds
    if ch_type == "Int64":  # bounds past int64 clamp (or empty the range)
        if (low is not None and low > INT64_MAX) or (high is not None and high < INT64_MIN):
            return "0"
        low = None if low is None or low <= INT64_MIN else low
        high = None if high is None or high >= INT64_MAX else high
    parts = []
    if low is not None and high is not None and low > high:
        return "0"
    if low is not None:
        parts.append(f"{expr} >= {params.add(low, ch_type)}")
    if high is not None:
        parts.append(f"{expr} <= {params.add(high, ch_type)}")
    return "(" + " AND ".join(parts) + ")" if parts else "1"


def double_column(column: str, sign: str, value: float, params: Params) -> str:
    """``column <sign> value`` on a Float64 column, exact."""
    return _range_sql(column, real_bounds(sign, value), "Float64", params)


def raw_number_in(r: str, sign: str, value: float, params: Params) -> str:
    """The JSON value (raw text ``r``) is a number and ``<sign> value``, as SQLite compares it."""
    ints = _range_sql(f"toInt64OrZero({r})", int_bounds(sign, value), "Int64", params)
    reals = _range_sql(f"toFloat64OrZero({r})", real_bounds(sign, value), "Float64", params)
    return f"if({is_int_sql(r)}, {ints}, {is_number_sql(r)} AND {reals})"


# Datetimes in JSON strings ----------------------------------------------------------------------

# SQLite's julianday() forms, in its order: YYYY-MM-DD, then spaces or 'T's, then nothing or a time
# HH:MM[:SS[.F+]] with an optional zone (Z or +-HH:MM); a time alone (on 2000-01-01); a number (a
# julian day number in [0, 5373484.5)). Day 1-31 in any month (normalised), hour up to 24. Not
# read: 'now' (the clock; kept out of the differential tests for every backend).
_DATE = r"^(-?)([0-9]{4})-([0-9]{2})-([0-9]{2})[ \t\n\v\f\rT]*(.*)$"
_TIME = (r"^([0-9]{2}):([0-9]{2})(?::([0-9]{2})(\.[0-9]+)?)?[ \t\n\v\f\r]*(?:([Zz])|([+-])([0-9]{2}):([0-9]{2}))?"
         r"[ \t\n\v\f\r]*$")
_JULIAN_NUMBER = r"^[ \t\n\v\f\r]*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?[ \t\n\v\f\r]*$"
_SPACE = r"^[ \t\n\v\f\r]+|[ \t\n\v\f\r]+$"
_JD_2000_MS = 211_813_444_800_000  # julian day of 2000-01-01 00:00 in ms


def _time_ms(t: str) -> str:
    """ms into the day of the time groups ``t`` ([H, M, S, .F, Z, sign, zh, zm]), zone applied;
    NULL when out of range."""
    secs = f"(toInt64OrZero({t}[3]) + toFloat64OrZero(concat('0', {t}[4])))"
    zone = f"if({t}[6] = '', 0, (toInt64OrZero({t}[7]) * 60 + toInt64OrZero({t}[8])) * if({t}[6] = '-', -1, 1))"
    bad = (f"toInt64OrZero({t}[1]) > 24 OR toInt64OrZero({t}[2]) > 59 OR toInt64OrZero({t}[3]) > 59 "
           f"OR toInt64OrZero({t}[7]) > 14 OR toInt64OrZero({t}[8]) > 59")
    return (f"if({bad}, NULL, toInt64OrZero({t}[1]) * 3600000 + toInt64OrZero({t}[2]) * 60000 "
            f"+ toInt64(floor({secs} * 1000.0 + 0.5)) - {zone} * 60000)")


def julian_ms(s: str, params: Params) -> str:
    """Unix ms (Float64) of the text ``s`` as SQLite's julianday() reads it; NULL where it is NULL."""
    date_re, time_re = params.add(_DATE, "String"), params.add(_TIME, "String")
    number_re, space_re = params.add(_JULIAN_NUMBER, "String"), params.add(_SPACE, "String")
    # d: [sign, Y, M, D, rest]
    y0 = "if(d[1] = '-', -toInt64OrZero(d[2]), toInt64OrZero(d[2]))"
    mo0 = "toInt64OrZero(d[3])"
    y = f"if({mo0} <= 2, {y0} - 1, {y0})"
    mo = f"if({mo0} <= 2, {mo0} + 12, {mo0})"
    a = f"intDiv({y}, 100)"  # truncates towards zero, as C does
    b = f"(2 - {a} + intDiv({a}, 4))"
    day_ms = (f"(intDiv(36525 * ({y} + 4716), 100) + intDiv(306001 * ({mo} + 1), 10000) + toInt64OrZero(d[4]) + {b})"
              " * 86400000 - 131716800000")
    with_time = let(f"extractGroups(d[5], {time_re})", f"if(empty(t), NULL, {day_ms} + {_time_ms('t')})", "t")
    dated = (f"if({mo0} < 1 OR {mo0} > 12 OR toInt64OrZero(d[4]) < 1 OR toInt64OrZero(d[4]) > 31, NULL, "
             f"if(d[5] = '', {day_ms}, {with_time}))")
    time_only = let(f"extractGroups({s}, {time_re})", f"if(empty(t), NULL, {_JD_2000_MS} + {_time_ms('t')})", "t")
    # A julian day number: spaces and a leading '+' dropped, a leading '.' given its '0'.
    plus, dot = params.add(r"^\+", "String"), params.add(r"^(-?)\.", "String")
    trimmed = f"replaceRegexpAll({s}, {space_re}, '')"
    number = let(f"toFloat64OrNull(replaceRegexpOne(replaceRegexpOne({trimmed}, {plus}, ''), {dot}, '\\\\10.'))",
                 "if(isNull(n) OR n < 0 OR n >= 5373484.5, NULL, toInt64(floor(n * 86400000.0 + 0.5)))", "n")
    undated = f"if(empty(extractGroups({s}, {time_re})), if(match({s}, {number_re}), {number}, NULL), {time_only})"
    ijd = let(f"extractGroups({s}, {date_re})", f"if(empty(d), {undated}, {dated})", "d")
    return let(ijd, "if(j < 0 OR j > 464269060799999, NULL, toFloat64(j - 210866760000000))", "j")


# Operands --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operand:
    column: str
    kind: str  # text | number | json
    path: tuple[str | int, ...] = ()

    @classmethod
    def of(cls, ref: FieldRef) -> Operand:
        column, kind = COLUMNS[ref.column]
        if kind != "json" and ref.path:
            raise ValueError(f"{ref.column} has no JSON path")
        return cls(column, kind, ref.path if kind == "json" else ())

    def raw(self, params: Params) -> str:
        """Raw JSON text of the value at the path; '' where there is none (NULL: outputs NULL)."""
        if not self.path:
            return self.column
        if len(self.path) == 1 and (self.column, self.path[0]) in HOT_PATHS:
            # The same text, extracted once at insert (schema.HOT_PATHS).
            return HOT_PATHS[(self.column, self.path[0])]  # type: ignore[index]
        args: list[str] = []
        guards: list[str] = []
        for segment in self.path:
            if isinstance(segment, int):
                # An integer indexes arrays only (SQLite's $[n]); ClickHouse indexes from 1.
                prefix = "".join(f", {a}" for a in args)
                guards.append(f"JSONType({self.column}{prefix}) = 'Array'")
                args.append(params.add(segment + 1, "Int64"))
            else:
                args.append(params.add(segment, "String"))
        extract = f"JSONExtractRaw({self.column}, {', '.join(args)})"
        return f"if({' AND '.join(guards)}, {extract}, '')" if guards else extract

    def typed(self) -> tuple[str, str] | None:
        """The typed columns (INTEGER, number) holding the path's number, when it has them."""
        if len(self.path) == 1 and (self.column, self.path[0]) in HOT_PATHS:
            hot = HOT_PATHS[(self.column, self.path[0])]  # type: ignore[index]
            if hot in NUMERIC_HOT_COLUMNS:
                return f"{hot}_i", f"{hot}_f"
        return None

    def text(self, params: Params) -> str:
        if self.kind == "text":
            return self.column
        if self.kind == "number":
            return number_text(self.column)
        return text_of_raw(self.raw(params))


# Conditions ------------------------------------------------------------------------------------


def _not(sql: str) -> str:
    """Exact complement of a condition that may be NULL (missing fields match the negation)."""
    return f"NOT coalesce(({sql}), 0)"


def _exists(op: Operand, params: Params) -> str:
    if op.kind == "json":
        return f"coalesce({op.raw(params)}, '') NOT IN ('', 'null')"
    return f"isNotNull({op.column})"


def _contains(op: Operand, needle: str, params: Params) -> str:
    n = params.add(needle, "String")
    if op.kind != "json":
        return f"position({op.text(params)}, {n}) > 0"
    # A missing value or a null element has no text: it contains nothing, not even ''.
    each = text_of_raw("x")
    body = (f"if(startsWith(r, '['), arrayExists(x -> coalesce(position({each}, {n}) > 0, 0), "
            f"JSONExtractArrayRaw(r)), position({text_of_raw('r')}, {n}) > 0)")
    return let(f"coalesce({op.raw(params)}, '')", body, "r")


def _string_is(op: Operand, value: str, params: Params) -> str:
    s = params.add(value, "String")
    number = parse_number(value) if op.kind == "json" else None
    if op.kind == "json" and op.path and value[:1] in ("{", "["):  # (a whole column is its stored text)
        # An object or array is compared as text, as SQLite does, but ClickHouse writes the
        # numbers of one it extracts its own way (1.0 as 1, -3.710605435811733e+16 as
        # -37106054358117330) where SQLite returns the stored text. So a stored object or array
        # matches when it is the value once both are written ClickHouse's way and the value's
        # text is found as it is in the stored JSON (the one difference left: [1.0] matches a
        # stored [1] when "[1.0]" is elsewhere in the same column); anything else as text.
        container = "(startsWith(r, '{') OR startsWith(r, '['))"
        body = (f"if({container}, r = JSONExtractRaw({s}) AND position({op.column}, {s}) > 0, "
                f"{text_of_raw('r')} = {s})")
        return let(f"coalesce({op.raw(params)}, '')", body, "r")
    if number is None:
        return f"{op.text(params)} = {s}"
    # "5" also matches the numbers 5 and 5.0
    return let(f"coalesce({op.raw(params)}, '')", f"{text_of_raw('r')} = {s} OR {raw_number_in('r', '=', number, params)}", "r")


_SIGNS = {Operator.IS: "=", Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}


def _numeric(op: Operand, sign: str, value: float, params: Params, *, datetime: bool = False) -> str:
    if op.kind == "number":
        return double_column(op.column, sign, value, params)
    if op.kind != "json":
        raise ValueError("string columns hold no numbers")
    typed = op.typed()
    if typed is not None and not datetime:  # the same test on the numbers stored at insert
        integer, number = typed
        ints = _range_sql(integer, int_bounds(sign, value), "Int64", params)
        reals = _range_sql(number, real_bounds(sign, value), "Float64", params)
        return f"if(isNotNull({integer}), {ints}, isNotNull({number}) AND {reals})"
    body = raw_number_in("r", sign, value, params)
    if datetime:  # strings are ISO datetimes, read as SQLite's julianday() (a REAL in ms)
        ms = julian_ms("JSONExtractString(r)", params)
        body = f"if(startsWith(r, '\"'), coalesce({_range_sql(ms, real_bounds(sign, value), 'Float64', params)}, 0), {body})"
    return let(f"coalesce({op.raw(params)}, '')", body, "r")


def condition_sql(cond: Condition, params: Params) -> str:
    op = Operand.of(cond.field)
    operator, vtype, value = cond.operator, cond.type, cond.value
    if operator is Operator.EXISTS:
        return _exists(op, params)
    if operator is Operator.NOT_EXISTS:
        return _not(_exists(op, params))
    negate = operator in (Operator.IS_NOT, Operator.NOT_CONTAINS)
    positive = {Operator.IS_NOT: Operator.IS, Operator.NOT_CONTAINS: Operator.CONTAINS}.get(operator, operator)

    if vtype is ValueType.STRING:
        if positive is Operator.CONTAINS:
            sql = _contains(op, str(value), params)
        elif positive is Operator.IS:
            sql = _string_is(op, str(value), params)
        else:
            raise ValueError(f"operator {operator.value} does not apply to strings")
    elif vtype is ValueType.BOOLEAN:
        if positive is not Operator.IS or op.kind != "json":
            raise ValueError("boolean filters only test JSON values with is / is not")
        sql = f"{op.raw(params)} = {params.add('true' if value else 'false', 'String')}"
    elif vtype in (ValueType.NUMBER, ValueType.DATETIME):
        if positive not in _SIGNS:
            raise ValueError(f"operator {operator.value} does not apply to {vtype.value}s")
        assert isinstance(value, (int, float)) and not isinstance(value, bool)
        sql = _numeric(op, _SIGNS[positive], value, params, datetime=vtype is ValueType.DATETIME)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown type {vtype}")
    return _not(sql) if negate else sql


def where_clause(project_id: str, date_range: DateRange | None, conditions: Iterable[Condition],
                 params: Params) -> str:
    """The WHERE of a query over ``events FINAL`` (project, date range on start_time, every
    condition ANDed); shared by every statement compiled from a query. FINAL resolves versions
    and hides tombstones (``is_deleted``) before this applies."""
    where = [f"project_id = {params.add(project_id, 'String')}"]
    if date_range is not None:
        if date_range.start is not None:
            where.append(double_column("start_time", ">=", date_range.start, params))
        if date_range.end is not None:
            where.append(double_column("start_time", "<=", date_range.end, params))
    for cond in conditions:
        where.append(f"({condition_sql(cond, params)})")
    return " AND ".join(where)
