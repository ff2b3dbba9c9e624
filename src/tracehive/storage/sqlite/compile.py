"""Compiling a backend-neutral ``EventQuery`` (``tracehive.query.filters``) to SQLite SQL.

Rules that keep user input out of the SQL text:
- every value and every JSON path is a bound parameter (``json_extract(col, ?)``), except the
  paths of ``HOT_PATHS``: for those the SQL carries *our* constant from that table (never the
  request's text), written exactly as in the expression indexes of migration 3, because SQLite
  only uses an index on ``json_extract(metadata, '$."cost"')`` when the query has the same
  constant, not a parameter;
- the only identifiers in the SQL come from ``COLUMNS`` below, looked up by the parsed field's
  column name (a ``KeyError`` for anything else), never from the request;
- paths are rebuilt from validated segments (``[A-Za-z0-9_-]+`` or an array index), quoted.

The semantics implemented here are documented in ``tracehive.query.filters``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from tracehive.query.event_query import Condition, DateRange, EventQuery, Operator, ValueType
from tracehive.query.fields import FieldRef
from tracehive.query.values import only_a_string_equals, parse_number
from tracehive.storage.sqlite.project_keys import Owner
from tracehive.storage.sqlite.rows import event_columns

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

# Text form of a JSON value for string filters: booleans as true/false, numbers as written,
# objects/arrays as their JSON text.
_TEXT_OF_EACH = "CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' ELSE CAST(j.value AS TEXT) END"
_JULIAN_EPOCH = 2440587.5
_MS_PER_DAY = 86_400_000.0

Sql = tuple[str, list[Any]]


def json_path(path: tuple[str | int, ...]) -> str:
    """``$`` plus ``."key"`` / ``[n]`` per segment; segments were validated by the parser."""
    out = "$"
    for segment in path:
        if isinstance(segment, int):
            out += f"[{int(segment)}]"
        else:
            if '"' in segment or "\\" in segment:  # cannot happen after parsing; refuse anyway
                raise ValueError(f"invalid path segment {segment!r}")
            out += f'."{segment}"'
    return out


# The JSON paths users filter most, each with an expression index (migration 3) on
# ``json_extract(<column>, '<path>')``. For these, and only these, the compiled SQL carries the
# path as a literal: the constant below (never the request's text), so the planner can match
# the index. Keep this table and the migration's index expressions in step
# (``tests/storage/test_sqlite_compile.py`` checks the plans).
HOT_PATHS: dict[tuple[str, tuple[str | int, ...]], str] = {
    ("metadata", ("cost",)): '$."cost"',
    ("metadata", ("total_tokens",)): '$."total_tokens"',
    ("metadata", ("prompt_tokens",)): '$."prompt_tokens"',
    ("metadata", ("completion_tokens",)): '$."completion_tokens"',
    ("config", ("model",)): '$."model"',
    ("user_properties", ("user_id",)): '$."user_id"',
    ("feedback", ("rating",)): '$."rating"',
}
_HOT_LITERALS = {key: f"'{path}'" for key, path in HOT_PATHS.items()}
assert all("'" not in path for path in HOT_PATHS.values())


@dataclass(frozen=True, slots=True)
class _Operand:
    column: str  # SQL text from COLUMNS
    kind: str  # text | number | json
    path: str | None  # the JSON path of json columns
    literal: str | None = None  # SQL text of the path for HOT_PATHS (our constant), else None

    @classmethod
    def of(cls, ref: FieldRef) -> _Operand:
        column, kind = COLUMNS[ref.column]
        if kind != "json" and ref.path:
            raise ValueError(f"{ref.column} has no JSON path")
        if kind != "json":
            return cls(column, kind, None)
        return cls(column, kind, json_path(ref.path), _HOT_LITERALS.get((ref.column, ref.path)))

    def _p(self) -> tuple[str, list[Any]]:
        """The path's SQL text (``?`` or the hot path's constant) and its parameters, once."""
        if self.literal is not None:
            return self.literal, []
        return "?", [self.path]

    # Pieces, each (sql, params in placeholder order) ----------------------------------------

    def value(self) -> Sql:
        if self.kind == "json":
            p, params = self._p()
            return f"json_extract({self.column}, {p})", params
        return self.column, []

    def json_type(self) -> Sql:
        p, params = self._p()
        return f"json_type({self.column}, {p})", params

    def text(self) -> Sql:
        if self.kind == "text":
            return self.column, []
        if self.kind == "number":
            return f"CAST({self.column} AS TEXT)", []
        p, params = self._p()
        return (
            f"CASE json_type({self.column}, {p}) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({self.column}, {p}) AS TEXT) END",
            params * 2,
        )

    def numeric_guard(self) -> Sql:
        """True when the value is a number (JSON booleans are not)."""
        if self.kind == "number":
            return "1", []
        if self.kind == "text":
            return "0", []
        p, params = self._p()
        return f"json_type({self.column}, {p}) IN ('integer', 'real')", params

    def milliseconds(self) -> Sql:
        """The value as Unix ms: numbers as they are, text parsed as an ISO 8601 datetime."""
        if self.kind == "number":
            return self.column, []
        if self.kind == "text":
            raise ValueError("string columns hold no datetimes")
        c = self.column
        p, params = self._p()
        return (
            f"CASE json_type({c}, {p}) WHEN 'integer' THEN json_extract({c}, {p}) WHEN 'real' THEN json_extract({c}, {p}) "
            f"WHEN 'text' THEN round((julianday(json_extract({c}, {p})) - {_JULIAN_EPOCH}) * {_MS_PER_DAY}) END",
            params * 4,
        )


def _not(sql: Sql) -> Sql:
    """Exact complement of a condition that may be NULL (missing fields match the negation)."""
    return f"NOT coalesce(({sql[0]}), 0)", sql[1]


def _exists(op: _Operand) -> Sql:
    if op.kind == "json":
        p, params = op._p()
        return f"coalesce(json_type({op.column}, {p}), 'null') <> 'null'", params
    return f"{op.column} IS NOT NULL", []


def _contains(op: _Operand, needle: str) -> Sql:
    if op.kind != "json":
        text, params = op.text()
        return f"instr({text}, ?) > 0", [*params, needle]
    text, text_params = op.text()
    p, params = op._p()
    return (
        f"CASE WHEN json_type({op.column}, {p}) = 'array' "
        f"THEN EXISTS (SELECT 1 FROM json_each({op.column}, {p}) AS j WHERE instr({_TEXT_OF_EACH}, ?) > 0) "
        f"ELSE instr({text}, ?) > 0 END",
        [*params, *params, needle, *text_params, needle],
    )


def _compare(expr: Sql, guard: Sql | None, sign: str, value: Any) -> Sql:
    sql, params = f"{expr[0]} {sign} ?", [*expr[1], value]
    if guard is not None and guard[0] != "1":
        sql, params = f"({guard[0]} AND {sql})", [*guard[1], *params]
    return sql, params


_SIGNS = {Operator.IS: "=", Operator.GREATER_THAN: ">", Operator.LESS_THAN: "<"}


def condition_sql(cond: Condition) -> Sql:
    op = _Operand.of(cond.field)
    operator, vtype, value = cond.operator, cond.type, cond.value
    if operator is Operator.EXISTS:
        return _exists(op)
    if operator is Operator.NOT_EXISTS:
        return _not(_exists(op))
    negate = operator in (Operator.IS_NOT, Operator.NOT_CONTAINS)
    positive = {Operator.IS_NOT: Operator.IS, Operator.NOT_CONTAINS: Operator.CONTAINS}.get(operator, operator)

    if vtype is ValueType.STRING:
        if positive is Operator.CONTAINS:
            sql = _contains(op, str(value))
        elif positive is Operator.IS and op.literal is not None and only_a_string_equals(value):
            # Same matches as the general form below, in a shape the hot path's index serves:
            # a value that is no number, no true/false and no JSON text can only equal a string.
            sql = _compare(op.value(), None, "=", value)
        elif positive is Operator.IS:
            sql = _compare(op.text(), None, "=", value)
            number = parse_number(value) if op.kind == "json" else None
            if number is not None:  # "5" also matches the numbers 5 and 5.0
                numeric = _compare(op.value(), op.numeric_guard(), "=", number)
                sql = f"({sql[0]} OR {numeric[0]})", [*sql[1], *numeric[1]]
        else:
            raise ValueError(f"operator {operator.value} does not apply to strings")
    elif vtype is ValueType.BOOLEAN:
        if positive is not Operator.IS or op.kind != "json":
            raise ValueError("boolean filters only test JSON values with is / is not")
        sql = _compare(op.json_type(), None, "=", "true" if value else "false")
    elif vtype is ValueType.NUMBER:
        if positive not in _SIGNS:
            raise ValueError(f"operator {operator.value} does not apply to numbers")
        sql = _compare(op.value(), op.numeric_guard(), _SIGNS[positive], value)
    elif vtype is ValueType.DATETIME:
        if positive not in _SIGNS:
            raise ValueError(f"operator {operator.value} does not apply to datetimes")
        sql = _compare(op.milliseconds(), None, _SIGNS[positive], value)
    else:  # pragma: no cover - the enum is closed
        raise ValueError(f"unknown type {vtype}")
    return _not(sql) if negate else sql


@dataclass(frozen=True, slots=True)
class CompiledQuery:
    select_sql: str
    select_params: list[Any]
    count_sql: str
    count_params: list[Any]


def where_clause(
    project_key: int, date_range: DateRange | None, conditions: Iterable[Condition]
) -> tuple[str, list[Any]]:
    """The WHERE of a query (project, date range on start_time, every condition ANDed) and its
    parameters; shared by every statement compiled from a query (export, stream, chart, schema)."""
    where = ["e.project_key = ?"]
    params: list[Any] = [project_key]
    if date_range is not None:
        if date_range.start is not None:
            where.append("e.start_time >= ?")
            params.append(date_range.start)
        if date_range.end is not None:
            where.append("e.start_time <= ?")
            params.append(date_range.end)
    for cond in conditions:
        sql, cond_params = condition_sql(cond)
        where.append(f"({sql})")
        params.extend(cond_params)
    return " AND ".join(where), params


def compile_export(owner: Owner, query: EventQuery) -> CompiledQuery:
    """SELECT of one page and COUNT of all matches, always confined to the owner's project."""
    clause, params = where_clause(owner.key, query.date_range, query.conditions)
    order = "" if query.ignore_order else " ORDER BY e.start_time DESC, e.rowid DESC"
    return CompiledQuery(
        select_sql=f"SELECT {event_columns(owner.project_id, 'e.')} FROM events AS e WHERE {clause}{order} LIMIT ? OFFSET ?",
        select_params=[*params, query.limit, query.offset],
        count_sql=f"SELECT count(*) FROM events AS e WHERE {clause}",
        count_params=list(params),
    )


@dataclass(frozen=True, slots=True)
class CompiledStream:
    """Keyset pages over every match of a query, newest first, ties by event_id descending (so
    the order depends on the data alone, not on insertion order: a re-imported export comes out
    in the same order). ``first`` starts the stream, ``after`` continues below the last row seen."""

    first_sql: str
    after_sql: str
    params: list[Any]

    def first(self, chunk: int) -> tuple[str, list[Any]]:
        return self.first_sql, [*self.params, chunk]

    def after(self, start_time: Any, event_id: str, chunk: int) -> tuple[str, list[Any]]:
        return self.after_sql, [*self.params, start_time, start_time, event_id, chunk]


def compile_stream(owner: Owner, query: EventQuery, columns: str | None = None) -> CompiledStream:
    """For ``Store.iter_events``: the query's conditions and date range (not its page), ordered by
    (start_time, event_id) descending: the (project_key, start_time) index gives the order, only
    rows with equal start_time are sorted among themselves. ``columns``: the select list (built by
    our code, e.g. ``rows.line_columns``), by default ``rows.event_columns``."""
    clause, params = where_clause(owner.key, query.date_range, query.conditions)
    select = f"SELECT {columns or event_columns(owner.project_id, 'e.')} FROM events AS e WHERE {clause}"
    order = " ORDER BY e.start_time DESC, e.event_id DESC LIMIT ?"
    return CompiledStream(
        first_sql=select + order,
        after_sql=select + " AND e.start_time <= ? AND (e.start_time < ? OR e.event_id < ?)" + order,
        params=params,
    )
