"""Compiling a backend-neutral ``EventQuery`` (``tracehive.query.filters``) to SQLite SQL.

Rules that keep user input out of the SQL text:
- every value and every JSON path is a bound parameter (``json_extract(col, ?)``);
- the only identifiers in the SQL come from ``_COLUMNS`` below, looked up by the parsed field's
  column name (a ``KeyError`` for anything else), never from the request;
- paths are rebuilt from validated segments (``[A-Za-z0-9_-]+`` or an array index), quoted.

The semantics implemented here are documented in ``tracehive.query.filters``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tracehive.query.filters import Condition, EventQuery, FieldRef, Operator, ValueType, parse_number
from tracehive.storage.sqlite.rows import EVENT_COLUMNS

# Parsed column name -> (SQL column, kind). The SQL text is ours; the keys only select it.
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

_SELECT_COLUMNS = ", ".join(f"e.{c.strip()}" for c in EVENT_COLUMNS.split(","))
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


@dataclass(frozen=True, slots=True)
class _Operand:
    column: str  # SQL text from _COLUMNS
    kind: str  # text | number | json
    path: str | None  # bound parameter for json columns

    @classmethod
    def of(cls, ref: FieldRef) -> _Operand:
        column, kind = _COLUMNS[ref.column]
        if kind != "json" and ref.path:
            raise ValueError(f"{ref.column} has no JSON path")
        return cls(column, kind, json_path(ref.path) if kind == "json" else None)

    # Pieces, each (sql, params in placeholder order) ----------------------------------------

    def value(self) -> Sql:
        if self.kind == "json":
            return f"json_extract({self.column}, ?)", [self.path]
        return self.column, []

    def json_type(self) -> Sql:
        return f"json_type({self.column}, ?)", [self.path]

    def text(self) -> Sql:
        if self.kind == "text":
            return self.column, []
        if self.kind == "number":
            return f"CAST({self.column} AS TEXT)", []
        return (
            f"CASE json_type({self.column}, ?) WHEN 'true' THEN 'true' WHEN 'false' THEN 'false' "
            f"ELSE CAST(json_extract({self.column}, ?) AS TEXT) END",
            [self.path, self.path],
        )

    def numeric_guard(self) -> Sql:
        """True when the value is a number (JSON booleans are not)."""
        if self.kind == "number":
            return "1", []
        if self.kind == "text":
            return "0", []
        return f"json_type({self.column}, ?) IN ('integer', 'real')", [self.path]

    def milliseconds(self) -> Sql:
        """The value as Unix ms: numbers as they are, text parsed as an ISO 8601 datetime."""
        if self.kind == "number":
            return self.column, []
        if self.kind == "text":
            raise ValueError("string columns hold no datetimes")
        c = self.column
        return (
            f"CASE json_type({c}, ?) WHEN 'integer' THEN json_extract({c}, ?) WHEN 'real' THEN json_extract({c}, ?) "
            f"WHEN 'text' THEN round((julianday(json_extract({c}, ?)) - {_JULIAN_EPOCH}) * {_MS_PER_DAY}) END",
            [self.path] * 4,
        )


def _not(sql: Sql) -> Sql:
    """Exact complement of a condition that may be NULL (missing fields match the negation)."""
    return f"NOT coalesce(({sql[0]}), 0)", sql[1]


def _exists(op: _Operand) -> Sql:
    if op.kind == "json":
        return f"coalesce(json_type({op.column}, ?), 'null') <> 'null'", [op.path]
    return f"{op.column} IS NOT NULL", []


def _contains(op: _Operand, needle: str) -> Sql:
    if op.kind != "json":
        text, params = op.text()
        return f"instr({text}, ?) > 0", [*params, needle]
    text, text_params = op.text()
    return (
        f"CASE WHEN json_type({op.column}, ?) = 'array' "
        f"THEN EXISTS (SELECT 1 FROM json_each({op.column}, ?) AS j WHERE instr({_TEXT_OF_EACH}, ?) > 0) "
        f"ELSE instr({text}, ?) > 0 END",
        [op.path, op.path, needle, *text_params, needle],
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


def compile_export(project_id: str, query: EventQuery) -> CompiledQuery:
    """SELECT of one page and COUNT of all matches, always confined to ``project_id``."""
    where = ["e.project_id = ?"]
    params: list[Any] = [project_id]
    if query.date_range is not None:
        if query.date_range.start is not None:
            where.append("e.start_time >= ?")
            params.append(query.date_range.start)
        if query.date_range.end is not None:
            where.append("e.start_time <= ?")
            params.append(query.date_range.end)
    for cond in query.conditions:
        sql, cond_params = condition_sql(cond)
        where.append(f"({sql})")
        params.extend(cond_params)
    clause = " AND ".join(where)
    order = "" if query.ignore_order else " ORDER BY e.start_time DESC, e.rowid DESC"
    return CompiledQuery(
        select_sql=f"SELECT {_SELECT_COLUMNS} FROM events AS e WHERE {clause}{order} LIMIT ? OFFSET ?",
        select_params=[*params, query.limit, query.offset],
        count_sql=f"SELECT count(*) FROM events AS e WHERE {clause}",
        count_params=list(params),
    )
