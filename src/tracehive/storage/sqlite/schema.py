"""``Store.schema_fields`` on SQLite: the field paths seen in a bounded sample of matching events.

One statement: the newest ``sample`` matching events (the same WHERE as ``compile_export``, using
the ``(project_key, start_time)`` index), then ``json_tree`` over each JSON column of each sampled
event, keeping object members not under an array. SQLite does the walking, Python only parses the
distinct ``fullkey`` strings, so the cost is bounded by the sample, not by the project's size.
"""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import orjson

from tracehive.query.event_query import EventQuery
from tracehive.query.schema import MAX_SCHEMA_FIELDS, field_name
from tracehive.storage.sqlite.compile import where_clause

_SCALAR_COLUMNS = ("event_id", "session_id", "parent_id", "event_type", "event_name", "source", "error",
                   "start_time", "end_time", "duration")  # fmt: skip
_JSON_COLUMNS = ("config", "inputs", "outputs", "metadata", "feedback", "metrics", "user_properties", "children_ids")


def _values(names: tuple[str, ...]) -> str:
    return ", ".join(f"('{n}')" for n in names)


def _case(names: tuple[str, ...]) -> str:
    return "CASE c.name " + " ".join(f"WHEN '{n}' THEN s.{n}" for n in names) + " END"


def compile_schema(project_key: int, query: EventQuery, sample: int) -> tuple[str, list[Any]]:
    where, params = where_clause(project_key, query.date_range, query.conditions)
    columns = ", ".join(f"e.{c}" for c in dict.fromkeys(_SCALAR_COLUMNS + _JSON_COLUMNS))
    sql = f"""
WITH sample AS MATERIALIZED (
    SELECT {columns} FROM events AS e WHERE {where}
    ORDER BY e.start_time DESC, e.rowid DESC LIMIT ?
),
scalar_columns(name) AS (VALUES {_values(_SCALAR_COLUMNS)}),
json_columns(name) AS (VALUES {_values(_JSON_COLUMNS)})
SELECT s.event_type, c.name, NULL FROM sample AS s, scalar_columns AS c
WHERE {_case(_SCALAR_COLUMNS)} IS NOT NULL
UNION
SELECT s.event_type, c.name, j.fullkey FROM sample AS s, json_columns AS c, json_tree({_case(_JSON_COLUMNS)}) AS j
WHERE j.type <> 'null' AND (
    (j.key IS NULL AND j.value NOT IN ('{{}}', '[]'))
    OR (typeof(j.key) = 'text' AND instr(j.path, '[') = 0)
)
LIMIT ?
"""
    return sql, [*params, sample, MAX_SCHEMA_FIELDS]


# ``$``, then ``.key`` or ``."quoted key"`` per member (SQLite quotes keys that are not plain words).
_STEP = re.compile(r'\.(?:("(?:[^"\\]|\\.)*")|([^."\[]+))')


def parse_fullkey(fullkey: str) -> list[str] | None:
    if not fullkey.startswith("$"):
        return None
    segments: list[str] = []
    pos = 1
    while pos < len(fullkey):
        match = _STEP.match(fullkey, pos)
        if match is None:
            return None
        if match.group(1) is not None:
            try:
                segment = orjson.loads(match.group(1))
            except orjson.JSONDecodeError:
                return None
        else:
            segment = match.group(2)
        segments.append(segment)
        pos = match.end()
    return segments


def schema_fields(conn: sqlite3.Connection, project_key: int, query: EventQuery, sample: int) -> list[tuple[str, str]]:
    sql, params = compile_schema(project_key, query, sample)
    found: set[tuple[str, str]] = set()
    for event_type, column, fullkey in conn.execute(sql, params):
        if fullkey is None:
            found.add((column, event_type))
            continue
        path = parse_fullkey(fullkey)
        if path is None:
            continue
        name = field_name(column, path)
        if name is not None:
            found.add((name, event_type))
            if path:
                found.add((column, event_type))
    return sorted(found, key=lambda pair: (pair[1], pair[0]))
