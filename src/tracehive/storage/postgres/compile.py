"""Compiling a backend-neutral ``EventQuery`` (``tracehive.query.filters``) to PostgreSQL SQL.

The semantics are those of ``tracehive.query.filters`` as the SQLite backend implements them
(``storage/sqlite/compile.py`` is the reference): JSON values are seen through SQLite's types.
A JSON number is SQLite's INTEGER when written as an integer within int64, else a REAL (a
double); a string filter compares SQLite's text form of the value; datetimes in JSON strings are
read as SQLite's ``julianday()`` reads them. The SQL functions of migrations 2-3 (``th_text``,
``th_contains``, ``th_is``, ``th_num_in``, ``th_ms_in``) implement those rules and never raise on
a stored value; each takes the JSON value once, so the path is extracted once per row.

Rules that keep user input out of the SQL text:
- every value and every JSON path segment is a bound parameter (``%s``), except the paths of
  ``HOT_PATHS``: for those the SQL carries *our* constant, written exactly as in the expression
  indexes of migration 1, which the planner only matches against the same constant;
- the only identifiers in the SQL come from ``COLUMNS`` below, looked up by the parsed field's
  column name (a ``KeyError`` for anything else), never from the request.

Paths are chains of ``->`` with typed parameters (``-> %s::text`` for a key, ``-> %s::int`` for an
index), not ``#>`` with a text[]: ``#>`` reads ``{"0": 1}`` at the path ``0`` and ``[1, 2]`` at
``-1``, where SQLite's ``$[0]`` only indexes arrays and ``$."-1"`` only names keys.

Exact numbers: SQLite compares an INTEGER and a REAL exactly (not after rounding one to the
other), so a filter value is turned into two ranges, one over integers and one over doubles,
that select exactly the numbers the comparison selects (``number_ranges``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracehive.query.event_query import Condition, DateRange, EventQuery, Operator, ValueType
from tracehive.query.fields import FieldRef
from tracehive.query.values import only_a_string_equals, parse_number
from tracehive.storage.postgres.rows import EVENT_COLUMNS, text as stored_text

Sql = tuple[str, list[Any]]

# Parsed column name -> (SQL column, kind). The SQL text is ours; the keys only select it.
COLUMNS: dict[str, tuple[str, str]] = {
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

# The JSON paths with an expression index (migration 1) on ``(<column> ->> '<key>')``: for these
# the SQL carries the key as a literal, our constant from this table.
HOT_PATHS: dict[tuple[str, tuple[str | int, ...]], str] = {
    ("config", ("model",)): "model",
    ("user_properties", ("user_id",)): "user_id",
}
assert all(key.isidentifier() for key in HOT_PATHS.values())

# Byte order, as SQLite's BINARY collation (the database's default collation may be a locale's).
C = 'COLLATE "C"'

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def prefixed(columns: str, alias: str = "e") -> str:
    """A select list of ``rows`` (``EVENT_COLUMNS``) with each column qualified by ``alias``."""
    return ", ".join(f"{alias}.{c.strip()}" for c in columns.split(","))


SELECT_COLUMNS = prefixed(EVENT_COLUMNS)


# Exact number ranges ---------------------------------------------------------------------------

Bound = int | float | None
# (integer low, integer high, double low, double high); None = unbounded. An empty range is
# given as low > high.
Ranges = tuple[Bound, Bound, Bound, Bound]
_EMPTY_INT = (1, 0)
_EMPTY_REAL = (1.0, 0.0)


def _real_neighbours(value: int) -> tuple[float, float]:
    """The doubles just below and above an integer that no double equals."""
    near = float(value)
    if int(near) < value:
        return near, math.nextafter(near, math.inf)
    return math.nextafter(near, -math.inf), near


def number_ranges(sign: str, value: int | float) -> Ranges:
    """The numbers ``x`` with ``x <sign> value`` (sign ``=``, ``>``, ``<``, ``>=``, ``<=``), as an
    integer range (for SQLite INTEGERs) and a double range (for REALs), both exact."""
    # Integers: a non-integral value moves the bound to the next integer inward.
    if isinstance(value, int) or value.is_integer():
        whole = int(value)
        ints: tuple[Bound, Bound] = {
            "=": (whole, whole), ">": (whole + 1, None), "<": (None, whole - 1),
            ">=": (whole, None), "<=": (None, whole),
        }[sign]  # fmt: skip
    else:
        low, high = math.floor(value), math.ceil(value)
        ints = {"=": _EMPTY_INT, ">": (high, None), "<": (None, low), ">=": (high, None), "<=": (None, low)}[sign]
    # Doubles: strict signs become the next double; an integer no double equals has two neighbours.
    if isinstance(value, float) or float(value) == value:
        exact = float(value)
        reals: tuple[Bound, Bound] = {
            "=": (exact, exact), ">": (math.nextafter(exact, math.inf), None),
            "<": (None, math.nextafter(exact, -math.inf)), ">=": (exact, None), "<=": (None, exact),
        }[sign]  # fmt: skip
    else:
        below, above = _real_neighbours(value)
        reals = {"=": _EMPTY_REAL, ">": (above, None), "<": (None, below), ">=": (above, None), "<=": (None, below)}[sign]
    return (*ints, *reals)


def _double_column(column: str, sign: str, value: int | float) -> Sql:
    """``column <sign> value`` on a double precision column, exact, in a form an index serves."""
    _, _, low, high = number_ranges(sign, value)
    if low is not None and high is not None:
        if low > high:
            return "false", []
        if low == high:
            return f"{column} = %s::float8", [low]
        return f"{column} BETWEEN %s::float8 AND %s::float8", [low, high]
    if low is not None:
        return f"{column} >= %s::float8", [low]
    return f"{column} <= %s::float8", [high]


# Operands --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Operand:
    column: str  # SQL text from COLUMNS
    kind: str  # text | number | json
    path: tuple[str | int, ...] = ()
    hot: str | None = None  # the key of a HOT_PATHS path (our constant), else None

    @classmethod
    def of(cls, ref: FieldRef) -> Operand:
        column, kind = COLUMNS[ref.column]
        if kind != "json" and ref.path:
            raise ValueError(f"{ref.column} has no JSON path")
        if kind != "json":
            return cls(column, kind)
        return cls(column, kind, ref.path, HOT_PATHS.get((ref.column, ref.path)))

    def _steps(self, path: tuple[str | int, ...]) -> Sql:
        sql, params = "", []
        for segment in path:
            if isinstance(segment, int):
                sql += " -> %s::int"
                params.append(int(segment))
            else:
                sql += " -> %s::text"
                params.append(segment)
        return sql, params

    def json(self) -> Sql:
        """The JSON value at the path (SQL NULL where there is none)."""
        if self.hot is not None:
            return f"({self.column} -> '{self.hot}')", []
        steps, params = self._steps(self.path)
        return (f"({self.column}{steps})" if steps else self.column), params

    def string(self) -> Sql:
        """The value at the path when it is a JSON string (its text), else its JSON text or NULL:
        ``->>``, which is what the hot paths' indexes hold."""
        if self.hot is not None:
            return f"({self.column} ->> '{self.hot}')", []
        if not self.path:
            return f"({self.column} #>> '{{}}')", []
        steps, params = self._steps(self.path[:-1])
        last = self.path[-1]
        cast = "int" if isinstance(last, int) else "text"
        return f"({self.column}{steps} ->> %s::{cast})", [*params, last]

    def text(self) -> Sql:
        """SQLite's text form of the value (``CAST(... AS TEXT)``; true/false for booleans)."""
        if self.kind == "text":
            return self.column, []
        if self.kind == "number":
            c = self.column
            # SQLite's NUMERIC column holds an integral value within int64 as an INTEGER.
            return (
                f"(CASE WHEN {c} = trunc({c}) AND {c} >= -9223372036854775808::float8 "
                f"AND {c} < 9223372036854775808::float8 THEN {c}::bigint::text ELSE th_real_text({c}) END)",
                [],
            )
        value, params = self.json()
        return f"th_text({value})", params


# Conditions ------------------------------------------------------------------------------------


def _not(sql: Sql) -> Sql:
    """Exact complement of a condition that may be NULL (missing fields match the negation)."""
    return f"NOT coalesce(({sql[0]}), false)", sql[1]


def _exists(op: Operand) -> Sql:
    if op.kind == "json":
        value, params = op.json()
        return f"coalesce(json_typeof({value}), 'null') <> 'null'", params
    return f"{op.column} IS NOT NULL", []


def _contains(op: Operand, needle: str) -> Sql:
    if op.kind == "json":
        value, params = op.json()
        return f"th_contains({value}, %s::text)", [*params, needle]
    text, params = op.text()
    return f"strpos({text}, %s::text) > 0", [*params, needle]


def _numeric(op: Operand, sign: str, value: int | float, *, datetime: bool = False) -> Sql:
    """``value_at(op) <sign> value`` for numbers (and, with ``datetime``, strings as datetimes)."""
    if op.kind == "number":
        return _double_column(op.column, sign, value)
    if op.kind != "json":
        raise ValueError("string columns hold no numbers")
    json_sql, params = op.json()
    function = "th_ms_in" if datetime else "th_num_in"
    return (
        f"{function}({json_sql}, %s::numeric, %s::numeric, %s::float8, %s::float8)",
        [*params, *number_ranges(sign, value)],
    )


_SIGNS = {Operator.IS: "=", Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}


def condition_sql(cond: Condition) -> Sql:
    op = Operand.of(cond.field)
    operator, vtype, value = cond.operator, cond.type, cond.value
    if operator is Operator.EXISTS:
        return _exists(op)
    if operator is Operator.NOT_EXISTS:
        return _not(_exists(op))
    negate = operator in (Operator.IS_NOT, Operator.NOT_CONTAINS)
    positive = {Operator.IS_NOT: Operator.IS, Operator.NOT_CONTAINS: Operator.CONTAINS}.get(operator, operator)

    sql: Sql
    if vtype is ValueType.STRING:
        # Stored strings hold U+FFFD for U+0000 (rows.text): so does the value compared to them.
        value = stored_text(str(value))
        if positive is Operator.CONTAINS:
            sql = _contains(op, str(value))
        elif positive is Operator.IS and op.kind == "json" and only_a_string_equals(value):
            # Only a JSON string can have this text form: ``->>`` gives it (and, on a hot path,
            # is the very expression of the index).
            string, params = op.string()
            sql = f"{string} = %s::text", [*params, value]
        elif positive is Operator.IS:
            number = parse_number(value) if op.kind == "json" else None
            if number is not None:  # "5" also matches the numbers 5 and 5.0
                json_sql, params = op.json()
                sql = (f"th_is({json_sql}, %s::text, %s::numeric, %s::numeric, %s::float8, %s::float8)",
                       [*params, value, *number_ranges("=", number)])
            else:
                text, params = op.text()
                sql = f"{text} = %s::text", [*params, value]
        else:
            raise ValueError(f"operator {operator.value} does not apply to strings")
    elif vtype is ValueType.BOOLEAN:
        if positive is not Operator.IS or op.kind != "json":
            raise ValueError("boolean filters only test JSON values with is / is not")
        # The JSON text of a boolean is exactly true/false (a string's would be quoted).
        json_sql, params = op.json()
        sql = f"{json_sql}::text = %s::text", [*params, "true" if value else "false"]
    elif vtype is ValueType.NUMBER:
        if positive not in _SIGNS:
            raise ValueError(f"operator {operator.value} does not apply to numbers")
        assert isinstance(value, (int, float)) and not isinstance(value, bool)
        sql = _numeric(op, _SIGNS[positive], value)
    elif vtype is ValueType.DATETIME:
        if positive not in _SIGNS:
            raise ValueError(f"operator {operator.value} does not apply to datetimes")
        assert isinstance(value, (int, float)) and not isinstance(value, bool)
        sql = _numeric(op, _SIGNS[positive], value, datetime=True)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown type {vtype}")
    return _not(sql) if negate else sql


def where_clause(
    project_id: str, date_range: DateRange | None, conditions: Iterable[Condition]
) -> tuple[str, list[Any]]:
    """The WHERE of a query over ``events AS e`` (project, date range on start_time, every
    condition ANDed) and its parameters; shared by every statement compiled from a query."""
    where = ["e.project_id = %s"]
    params: list[Any] = [project_id]
    if date_range is not None:
        if date_range.start is not None:
            sql, more = _double_column("e.start_time", ">=", date_range.start)
            where.append(sql)
            params.extend(more)
        if date_range.end is not None:
            sql, more = _double_column("e.start_time", "<=", date_range.end)
            where.append(sql)
            params.extend(more)
    for cond in conditions:
        sql, cond_params = condition_sql(cond)
        where.append(f"({sql})")
        params.extend(cond_params)
    return " AND ".join(where), params


# Statements ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    select_sql: str
    select_params: list[Any]
    count_sql: str
    count_params: list[Any]


def compile_export(project_id: str, query: EventQuery) -> CompiledQuery:
    """SELECT of one page (``SELECT_COLUMNS``) and COUNT of all matches, confined to
    ``project_id``. Newest first; ``seq`` (insertion order, SQLite's rowid) breaks ties."""
    clause, params = where_clause(project_id, query.date_range, query.conditions)
    order = "" if query.ignore_order else " ORDER BY e.start_time DESC, e.seq DESC"
    return CompiledQuery(
        select_sql=f"SELECT {SELECT_COLUMNS} FROM events AS e WHERE {clause}{order} LIMIT %s OFFSET %s",
        select_params=[*params, query.limit, query.offset],
        count_sql=f"SELECT count(*) FROM events AS e WHERE {clause}",
        count_params=list(params),
    )


@dataclass(frozen=True, slots=True)
class CompiledStream:
    """Keyset pages over every match of a query, newest first, ties by event_id descending in
    byte order (the order depends on the data alone, as on SQLite). ``first`` starts the stream,
    ``after`` continues below the last row seen: pass its start_time as read (a float) and its
    event_id."""

    first_sql: str
    after_sql: str
    params: list[Any]

    def first(self, chunk: int) -> tuple[str, list[Any]]:
        return self.first_sql, [*self.params, chunk]

    def after(self, start_time: Any, event_id: str, chunk: int) -> tuple[str, list[Any]]:
        return self.after_sql, [*self.params, start_time, start_time, event_id, chunk]


def compile_stream(project_id: str, query: EventQuery, columns: str = SELECT_COLUMNS) -> CompiledStream:
    """For ``Store.iter_events``: the query's conditions and date range (not its page), ordered by
    (start_time, event_id) descending. ``columns``: the select list (a constant of ours), by
    default ``SELECT_COLUMNS``; it must not be user input."""
    clause, params = where_clause(project_id, query.date_range, query.conditions)
    select = f"SELECT {columns} FROM events AS e WHERE {clause}"
    order = f" ORDER BY e.start_time DESC, e.event_id {C} DESC LIMIT %s"
    return CompiledStream(
        first_sql=select + order,
        after_sql=select + f" AND e.start_time <= %s::float8 AND (e.start_time < %s::float8 OR e.event_id {C} < %s)"
        + order,
        params=params,
    )
